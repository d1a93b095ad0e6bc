"""Gateway API traffic routing: the weights of one rule of the user's HTTPRoute.

The route belongs to its author (a person, a GitOps repository): it names its Gateway, its
hostnames and its matches. The operator writes the backendRefs of one rule only: the
active Service and the preview Service, weighted 100/0 at rest and 100-w/w at a canary step
of weight w. It never touches another rule, never a rule that routes to anything else (a
conflict, shown as a condition), and never deletes the route.

Order at the end of canary steps, as with the canary Ingress: the selector flips first,
and the weight goes back to 0 only once the EndpointSlices show the flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import naming
from bluegreen.core.plan import RouteBackends
from bluegreen.core.world import Backend, RouteState
from bluegreen.release import canary
from bluegreen.release.context import Pass
from bluegreen.release.status import Wanted


@dataclass(frozen=True)
class Routed:
    """The rule the app routes through, or why there is none."""

    rule: int | None
    reason: Reason
    message: str

    @property
    def ok(self) -> bool:
        return self.rule is not None


def find_rule(p: Pass) -> Routed | None:
    """The rule of spec.trafficRouting.gatewayAPI's route; None when the app has none."""
    routing = p.spec.gateway_api
    if routing is None:
        return None
    name = routing.http_route
    if not p.observed.routes_served:
        return Routed(
            None,
            Reason.ROUTE_API_NOT_SERVED,
            "gateway.networking.k8s.io/v1 HTTPRoute is not served: install the Gateway API "
            "CRDs and a Gateway implementation",
        )
    route = p.observed.route
    if route is None:
        return Routed(None, Reason.ROUTE_NOT_FOUND, f"HTTPRoute {name} not found")
    index = _pick(p, route, routing.rule)
    if index is None:
        wanted = f"a rule named {routing.rule}" if routing.rule else "one rule for the app"
        return Routed(
            None,
            Reason.RULE_NOT_FOUND,
            f"HTTPRoute {name} has no {wanted}: name the rule in "
            "spec.trafficRouting.gatewayAPI.rule",
        )
    others = [b for b in route.rules[index].backends if not _ours(p, b)]
    if others:
        names = ", ".join(f"{b.kind}/{b.name}" for b in others)
        return Routed(
            None,
            Reason.ROUTE_CONFLICT,
            f"rule {_label(route, index)} of HTTPRoute {name} also routes to {names}: "
            "the operator writes only rules that route to the app's own Services",
        )
    return Routed(index, Reason.ROUTED, f"rule {_label(route, index)} of HTTPRoute {name}")


def _pick(p: Pass, route: RouteState, named: str | None) -> int | None:
    if named is not None:
        return next((i for i, r in enumerate(route.rules) if r.name == named), None)
    mine = [i for i, r in enumerate(route.rules) if any(_ours(p, b) for b in r.backends)]
    if len(mine) == 1:
        return mine[0]
    return 0 if len(route.rules) == 1 else None


def _ours(p: Pass, b: Backend) -> bool:
    services = (naming.active_service(p.name), naming.preview_service(p.name))
    return b.kind == "Service" and b.name in services


def _label(route: RouteState, index: int) -> str:
    name = route.rules[index].name
    return name if name else f"#{index}"


def current_weight(p: Pass, routed: Routed) -> int | None:
    """The preview Service's weight in the rule now (None: not routed yet)."""
    route = p.observed.route
    if route is None or routed.rule is None:
        return None
    preview = naming.preview_service(p.name)
    return next((b.weight for b in route.rules[routed.rule].backends if b.name == preview), None)


def wanted_weight(p: Pass, routed: Routed) -> int:
    """The candidate's share now (see `canary.step_weight`); 0 at rest."""
    return canary.step_weight(p, current_weight(p, routed)) or 0


def backends(p: Pass, weight: int) -> tuple[dict[str, Any], ...]:
    port = p.spec.service.primary.port
    return (
        _ref(naming.active_service(p.name), port, 100 - weight),
        _ref(naming.preview_service(p.name), port, weight),
    )


def _ref(service: str, port: int, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}


def ensure_route(p: Pass) -> Wanted | None:
    """Set the rule's weights when they differ; the TrafficRouted condition, if any."""
    routed = find_rule(p)
    if routed is None:
        return None
    if routed.rule is not None and p.observed.route is not None:
        route = p.observed.route
        want = backends(p, wanted_weight(p, routed))
        have = route.rules[routed.rule].backends
        if [_as_ref(b) for b in have] != list(want):
            p.actions.append(RouteBackends(route.name, routed.rule, want, route.resource_version))
    return Wanted(ConditionType.TRAFFIC_ROUTED, routed.ok, routed.reason, routed.message)


def _as_ref(b: Backend) -> dict[str, Any]:
    return {"group": "", "kind": b.kind, "name": b.name, "port": b.port, "weight": b.weight}
