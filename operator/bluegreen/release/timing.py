"""When to look at an app again, in seconds, and whether time alone can move it on."""

from __future__ import annotations

from bluegreen.api import IN_FLIGHT_PHASES, BlueGreenAppStatus, Phase, Verdict

SWITCH = 0.05
"""Right after a selector flip: switch latency is measured at this grain."""
ROLLOUT = 0.5
"""While pods start."""
SCALING = 2.0
"""While the active colour scales to a new replica count."""
REGISTRY = 5.0
"""While the image registry does not answer."""


def needs_polling(status: BlueGreenAppStatus, replicas: int) -> bool:
    """True while time alone can move the app on (settled apps are never polled): a release
    in flight, a delayed scale-down, or an active colour still scaling to `replicas`."""
    if status.phase in IN_FLIGHT_PHASES or status.scale_down is not None:
        return True
    if status.active_color is not None and status.replicas != replicas:
        return True
    run = status.analysis
    if (
        run is not None
        and run.verdict in (Verdict.RUNNING, Verdict.INCONCLUSIVE)
        and status.phase in (Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING)
    ):
        return True  # an analysis window is open, or is to be taken again
    return (
        status.phase is Phase.PAUSED
        and status.release is not None
        and status.release.promotion_requested_at is not None
    )
