"""Analysis and automatic rollback, on real parts.

A real Prometheus (Debian's) scrapes two real demo app processes, one per colour, labelled
as the operator's ServiceMonitor labels pods (namespace, app, color). A router sends
requests to the process of the colour the active Service selects (and some to the
preview Service's colour), reading the selectors from the real API server, while the real
operator releases a BlueGreenApp whose analysis queries that Prometheus.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.demo_app import DemoApp, http_request, start_demo_app
from tests.support.operator import for_operator
from tests.support.prometheus import PrometheusServer
from tests.support.router import Router
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

SEL = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",route="/"'
ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SEL},status=~"5.."}}[4s]))'
    f" / sum(rate(http_requests_total{{{SEL}}}[4s]))"
)
REQUESTS = f"sum(increase(http_requests_total{{{SEL}}}[4s]))"


def metric(count: int, failure_limit: int = 1, min_requests: float = 8) -> dict[str, Any]:
    return {
        "name": "error-rate",
        "query": ERROR_RATE,
        "thresholdRange": {"max": 0.05},
        "interval": "1s",
        "count": count,
        "failureLimit": failure_limit,
        "minRequestsQuery": REQUESTS,
        "minRequests": min_requests,
    }


@dataclass
class World:
    apps: Apps
    namespace: str
    prometheus: PrometheusServer
    blue: DemoApp
    green: DemoApp
    router: Router

    def app(
        self, name: str = "shop", pre: int = 3, post: int = 6, **strategy: Any
    ) -> dict[str, Any]:
        body = app_manifest(name, **strategy)
        body["spec"]["analysis"] = {
            "prometheus": {"address": for_operator(self.prometheus.url)},
            "prePromotion": [metric(pre)] if pre else [],
            "postPromotion": [metric(post)] if post else [],
        }
        return body

    def faults(self, app: DemoApp, **faults: Any) -> None:
        r = http_request("POST", app.url + "/admin/faults", body=json.dumps(faults).encode())
        assert r.status == 200, r.text


@pytest.fixture
def world(apps: Apps, api_client: client.ApiClient, namespace: str) -> Iterator[World]:
    labels = {"namespace": namespace, "app": "shop"}
    with start_demo_app("blue", "v1") as blue, start_demo_app("green", "v2") as green:
        prom = PrometheusServer(
            [
                (f"127.0.0.1:{blue.port}", {**labels, "color": "blue"}),
                (f"127.0.0.1:{green.port}", {**labels, "color": "green"}),
            ]
        )
        prom.start()
        router = Router(
            api_client, namespace, "shop", {"blue": blue.url, "green": green.url}
        ).start()
        try:
            yield World(apps, namespace, prom, blue, green, router)
        finally:
            router.stop()
            prom.close()


def test_healthy_release_passes_both_analyses(world: World) -> None:
    apps = world.apps
    apps.create(world.app())
    apps.wait_phase("shop", "Healthy", timeout=60)
    apps.set_image("shop", "registry.example/shop:v2")
    done = apps.wait_release_done("shop", 2, timeout=90)
    assert done["phase"] == "Healthy" and done["activeColor"] == "green"
    run = done["analysis"]
    assert run["phase"] == "post" and run["verdict"] == "Successful"
    assert len(run["measurements"]) == 6
    assert all(m["verdict"] == "Successful" for m in run["measurements"])
    assert world.router.errors_on("shop") == 0


def test_errors_after_the_switch_roll_back_by_themselves(world: World) -> None:
    apps = world.apps
    apps.create(world.app(post=10))
    apps.wait_phase("shop", "Healthy", timeout=60)
    apps.set_image("shop", "registry.example/shop:v2")
    wait_for(
        "the switch to green",
        lambda: apps.status("shop").get("phase") == "Observing",
        timeout=60,
        interval=0.05,
    )
    injected = time.time()
    world.faults(world.green, errorRatio=0.5)
    st = apps.wait_phase("shop", "Degraded", timeout=60)
    release = st["release"]
    assert st["activeColor"] == "blue"
    assert release["result"] == "RolledBack"
    assert release["reason"] == "PostPromotionAnalysisFailed"
    assert "error-rate Failed" in release["message"]
    assert "> max 0.05" in release["message"]
    assert release["revision"] in st["failedRevisions"]
    detection = _ts(release["rollbackStartedAt"]) - injected
    operator_detection = _ts(release["rollbackStartedAt"]) - _ts(release["firstFailureAt"])
    print(
        f"\nerrors injected -> rollback started: {detection:.2f}s; "
        f"first failing sample -> rollback started: {operator_detection:.2f}s; "
        f"rollback started -> endpoints back on blue: {release['rollbackSeconds']:.3f}s"
    )
    assert detection < 20
    assert release["rollbackSeconds"] < 5
    # The router now sends everything to blue again: no more errors.
    before = world.router.errors_on("shop")
    time.sleep(1.0)
    assert world.router.errors_on("shop") == before

    # The failed revision, applied again, is not promoted by itself.
    apps.set_image("shop", "registry.example/shop:v3")
    apps.wait_release_done(
        "shop", 3, timeout=90
    )  # v3 is healthy (errors still on green? no: fixed below)


def test_pre_promotion_failure_never_touches_traffic(
    world: World, api_client: client.ApiClient, namespace: str
) -> None:
    apps = world.apps
    apps.create(world.app())
    apps.wait_phase("shop", "Healthy", timeout=60)
    world.faults(world.green, errorRatio=0.5)
    apps.set_image("shop", "registry.example/shop:v2")
    st = apps.wait_phase("shop", "Degraded", timeout=90)
    assert st["activeColor"] == "blue"
    assert st["release"]["reason"] == "PrePromotionAnalysisFailed"
    assert st["release"].get("switchedAt") is None
    svc = client.CoreV1Api(api_client).read_namespaced_service("shop", namespace)
    assert svc.spec.selector["bluegreen.dev/color"] == "blue"
    assert world.router.errors_on("shop") == 0, "users saw the candidate's errors"
    assert world.router.errors_on("shop-preview") > 0, "the preview traffic did reach the candidate"


def test_prometheus_outage_pauses_then_resumes(world: World) -> None:
    apps = world.apps
    apps.create(world.app(post=0, pre=4))
    apps.wait_phase("shop", "Healthy", timeout=60)
    world.prometheus.stop()
    apps.set_image("shop", "registry.example/shop:v2")
    paused = apps.wait_phase("shop", "Paused", timeout=60)
    assert "unreachable" in paused["message"], paused["message"]
    assert paused["activeColor"] == "blue"
    world.prometheus.start()
    done = apps.wait_phase("shop", "Healthy", timeout=90, revision=paused["candidateRevision"])
    assert done["activeColor"] == "green"
    assert done["analysis"]["runs"] >= 2


def test_too_little_traffic_is_inconclusive_not_a_pass(world: World) -> None:
    apps = world.apps
    body = world.app(post=0, pre=3)
    body["spec"]["analysis"]["prePromotion"][0]["minRequests"] = 1000
    apps.create(body)
    apps.wait_phase("shop", "Healthy", timeout=60)
    apps.set_image("shop", "registry.example/shop:v2")
    paused = apps.wait_phase("shop", "Paused", timeout=60)
    assert "minRequests 1000" in paused["message"], paused["message"]
    assert paused["activeColor"] == "blue"
    assert paused["analysis"]["verdict"] in ("Inconclusive", "Running")


def test_failed_revision_is_not_promoted_again_until_retry(world: World) -> None:
    apps = world.apps
    apps.create(world.app(post=0, pre=3))
    apps.wait_phase("shop", "Healthy", timeout=60)
    v1 = apps.status("shop")["stableRevision"]
    world.faults(world.green, errorRatio=0.5)
    apps.set_image("shop", "registry.example/shop:v2")
    failed = apps.wait_phase("shop", "Degraded", timeout=90)
    bad = failed["history"][0]["revision"]
    assert bad in failed["failedRevisions"]
    # Back to v1, then v2 again: v2 is not released by itself.
    apps.set_image("shop", "registry.example/shop:v1")
    apps.wait_phase("shop", "Healthy", timeout=30, revision=v1)
    apps.set_image("shop", "registry.example/shop:v2")
    again = apps.wait_phase("shop", "Degraded", timeout=30)
    assert "failed before" in again["message"]
    assert again["stableRevision"] == v1
    # The fault is fixed; a person retries; the release goes through.
    world.faults(world.green, errorRatio=0.0)
    time.sleep(4)  # let the error rate window forget the old errors
    apps.request("shop", "retry")
    done = apps.wait_phase("shop", "Healthy", timeout=90, revision=bad)
    assert done["activeColor"] == "green"


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
