"""Canary steps before the full switch, through NGINX Ingress canary weights or the weights
of an HTTPRoute rule (`bluegreen.release.routes`, when spec.trafficRouting.gatewayAPI is set).

Each step sends `weight` percent of the requests to the preview Service (the candidate
colour), judges the step's checks, waits `pauseSeconds`, and moves on. The weight reaches
the traffic through the canary Ingress (`bluegreen.release.ingress`) or the route's rule.
"""

from __future__ import annotations

from bluegreen.api import Phase
from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import CanaryStatus
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
