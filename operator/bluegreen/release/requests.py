"""A person's request: `promote`, `abort` or `retry`, set as the annotation
bluegreen.dev/request (what `kubectl bluegreen promote` does) and cleared once handled.

`RULES` is the one table of where each request means something, what it leads to and which
release field shows it was carried out. The operator acts on it here; the kubectl plugin
reads the same table to refuse a request that would do nothing and to know when `--wait`
is over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bluegreen.api import Color, Phase, ReleaseResult
from bluegreen.api.reasons import Reason
from bluegreen.core import naming
from bluegreen.core.plan import ClearRequest
from bluegreen.release.context import Pass
from bluegreen.release.lifecycle import begin_rollback, complete, start_release


class Request(enum.StrEnum):
    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"


@dataclass(frozen=True)
class Rule:
    applies_in: tuple[Phase, ...]
    """The phases where the request means something; anywhere else it is ignored (and an
    Event says so)."""
    leads_to: tuple[Phase, ...]
    """The phases it ends in once carried out."""
    marks: str
    """The release field (camelCase, as in status) it sets: a change of it shows the operator
    acted even before the phase moves."""


RULES: dict[Request, Rule] = {
    Request.PROMOTE: Rule(
        applies_in=(Phase.ANALYZING, Phase.PAUSED),
        leads_to=(Phase.HEALTHY,),
        marks="promotionRequestedAt",
    ),
    Request.ABORT: Rule(
        applies_in=(Phase.DEPLOYING, Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING),
        leads_to=(Phase.DEGRADED,),
        marks="rollbackStartedAt",
    ),
    Request.RETRY: Rule(
        applies_in=(Phase.DEGRADED,),
        leads_to=(Phase.HEALTHY, Phase.PAUSED),  # Paused when the app has a manual gate
        marks="startedAt",
    ),
}

RESTING_PHASES = (Phase.HEALTHY, Phase.DEGRADED, Phase.PAUSED)
"""Phases where nothing more happens until the spec changes or a person asks."""


def handle(p: Pass) -> bool:
    """Carry out the pending request, if any. True when it made the pass's transition."""
    if p.request is None:
        return False
    p.actions.append(ClearRequest())
    try:
        request = Request(p.request)
    except ValueError:
        choices = ", ".join(r.value for r in Request)
        p.event(
            Reason.REQUEST_REJECTED,
            f"unknown request {p.request!r} in {naming.ANNOTATION_REQUEST}; use one of {choices}",
            warning=True,
        )
        return False
    acted = _ACTIONS[request](p)
    if acted is None:
        p.event(
            Reason.REQUEST_IGNORED,
            f"{request.value} does nothing in phase {p.status.phase.value}",
            warning=True,
        )
        return False
    return acted


def _promote(p: Pass) -> bool | None:
    """Paused after the switch: accept the candidate now. Before the switch: mark the
    promotion; the phase's own step carries it out in this pass."""
    phase, release = p.status.phase, p.status.release
    if release is None or phase not in RULES[Request.PROMOTE].applies_in:
        return None
    if phase is Phase.PAUSED and release.switched_at is not None:
        p.event(Reason.PROMOTION_REQUESTED, f"{release.revision} accepted by a request")
        complete(p)
        return True
    if release.revision != p.target:
        return None
    p.update_release(promotion_requested_at=p.stamp())
    p.event(Reason.PROMOTION_REQUESTED, f"promotion of {p.target} requested")
    return False


def _abort(p: Pass) -> bool | None:
    if p.status.phase not in RULES[Request.ABORT].applies_in:
        return None
    begin_rollback(p, ReleaseResult.ABORTED, Reason.ABORTED, "the release was aborted by a request")
    return True


def _retry(p: Pass) -> bool | None:
    if p.status.phase not in RULES[Request.RETRY].applies_in:
        return None
    if p.target not in p.status.failed_revisions:
        return None
    p.update(failed_revisions=[r for r in p.status.failed_revisions if r != p.target])
    p.event(Reason.RETRY_REQUESTED, f"retrying revision {p.target}")
    active = p.status.active_color
    if active is None:
        start_release(p, Color.BLUE, None)
    else:
        start_release(p, active.other, active)
    return True


_ACTIONS = {Request.PROMOTE: _promote, Request.ABORT: _abort, Request.RETRY: _retry}
