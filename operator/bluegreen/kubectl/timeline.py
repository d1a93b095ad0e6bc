"""`kubectl bluegreen timeline`: a release's moments, from its status and its Events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bluegreen.api import timestamps
from bluegreen.kubectl.format import as_dict, fields_text, offset, release_fields, table

# The timestamps of status.release, in the order a release sets them.
RELEASE_TIMESTAMPS = (
    "startedAt",
    "candidateReadyAt",
    "promotionRequestedAt",
    "switchedAt",
    "endpointsConvergedAt",
    "rollbackStartedAt",
    "switchedBackAt",
    "completedAt",
)

_EVENT_SLACK_SECONDS = 1.0  # core/v1 Events (kopf's) carry whole seconds only


@dataclass(frozen=True)
class TimelineEntry:
    time: str  # as the API gave it
    offset_seconds: float  # from release.startedAt
    what: str  # a release field name, or "event/<reason>"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "offsetSeconds": round(self.offset_seconds, 6),
            "what": self.what,
            "detail": self.detail,
        }


def event_time(event: Mapping[str, Any]) -> str | None:
    """When an events.k8s.io/v1 Event happened (last seen, for a series)."""
    series = as_dict(event.get("series"))
    for ts in (
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("deprecatedLastTimestamp"),
        event.get("deprecatedFirstTimestamp"),
        as_dict(event.get("metadata")).get("creationTimestamp"),
    ):
        if ts:
            return str(ts)
    return None


def timeline_entries(
    release: Mapping[str, Any], events: Sequence[Mapping[str, Any]] = ()
) -> list[TimelineEntry]:
    """The release's timestamps and the given Events, in time order, with their offset
    from startedAt. Events from before the release started are left out."""
    start = timestamps.parse_or_none(release.get("startedAt"))
    if start is None:
        return []
    timed: list[tuple[datetime, int, TimelineEntry]] = []
    for order, key in enumerate(RELEASE_TIMESTAMPS):
        t = timestamps.parse_or_none(release.get(key))
        if t is not None:
            entry = TimelineEntry(str(release[key]), (t - start).total_seconds(), key)
            timed.append((t, order, entry))
    for ev in events:
        ts = event_time(ev)
        t = timestamps.parse_or_none(ts)
        if ts is None or t is None or (t - start).total_seconds() < -_EVENT_SLACK_SECONDS:
            continue
        note = str(ev.get("note") or "")
        kind = str(ev.get("type") or "Normal")
        detail = note if kind == "Normal" else f"{kind}: {note}"
        count = as_dict(ev.get("series")).get("count")
        if count:
            detail += f" (x{count})"
        entry = TimelineEntry(
            ts, (t - start).total_seconds(), f"event/{ev.get('reason', '')}", detail
        )
        timed.append((t, len(RELEASE_TIMESTAMPS), entry))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in timed]


def timeline_text(release: Mapping[str, Any], entries: Sequence[TimelineEntry]) -> str:
    """`kubectl bluegreen timeline NAME`: a summary, then every moment with its offset."""
    fields = [
        (k, v)
        for k, v in release_fields(release)
        if k in ("Revision", "Image", "Colour", "Result", "Reason", "Switch latency", "Duration")
    ]
    if release.get("message"):
        fields.append(("Message", str(release["message"])))
    rows = [[offset(e.offset_seconds), e.time, e.what, e.detail] for e in entries]
    return fields_text(fields) + "\n\n" + table(["OFFSET", "TIME", "WHAT", "DETAIL"], rows)


def timeline_data(
    release: Mapping[str, Any] | None, entries: Sequence[TimelineEntry]
) -> dict[str, Any]:
    """What `timeline -o json|yaml` prints."""
    return {
        "release": dict(release) if release else None,
        "timeline": [e.as_dict() for e in entries],
    }
