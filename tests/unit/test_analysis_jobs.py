"""Job metrics: the spec's rules, the Job a measurement starts, the verdict of its end, and
the release around it (started once, waited for, judged like any failing metric, pruned).
Table tests and passes of the pure release machine, with fake time."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.api import AnalysisRun, BlueGreenApp, Metric, Phase, ReleaseResult, Verdict
from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1.base import GUARD_KIND, JOB_THRESHOLD, JOB_TIMEOUT, RESERVED_LABELS
from bluegreen.core import jobs, naming
from bluegreen.core.analysis import MeasurementVerdict, QueryResult, evaluate_sample
from bluegreen.core.plan import Apply, Delete, Plan
from bluegreen.core.world import JobState, Observed
from bluegreen.release import gates, machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    NAMESPACE,
    R2,
    UID,
    V1,
    V2,
    ObservedBuilder,
    app_body,
    at,
    in_release,
    stamp,
)

SMOKE: dict[str, Any] = {
    "name": "smoke",
    "count": 1,
    "interval": "5s",
    "job": {
        "timeout": "2m",
        "template": {
            "metadata": {"labels": {"team": "shop"}},
            "spec": {
                "containers": [
                    {
                        "name": "check",
                        "image": "python:3.13-slim",
                        "command": ["python3", "-c", "print('ok')"],
                        "env": [{"name": "ACTIVE_URL", "value": "http://mine"}],
                    }
                ]
            },
        },
    },
}
BACKSTOP = 120 + jobs.DEADLINE_GRACE_SECONDS


def job_metric(**changes: Any) -> Metric:
    return Metric.model_validate({**SMOKE, **changes})


# ----------------------------------------------------------------------------- the spec


def with_job(**job: Any) -> dict[str, Any]:
    return {**SMOKE, "job": {**SMOKE["job"], **job}}


INVALID = [
    pytest.param({**SMOKE, "thresholdRange": {"min": 1}}, JOB_THRESHOLD, id="thresholdRange"),
    pytest.param({**SMOKE, "url": "http://x.svc/"}, "exactly one of", id="job-and-url"),
    pytest.param(
        {**SMOKE, "minRequestsQuery": "sum(x)", "minRequests": 1}, GUARD_KIND, id="promql-guard"
    ),
    pytest.param(with_job(timeout="0s"), JOB_TIMEOUT, id="timeout-0s"),
    pytest.param(with_job(timeout="7h"), JOB_TIMEOUT, id="timeout-7h"),
    pytest.param(with_job(backoffLimit=11), "less than or equal to 10", id="backoffLimit-11"),
    pytest.param(
        with_job(template={"metadata": {"labels": {"bluegreen.dev/color": "green"}}, "spec": {}}),
        RESERVED_LABELS,
        id="reserved-label-would-join-the-services",
    ),
    pytest.param(
        with_job(
            template={
                "metadata": {"labels": {f"l{i}": "x" for i in range(17)}},
                "spec": SMOKE["job"]["template"]["spec"],
            }
        ),
        "at most 16 labels",
        id="too-many-labels",
    ),
    pytest.param(
        with_job(template={"spec": {"containers": []}}), "1 to 64 containers", id="no-container"
    ),
    pytest.param(
        with_job(
            template={"spec": {**SMOKE["job"]["template"]["spec"], "restartPolicy": "Always"}}
        ),
        "restartPolicy must be one of Never, OnFailure",
        id="restartPolicy-Always-would-never-end",
    ),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_invalid_job_metrics_say_why(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Metric.model_validate(body)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("timeout", "seconds"), [("1s", 1), ("2m", 120), ("1.5s", 2), ("6h", 21600)]
)
def test_the_timeout_is_whole_seconds_of_active_deadline(timeout: str, seconds: int) -> None:
    source = Metric.model_validate(with_job(timeout=timeout)).job
    assert source is not None and source.timeout_seconds == seconds


# ----------------------------------------------------------------------------- names


def run(**changes: Any) -> AnalysisRun:
    fields: dict[str, Any] = {"phase": "pre", "revision": R2, "window_start": stamp(20)}
    return AnalysisRun(**{**fields, **changes})


def test_a_window_s_id_changes_with_each_window() -> None:
    base = jobs.window_id(run())
    assert jobs.window_id(run()) == base  # deterministic: a restarted operator agrees
    for other in (
        run(runs=2),
        run(window_start=stamp(21)),
        run(phase="post"),
        run(step=1),
        run(revision="other"),
    ):
        assert jobs.window_id(other) != base


@pytest.mark.parametrize(
    ("app", "metric"),
    [("shop", "smoke"), ("a" * 55, "b" * 63), ("shop-", "-x"), ("x", "y")],
)
def test_job_names_are_dns_labels_of_at_most_63_characters(app: str, metric: str) -> None:
    names = {jobs.job_name(app, metric, "w1", i) for i in range(3)}
    assert len(names) == 3  # one Job per measurement
    for name in names:
        assert len(name) <= 63
        assert naming_ok(name), name
    assert jobs.job_name(app, metric, "w1", 0) != jobs.job_name(app, metric, "w2", 0)


def naming_ok(name: str) -> bool:
    return re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) is not None


# ----------------------------------------------------------------------------- the Job


def app_with(pre: list[dict[str, Any]] | None = None, post: list[dict[str, Any]] | None = None,
             status: Any = None, **spec: Any) -> BlueGreenApp:  # fmt: skip
    body = app_body(image=V2, status=status)
    body["spec"]["analysis"] = {"prePromotion": pre or [], "postPromotion": post or []}
    body["spec"].update(spec)
    return BlueGreenApp.model_validate(body)


def test_the_job_is_the_template_owned_labelled_and_told_where_the_preview_is() -> None:
    app = app_with([SMOKE], service={"port": 8080, "targetPort": "http"})
    window = run()
    job = jobs.render_job(app, job_metric(), window, 0, GREEN)
    meta = job["metadata"]
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert meta["name"] == jobs.job_name("shop", "smoke", jobs.window_id(window), 0)
    assert meta["namespace"] == NAMESPACE
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "bluegreen.dev/v1alpha1",
            "kind": "BlueGreenApp",
            "name": "shop",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"] == {
        **naming.owned_labels("shop"),
        naming.LABEL_ROLE: "analysis",
        naming.LABEL_ANALYSIS_WINDOW: jobs.window_id(window),
        naming.LABEL_METRIC: "smoke",
    }
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 120 and spec["backoffLimit"] == 0
    pod = spec["template"]
    # The pod never joins the app's Services: neither its name label nor a colour.
    assert pod["metadata"]["labels"] == {"team": "shop", naming.LABEL_ROLE: "analysis"}
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "ACTIVE_URL": "http://mine",  # the container's own value wins
        "PREVIEW_URL": "http://shop-preview.default.svc:8080",
        "PREVIEW_SERVICE": "shop-preview",
        "ACTIVE_SERVICE": "shop",
        "APP_NAME": "shop",
        "APP_NAMESPACE": NAMESPACE,
        "CANDIDATE_COLOR": "green",
        "CANDIDATE_REVISION": R2,
        "ANALYSIS_PHASE": "pre",
    }
    assert [e["name"] for e in container["env"]].count("ACTIVE_URL") == 1


def test_a_restart_policy_given_is_kept() -> None:
    body = with_job(
        template={
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}
        }
    )
    job = jobs.render_job(app_with([body]), Metric.model_validate(body), run(), 0, GREEN)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


# ----------------------------------------------------------------------------- its end

NOW = at(100)
SEEN = jobs.job_name("shop", "smoke", "w", 0)


def state(finished: str | None = None, created: float = 90, **more: Any) -> JobState:
    return JobState(SEEN, "w", "smoke", at(created), finished=finished, **more)


ENDS = [
    ("complete", state("Complete"), MeasurementVerdict.SUCCESSFUL, 1.0, "Complete"),
    (
        "failed",
        state("Failed", reason="BackoffLimitExceeded", message="Job has reached the backoff limit"),
        MeasurementVerdict.FAILED,
        0.0,
        "Failed (BackoffLimitExceeded: Job has reached the backoff limit)",
    ),
    (
        "stopped-at-its-deadline-is-failed",
        state("Failed", reason="DeadlineExceeded", message="Job was active longer than specified"),
        MeasurementVerdict.FAILED,
        0.0,
        "DeadlineExceeded",
    ),
    (
        "no-verdict-long-after-the-deadline-is-inconclusive",
        state(created=100 - BACKSTOP - 1),
        MeasurementVerdict.INCONCLUSIVE,
        None,
        "no result 60s after its deadline",
    ),
]


@pytest.mark.parametrize(
    ("job", "verdict", "value", "words"), [pytest.param(*c[1:], id=c[0]) for c in ENDS]
)
def test_a_finished_job_gives_its_verdict_and_says_how_to_read_its_logs(
    job: JobState, verdict: MeasurementVerdict, value: float | None, words: str
) -> None:
    sample = jobs.outcome(job, job_metric(), NAMESPACE, NOW)
    assert sample is not None
    judged = evaluate_sample(job_metric(), sample)
    assert judged.verdict is verdict
    assert judged.value == value
    assert words in judged.message
    assert f"kubectl logs -n {NAMESPACE} job/{SEEN}" in judged.message


@pytest.mark.parametrize("created", [90, 100 - BACKSTOP, None])
def test_a_running_job_gives_nothing_yet(created: float | None) -> None:
    job = JobState(SEEN, "w", "smoke", at(created) if created is not None else None)
    assert jobs.outcome(job, job_metric(), NAMESPACE, NOW) is None


def test_a_job_sample_that_is_not_1_or_0_is_an_error() -> None:
    judged = evaluate_sample(job_metric(), QueryResult(values=(0.5,)))
    assert judged.verdict is MeasurementVerdict.ERROR


# ----------------------------------------------------------------------------- the release


def analyzing_app(window_start: float = 20, **metric: Any) -> BlueGreenApp:
    status = in_release(Phase.ANALYZING, started=0, candidate_ready=15)
    app = app_with([{**SMOKE, **metric}], status=status)
    window = run(window_start=stamp(window_start))
    return app.model_copy(update={"status": app.status.model_copy(update={"analysis": window})})


def world(now: float, *states: JobState) -> Observed:
    built = (
        ObservedBuilder(at(now)).color(BLUE, V1).color(GREEN, V2).services(BLUE, preview=GREEN)
    ).build()
    return dataclasses.replace(built, jobs={s.name: s for s in states})


def first_job(app: BlueGreenApp) -> str:
    assert app.status.analysis is not None
    return jobs.job_name("shop", "smoke", jobs.window_id(app.status.analysis), 0)


def in_cluster(app: BlueGreenApp, created: float, finished: str | None = None, **more: Any) -> JobState:  # fmt: skip
    assert app.status.analysis is not None
    window = jobs.window_id(app.status.analysis)
    return JobState(first_job(app), window, "smoke", at(created), finished=finished, **more)


def applied_jobs(plan: Plan) -> list[str]:
    return [
        a.manifest["metadata"]["name"]
        for a in plan.actions
        if isinstance(a, Apply) and a.manifest["kind"] == "Job"
    ]


def test_before_the_window_starts_no_job_runs() -> None:
    app = analyzing_app()
    plan = machine.plan(app, world(19))
    assert applied_jobs(plan) == []
    assert plan.requeue_after == pytest.approx(1.0)


def test_a_due_measurement_starts_its_job_once_and_waits_for_it() -> None:
    app = analyzing_app()
    name = first_job(app)
    plan = machine.plan(app, world(20))
    assert applied_jobs(plan) == [name]
    assert plan.status.phase is Phase.ANALYZING
    analysis = plan.status.analysis
    assert analysis is not None and analysis.jobs == [name]
    assert f"Job {name} running (kubectl logs -n default job/{name})" in analysis.message
    assert [e.reason for e in plan.events] == [Reason.ANALYSIS_JOB_STARTED.value]
    assert f"job/{name}" in plan.events[0].message
    # No timer before the deadline has passed: the Job's watch wakes the app.
    assert plan.requeue_after == pytest.approx(BACKSTOP)
    # The next pass (the Job is in the cache now, running) starts nothing more.
    app = app.model_copy(update={"status": plan.status})
    again = machine.plan(app, world(50, in_cluster(app, created=20)))
    assert applied_jobs(again) == []
    assert again.status.analysis is not None and again.status.analysis.jobs == [name]
    assert again.requeue_after == pytest.approx(20 + BACKSTOP - 50)


def test_a_restarted_operator_finds_the_job_it_started() -> None:
    """Status was written before the Job's create answer came back, or the other way
    round: either way the name is the same, and no second Job is made."""
    app = analyzing_app()
    plan = machine.plan(app, world(20, in_cluster(app, created=20)))
    assert applied_jobs(plan) == []
    assert plan.status.analysis is not None and plan.status.analysis.jobs == [first_job(app)]


def test_a_complete_job_passes_the_analysis_and_the_release_switches() -> None:
    app = analyzing_app()
    plan = machine.plan(app, world(60, in_cluster(app, created=20, finished="Complete")))
    assert plan.status.phase is Phase.OBSERVING and plan.status.active_color is GREEN
    analysis = plan.status.analysis
    assert analysis is not None and analysis.verdict is Verdict.SUCCESS
    (measured,) = analysis.measurements
    assert measured.verdict is MeasurementVerdict.SUCCESSFUL and measured.value == 1.0
    assert f"kubectl logs -n default job/{first_job(app)}" in measured.message


def test_a_failed_job_rolls_back_like_a_failing_metric() -> None:
    app = analyzing_app()
    job = in_cluster(app, created=20, finished="Failed", reason="BackoffLimitExceeded")
    plan = machine.plan(app, world(60, job))
    assert plan.status.phase is Phase.ROLLING_BACK
    assert plan.status.active_color is BLUE  # traffic never moved
    release = plan.status.release
    assert release is not None
    assert release.reason == Reason.PRE_PROMOTION_ANALYSIS_FAILED
    assert release.rollback_result is ReleaseResult.ROLLED_BACK
    assert f"Job {first_job(app)} Failed (BackoffLimitExceeded" in release.message
    assert f"job/{first_job(app)}" in release.message


def test_a_job_without_a_verdict_long_after_its_deadline_pauses_the_release() -> None:
    app = analyzing_app()
    plan = machine.plan(app, world(20 + BACKSTOP + 1, in_cluster(app, created=20)))
    assert plan.status.phase is Phase.PAUSED
    analysis = plan.status.analysis
    assert analysis is not None and analysis.verdict is Verdict.INCONCLUSIVE
    assert "after its deadline" in analysis.message


def test_a_second_measurement_is_another_job_an_interval_after_the_first() -> None:
    app = analyzing_app(count=2, failureLimit=0)
    done = in_cluster(app, created=20, finished="Complete")
    plan = machine.plan(app, world(30, done))
    assert applied_jobs(plan) == []  # the next one is due at 35
    assert plan.requeue_after == pytest.approx(5.0)
    app = app.model_copy(update={"status": plan.status})
    plan = machine.plan(app, world(35, done))
    assert app.status.analysis is not None
    second = jobs.job_name("shop", "smoke", jobs.window_id(app.status.analysis), 1)
    assert applied_jobs(plan) == [second]
    assert plan.status.analysis is not None
    assert plan.status.analysis.jobs == [first_job(app), second]


def test_jobs_of_other_windows_are_deleted_and_the_last_window_s_kept() -> None:
    app = analyzing_app()
    old = JobState("shop-smoke-0000000000", "an-old-window", "smoke", at(-500), "Complete")
    mine = in_cluster(app, created=20)
    plan = machine.plan(app, world(30, old, mine))
    deletes = [a for a in plan.actions if isinstance(a, Delete)]
    assert deletes == [Delete("Job", old.name)]


def test_after_the_release_the_last_window_s_jobs_stay_for_inspection() -> None:
    app = analyzing_app()
    plan = machine.plan(app, world(60, in_cluster(app, created=20, finished="Complete")))
    app = app.model_copy(update={"status": plan.status})
    later = machine.plan(app, world(61, in_cluster(app, created=20, finished="Complete")))
    assert not [a for a in later.actions if isinstance(a, Delete)]


def test_the_gatherer_is_never_asked_to_sample_a_job_metric() -> None:
    app = analyzing_app()
    assert gates.due_samples(app, at(20)) == []


def test_a_post_promotion_job_failure_rolls_traffic_back() -> None:
    status = in_release(Phase.OBSERVING, started=0, candidate_ready=15, switched=20, converged=21)
    app = app_with(post=[SMOKE], status=status)
    window = run(phase="post", window_start=stamp(30))
    app = app.model_copy(update={"status": app.status.model_copy(update={"analysis": window})})
    name = jobs.job_name("shop", "smoke", jobs.window_id(window), 0)
    failed = JobState(name, jobs.window_id(window), "smoke", at(30), "Failed", "DeadlineExceeded")
    observed = ObservedBuilder(at(200)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build()
    plan = machine.plan(app, dataclasses.replace(observed, jobs={name: failed}))
    assert plan.status.phase is Phase.ROLLING_BACK
    assert plan.status.release is not None
    assert plan.status.release.reason == Reason.POST_PROMOTION_ANALYSIS_FAILED
