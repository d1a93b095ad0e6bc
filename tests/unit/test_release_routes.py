"""Gateway API traffic routing: the operator writes one rule of the user's HTTPRoute.

Table-style tests of the pure core: which rule, which weights, when the route is missing,
when a rule routes to someone else's Services, and the canary steps through the route.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bluegreen.api import BlueGreenApp, BlueGreenAppStatus, Phase
from bluegreen.api.v1alpha1 import CanaryStatus
from bluegreen.core.plan import Apply, Plan, RouteBackends
from bluegreen.core.world import Backend, Observed, RouteRule, RouteState
from bluegreen.release import machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    R2,
    V1,
    V2,
    ObservedBuilder,
    app_body,
    at,
    healthy,
    in_release,
    stamp,
    steady,
)

ACTIVE, PREVIEW = "shop", "shop-preview"


def app(
    image: str = V1,
    status: BlueGreenAppStatus | None = None,
    rule: str | None = None,
    canary: list[dict[str, Any]] | None = None,
) -> BlueGreenApp:
    strategy = {"canary": {"steps": canary}} if canary else None
    body = app_body(image=image, status=status or healthy(), strategy=strategy)
    routing: dict[str, Any] = {"httpRoute": "web"}
    if rule is not None:
        routing["rule"] = rule
    body["spec"]["trafficRouting"] = {"gatewayAPI": routing}
    return BlueGreenApp.model_validate(body)


def svc(name: str, weight: int = 1, kind: str = "Service") -> Backend:
    return Backend(kind=kind, name=name, port=80, weight=weight)


def route(*rules: RouteRule) -> RouteState:
    return RouteState(name="web", resource_version="42", rules=rules)


def with_route(world: Observed, r: RouteState | None, served: bool = True) -> Observed:
    return dataclasses.replace(world, route=r, routes_served=served)


def routed(plan: Plan) -> list[tuple[int, list[tuple[str, int]]]]:
    return [
        (a.rule, [(b["name"], b["weight"]) for b in a.backends])
        for a in plan.actions
        if isinstance(a, RouteBackends)
    ]


def condition(plan: Plan) -> tuple[str, str]:
    c = next(c for c in plan.status.conditions if c.type == "TrafficRouted")
    return c.status, c.reason


def test_at_rest_all_weight_goes_to_the_active_service() -> None:
    world = with_route(steady(at(10)).build(), route(RouteRule(None, (svc(ACTIVE),))))
    plan = machine.plan(app(), world)
    assert routed(plan) == [(0, [(ACTIVE, 100), (PREVIEW, 0)])]
    assert condition(plan) == ("True", "Routed")
    (action,) = [a for a in plan.actions if isinstance(a, RouteBackends)]
    assert action.resource_version == "42"  # written only if nobody changed it meanwhile


def test_weights_already_right_write_nothing() -> None:
    rule = RouteRule("main", (svc(ACTIVE, 100), svc(PREVIEW, 0)))
    world = with_route(steady(at(10)).build(), route(rule))
    assert routed(machine.plan(app(), world)) == []


def test_only_the_app_s_rule_is_written_the_others_are_left_alone() -> None:
    rules = (
        RouteRule("static", (svc("assets"),)),
        RouteRule("web", (svc(ACTIVE, 100), svc(PREVIEW, 5))),
        RouteRule("api", (svc("api"),)),
    )
    world = with_route(steady(at(10)).build(), route(*rules))
    assert routed(machine.plan(app(), world)) == [(1, [(ACTIVE, 100), (PREVIEW, 0)])]
    assert routed(machine.plan(app(rule="web"), world)) == [(1, [(ACTIVE, 100), (PREVIEW, 0)])]


@pytest.mark.parametrize(
    ("world_route", "served", "rule", "reason"),
    [
        (None, True, None, "RouteNotFound"),
        (None, False, None, "RouteAPINotServed"),
        (route(RouteRule("a", ()), RouteRule("b", ())), True, None, "RuleNotFound"),
        (route(RouteRule("a", (svc(ACTIVE),))), True, "other", "RuleNotFound"),
        (route(RouteRule(None, (svc(ACTIVE), svc("legacy-shop")))), True, None, "RouteConflict"),
        (route(RouteRule(None, (svc(ACTIVE, kind="ServiceImport"),))), True, None, "RouteConflict"),
    ],
)
def test_a_route_the_operator_cannot_write_is_a_condition_and_an_event(
    world_route: RouteState | None, served: bool, rule: str | None, reason: str
) -> None:
    world = with_route(steady(at(10)).build(), world_route, served)
    plan = machine.plan(app(rule=rule), world)
    assert routed(plan) == []
    assert condition(plan) == ("False", reason)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]
    # Told once: the next pass, with the condition stored, says nothing more.
    again = machine.plan(app(rule=rule, status=plan.status), world)
    assert again.events == ()
    assert condition(again) == ("False", reason)


def test_apps_without_routing_have_no_such_condition() -> None:
    plan = machine.plan(
        BlueGreenApp.model_validate(app_body(status=healthy())), steady(at(10)).build()
    )
    assert "TrafficRouted" not in {c.type for c in plan.status.conditions}


STEPS = [{"weight": 10, "pauseSeconds": 30}, {"weight": 50, "pauseSeconds": 30}]


def canary_world(now: float, r: RouteState) -> Observed:
    world = (
        ObservedBuilder(at(now)).color(BLUE, V1).color(GREEN, V2).services(BLUE, preview=GREEN)
    ).build()
    return with_route(world, r)


def test_a_canary_step_sets_the_rule_s_weights_and_no_canary_ingress() -> None:
    st = in_release(Phase.ANALYZING, started=0, candidate_ready=20)
    st = st.model_copy(
        update={"canary": CanaryStatus(revision=R2, step=0, weight=10, step_started_at=stamp(20))}
    )
    r = route(RouteRule(None, (svc(ACTIVE, 100), svc(PREVIEW, 0))))
    plan = machine.plan(app(V2, st, canary=STEPS), canary_world(25, r))
    assert routed(plan) == [(0, [(ACTIVE, 90), (PREVIEW, 10)])]
    assert not [a for a in plan.actions if isinstance(a, Apply) and a.key.startswith("Ingress")]


def test_a_canary_waits_while_its_route_is_missing() -> None:
    st = in_release(Phase.ANALYZING, started=0, candidate_ready=20)
    world = with_route(canary_world(25, route()), None)
    plan = machine.plan(app(V2, st, canary=STEPS), world)
    assert plan.status.canary is None  # no step taken
    assert plan.status.phase is Phase.ANALYZING
    assert condition(plan) == ("False", "RouteNotFound")


def test_after_the_switch_the_step_weight_stays_until_the_endpoints_converged() -> None:
    st = in_release(Phase.OBSERVING, started=0, candidate_ready=20, switched=90)
    st = st.model_copy(
        update={"canary": CanaryStatus(revision=R2, step=1, weight=50, step_started_at=stamp(60))}
    )
    r = route(RouteRule(None, (svc(ACTIVE, 50), svc(PREVIEW, 50))))
    lagging = (
        ObservedBuilder(at(90.1))
        .color(BLUE, V1)
        .color(GREEN, V2)
        .services(GREEN)
        .active_endpoints_of(BLUE)
        .build()
    )
    assert routed(machine.plan(app(V2, st, canary=STEPS), with_route(lagging, r))) == []
    converged = ObservedBuilder(at(90.2)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build()
    plan = machine.plan(app(V2, st, canary=STEPS), with_route(converged, r))
    assert routed(plan) == [(0, [(ACTIVE, 100), (PREVIEW, 0)])]
