"""Apps made by an earlier operator version (the labels themselves: test_labels.py).

The operator selects an app's pods by `bluegreen.dev/app` + `bluegreen.dev/color`. An
earlier version selected `app.kubernetes.io/name` + colour, and a Deployment's selector
cannot change: each such ("legacy") Deployment keeps serving, selected as it was, until its
colour's next release replaces it while that colour serves no traffic. Meanwhile
`<name>-legacy` lists its pods beside `<name>-metrics`, so readiness and scrapes see both
colours. Each case runs through the release machine's invariants as well.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from bluegreen.api import BlueGreenApp, Phase
from bluegreen.core import naming
from bluegreen.core.plan import Apply, Plan
from bluegreen.core.world import Observed, ServiceState
from bluegreen.release import machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    NAME,
    R1,
    R2,
    V0,
    V1,
    V2,
    V3,
    ObservedBuilder,
    at,
    healthy,
    in_release,
    make_app,
    service_labels,
)
from tests.unit.fake_cluster import FakeCluster
from tests.unit.test_reconcile_ticks import Harness, healthy_on_v1, settled_on
from tests.unit.test_release_machine import assert_invariants, describe_all

LEGACY_SVC = naming.legacy_metrics_service(NAME)
METRICS = naming.metrics_service(NAME)


def plan_of(app: BlueGreenApp, observed: Observed) -> Plan:
    plan = machine.plan(app, observed)
    assert_invariants(app, observed, plan)
    return plan


def applied(plan: Plan, kind: str, name: str) -> dict[str, Any]:
    (manifest,) = [
        a.manifest for a in plan.actions if isinstance(a, Apply) and a.key == f"{kind}/{name}"
    ]
    return manifest


def legacy_world() -> ObservedBuilder:
    """Healthy on blue v1, both Deployments made by an earlier operator version; green
    idle at v0."""
    return (
        ObservedBuilder(at(0))
        .color(BLUE, V1, legacy=True)
        .color(GREEN, V0, replicas=0, legacy=True)
        .services(active=BLUE)
    )


# ----------------------------------------------------------------------------- one pass


def test_after_the_upgrade_the_legacy_colour_serves_on_and_only_services_change() -> None:
    """The first pass of the new operator: no Deployment is touched; the active and preview
    Services keep selecting blue's pods by app.kubernetes.io/name (they only gain the
    bluegreen.dev/app label), <name>-legacy lists those pods, <name>-metrics moves to
    bluegreen.dev/app (for the pods to come)."""
    app = make_app(image=V1, status=healthy(V1, BLUE))
    world = legacy_world().before_upgrade().build()
    plan = plan_of(app, world)
    assert plan.status.phase is Phase.HEALTHY
    assert describe_all(plan) == [
        "apply Service/shop -> blue",
        "apply Service/shop-preview -> blue",
        "apply Service/shop-legacy -> both",
        "apply Service/shop-metrics -> both",
    ]
    legacy = naming.legacy_selector(NAME, BLUE)
    assert applied(plan, "Service", "shop")["spec"]["selector"] == legacy
    assert applied(plan, "Service", "shop-preview")["spec"]["selector"] == legacy
    assert applied(plan, "Service", LEGACY_SVC)["spec"]["selector"] == {
        "app.kubernetes.io/name": "shop"
    }
    assert applied(plan, "Service", METRICS)["spec"]["selector"] == {"bluegreen.dev/app": "shop"}
    assert plan.status.selector == "app.kubernetes.io/name=shop,bluegreen.dev/color=blue"
    # Once written, the next pass has nothing to do.
    assert describe_all(plan_of(app, legacy_world().build())) == []


REPLACED = ["delete Deployment/shop-green", "apply Deployment/shop-green v2 x2"]


@pytest.mark.parametrize(
    ("green", "legacy", "actions"),
    [
        # Another revision: the idle legacy Deployment is made again, with the new selector.
        pytest.param((V0, 0), True, REPLACED, id="cold-other-revision"),
        pytest.param((V0, 2), True, REPLACED, id="warm-other-revision"),
        # Scaled to zero, it has no pods worth keeping: replaced although it runs v2.
        pytest.param((V2, 0), True, REPLACED, id="cold-same-revision"),
        # A warm colour that runs the target (a revert): its ready pods are reused.
        pytest.param((V2, 2), True, [], id="warm-same-revision"),
        # Deployments of this version are never deleted.
        pytest.param((V0, 0), False, ["apply Deployment/shop-green v2 x2"], id="new-other"),
        pytest.param((V2, 0), False, ["scale shop-green to 2"], id="new-cold-same"),
    ],
)
def test_a_release_replaces_an_idle_legacy_deployment_unless_its_pods_serve_the_target(
    green: tuple[str, int], legacy: bool, actions: list[str]
) -> None:
    """Blue (legacy, active) serves v1; v2 is released to green."""
    image, replicas = green
    app = make_app(image=V2, status=healthy(V1, BLUE))
    world = (
        ObservedBuilder(at(0))
        .color(BLUE, V1, legacy=True)
        .color(GREEN, image, replicas=replicas, legacy=legacy)
        .services(active=BLUE)
        .build()
    )
    plan = plan_of(app, world)
    assert plan.status.phase is Phase.DEPLOYING
    assert [a for a in describe_all(plan) if "shop-green" in a] == actions
    assert not [a for a in describe_all(plan) if "shop-blue" in a]
    if actions == REPLACED:
        dep = applied(plan, "Deployment", "shop-green")
        assert dep["spec"]["selector"]["matchLabels"] == naming.selector(NAME, GREEN)


def test_the_candidate_of_a_release_in_flight_is_kept_even_when_scaled_to_zero() -> None:
    """Only the start of a release replaces a legacy Deployment that runs the target: one
    that is being scaled up for a release the earlier version began goes on as it is."""
    app = make_app(image=V2, status=in_release(Phase.DEPLOYING, started=0))
    world = (
        ObservedBuilder(at(1))
        .color(BLUE, V1, legacy=True)
        .color(GREEN, V2, replicas=0, legacy=True)
        .services(active=BLUE)
        .build()
    )
    actions = describe_all(plan_of(app, world))
    assert [a for a in actions if "Deployment" in a or "scale" in a] == ["scale shop-green to 2"]


def test_a_release_to_a_colour_without_a_deployment_deletes_nothing() -> None:
    app = make_app(image=V2, status=healthy(V1, BLUE))
    world = ObservedBuilder(at(0)).color(BLUE, V1, legacy=True).services(active=BLUE).build()
    assert describe_all(plan_of(app, world)) == ["apply Deployment/shop-green v2 x2"]


def test_a_legacy_deployment_the_app_does_not_own_is_never_deleted() -> None:
    app = make_app(image=V2, status=healthy(V1, BLUE))
    world = (
        ObservedBuilder(at(0))
        .color(BLUE, V1, legacy=True)
        .color(GREEN, V0, replicas=0, legacy=True, owned=False)
        .services(active=BLUE)
        .build()
    )
    assert describe_all(plan_of(app, world)) == ["apply Deployment/shop-green v2 x2"]


def test_a_release_in_flight_across_the_upgrade_switches_to_its_legacy_candidate() -> None:
    """The earlier version deployed v2 to green; the new one promotes it as it is."""
    app = make_app(image=V2, status=in_release(Phase.ANALYZING, started=0, candidate_ready=1))
    world = (
        ObservedBuilder(at(2))
        .color(BLUE, V1, legacy=True)
        .color(GREEN, V2, legacy=True)
        .services(active=BLUE)
        .build()
    )
    plan = plan_of(app, world)
    assert plan.status.phase is Phase.OBSERVING and plan.status.active_color is GREEN
    assert not [a for a in describe_all(plan) if "Deployment" in a]
    selector = applied(plan, "Service", "shop")["spec"]["selector"]
    assert selector == naming.legacy_selector(NAME, GREEN)


def rolling_back_to_legacy_blue() -> tuple[BlueGreenApp, ObservedBuilder]:
    """v2 (new green) serves and is rolled back; blue is warm, legacy, on v1."""
    app = make_app(
        image=V2,
        status=in_release(
            Phase.ROLLING_BACK, started=0, candidate_ready=1, switched=2, rollback_started=5
        ).model_copy(update={"active_color": GREEN}),
    )
    world = (
        ObservedBuilder(at(6)).color(BLUE, V1, legacy=True).color(GREEN, V2).services(active=GREEN)
    )
    return app, world


def test_a_rollback_goes_back_to_the_legacy_colour_as_it_selects_its_pods() -> None:
    app, world = rolling_back_to_legacy_blue()
    plan = plan_of(app, world.build())
    assert plan.status.active_color is BLUE
    assert applied(plan, "Service", "shop")["spec"]["selector"] == naming.legacy_selector(
        NAME, BLUE
    )


def test_without_the_legacy_metrics_service_the_legacy_colour_is_not_saturated() -> None:
    """<name>-legacy is what shows blue's pods ready in EndpointSlices: without it the
    rollback waits (and traffic stays where it is) rather than flip blind."""
    app, world = rolling_back_to_legacy_blue()
    plan = plan_of(app, world.without_service(LEGACY_SVC).build())
    assert plan.status.active_color is GREEN
    assert "apply Service/shop-legacy -> both" in describe_all(plan)


def test_once_no_legacy_deployment_is_left_the_legacy_service_goes() -> None:
    app = make_app(image=V2, status=healthy(V2, GREEN))
    world = ObservedBuilder(at(0)).color(GREEN, V2).color(BLUE, V1).services(active=GREEN).build()
    stale = ServiceState(
        name=LEGACY_SVC,
        selector=naming.legacy_app_selector(NAME),
        ports=(("http", 80, "http"),),
        headless=True,
        labels=service_labels("metrics"),
    )
    world = dataclasses.replace(world, services={**world.services, LEGACY_SVC: stale})
    assert describe_all(plan_of(app, world)) == ["delete Service/shop-legacy"]
    foreign = dataclasses.replace(stale, has_owner=False)
    world = dataclasses.replace(world, services={**world.services, LEGACY_SVC: foreign})
    assert describe_all(plan_of(app, world)) == []


def drops(monitor: dict[str, Any]) -> list[dict[str, Any]]:
    relabelings = monitor["spec"]["endpoints"][0]["relabelings"]
    return [r for r in relabelings if r.get("action") == "drop"]


def test_the_service_monitor_scrapes_the_legacy_pods_once_while_they_exist() -> None:
    app = make_app(image=V1, status=healthy(V1, BLUE))
    monitored = dataclasses.replace(legacy_world().build(), service_monitor_supported=True)
    monitor = applied(plan_of(app, monitored), "ServiceMonitor", NAME)
    assert drops(monitor) == [
        {
            "sourceLabels": [
                "__meta_kubernetes_service_name",
                "__meta_kubernetes_pod_labelpresent_bluegreen_dev_app",
            ],
            "regex": "shop-legacy;true",
            "action": "drop",
        }
    ]
    migrated = ObservedBuilder(at(0)).color(BLUE, V1).color(GREEN, V0, replicas=0)
    world = dataclasses.replace(
        migrated.services(active=BLUE).build(),
        service_monitor_supported=True,
        service_monitor={"spec": monitor["spec"]},
    )
    assert drops(applied(plan_of(app, world), "ServiceMonitor", NAME)) == []


# ----------------------------------------------------------------------------- ticks


def as_earlier_version(cluster: FakeCluster) -> None:
    """Rewrite the stored objects as an earlier operator version made them: pods, pod
    templates and selectors on `app.kubernetes.io/name`, no `bluegreen.dev/app` anywhere."""

    def old_labels(labels: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in labels.items() if k != naming.LABEL_APP}
        if naming.LABEL_APP in labels:
            out[naming.LABEL_NAME] = labels[naming.LABEL_APP]
        return out

    for key, obj in cluster.objects.items():
        meta = obj["metadata"]
        meta["labels"] = {k: v for k, v in meta["labels"].items() if k != naming.LABEL_APP}
        if key.startswith("Deployment/"):
            spec = obj["spec"]
            spec["selector"]["matchLabels"] = old_labels(spec["selector"]["matchLabels"])
            template = spec["template"]["metadata"]
            template["labels"] = old_labels(template["labels"])
        elif key.startswith("Service/"):
            obj["spec"]["selector"] = old_labels(obj["spec"]["selector"])
    for pod in cluster.pod_objects.values():
        pod["metadata"]["labels"] = old_labels(pod["metadata"]["labels"])
    cluster.simulate()


def active_ready_endpoints(cluster: FakeCluster) -> int:
    return sum(
        1
        for s in cluster.slices.get(naming.active_service(NAME), [])
        for e in s["endpoints"]
        if e["conditions"]["ready"]
    )


def deployment_selectors(cluster: FakeCluster) -> dict[str, dict[str, str]]:
    return {
        key: obj["spec"]["selector"]["matchLabels"]
        for key, obj in cluster.objects.items()
        if key.startswith("Deployment/")
    }


def run_serving(h: Harness, done: Any, max_ticks: int = 60) -> None:
    """Ticks until `done`; after every one the active Service lists every replica ready."""
    for _ in range(max_ticks):
        h.tick()
        ready = active_ready_endpoints(h.cluster)
        assert ready >= 2, f"{ready} ready endpoints behind the active Service at {h.now()}s"
        if done(h.cluster.status):
            return
    raise AssertionError(f"not done after {max_ticks} ticks; phases: {h.phases()}")


def test_an_app_of_an_earlier_version_migrates_through_its_releases_without_a_gap() -> None:
    h = healthy_on_v1()
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))  # green serves v2, blue is scaled to zero
    as_earlier_version(h.cluster)
    before = copy.deepcopy(h.cluster.objects)

    mark = len(h.ticks)
    run_serving(h, lambda st: len(h.ticks) - mark >= 3)
    assert h.phases(mark) == ["Healthy"]
    for key, obj in before.items():
        if key.startswith("Deployment/"):
            assert h.cluster.objects[key] == obj, f"{key} was written"
    assert h.cluster.obj("Service", LEGACY_SVC) is not None

    # v3 fails after the switch (a person aborts): traffic goes back to legacy green.
    h.cluster.set_image(V3)
    run_serving(h, lambda st: st.get("phase") == "Observing")
    assert deployment_selectors(h.cluster)["Deployment/shop-blue"] == naming.selector(NAME, BLUE)
    h.cluster.annotate(naming.ANNOTATION_REQUEST, "abort")
    run_serving(h, lambda st: st.get("phase") == "Degraded")
    assert h.cluster.status["activeColor"] == "green"
    active = h.cluster.obj("Service", "shop")
    assert active is not None
    assert active["spec"]["selector"] == naming.legacy_selector(NAME, GREEN)

    # v1 again: to blue (already new), then v2 moves green to the new selector too.
    h.cluster.set_image(V1)
    run_serving(h, settled_on(R1))
    h.cluster.set_image(V2)
    run_serving(h, settled_on(R2))
    assert deployment_selectors(h.cluster) == {
        "Deployment/shop-blue": naming.selector(NAME, BLUE),
        "Deployment/shop-green": naming.selector(NAME, GREEN),
    }
    assert h.cluster.obj("Service", LEGACY_SVC) is None
    active = h.cluster.obj("Service", "shop")
    assert active is not None and active["spec"]["selector"] == naming.selector(NAME, GREEN)
    deletes = [(c.kind, c.name) for c in h.calls(mark) if c.op == "delete"]
    assert deletes == [
        ("Deployment", "shop-blue"),
        ("Deployment", "shop-green"),
        ("Service", LEGACY_SVC),
    ]
