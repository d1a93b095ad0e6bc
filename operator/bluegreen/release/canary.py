"""Canary steps before the full switch, through NGINX Ingress canary weights or the weights
of an HTTPRoute rule (`bluegreen.release.routes`, when spec.trafficRouting.gatewayAPI is set).

Each step sends `weight` percent of the requests to the preview Service (the candidate
colour), judges the step's checks, waits `pauseSeconds`, and moves on. The canary Ingress
exists only while a step is in flight, and goes away in a safe order: after the switch only
once the endpoints converged; on abort or failure, weight 0 first.
"""

from __future__ import annotations

from typing import Any

from bluegreen.api import Phase
from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import CanaryStatus
from bluegreen.core import naming, render
from bluegreen.core.plan import Apply, Delete
from bluegreen.core.world import IngressState
from bluegreen.release import gates
from bluegreen.release.context import Pass, elapsed


def steps_passed(p: Pass) -> bool:
    """Step the canary weight; judge each step. True once every step has passed."""
    release = p.release
    canary = p.spec.strategy.canary
    if canary is None:
        return True
    c = p.status.canary
    if c is None or c.revision != release.revision:
        set_step(p, 0)
        return False
    if gates.has_checks(p.app, "pre", c.step) and not gates.passed(
        p, "pre", Reason.CANARY_ANALYSIS_FAILED, c.step, f"step {c.step + 1} at {c.weight}%: "
    ):
        return False
    wait = canary.steps[c.step].pause_seconds - elapsed(p, c.step_started_at)
    if wait > 0:
        p.poll(wait)
        return False
    if c.step + 1 < len(canary.steps):
        set_step(p, c.step + 1)
        return False
    return True


def set_step(p: Pass, index: int) -> None:
    release = p.release
    steps = p.spec.strategy.canary.steps if p.spec.strategy.canary else []
    weight = steps[index].weight
    p.update(
        canary=CanaryStatus(
            revision=release.revision, step=index, weight=weight, step_started_at=p.stamp()
        )
    )
    p.event(
        Reason.CANARY_STEP,
        f"step {index + 1}/{len(steps)}: {weight}% of requests to "
        f"{release.color.value} (revision {release.revision})",
    )
    p.follow_up()


def ensure_ingresses(p: Pass) -> None:
    """The stable Ingress follows spec.ingress; the canary Ingress follows the step."""
    stable = p.observed.ingresses.get(naming.ingress(p.name))
    if p.spec.ingress is not None:
        desired = render.stable_ingress(p.app)
        if stable is None or not ingress_matches(stable, desired):
            p.actions.append(Apply(desired))
    elif stable is not None:
        p.actions.append(Delete("Ingress", naming.ingress(p.name)))
    _ensure_canary_ingress(p)


def step_weight(p: Pass, current: int | None) -> int | None:
    """The candidate's share the canary wants now, through whatever splits the traffic:
    the step's weight while stepping before the switch; after the switch, `current` until
    the EndpointSlices show the flip; None once the canary is over."""
    st = p.status
    c, release = st.canary, st.release
    if c is None or release is None:
        return None
    switched = release.switched_at is not None
    if c.revision == release.revision and not switched and st.phase in _STEPPING:
        return c.weight
    if st.phase is Phase.OBSERVING and release.endpoints_converged_at is None:
        return current  # keep it until traffic moved
    return None


_STEPPING = (Phase.ANALYZING, Phase.PAUSED)


def _ensure_canary_ingress(p: Pass) -> None:
    have = p.observed.ingresses.get(naming.canary_ingress(p.name))
    by_ingress = p.spec.ingress is not None and p.spec.gateway_api is None
    want = step_weight(p, have.weight if have is not None else None) if by_ingress else None
    if want is not None and want > 0:
        desired = render.canary_ingress(p.app, want)
        if have is None or not ingress_matches(have, desired):
            p.actions.append(Apply(desired))
        return
    c, release = p.status.canary, p.status.release
    if have is not None:
        switched = release is not None and release.switched_at is not None
        if not switched and have.weight:
            p.actions.append(Apply(render.canary_ingress(p.app, 0)))
        p.actions.append(Delete("Ingress", naming.canary_ingress(p.name)))
        if c is not None and c.weight:
            p.event(Reason.CANARY_REMOVED, f"canary Ingress removed (was {c.weight}%)")
    if c is not None and step_weight(p, c.weight) is None:
        p.update(canary=None)  # the canary is over


def ingress_matches(have: IngressState, want: dict[str, Any]) -> bool:
    wanted = want["metadata"].get("annotations") or {}
    return dict(have.spec) == want["spec"] and all(
        have.annotations.get(k) == v for k, v in wanted.items()
    )
