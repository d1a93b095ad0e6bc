"""Tick tests of job metrics: whole passes (load, gather, decide, apply, status) against the
in-memory cluster, whose "Job controller" finishes the Jobs the operator starts. They show
what the pure tests cannot: the gatherer reads the app's Jobs back from the cluster, one Job
per measurement is written, and a new window deletes the Jobs of the last one."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import NAME, R1, R2, V1, V2, app_body
from tests.unit.fake_cluster import FakeCluster
from tests.unit.test_reconcile_ticks import Harness, settled_on

SMOKE: dict[str, Any] = {
    "name": "smoke",
    "count": 1,
    "interval": "1s",
    "job": {
        "timeout": "1m",
        "template": {"spec": {"containers": [{"name": "check", "image": "python:3.13"}]}},
    },
}


def harness() -> Harness:
    body = app_body(image=V1)
    body["spec"]["analysis"] = {"prePromotion": [SMOKE]}
    cluster = FakeCluster()
    cluster.create_app(body)
    h = Harness(cluster)
    h.run_until(settled_on(R1))
    return h


def jobs_in(cluster: FakeCluster) -> list[str]:
    return sorted(k.split("/", 1)[1] for k in cluster.objects if k.startswith("Job/"))


def run_until_job(h: Harness, max_ticks: int = 40) -> str:
    for _ in range(max_ticks):
        h.tick()
        if jobs_in(h.cluster):
            (name,) = jobs_in(h.cluster)
            return name
    raise AssertionError(f"no Job started; phases {h.phases()}")


def test_a_completed_job_promotes_and_the_status_names_it() -> None:
    h = harness()
    h.cluster.set_image(V2)
    name = run_until_job(h)
    for _ in range(5):  # the Job runs: nothing else is written meanwhile
        h.tick()
    assert jobs_in(h.cluster) == [name]
    assert h.cluster.status["phase"] == "Analyzing"
    assert f"Job {name} running" in h.cluster.status["analysis"]["message"]
    assert h.cluster.finish_jobs("Complete") == [name]
    h.run_until(settled_on(R2))
    analysis = h.cluster.status["analysis"]
    assert analysis["jobs"] == [name]
    (measured,) = analysis["measurements"]
    assert measured["verdict"] == "Successful"
    assert f"kubectl logs -n default job/{name}" in measured["message"]
    assert "AnalysisJobStarted" in h.events()
    assert jobs_in(h.cluster) == [name]  # kept for inspection after the release


def test_a_failed_job_rolls_back_and_the_next_release_deletes_it() -> None:
    h = harness()
    h.cluster.set_image(V2)
    first = run_until_job(h)
    h.cluster.finish_jobs("Failed", reason="BackoffLimitExceeded")
    h.run_until(lambda s: s.get("phase") == "Degraded")
    assert h.cluster.status["release"]["reason"] == "PrePromotionAnalysisFailed"
    assert first in h.cluster.status["release"]["message"]
    assert h.cluster.status["activeColor"] == "blue"
    assert jobs_in(h.cluster) == [first]
    # A new revision: its window's Job is started, the failed release's Job goes.
    h.cluster.update_spec(lambda spec: spec["template"]["metadata"]["labels"].update(v="3"))
    for _ in range(40):
        h.tick()
        if first not in jobs_in(h.cluster) and jobs_in(h.cluster):
            break
    assert first not in jobs_in(h.cluster)
    deletes = [c.name for c in h.calls() if c.op == "delete"]
    assert deletes == [first]
    (second,) = jobs_in(h.cluster)
    assert second != first and second.startswith(f"{NAME}-smoke-")
