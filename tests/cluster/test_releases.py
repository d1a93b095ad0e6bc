"""Releases end to end: the real operator process against the real API server.

A recorder watches the active Service's EndpointSlices during every release: there is
never an instant without ready endpoints once the app served, and never a mix of colours
once a switch has converged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import NOT_READY, Apps, app_manifest
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder, SelectorRecorder, colors_of

pytestmark = pytest.mark.cluster


@contextmanager
def recording(
    api_client: client.ApiClient, namespace: str, app: str
) -> Iterator[tuple[EndpointRecorder, SelectorRecorder]]:
    endpoints = EndpointRecorder(api_client, namespace, app)
    selectors = SelectorRecorder(api_client, namespace, app)
    endpoints.start()
    selectors.start()
    try:
        yield endpoints, selectors
    finally:
        endpoints.stop()
        selectors.stop()


def assert_never_dark(rec: EndpointRecorder, app: str) -> None:
    samples = rec.history()
    served = False
    for s in samples:
        if s.ready:
            served = True
        elif served:
            raise AssertionError(
                f"the active Service had zero ready endpoints at {s.at}: {samples}"
            )


def deployment(api_client: client.ApiClient, ns: str, name: str) -> Any:
    return client.AppsV1Api(api_client).read_namespaced_deployment(name, ns)


def service(api_client: client.ApiClient, ns: str, name: str) -> Any:
    return client.CoreV1Api(api_client).read_namespaced_service(name, ns)


def test_first_deploy_creates_everything_owned(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    created = apps.create(app_manifest("shop", replicas=2))
    st = apps.wait_phase("shop", "Healthy")
    assert st["activeColor"] == "blue"
    assert st["replicas"] == 2
    assert st["selector"] == "bluegreen.dev/app=shop,bluegreen.dev/color=blue"
    assert st["observedGeneration"] == created["metadata"]["generation"]
    conditions = {c["type"]: c["status"] for c in st["conditions"]}
    conditions.pop("ServiceMonitorReady")  # depends on the cluster: see test_service_monitor.py
    assert conditions == {
        "Available": "True",
        "Progressing": "False",
        "Degraded": "False",
        "Paused": "False",
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    uid = created["metadata"]["uid"]
    blue = deployment(api_client, namespace, "shop-blue")
    assert [o.uid for o in blue.metadata.owner_references] == [uid]
    labels = blue.spec.template.metadata.labels
    assert labels["bluegreen.dev/color"] == "blue"
    assert labels["bluegreen.dev/revision"] == st["stableRevision"]
    assert labels["tier"] == "web"
    assert labels["bluegreen.dev/app"] == "shop"
    assert labels["app.kubernetes.io/name"] == "shop"  # the template does not set it
    env = {e.name: e.value for e in blue.spec.template.spec.containers[0].env}
    assert env == {"APP_COLOR": "blue", "APP_VERSION": "v1"}
    for name, selector in (
        ("shop", {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"}),
        ("shop-preview", {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"}),
        ("shop-metrics", {"bluegreen.dev/app": "shop"}),
    ):
        svc = service(api_client, namespace, name)
        assert svc.spec.selector == selector, name
        assert svc.spec.ports[0].name == "http"
        assert [o.uid for o in svc.metadata.owner_references] == [uid]
    assert service(api_client, namespace, "shop-metrics").spec.cluster_ip == "None"
    release = st["release"]
    assert release["result"] == "Promoted"
    assert release["switchLatencySeconds"] >= 0


def test_release_and_release_back(apps: Apps, api_client: client.ApiClient, namespace: str) -> None:
    apps.create(app_manifest("shop", image="registry.example/shop:v1"))
    v1 = apps.wait_phase("shop", "Healthy")
    with recording(api_client, namespace, "shop") as (endpoints, selectors):
        wait_for(
            "the recorder to see the blue endpoints",
            lambda: endpoints.history() and endpoints.history()[-1].ready,
        )
        apps.set_image("shop", "registry.example/shop:v2")
        v2 = apps.wait_release_done("shop", 2)
        assert v2["phase"] == "Healthy"
        assert v2["activeColor"] == "green"
        assert v2["stableRevision"] != v1["stableRevision"]
        green = deployment(api_client, namespace, "shop-green")
        assert green.spec.template.spec.containers[0].image == "registry.example/shop:v2"
        # The old colour is kept warm, then scaled to zero after scaleDownDelaySeconds.
        wait_for(
            "blue to scale down",
            lambda: deployment(api_client, namespace, "shop-blue").spec.replicas == 0,
            timeout=30,
        )
        apps.set_image("shop", "registry.example/shop:v3")
        v3 = apps.wait_release_done("shop", 3)
        assert v3["activeColor"] == "blue"
        wait_for(
            "green to scale down",
            lambda: deployment(api_client, namespace, "shop-green").spec.replicas == 0,
            timeout=30,
        )
    assert_never_dark(endpoints, "shop")
    flips = [s.get("bluegreen.dev/color") for s in selectors.selectors]
    assert flips == ["blue", "green", "blue"], selectors.selectors
    assert all(s for s in selectors.selectors), "the active selector was empty"
    # After each converged switch the active Service never mixed colours again.
    last = endpoints.history()[-1]
    assert colors_of(last.ready, "shop") == {"blue"}
    history = v3["history"]
    assert [h["result"] for h in history[:3]] == ["Promoted", "Promoted", "Promoted"]
    assert [h["color"] for h in history[:3]] == ["blue", "green", "blue"]
    for h in history[:2]:
        assert h["switchLatencySeconds"] is not None and h["switchLatencySeconds"] < 10


def test_manual_gate_then_promote(apps: Apps, api_client: client.ApiClient, namespace: str) -> None:
    apps.create(app_manifest("gate", autoPromotion=False))
    apps.wait_phase("gate", "Healthy")
    apps.set_image("gate", "registry.example/shop:v2")
    paused = apps.wait_phase("gate", "Paused")
    assert paused["activeColor"] == "blue"
    assert {c["type"]: c["status"] for c in paused["conditions"]}["Paused"] == "True"
    # The preview Service already shows the candidate; the active one does not.
    assert (
        service(api_client, namespace, "gate-preview").spec.selector["bluegreen.dev/color"]
        == "green"
    )
    assert service(api_client, namespace, "gate").spec.selector["bluegreen.dev/color"] == "blue"
    apps.request("gate", "promote")
    done = apps.wait_release_done("gate", 2)
    assert done["activeColor"] == "green"
    annotations = apps.get("gate")["metadata"].get("annotations", {})
    assert "bluegreen.dev/request" not in annotations, "the request was not cleared"


def test_abort_then_no_flapping_then_retry(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_manifest("ab", autoPromotion=False))
    apps.wait_phase("ab", "Healthy")
    apps.set_image("ab", "registry.example/shop:v2")
    paused = apps.wait_phase("ab", "Paused")
    candidate = paused["candidateRevision"]
    apps.request("ab", "abort")
    degraded = apps.wait_phase("ab", "Degraded")
    assert degraded["activeColor"] == "blue"
    assert candidate in degraded["failedRevisions"]
    assert degraded["history"][0]["result"] == "Aborted"
    wait_for(
        "green to scale down",
        lambda: deployment(api_client, namespace, "ab-green").spec.replicas == 0,
        timeout=30,
    )
    # Nothing starts the failed revision again by itself.
    apps.patch_spec("ab", {"replicas": 2})
    st = apps.status("ab")
    assert st["phase"] == "Degraded" and len(st["history"]) == 2
    apps.request("ab", "retry")
    apps.wait_phase("ab", "Paused")
    apps.request("ab", "promote")
    done = apps.wait_phase("ab", "Healthy", revision=candidate)
    assert done["activeColor"] == "green"
    assert candidate not in done["failedRevisions"]


def test_supersede_mid_release(apps: Apps, api_client: client.ApiClient, namespace: str) -> None:
    apps.create(app_manifest("sup", autoPromotion=False))
    apps.wait_phase("sup", "Healthy")
    apps.set_image("sup", "registry.example/shop:v2")
    first = apps.wait_phase("sup", "Paused")
    apps.set_image("sup", "registry.example/shop:v3")

    def new_candidate() -> dict[str, Any] | None:
        st = apps.status("sup")
        ok = st.get("phase") == "Paused" and st.get("candidateRevision") not in (
            None,
            first["candidateRevision"],
        )
        return st if ok else None

    second = wait_for("the newer revision to be the candidate", new_candidate)
    assert second["history"][0]["result"] == "Superseded"
    assert second["activeColor"] == "blue"
    green = deployment(api_client, namespace, "sup-green")
    assert green.spec.template.spec.containers[0].image == "registry.example/shop:v3"
    apps.request("sup", "promote")
    done = apps.wait_phase("sup", "Healthy", revision=second["candidateRevision"])
    assert done["activeColor"] == "green"


def test_replicas_only_change_scales_active_without_release(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_manifest("rep", replicas=2))
    before = apps.wait_phase("rep", "Healthy")
    apps.patch_spec("rep", {"replicas": 4})
    wait_for(
        "blue at 4 ready",
        lambda: (deployment(api_client, namespace, "rep-blue").status.ready_replicas or 0) == 4,
    )
    after = apps.wait_phase("rep", "Healthy")
    wait_for("status.replicas == 4", lambda: apps.status("rep").get("replicas") == 4)
    assert after["stableRevision"] == before["stableRevision"]
    assert len(apps.status("rep")["history"]) == 1
    assert (
        client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items[0].metadata.name
        == "rep-blue"
    )


def test_candidate_never_ready_hits_deadline_traffic_stays(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_manifest("dead", progressDeadlineSeconds=4))
    apps.wait_phase("dead", "Healthy")
    with recording(api_client, namespace, "dead") as (endpoints, selectors):
        wait_for(
            "the recorder to see endpoints",
            lambda: endpoints.history() and endpoints.history()[-1].ready,
        )
        apps.set_image("dead", "registry.example/shop:broken", labels=NOT_READY)
        st = apps.wait_phase("dead", "Degraded", timeout=30)
    assert st["activeColor"] == "blue"
    assert st["history"][0]["result"] == "RolledBack"
    assert st["history"][0]["reason"] == "ProgressDeadlineExceeded"
    assert {c["type"]: c for c in st["conditions"]}["Degraded"]["status"] == "True"
    assert [s.get("bluegreen.dev/color") for s in selectors.selectors] == ["blue"]
    assert all(colors_of(s.ready, "dead") <= {"blue"} for s in endpoints.history())
    assert_never_dark(endpoints, "dead")


def test_deleting_the_app_removes_what_it_owned(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    apps.create(app_manifest("gone"))
    apps.wait_phase("gone", "Healthy")
    apps.delete("gone")
    appsv1 = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    wait_for(
        "Deployments to be collected",
        lambda: not appsv1.list_namespaced_deployment(namespace).items,
        timeout=60,
    )
    wait_for(
        "Services to be collected",
        lambda: (
            not [
                s
                for s in core.list_namespaced_service(namespace).items
                if s.metadata.name.startswith("gone")
            ]
        ),
        timeout=60,
    )
