"""Canary steps through NGINX Ingress canary weights, on the real API server with the real
operator. ingress-nginx itself cannot run here: these tests prove the objects and the
annotations it reads, at every step and in the order they change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.demo_app import start_demo_app
from tests.support.operator import OperatorProcess, for_operator
from tests.support.waiting import wait_for
from tests.support.watchers import ObjectEvent, ObjectRecorder

pytestmark = pytest.mark.cluster

WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_app(name: str, steps: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    body = app_manifest(name, **strategy)
    body["spec"]["ingress"] = {
        "host": "shop.example.com",
        "className": "nginx",
        "tlsSecretName": "shop-tls",
    }
    body["spec"]["strategy"]["canary"] = {"steps": steps}
    return body


@pytest.fixture
def recorders(
    api_client: client.ApiClient, namespace: str
) -> Iterator[tuple[ObjectRecorder, ObjectRecorder]]:
    ingresses = ObjectRecorder(api_client, namespace, "Ingress")
    services = ObjectRecorder(api_client, namespace, "Service")
    ingresses.start()
    services.start()
    yield ingresses, services
    ingresses.stop()
    services.stop()


def weights(events: list[ObjectEvent]) -> list[str]:
    """The canary weight after each change ('gone' when deleted), repeats folded."""
    out: list[str] = []
    for e in events:
        value = (
            "gone"
            if e.kind == "DELETED"
            else (e.obj["metadata"].get("annotations") or {}).get(WEIGHT, "?")
        )
        if not out or out[-1] != value:
            out.append(value)
    return out


def flip_version(services: ObjectRecorder, name: str, color: str) -> int:
    for e in services.history(name):
        if (e.obj.get("spec", {}).get("selector") or {}).get("bluegreen.dev/color") == color:
            return e.resource_version
    raise AssertionError(f"{name} never selected {color}")


def test_stepped_release(
    apps: Apps,
    namespace: str,
    api_client: client.ApiClient,
    recorders: tuple[ObjectRecorder, ObjectRecorder],
) -> None:
    ingresses, services = recorders
    apps.create(
        canary_app("shop", [{"weight": 10, "pauseSeconds": 1}, {"weight": 50, "pauseSeconds": 1}])
    )
    apps.wait_phase("shop", "Healthy")
    net = client.NetworkingV1Api(api_client)
    stable = net.read_namespaced_ingress("shop", namespace)
    assert stable.spec.ingress_class_name == "nginx"
    assert stable.spec.rules[0].host == "shop.example.com"
    assert stable.spec.rules[0].http.paths[0].backend.service.name == "shop"
    assert stable.spec.tls[0].secret_name == "shop-tls"  # noqa: S105 - a Secret's name
    assert stable.metadata.owner_references[0].name == "shop"

    apps.set_image("shop", "registry.example/shop:v2")
    seen: dict[int, dict[str, Any]] = {}

    def at_step(step: int) -> bool:
        st = apps.status("shop")
        if (st.get("canary") or {}).get("step") == step:
            seen[step] = st
            return True
        return False

    wait_for("step 1", lambda: at_step(0), interval=0.05)
    canary = net.read_namespaced_ingress("shop-canary", namespace)
    assert canary.metadata.annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary.metadata.annotations[WEIGHT] == "10"
    assert canary.spec.rules[0].http.paths[0].backend.service.name == "shop-preview"
    assert canary.spec.rules[0].host == "shop.example.com"
    preview = client.CoreV1Api(api_client).read_namespaced_service("shop-preview", namespace)
    assert preview.spec.selector["bluegreen.dev/color"] == "green"
    assert seen[0]["canary"]["weight"] == 10 and seen[0]["phase"] == "Analyzing"
    wait_for("step 2", lambda: at_step(1), interval=0.05)
    assert (
        net.read_namespaced_ingress("shop-canary", namespace).metadata.annotations[WEIGHT] == "50"
    )
    done = apps.wait_release_done("shop", 2)
    assert done["activeColor"] == "green"
    wait_for(
        "the canary Ingress to go",
        lambda: (
            not [
                i
                for i in net.list_namespaced_ingress(namespace).items
                if i.metadata.name == "shop-canary"
            ]
        ),
    )
    assert "canary" not in apps.status("shop")

    assert weights(ingresses.history("shop-canary")) == ["10", "50", "gone"]
    deleted = next(e for e in ingresses.history("shop-canary") if e.kind == "DELETED")
    assert flip_version(services, "shop", "green") < deleted.resource_version, (
        "the canary went before the switch"
    )
    stable_after = net.read_namespaced_ingress("shop", namespace)
    assert stable_after.spec.rules[0].http.paths[0].backend.service.name == "shop"
    raw = client.EventsV1Api(api_client).list_namespaced_event(namespace, _preload_content=False)
    reasons = [e.get("reason") for e in json.loads(raw.data)["items"]]
    assert reasons.count("CanaryStep") == 2


def test_failure_at_step_two_sets_weight_zero_and_removes_it(
    apps: Apps,
    namespace: str,
    api_client: client.ApiClient,
    recorders: tuple[ObjectRecorder, ObjectRecorder],
) -> None:
    ingresses, services = recorders
    with (
        start_demo_app("green", "v2") as healthy,
        start_demo_app("green", "v2", env={"FAULT_HEALTH_FAIL": "true"}) as sick,
    ):
        check = {"interval": "1s", "count": 2, "failureLimit": 0}
        steps = [
            {
                "weight": 10,
                "pauseSeconds": 0,
                "metrics": [
                    {"name": "smoke", "url": for_operator(healthy.url) + "/health", **check}
                ],
            },
            {
                "weight": 40,
                "pauseSeconds": 0,
                "metrics": [{"name": "smoke", "url": for_operator(sick.url) + "/health", **check}],
            },
        ]
        apps.create(canary_app("shop", steps))
        apps.wait_phase("shop", "Healthy")
        apps.set_image("shop", "registry.example/shop:v2")
        st = apps.wait_phase("shop", "Degraded", timeout=60)
    assert st["activeColor"] == "blue"
    assert st["release"]["reason"] == "CanaryAnalysisFailed"
    assert "step 2 at 40%" in st["release"]["message"]
    net = client.NetworkingV1Api(api_client)
    wait_for(
        "the canary Ingress to go",
        lambda: (
            not [
                i
                for i in net.list_namespaced_ingress(namespace).items
                if i.metadata.name == "shop-canary"
            ]
        ),
    )
    assert weights(ingresses.history("shop-canary")) == ["10", "40", "0", "gone"]
    selectors = [
        (e.obj["spec"].get("selector") or {}).get("bluegreen.dev/color")
        for e in services.history("shop")
    ]
    assert set(selectors) == {"blue"}, "traffic left the stable colour"


def test_killed_between_steps_resumes_at_the_right_step(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    ingresses = ObjectRecorder(api_client, ns, "Ingress")
    ingresses.start()
    try:
        apps.create(
            canary_app(
                "shop",
                [
                    {"weight": 10, "pauseSeconds": 4},
                    {"weight": 30, "pauseSeconds": 4},
                    {"weight": 60, "pauseSeconds": 1},
                ],
            )
        )
        apps.wait_phase("shop", "Healthy")
        apps.set_image("shop", "registry.example/shop:v2")
        wait_for(
            "step 2",
            lambda: (apps.status("shop").get("canary") or {}).get("step") == 1,
            interval=0.05,
        )
        op.kill()
        op.start()
        done = apps.wait_release_done("shop", 2, timeout=60)
        assert done["activeColor"] == "green"
        wait_for(
            "the canary to go", lambda: weights(ingresses.history("shop-canary"))[-1:] == ["gone"]
        )
    finally:
        ingresses.stop()
    assert weights(ingresses.history("shop-canary")) == ["10", "30", "60", "gone"]
