"""Gateway API traffic routing, with real traffic: the operator's canary steps set the weights
of one rule of the user's HTTPRoute, and Traefik's Gateway provider splits real requests.

The route is the user's (made here as a GitOps repository would): it names the Gateway, the
hostname and two rules. The operator writes the backendRefs of the app's rule only, and
leaves the route in place when the app is deleted.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from tests.cluster.test_data_path import (
    CANARY_TOLERANCE_POINTS,
    MOVE_SECONDS,
    RATE,
    SETTLE_SECONDS,
    StepWindow,
    TimedSelectorRecorder,
)
from tests.support.apps import Apps
from tests.support.datapath import DataPath, data_path_app
from tests.support.operator import OperatorProcess
from tests.support.proxytraffic import (
    TALLY,
    ProxyTraffic,
    all_moved_at,
    settled_on,
    wait_until_served,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
STEPS = [{"weight": 10, "pauseSeconds": 6}, {"weight": 50, "pauseSeconds": 6}]


def user_route(data_path: DataPath, host: str) -> dict[str, Any]:
    """The user's route: the app's rule, and a rule of someone else's the operator must
    never touch."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [
                {"name": data_path.gateway_name, "namespace": data_path.gateway_namespace}
            ],
            "hostnames": [host],
            "rules": [
                {
                    "name": "static",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "assets", "port": 80}],
                },
                {
                    "name": "shop",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "shop", "port": 80}],
                },
            ],
        },
    }


def routed_app(data_path: DataPath, host: str, **strategy: Any) -> dict[str, Any]:
    body = data_path_app("shop", data_path, host, **strategy)
    del body["spec"]["ingress"]  # the HTTPRoute is the only way in
    body["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web", "rule": "shop"}}
    return body


