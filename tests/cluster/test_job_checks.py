"""Job metrics end to end: the real operator starts a Kubernetes Job per measurement, the
real Job controller decides Complete or Failed from the Job's pod, and the release follows.

On the local control plane the Job's pod ends through kwok (tools/kwok-stages.yaml): its
label `kwok.bluegreen.dev/exit` is the exit code of its one container. The container's
command exits with the same code (`tests.support.apps.job_check`), so a cluster with real
kubelets gives the same verdicts.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest, job_check
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

NAME = "shop"
ROLE = "bluegreen.dev/role=analysis"


def app_with_job(exit_code: int) -> dict[str, Any]:
    body = app_manifest(NAME)
    body["spec"]["analysis"] = {"prePromotion": [job_check(exit_code)]}
    return body


def jobs(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The analysis Jobs in the namespace, by name."""
    items = client.BatchV1Api(api_client).list_namespaced_job(namespace, label_selector=ROLE)
    return {j.metadata.name: j for j in items.items}


def pods_of(api_client: client.ApiClient, namespace: str, job: str) -> list[str]:
    items = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"job-name={job}"
    )
    return [p.metadata.name for p in items.items]


def finished(job: Any) -> str | None:
    for c in job.status.conditions or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return None


def test_a_job_that_completes_promotes_and_the_next_window_removes_it(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_with_job(0))
    first = apps.wait_phase(NAME, "Healthy")
    assert jobs(api_client, namespace) == {}  # the first revision is not analysed

    apps.set_image(NAME, "registry.example/shop:v2")
    st = apps.wait_release_done(NAME, 2)
    assert st["phase"] == "Healthy"
    assert st["activeColor"] != first["activeColor"]
    assert st["history"][0]["result"] == "Promoted"
    (name,) = st["analysis"]["jobs"]
    assert st["analysis"]["verdict"] == "Successful"
    (measurement,) = st["analysis"]["measurements"]
    assert measurement["verdict"] == "Successful"
    assert f"Job {name} Complete" in measurement["message"]
    assert f"kubectl logs -n {namespace} job/{name}" in measurement["message"]

    job = jobs(api_client, namespace)[name]
    assert finished(job) == "Complete"
    uid = apps.get(NAME)["metadata"]["uid"]
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "BlueGreenApp",
        NAME,
        uid,
        True,
    )
    assert job.metadata.labels["bluegreen.dev/metric"] == "smoke"
    assert job.spec.active_deadline_seconds == 60
    assert job.spec.backoff_limit == 0
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    env = {e.name: e.value for e in pod.containers[0].env}
    assert env["PREVIEW_URL"] == f"http://{NAME}-preview.{namespace}.svc:80"
    assert env["ACTIVE_URL"] == f"http://{NAME}.{namespace}.svc:80"
    assert env["CANDIDATE_COLOR"] == st["activeColor"]
    assert env["ANALYSIS_PHASE"] == "pre"
    started = [e for e in apps.events(NAME) if e.get("reason") == "AnalysisJobStarted"]
    assert [name in e["note"] for e in started] == [True]
    assert pods_of(api_client, namespace, name)  # kept, with its pod, for inspection

    # The next release's window removes the Jobs of this one, pods included.
    apps.set_image(NAME, "registry.example/shop:v3")
    st = apps.wait_release_done(NAME, 3)
    (second,) = st["analysis"]["jobs"]
    assert second != name
    wait_for(
        f"Job {name} and its pods to be deleted",
        lambda: (
            name not in jobs(api_client, namespace) and not pods_of(api_client, namespace, name)
        ),
    )
    assert set(jobs(api_client, namespace)) == {second}

    # The app owns its Jobs: deleting it deletes them (the garbage collector).
    apps.delete(NAME)
    wait_for(
        "the app's Jobs and their pods to be deleted with it",
        lambda: not jobs(api_client, namespace) and not pods_of(api_client, namespace, second),
    )


def test_a_job_that_fails_rolls_back_and_says_where_its_logs_are(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_with_job(1))
    first = apps.wait_phase(NAME, "Healthy")

    apps.set_image(NAME, "registry.example/shop:v2")
    st = apps.wait_release_done(NAME, 2)
    assert st["phase"] == "Degraded"
    assert st["activeColor"] == first["activeColor"]
    assert st["stableRevision"] == first["stableRevision"]
    assert st["history"][0]["result"] == "RolledBack"
    (name,) = st["analysis"]["jobs"]
    assert st["analysis"]["verdict"] == "Failed"
    (measurement,) = st["analysis"]["measurements"]
    assert measurement["verdict"] == "Failed"
    assert f"Job {name} Failed (BackoffLimitExceeded" in measurement["message"]
    assert f"kubectl logs -n {namespace} job/{name}" in measurement["message"]
    assert finished(jobs(api_client, namespace)[name]) == "Failed"


def test_a_job_the_api_server_refuses_keeps_traffic_and_says_why(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    """The CRD checks the outline of a Job's template; the Job API checks the rest. A Job it
    refuses never lets the candidate take traffic: the app is Degraded, saying why."""
    body = app_with_job(0)
    template = body["spec"]["analysis"]["prePromotion"][0]["job"]["template"]
    template["spec"]["containers"][0]["name"] = "Smoke_Check"  # not a DNS label
    apps.create(body)
    first = apps.wait_phase(NAME, "Healthy")

    apps.set_image(NAME, "registry.example/shop:v2")

    def refused() -> dict[str, Any] | None:
        st = apps.status(NAME)
        degraded = next((c for c in st.get("conditions") or [] if c["type"] == "Degraded"), {})
        return st if degraded.get("reason") == "ObjectRejected" else None

    st = wait_for("the refused Job to show in the status", refused)
    (degraded,) = [c for c in st["conditions"] if c["type"] == "Degraded"]
    assert degraded["message"].startswith("Job shop-smoke-")
    assert "rejected by the API server" in degraded["message"]
    assert "Smoke_Check" in degraded["message"]
    assert st["activeColor"] == first["activeColor"]
    assert st["phase"] == "Analyzing"
    assert jobs(api_client, namespace) == {}
