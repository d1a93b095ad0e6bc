"""The operator is SIGKILLed in the middle of releases and started again.

All release state lives in status, so the restarted process resumes exactly where the
killed one stopped: every release ends in the right state, with exactly one selector
flip per promotion and never an instant without ready endpoints behind the active Service.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import NOT_READY, Apps, app_manifest
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder, SelectorRecorder

pytestmark = pytest.mark.cluster


def flips(rec: SelectorRecorder) -> list[str | None]:
    return [s.get("bluegreen.dev/color") for s in rec.selectors]


def never_dark(rec: EndpointRecorder) -> None:
    served = False
    for sample in rec.history():
        if sample.ready:
            served = True
        else:
            assert not served, f"zero ready endpoints at {sample.at}"


def make_pods_ready(api_client: client.ApiClient, namespace: str, color: str) -> None:
    """Play a kubelet whose readiness probe finally passes."""
    core = client.CoreV1Api(api_client)
    for pod in core.list_namespaced_pod(
        namespace, label_selector=f"bluegreen.dev/color={color}"
    ).items:
        conditions = [
            {
                "type": c.type,
                "status": "True" if c.type in ("Ready", "ContainersReady") else c.status,
            }
            for c in pod.status.conditions
        ]
        core.patch_namespaced_pod_status(
            pod.metadata.name, namespace, {"status": {"conditions": conditions}}
        )


@pytest.fixture
def setup(api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]) -> Any:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    selectors = SelectorRecorder(api_client, ns, "shop")
    endpoints = EndpointRecorder(api_client, ns, "shop")
    selectors.start()
    endpoints.start()
    yield op, ns, apps, selectors, endpoints
    selectors.stop()
    endpoints.stop()


def test_killed_while_deploying(setup: Any, api_client: client.ApiClient) -> None:
    op, ns, apps, selectors, endpoints = setup
    apps.create(app_manifest("shop"))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2", labels=NOT_READY)
    apps.wait_phase("shop", "Deploying")
    wait_for(
        "green pods to exist",
        lambda: (
            len(
                client.CoreV1Api(api_client)
                .list_namespaced_pod(ns, label_selector="bluegreen.dev/color=green")
                .items
            )
            == 2
        ),
    )
    op.kill()
    make_pods_ready(api_client, ns, "green")
    op.start()
    done = apps.wait_phase("shop", "Healthy", revision=apps.status("shop")["candidateRevision"])
    assert done["activeColor"] == "green"
    assert flips(selectors) == ["blue", "green"]
    never_dark(endpoints)


def test_killed_while_analyzing(setup: Any) -> None:
    op, _, apps, selectors, endpoints = setup
    apps.create(app_manifest("shop", autoPromotionSeconds=3))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    analyzing = apps.wait_phase("shop", "Analyzing")
    op.kill()
    time.sleep(3.5)  # the promotion comes due while no operator runs
    op.start()
    done = apps.wait_phase("shop", "Healthy", revision=analyzing["candidateRevision"])
    assert done["activeColor"] == "green"
    assert flips(selectors) == ["blue", "green"]
    never_dark(endpoints)


def test_killed_while_paused_then_promoted(setup: Any) -> None:
    op, _, apps, selectors, endpoints = setup
    apps.create(app_manifest("shop", autoPromotion=False))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    paused = apps.wait_phase("shop", "Paused")
    op.kill()
    apps.request("shop", "promote")  # arrives while the operator is down
    op.start()
    done = apps.wait_phase("shop", "Healthy", revision=paused["candidateRevision"])
    assert done["activeColor"] == "green"
    assert flips(selectors) == ["blue", "green"]
    never_dark(endpoints)


def test_killed_while_the_old_colour_is_kept_warm(setup: Any, api_client: client.ApiClient) -> None:
    op, ns, apps, selectors, _ = setup
    apps.create(app_manifest("shop", scaleDownDelaySeconds=3))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    done = apps.wait_release_done("shop", 2)
    assert done["scaleDown"]["color"] == "blue"
    op.kill()
    time.sleep(3.5)
    op.start()
    appsv1 = client.AppsV1Api(api_client)
    wait_for(
        "blue to be scaled down after the restart",
        lambda: appsv1.read_namespaced_deployment("shop-blue", ns).spec.replicas == 0,
        timeout=30,
    )
    wait_for("scaleDown to be cleared", lambda: "scaleDown" not in apps.status("shop"))
    assert flips(selectors) == ["blue", "green"]


def test_killed_while_rolling_back(setup: Any) -> None:
    op, _, apps, selectors, endpoints = setup
    apps.create(app_manifest("shop", autoPromotion=False))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    paused = apps.wait_phase("shop", "Paused")
    op.kill()
    apps.request("shop", "abort")
    op.start()
    done = apps.wait_phase("shop", "Degraded")
    assert done["activeColor"] == "blue"
    assert paused["candidateRevision"] in done["failedRevisions"]
    assert flips(selectors) == ["blue"]
    never_dark(endpoints)


def test_killed_at_random_moments_over_many_releases(setup: Any) -> None:
    op, _, apps, selectors, endpoints = setup
    rng = random.Random(20261126)
    apps.create(app_manifest("shop", scaleDownDelaySeconds=0))
    apps.wait_phase("shop", "Healthy")
    releases = 6
    for i in range(releases):
        apps.set_image("shop", f"registry.example/shop:r{i}")
        time.sleep(rng.uniform(0.0, 0.4))
        op.kill()
        op.start()
        apps.wait_release_done("shop", i + 2, timeout=60)
        assert apps.status("shop")["phase"] == "Healthy"
    expected = ["blue", "green"] * (releases // 2 + 1)
    assert flips(selectors) == expected[: releases + 1]
    never_dark(endpoints)
    assert op.starts == releases + 1


def test_an_app_deleted_while_the_operator_is_down_goes_away(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    """No finalizer holds the app: a GitOps prune or an uninstall never hangs on it."""
    op, ns = own_operator
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop"))
    apps.wait_phase("shop", "Healthy")
    assert not apps.get("shop")["metadata"].get("finalizers")
    op.kill()
    apps.delete("shop")
    objs = client.CustomObjectsApi(api_client)
    wait_for(
        "the app to be gone",
        lambda: (
            not objs.list_namespaced_custom_object(
                "bluegreen.dev", "v1alpha1", ns, "bluegreenapps"
            )["items"]
        ),
        timeout=20,
    )
    appsv1 = client.AppsV1Api(api_client)
    wait_for(
        "its Deployments to be collected",
        lambda: not appsv1.list_namespaced_deployment(ns).items,
        timeout=60,
    )
    op.start()
