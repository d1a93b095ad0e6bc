"""Real requests through a real proxy to real pod processes, with the real operator.

Traefik routes from the EndpointSlices to pods that run the demo app on their own IPs
(tools/podrunner.py), Ready only once their readiness probe answers. A bounded client
sends requests through Traefik with a Host header and keeps every answer's status and
colour (tests/support/proxytraffic.py). Retries on another upstream are off, so every
failed request counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps
from tests.support.datapath import (
    DataPath,
    data_path_app,
    demo_deployment,
    http_route,
    service,
)
from tests.support.proxytraffic import (
    TALLY,
    ProxyTraffic,
    all_moved_at,
    settled_on,
    wait_until_served,
)
from tests.support.waiting import wait_for
from tests.support.watchers import ObjectRecorder, SelectorRecorder

pytestmark = pytest.mark.cluster

RATE = 100.0
"""Requests per second of every run; each run is bounded by its request count."""
CANARY_TOLERANCE_POINTS = 2.0
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
MOVE_SECONDS = 3.0
"""Longest time from the selector flip until every request gets the new colour."""
SETTLE_SECONDS = 1.0
"""Time the proxy is given to apply a new canary weight before its share is measured."""
SPLIT_TOLERANCE = 5
"""Requests of 1,000 an HTTPRoute's split may differ from its weights (see its test)."""


class TimedSelectorRecorder(SelectorRecorder):
    """The active Service's selector, with the wall-clock time each change was seen."""

    def __init__(self, api_client: client.ApiClient, namespace: str, service_name: str) -> None:
        super().__init__(api_client, namespace, service_name)
        self.changes: list[tuple[float, dict[str, str]]] = []

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        before = len(self.selectors)
        super()._record(kind, obj)
        if len(self.selectors) > before:
            self.changes.append((time.time(), self.selectors[-1]))

    def switched_to(self, color: str) -> float:
        for at, selector in self.changes:
            if selector.get("bluegreen.dev/color") == color:
                return at
        raise AssertionError(f"the active Service never selected {color}: {self.changes}")


@pytest.fixture
def selector_clock(api_client: client.ApiClient, namespace: str) -> Iterator[TimedSelectorRecorder]:
    recorder = TimedSelectorRecorder(api_client, namespace, "shop")
    recorder.start()
    yield recorder
    recorder.stop()


def serving(data_path: DataPath, host: str, color: str) -> None:
    wait_until_served(
        data_path.ingress, host, lambda status, answer: status == 200 and answer == color
    )


def test_release_moves_all_traffic_without_a_failed_request(
    apps: Apps, data_path: DataPath, selector_clock: TimedSelectorRecorder
) -> None:
    host = "shop.example.com"
    apps.create(data_path_app("shop", data_path, host))
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    wait_for("the selector recorder", lambda: selector_clock.changes)

    traffic = ProxyTraffic(data_path.ingress, host, requests=4000, rate=RATE)
    with traffic:
        time.sleep(1.0)
        apps.set_image("shop", data_path.image("v2"))
        done = apps.wait_release_done("shop", 2, timeout=60)
        assert done["activeColor"] == "green", done
        wait_for("all traffic on green for 2s", lambda: settled_on(traffic, "green", 2.0))
    answers = traffic.answers()
    TALLY.add("release v1 -> v2", traffic)

    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    switched = selector_clock.switched_to("green")
    moved = all_moved_at(answers, "green")
    assert moved is not None, "the traffic never settled on green"
    first_green = next(i for i, a in enumerate(answers) if a.color == "green")
    late_blue = [a for a in answers[first_green:] if a.color == "blue"]
    assert not late_blue, f"{len(late_blue)} blue answers after the first green one"
    assert {a.version for a in answers if a.color == "green"} == {"v2"}
    assert traffic.colors()["blue"] >= RATE * 0.5, "too little traffic before the switch"
    latency = moved - switched
    TALLY.note("selector flip -> all traffic on green", f"{latency * 1000:.0f} ms")
    assert latency < MOVE_SECONDS, f"traffic moved {latency:.2f}s after the selector flip"


class CanaryWeightClock(ObjectRecorder):
    """The canary Ingress's weight, with the wall-clock time each change was seen."""

    def __init__(self, api_client: client.ApiClient, namespace: str, ingress: str) -> None:
        super().__init__(api_client, namespace, "Ingress")
        self.ingress = ingress
        self.changes: list[tuple[float, int | None]] = []

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        super()._record(kind, obj)
        if obj["metadata"]["name"] != self.ingress:
            return
        annotations = obj["metadata"].get("annotations") or {}
        weight = None if kind == "DELETED" else int(annotations.get(CANARY_WEIGHT, "0"))
        if not self.changes or self.changes[-1][1] != weight:
            self.changes.append((time.time(), weight))


@dataclass(frozen=True)
class StepWindow:
    weight: int
    start: float
    end: float


def step_windows(changes: list[tuple[float, int | None]], switched: float) -> list[StepWindow]:
    """Each canary weight, from when the proxy had time to apply it until the next change
    of the weight or the switch, whichever came first."""
    ends = [at for at, _ in changes[1:]] + [switched]
    return [
        StepWindow(weight, start + SETTLE_SECONDS, min(end, switched))
        for (start, weight), end in zip(changes, ends, strict=True)
        if weight is not None and start < switched
    ]


