"""Job metrics inside an analysis window: start the Job of a due measurement, turn a
finished Job into the measurement's sample, and keep only the last window's Jobs.

A measurement of a job metric is due when any metric's would be (`analysis.next_due`). The
pass that finds it due and its Job absent creates the Job; the Job's watch wakes the app
when it finishes, and the pass that sees it finished takes the sample
(`bluegreen.core.jobs.outcome`). A timer backstops the Job's deadline, in case the Job
controller never says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bluegreen.api import AnalysisPhase, AnalysisRun, Measurement, Metric
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.core import analysis, jobs, naming
from bluegreen.core.analysis import QueryResult
from bluegreen.core.plan import Apply, Delete
from bluegreen.core.world import JobState
from bluegreen.release.context import Pass


def expected(p: Pass, run: AnalysisRun, metric: Metric, measurements: Sequence[Measurement]) -> str:
    """The name of the Job of the metric's next measurement in this window."""
    index = len(analysis.window(metric, measurements, p.now))
    return jobs.job_name(p.name, metric.name, jobs.window_id(run), index)


def _due(p: Pass, run: AnalysisRun, metric: Metric, measurements: Sequence[Measurement]) -> bool:
    start = _start(run)
    at = analysis.next_due(metric, measurements, start, p.now)
    return at is not None and at <= p.now


def _start(run: AnalysisRun) -> datetime:
    return ts.parse(run.window_start)


def samples(
    p: Pass, run: AnalysisRun, phase: AnalysisPhase, metrics: Sequence[Metric]
) -> tuple[dict[str, QueryResult], list[str]]:
    """The samples of the job metrics whose due measurement's Job has finished (or has
    been given up on), keyed like the gatherer's samples; and the window's Jobs (run.jobs,
    and any of these it does not list yet: a restart between the Job and the status)."""
    out: dict[str, QueryResult] = {}
    known = list(run.jobs)
    for metric in metrics:
        if metric.job is None or not _due(p, run, metric, run.measurements):
            continue
        job = p.observed.jobs.get(expected(p, run, metric, run.measurements))
        if job is None:
            continue
        result = jobs.outcome(job, metric, p.app.metadata.namespace, p.now)
        if result is not None:
            out[f"{phase}/{metric.name}"] = result
            if job.name not in known:
                known.append(job.name)
    return out, known


def start_due(
    p: Pass,
    run: AnalysisRun,
    metrics: Sequence[Metric],
    measurements: Sequence[Measurement],
    known: Sequence[str],
) -> tuple[list[str], dict[str, tuple[str, datetime]]]:
    """Start the Job of every due job measurement that has none yet. Returns the window's
    Jobs (`known`, with the new ones) and, per job metric with a Job in flight, that Job
    and when to give up on it (the timer; the Job's watch wakes the app sooner)."""
    started = list(known)
    in_flight: dict[str, tuple[str, datetime]] = {}
    release = p.release
    for metric in metrics:
        if metric.job is None or not _due(p, run, metric, measurements):
            continue
        name = expected(p, run, metric, measurements)
        job: JobState | None = p.observed.jobs.get(name)
        if job is None:
            index = len(analysis.window(metric, measurements, p.now))
            p.actions.append(Apply(jobs.render_job(p.app, metric, run, index, release.color)))
            p.event(
                Reason.ANALYSIS_JOB_STARTED,
                f"{metric.name}: Job {name} started against {naming.preview_service(p.name)}; "
                f"logs: {jobs.logs_hint(p.app.metadata.namespace, name)}",
            )
        if name not in started:
            started.append(name)
        in_flight[metric.name] = (name, jobs.backstop(job, metric, p.now))
    return started, in_flight


def running(p: Pass, names: Sequence[str]) -> str:
    """The words for the status message about Jobs still running."""
    ns = p.app.metadata.namespace
    return "; ".join(f"Job {name} running ({jobs.logs_hint(ns, name)})" for name in names)


def prune(p: Pass) -> None:
    """Delete the analysis Jobs of windows other than the current (or last) one: the last
    window's Jobs stay for inspection until the next window opens."""
    run = p.status.analysis
    if run is None or not p.observed.jobs:
        return
    current = jobs.window_id(run)
    for name, job in sorted(p.observed.jobs.items()):
        if job.window != current:
            p.actions.append(Delete("Job", name))