class RouteWeightClock:
    """The preview Service's weight in the route's `shop` rule, with the wall-clock time
    each change was seen, and every version of the route."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.changes: list[tuple[float, int | None]] = []
        self.routes: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    timeout_seconds=2,
                ):
                    self._record(event["raw_object"])
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - a recorder goes on after a dropped watch
                time.sleep(0.1)
            finally:
                w.stop()

    def _record(self, route: dict[str, Any]) -> None:
        self.routes.append(copy.deepcopy(route))
        rule = next(r for r in route["spec"]["rules"] if r.get("name") == "shop")
        weight = next(
            (b.get("weight", 1) for b in rule["backendRefs"] if b["name"] == "shop-preview"), None
        )
        if not self.changes or self.changes[-1][1] != weight:
            self.changes.append((time.time(), weight))


@pytest.fixture
def clocks(
    api_client: client.ApiClient, namespace: str
) -> Iterator[tuple[RouteWeightClock, TimedSelectorRecorder]]:
    weights = RouteWeightClock(api_client, namespace)
    selectors = TimedSelectorRecorder(api_client, namespace, "shop")
    weights.start()
    selectors.start()
    yield weights, selectors
    weights.stop()
    selectors.stop()


def create_route(api_client: client.ApiClient, namespace: str, route: dict[str, Any]) -> None:
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, route
    )


def get_route(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    route: dict[str, Any] = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "web"
    )
    return route


def serving(data_path: DataPath, host: str, color: str) -> None:
    wait_until_served(
        data_path.gateway, host, lambda status, answer: status == 200 and answer == color
    )


def windows(changes: list[tuple[float, int | None]], switched: float) -> list[StepWindow]:
    ends = [at for at, _ in changes[1:]] + [switched]
    return [
        StepWindow(weight, start + SETTLE_SECONDS, min(end, switched))
        for (start, weight), end in zip(changes, ends, strict=True)
        if weight and start < switched
    ]


def shares(traffic: ProxyTraffic, steps: list[StepWindow], label: str) -> None:
    for window in steps:
        answers = traffic.between(window.start, window.end)
        assert len(answers) >= 200, f"too few requests at {window.weight}%: {len(answers)}"
        share = 100.0 * traffic.colors(answers)["green"] / len(answers)
        TALLY.note(f"{label} {window.weight}%", f"{share:.1f}% of {len(answers)} on green")
        assert abs(share - window.weight) <= CANARY_TOLERANCE_POINTS, (
            f"weight {window.weight}%: green got {share:.1f}% of {len(answers)} requests"
        )


def test_canary_steps_through_an_httproute_split_real_traffic(
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    data_path: DataPath,
    clocks: tuple[RouteWeightClock, TimedSelectorRecorder],
) -> None:
    weights, selectors = clocks
    host = "routed.example.com"
    create_route(api_client, namespace, user_route(data_path, host))
    apps.create(routed_app(data_path, host, canary={"steps": STEPS}))
    apps.wait_phase("shop", "Healthy")
    wait_for("the rule's weights 100/0", lambda: weights.changes and weights.changes[-1][1] == 0)
    serving(data_path, host, "blue")
    static_before = get_route(api_client, namespace)["spec"]["rules"][0]

    traffic = ProxyTraffic(data_path.gateway, host, requests=5000, rate=RATE)
    with traffic:
        apps.set_image("shop", data_path.image("v2"))
        apps.wait_release_done("shop", 2, timeout=90)
        wait_for("all traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
    TALLY.add("HTTPRoute canary 10% -> 50% -> promote", traffic)

    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    switched = selectors.switched_to("green")
    steps = windows(weights.changes, switched)
    assert [w.weight for w in steps] == [10, 50], weights.changes
    shares(traffic, steps, "HTTPRoute canary weight")
    moved = all_moved_at(traffic.answers(), "green")
    assert moved is not None and moved - switched < MOVE_SECONDS, "traffic stayed on blue"
    # At rest again: all weight on the active Service; the other rule as its author wrote it.
    wait_for("the rule back to 100/0", lambda: weights.changes[-1][1] == 0)
    after = get_route(api_client, namespace)
    assert after["spec"]["rules"][0] == static_before
    assert [b["name"] for b in after["spec"]["rules"][1]["backendRefs"]] == [
        "shop",
        "shop-preview",
    ]


def test_abort_mid_step_sends_everything_back_to_the_stable_colour(
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    data_path: DataPath,
    clocks: tuple[RouteWeightClock, TimedSelectorRecorder],
) -> None:
    weights, _ = clocks
    host = "abort.example.com"
    create_route(api_client, namespace, user_route(data_path, host))
    steps = [{"weight": 30, "pauseSeconds": 120}, {"weight": 60, "pauseSeconds": 120}]
    apps.create(routed_app(data_path, host, canary={"steps": steps}))
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")

    traffic = ProxyTraffic(data_path.gateway, host, requests=3000, rate=RATE)
    with traffic:
        apps.set_image("shop", data_path.image("v2"))
        wait_for("step 1 at 30%", lambda: weights.changes[-1][1] == 30, timeout=60)
        time.sleep(3)
        apps.request("shop", "abort")
        done = apps.wait_phase("shop", "Degraded", timeout=60)
        wait_for("all traffic on blue for 1s", lambda: settled_on(traffic, "blue", 1.0))
        back = time.time()
        time.sleep(2)
    TALLY.add("HTTPRoute canary aborted at 30%", traffic)

    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    assert done["activeColor"] == "blue"
    assert done["release"]["result"] == "Aborted"
    assert weights.changes[-1][1] == 0
    assert traffic.colors(traffic.between(back, time.time()))["green"] == 0


def test_sigkill_mid_step_resumes_at_that_step(
    api_client: client.ApiClient,
    own_operator: tuple[OperatorProcess, str],
    data_path: DataPath,
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    weights = RouteWeightClock(api_client, ns)
    weights.start()
    host = "killed.example.com"
    try:
        create_route(api_client, ns, user_route(data_path, host))
        steps = [{"weight": 20, "pauseSeconds": 8}, {"weight": 60, "pauseSeconds": 4}]
        apps.create(routed_app(data_path, host, canary={"steps": steps}))
        apps.wait_phase("shop", "Healthy")
        serving(data_path, host, "blue")
        traffic = ProxyTraffic(data_path.gateway, host, requests=4000, rate=RATE)
        with traffic:
            apps.set_image("shop", data_path.image("v2"))
            wait_for("step 1 at 20%", lambda: weights.changes[-1][1] == 20, timeout=60)
            time.sleep(2)
            op.kill()
            time.sleep(3)  # no operator: the weight stays where it was, traffic flows
            op.start()
            apps.wait_release_done("shop", 2, timeout=90)
            wait_for("all traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
        TALLY.add("HTTPRoute canary, operator SIGKILLed at 20%", traffic)
    finally:
        weights.stop()

    assert not traffic.failures(), f"failed requests: {traffic.failures()[:10]}"
    seen = [w for _, w in weights.changes if w]
    assert seen == [20, 60], f"steps repeated or skipped across the restart: {weights.changes}"


def test_a_missing_route_is_a_condition_and_the_route_is_never_deleted(
    apps: Apps, api_client: client.ApiClient, namespace: str, data_path: DataPath
) -> None:
    host = "missing.example.com"
    apps.create(routed_app(data_path, host))

    def routed(status: str) -> dict[str, Any] | None:
        st = apps.status("shop")
        c = next((c for c in st.get("conditions", []) if c["type"] == "TrafficRouted"), None)
        return c if c is not None and c["status"] == status else None

    missing = wait_for("TrafficRouted=False", lambda: routed("False"), timeout=60)
    assert missing["reason"] == "RouteNotFound", missing
    assert "HTTPRoute web not found" in missing["message"]
    create_route(api_client, namespace, user_route(data_path, host))
    wait_for("TrafficRouted=True", lambda: routed("True"), timeout=30)
    serving(data_path, host, "blue")
    apps.delete("shop")
    wait_for(
        "the app to go",
        lambda: (
            not client.CustomObjectsApi(api_client).list_namespaced_custom_object(
                "bluegreen.dev", "v1alpha1", namespace, "bluegreenapps"
            )["items"]
        ),
    )
    time.sleep(2)
    assert get_route(api_client, namespace)["metadata"]["name"] == "web"  # still there
