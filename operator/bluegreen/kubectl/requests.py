"""What `kubectl bluegreen promote|abort|retry` says and waits for: pure functions over the
app as the API server returned it, and the rule table of `bluegreen.release.requests`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.api import Phase
from bluegreen.kubectl.format import (
    KIND_TEXT,
    NONE,
    RESOURCE,
    as_dict,
    or_list,
    phase_of,
    status_of,
)
from bluegreen.release.requests import RESTING_PHASES, RULES, Request


def request_refusal(request: str, name: str, phase: str) -> str | None:
    """Why `request` makes no sense in `phase`, or None when it does."""
    allowed = RULES[Request(request)].applies_in
    if phase in {p.value for p in allowed}:
        return None
    where = or_list([p.value for p in allowed])
    return (
        f'cannot {request} {KIND_TEXT} "{name}" in phase {phase}: '
        f"{request} applies only in {where} (--force sends it anyway)"
    )


def request_acted(request: str, before: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """True once `status` shows the operator carried out a request sent when the app's
    status was `before`: it left the phases where the request applies, or set the release
    field the request sets."""
    rule = RULES[Request(request)]
    applicable = {p.value for p in rule.applies_in}
    was, now = str(before.get("phase") or ""), str(status.get("phase") or "")
    if was in applicable and now not in applicable:
        return True
    mark = rule.marks
    old = as_dict(before.get("release")).get(mark)
    new = as_dict(status.get("release")).get(mark)
    return bool(new) and new != old


def request_settled(request: str, before: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """True once the operator acted on the request (see request_acted) and the app came to
    rest: Healthy, Degraded, or Paused waiting for a person."""
    if not request_acted(request, before, status):
        return False
    phase = str(status.get("phase") or "")
    if phase not in {p.value for p in RESTING_PHASES}:
        return False
    release = as_dict(status.get("release"))
    # Paused with a promotion requested: the candidate is scaling up for the switch.
    return not (phase == Phase.PAUSED.value and release.get("promotionRequestedAt"))


def request_expected(request: str, phase: str) -> bool:
    return phase in {p.value for p in RULES[Request(request)].leads_to}


def request_sent_text(request: str, name: str) -> str:
    return f"{RESOURCE}/{name} {request} requested"


def request_result_text(request: str, app: Mapping[str, Any], outcome: str) -> str:
    """One line after `--wait`: the resulting phase and where traffic is."""
    name = app.get("metadata", {}).get("name", "")
    st = status_of(app)
    phase = phase_of(app)
    details = [
        f"active {st.get('activeColor') or NONE}",
        f"stable {st.get('stableRevision') or NONE}",
    ]
    if st.get("candidateRevision"):
        details.append(f"candidate {st['candidateRevision']}")
    line = f"{RESOURCE}/{name} {request}: {outcome}, phase {phase} ({', '.join(details)})"
    if st.get("message"):
        line += f": {st['message']}"
    return line
