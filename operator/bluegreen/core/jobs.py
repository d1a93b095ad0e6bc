"""Analysis Jobs, the pure half: what a job metric's Job is called, what it looks like, and
what its end means. The release decides when to start one (`bluegreen.release.jobs`).

Each measurement of a job metric is one Job, named from the analysis window, the metric
and the measurement's index, so a restarted operator finds the Job it started instead of
starting another. The Job belongs to the app (ownerReference), carries the app's labels and
the window's (`bluegreen.dev/analysis-window`), and its pods get, in every container,

    PREVIEW_URL       http://<app>-preview.<namespace>.svc:<port>   the candidate
    ACTIVE_URL        http://<app>.<namespace>.svc:<port>           what users reach now
    PREVIEW_SERVICE   <app>-preview           ACTIVE_SERVICE   <app>
    APP_NAME, APP_NAMESPACE, CANDIDATE_COLOR, CANDIDATE_REVISION, ANALYSIS_PHASE (pre|post)

unless the container sets the variable itself.

Verdicts: Complete -> 1 (Successful), Failed -> 0 (Failed), including a Job Kubernetes
stopped at its deadline (activeDeadlineSeconds = the metric's timeout): a check that hangs
against the preview did not pass. Only when the Job controller gives no verdict at all
within DEADLINE_GRACE_SECONDS after the deadline is the measurement inconclusive.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime, timedelta
from typing import Any

from bluegreen.api import AnalysisRun, BlueGreenApp, Color, Metric
from bluegreen.core import naming
from bluegreen.core.analysis import QueryResult
from bluegreen.core.render import owner_reference
from bluegreen.core.world import JobState

DEADLINE_GRACE_SECONDS = 60.0
"""How long after a Job's deadline the operator waits for the Job controller's verdict."""
MAX_NAME = 63
"""The Job controller puts the Job's name into a label of its pods: at most 63 characters."""
COMPLETE = "Complete"
FAILED = "Failed"


def window_id(run: AnalysisRun) -> str:
    """A short id of one analysis window: its phase, revision, canary step, run and start,
    so a window opened again (an inconclusive one, a retried revision) has Jobs of its own."""
    key = f"{run.phase}/{run.revision}/{run.step}/{run.runs}/{run.window_start}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def job_name(app: str, metric: str, window: str, index: int) -> str:
    """`<app>-<metric>-<hash>`, cut to 63 characters; the hash keeps it unique per window,
    metric and measurement."""
    digest = hashlib.sha256(f"{window}/{metric}/{index}".encode()).hexdigest()[:10]
    prefix = f"{app}-{metric}"[: MAX_NAME - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}"


def logs_hint(namespace: str, name: str) -> str:
    return f"kubectl logs -n {namespace} job/{name}"


def analysis_env(app: BlueGreenApp, run: AnalysisRun, color: Color) -> dict[str, str]:
    """The variables every container of an analysis Job gets (unless it sets them)."""
    ns, name = app.metadata.namespace, app.metadata.name
    port = app.spec.service.primary.port
    preview, active = naming.preview_service(name), naming.active_service(name)
    return {
        "PREVIEW_URL": f"http://{preview}.{ns}.svc:{port}",
        "ACTIVE_URL": f"http://{active}.{ns}.svc:{port}",
        "PREVIEW_SERVICE": preview,
        "ACTIVE_SERVICE": active,
        "APP_NAME": name,
        "APP_NAMESPACE": ns,
        "CANDIDATE_COLOR": color.value,
        "CANDIDATE_REVISION": run.revision,
        "ANALYSIS_PHASE": run.phase,
    }


def render_job(
    app: BlueGreenApp, metric: Metric, run: AnalysisRun, index: int, color: Color
) -> dict[str, Any]:
    """The Job of measurement `index` of a job metric in window `run`."""
    source = metric.job
    if source is None:
        raise ValueError(f"metric {metric.name} is not a job metric")
    window = window_id(run)
    name = job_name(app.metadata.name, metric.name, window, index)
    template = copy.deepcopy(source.template.model_dump(mode="json"))
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), naming.LABEL_ROLE: naming.ROLE_ANALYSIS}
    spec = template["spec"]
    spec.setdefault("restartPolicy", "Never")
    env = analysis_env(app, run, color)
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            own = container.get("env") or []
            taken = {e.get("name") for e in own}
            container["env"] = [
                *own,
                *({"name": k, "value": v} for k, v in env.items() if k not in taken),
            ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": app.metadata.namespace,
            "labels": {
                **naming.owned_labels(app.metadata.name),
                naming.LABEL_ROLE: naming.ROLE_ANALYSIS,
                naming.LABEL_ANALYSIS_WINDOW: window,
                naming.LABEL_METRIC: metric.name,
            },
            "ownerReferences": [owner_reference(app)],
        },
        "spec": {
            "backoffLimit": source.backoff_limit,
            "activeDeadlineSeconds": source.timeout_seconds,
            "template": template,
        },
    }


def outcome(job: JobState, metric: Metric, namespace: str, now: datetime) -> QueryResult | None:
    """The sample a Job gives: None while it runs (within its deadline and the grace)."""
    hint = logs_hint(namespace, job.name)
    why = f" ({job.reason}: {job.message})" if job.reason or job.message else ""
    if job.finished == COMPLETE:
        return QueryResult(values=(1.0,), detail=f"Job {job.name} Complete; logs: {hint}")
    if job.finished == FAILED:
        return QueryResult(values=(0.0,), detail=f"Job {job.name} Failed{why}; logs: {hint}")
    if past_deadline(job, metric, now):
        return QueryResult(
            error=f"Job {job.name} has no result {DEADLINE_GRACE_SECONDS:g}s after its "
            f"deadline (is the Job controller running?); logs: {hint}"
        )
    return None


def backstop(job: JobState | None, metric: Metric, now: datetime) -> datetime:
    """When a running Job is given up on: its deadline plus the grace, counted from its
    creation (from `now` for a Job not seen yet)."""
    timeout = metric.job.timeout_seconds if metric.job is not None else 0
    start = job.created_at if job is not None and job.created_at is not None else now
    return start + timedelta(seconds=timeout + DEADLINE_GRACE_SECONDS)


def past_deadline(job: JobState, metric: Metric, now: datetime) -> bool:
    return job.created_at is not None and now > backstop(job, metric, now)