def test_canary_steps_split_real_traffic_by_weight(
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    data_path: DataPath,
    selector_clock: TimedSelectorRecorder,
) -> None:
    host = "canary.example.com"
    steps = [{"weight": 10, "pauseSeconds": 6}, {"weight": 50, "pauseSeconds": 6}]
    body = data_path_app("shop", data_path, host)
    body["spec"]["strategy"]["canary"] = {"steps": steps}
    apps.create(body)
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    weights = CanaryWeightClock(api_client, namespace, "shop-canary")
    weights.start()
    try:
        traffic = ProxyTraffic(data_path.ingress, host, requests=5000, rate=RATE)
        with traffic:
            apps.set_image("shop", data_path.image("v2"))
            apps.wait_release_done("shop", 2, timeout=90)
            wait_for("all traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
    finally:
        weights.stop()
    TALLY.add("canary 10% -> 50% -> promote", traffic)

    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    switched = selector_clock.switched_to("green")
    windows = step_windows(weights.changes, switched)
    assert [w.weight for w in windows] == [10, 50], weights.changes
    for window in windows:
        answers = traffic.between(window.start, window.end)
        assert len(answers) >= 200, f"too few requests at {window.weight}%: {len(answers)}"
        share = 100.0 * traffic.colors(answers)["green"] / len(answers)
        TALLY.note(f"canary weight {window.weight}%", f"{share:.1f}% of {len(answers)} on green")
        assert abs(share - window.weight) <= CANARY_TOLERANCE_POINTS, (
            f"weight {window.weight}%: green got {share:.1f}% of {len(answers)} requests"
        )
    moved = all_moved_at(traffic.answers(), "green")
    assert moved is not None and moved - switched < MOVE_SECONDS, "traffic stayed on blue"


def create_split(
    api_client: client.ApiClient, namespace: str, data_path: DataPath, host: str
) -> None:
    apps_api = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    for name, color in (("stable", "blue"), ("candidate", "green")):
        apps_api.create_namespaced_deployment(namespace, demo_deployment(name, data_path, color))
        core.create_namespaced_service(namespace, service(name))
    route = http_route("split", data_path, host, {"stable": 90, "candidate": 10})
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", route
    )


def route_accepted(api_client: client.ApiClient, namespace: str) -> bool:
    route = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", "split"
    )
    parents = (route.get("status") or {}).get("parents") or []
    conditions = {c["type"]: c["status"] for p in parents for c in p.get("conditions", [])}
    return conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True"


def terminating_namespaces(api_client: client.ApiClient) -> list[str]:
    namespaces = client.CoreV1Api(api_client).list_namespace().items
    return [ns.metadata.name for ns in namespaces if ns.status.phase == "Terminating"]


def test_httproute_weights_split_traffic_exactly(
    api_client: client.ApiClient, namespace: str, data_path: DataPath
) -> None:
    host = "split.example.com"
    create_split(api_client, namespace, data_path, host)
    wait_for("the HTTPRoute to be accepted", lambda: route_accepted(api_client, namespace))
    for color in ("blue", "green"):
        wait_until_served(
            data_path.gateway, host, lambda status, answer, c=color: status == 200 and answer == c
        )

    wait_for("earlier tests' namespaces to go", lambda: not terminating_namespaces(api_client))

    traffic = ProxyTraffic(data_path.gateway, host, requests=1000, rate=2 * RATE)
    traffic.start()
    traffic.wait()
    TALLY.add("HTTPRoute 90/10", traffic)

    assert len(traffic.answers()) == 1000
    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    assert set(traffic.colors()) == {"blue", "green"}
    # Weighted round robin is exact: 100 of 1,000. Any change the proxy sees anywhere in
    # the cluster rebuilds its configuration and restarts the rotation, which favours the
    # heavier backend by a request at most; the bound allows a few of those.
    green = traffic.colors()["green"]
    assert abs(green - 100) <= SPLIT_TOLERANCE, f"{green} of 1000 on the 10% backend"


def pod_gone(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    return name not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items}


def test_deleted_pod_drains_without_a_failed_request(
    apps: Apps, api_client: client.ApiClient, namespace: str, data_path: DataPath
) -> None:
    host = "drain.example.com"
    pre_stop = 2
    apps.create(
        data_path_app(
            "shop", data_path, host, pre_stop_seconds=pre_stop, env={"FAULT_LATENCY_MS": "50"}
        )
    )
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    core = client.CoreV1Api(api_client)
    victim = core.list_namespaced_pod(namespace).items[0].metadata.name

    # Several requests in flight at any time: killing a pod at once would fail some.
    traffic = ProxyTraffic(data_path.ingress, host, requests=600, rate=RATE, concurrency=8)
    with traffic:
        time.sleep(1.0)
        deleted_at = time.monotonic()
        core.delete_namespaced_pod(victim, namespace)
        wait_for(f"{victim} to go", lambda: pod_gone(core, namespace, victim), timeout=30)
        lingered = time.monotonic() - deleted_at
        traffic.wait()
    TALLY.add("pod deleted mid-traffic", traffic, f"it drained for {lingered:.1f}s")

    assert len(traffic.answers()) == 600
    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    assert lingered >= pre_stop, f"the pod went after {lingered:.1f}s, before its preStop sleep"
    assert traffic.colors() == {"blue": 600}
