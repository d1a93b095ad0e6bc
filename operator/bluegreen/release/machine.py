"""The release state machine. Pure: `plan(app, observed)` reads the app and a snapshot of
the world and returns what to do; it does no I/O and reads no clock (`observed.now`).

One pass makes at most one phase transition: a person's request, or the step of the phase
the app is in, then the upkeep that holds in every phase. Everything needed to resume lives
in `status`, so a restarted operator picks up exactly where it stopped.

The plan says when to look again only for what is timed (an analysis sample, a pause, a
scale-down delay, a deadline) or for a next step that needs nothing new (0 s). Waiting for
pods or EndpointSlices asks for nothing: their changes wake the app.
"""

from __future__ import annotations

from collections.abc import Callable

from bluegreen.api import BlueGreenApp, Phase
from bluegreen.core.plan import Plan
from bluegreen.core.world import Observed
from bluegreen.release import config, phases, requests, timing
from bluegreen.release.context import Pass, begin
from bluegreen.release.pins import IssueKind
from bluegreen.release.upkeep import upkeep

STEPS: dict[Phase, Callable[[Pass], None]] = {
    Phase.PENDING: phases.pending,
    Phase.HEALTHY: phases.healthy,
    Phase.DEPLOYING: phases.deploying,
    Phase.ANALYZING: phases.analyzing,
    Phase.PAUSED: phases.paused,
    Phase.OBSERVING: phases.observing,
    Phase.ROLLING_BACK: phases.rolling_back,
    Phase.DEGRADED: phases.degraded,
}


def plan(app: BlueGreenApp, observed: Observed) -> Plan:
    """Decide one step for `app` given the world as `observed`."""
    p = begin(app, observed)
    if p.image_issue is not None and p.image_issue.kind is IssueKind.HOLD:
        # resolveDigest: Required, and the registry does not answer: nothing moves until
        # it does; the ImagePinned condition says why.
        upkeep(p)
        p.poll(timing.REGISTRY)
        return p.plan()
    if config.held(p):
        # spec.configTracking: the template references a ConfigMap (or Secret) that does
        # not exist; nothing moves until it does (its creation wakes the app), and the
        # ConfigTracked condition says why.
        upkeep(p)
        return p.plan()
    if not requests.handle(p):
        STEPS[p.status.phase](p)
    upkeep(p)
    return p.plan()
