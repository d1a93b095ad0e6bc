"""What `kubectl bluegreen` prints, and the rules of its requests: pure functions, no I/O.

Every function takes the BlueGreenApp (or its status) as the plain dict the API server
returned, and `now` when it needs the time, and returns a string or plain data. The
module reads no clock, no file and no network, so each output can be checked exactly
(tests/unit/test_cli_format.py); bluegreen.kubectl.cli does the API calls and the printing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from bluegreen.api import Phase, timestamps
from bluegreen.release.requests import RESTING_PHASES, RULES, Request

NONE = "<none>"  # what kubectl prints for a value that is not set
KIND_TEXT = "bluegreenapp"
RESOURCE = "bluegreenapp.bluegreen.dev"

# ----------------------------------------------------------------------------- requests


def phase_of(app: Mapping[str, Any]) -> str:
    """The app's phase; an app the operator has not written yet is Pending."""
    return str(_status(app).get("phase") or Phase.PENDING.value)


def request_refusal(request: str, name: str, phase: str) -> str | None:
    """Why `request` makes no sense in `phase`, or None when it does."""
    allowed = RULES[Request(request)].applies_in
    if phase in {p.value for p in allowed}:
        return None
    where = _or_list([p.value for p in allowed])
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
    old = _dict(before.get("release")).get(mark)
    new = _dict(status.get("release")).get(mark)
    return bool(new) and new != old


def request_settled(request: str, before: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """True once the operator acted on the request (see request_acted) and the app came to
    rest: Healthy, Degraded, or Paused waiting for a person."""
    if not request_acted(request, before, status):
        return False
    phase = str(status.get("phase") or "")
    if phase not in {p.value for p in RESTING_PHASES}:
        return False
    release = _dict(status.get("release"))
    # Paused with a promotion requested: the candidate is scaling up for the switch.
    return not (phase == Phase.PAUSED.value and release.get("promotionRequestedAt"))


def request_expected(request: str, phase: str) -> bool:
    return phase in {p.value for p in RULES[Request(request)].leads_to}


def request_sent_text(request: str, name: str) -> str:
    return f"{RESOURCE}/{name} {request} requested"


def request_result_text(request: str, app: Mapping[str, Any], outcome: str) -> str:
    """One line after `--wait`: the resulting phase and where traffic is."""
    name = app.get("metadata", {}).get("name", "")
    st = _status(app)
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


# ----------------------------------------------------------------------------- tables


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as kubectl aligns them (Go tabwriter: padding 3, minimum width 6); the last
    column is not padded and no line ends in spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [
            cell if i == len(row) - 1 else cell.ljust(max(widths[i] + 3, 6))
            for i, cell in enumerate(row)
        ]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def human_age(seconds: float) -> str:
    """kubectl's AGE (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None, now: datetime) -> str:
    t = timestamps.parse_or_none(ts)
    return NONE if t is None else human_age((now - t).total_seconds())


def status_table(
    apps: Sequence[Mapping[str, Any]],
    now: datetime,
    wide: bool = False,
    all_namespaces: bool = False,
) -> str:
    """`kubectl bluegreen status`: one line per app."""
    headers = ["NAME", "PHASE", "ACTIVE", "STABLE", "CANDIDATE", "READY", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    if wide:
        headers.append("MESSAGE")
    rows = []
    for app in apps:
        meta = app.get("metadata", {})
        st = _status(app)
        row = [
            str(meta.get("name", "")),
            phase_of(app),
            str(st.get("activeColor") or NONE),
            str(st.get("stableRevision") or NONE),
            str(st.get("candidateRevision") or NONE),
            ready(app),
            age(meta.get("creationTimestamp"), now),
        ]
        if all_namespaces:
            row.insert(0, str(meta.get("namespace", "")))
        if wide:
            row.append(summary_message(app))
        rows.append(row)
    return table(headers, rows)


def no_apps_text(namespace: str | None) -> str:
    if namespace is None:
        return "No resources found"
    return f"No resources found in {namespace} namespace."


def ready(app: Mapping[str, Any]) -> str:
    """Ready pods of the active colour / the replicas the spec asks for."""
    st = _status(app)
    spec = _dict(app.get("spec"))
    return f"{int(st.get('replicas') or 0)}/{int(spec.get('replicas', 1))}"


def summary_message(app: Mapping[str, Any]) -> str:
    """status.message, else what the Progressing or Paused condition says."""
    st = _status(app)
    if st.get("message"):
        return str(st["message"])
    for cond in _conditions(st):
        active = cond.get("type") in ("Progressing", "Paused") and cond.get("status") == "True"
        if active and cond.get("message"):
            return str(cond["message"])
    return ""


# ----------------------------------------------------------------------------- detail


def status_detail(app: Mapping[str, Any], now: datetime) -> str:
    """`kubectl bluegreen status NAME`: one app, in the style of kubectl describe."""
    meta = app.get("metadata", {})
    st = _status(app)
    fields: list[tuple[str, str]] = [
        ("Name", str(meta.get("name", ""))),
        ("Namespace", str(meta.get("namespace", ""))),
        ("Phase", phase_of(app)),
        ("Active colour", str(st.get("activeColor") or NONE)),
        ("Stable revision", str(st.get("stableRevision") or NONE)),
        ("Candidate revision", str(st.get("candidateRevision") or NONE)),
        ("Ready", ready(app)),
        (
            "Observed generation",
            f"{st.get('observedGeneration', NONE)} (generation {meta.get('generation', NONE)})",
        ),
        ("Failed revisions", ", ".join(st.get("failedRevisions") or []) or NONE),
    ]
    sd = _dict(st.get("scaleDown"))
    if sd:
        fields.append(("Scale down", f"{sd.get('color')} at {sd.get('at')}"))
    if st.get("message"):
        fields.append(("Message", str(st["message"])))
    pending = _dict(meta.get("annotations")).get("bluegreen.dev/request")
    if pending:
        fields.append(("Pending request", str(pending)))
    out = [_fields(fields)]

    conditions = _conditions(st)
    out.append("")
    out.append("Conditions:")
    if conditions:
        rows = [
            [
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                age(c.get("lastTransitionTime"), now),
                str(c.get("message", "")),
            ]
            for c in conditions
        ]
        out.append(_indent(table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows)))
    else:
        out.append(f"  {NONE}")

    release = _dict(st.get("release"))
    out.append("")
    out.append("Release:")
    if release:
        out.append(_indent(_fields(release_fields(release, now))))
    else:
        out.append(f"  {NONE}")
    return "\n".join(out)


def release_fields(
    release: Mapping[str, Any], now: datetime | None = None
) -> list[tuple[str, str]]:
    previous = release.get("previousColor")
    color = str(release.get("color", NONE))
    started = str(release.get("startedAt", NONE))
    if now is not None and release.get("startedAt"):
        started += f" ({age(release.get('startedAt'), now)} ago)"
    fields = [
        ("Revision", str(release.get("revision", NONE))),
        ("Image", str(release.get("image") or NONE)),
        ("Colour", f"{previous} -> {color}" if previous else color),
        ("Started", started),
        ("Result", str(release.get("result") or "in flight")),
        ("Reason", str(release.get("reason") or NONE)),
        ("Switch latency", seconds(release.get("switchLatencySeconds"))),
        ("Duration", seconds(release.get("durationSeconds"))),
    ]
    if release.get("message"):
        fields.append(("Message", str(release["message"])))
    return fields


# ----------------------------------------------------------------------------- history


def history_table(history: Sequence[Mapping[str, Any]]) -> str:
    """`kubectl bluegreen history NAME`: status.history as stored, newest first."""
    headers = ["REVISION", "IMAGE", "COLOR", "RESULT", "REASON", "STARTED", "COMPLETED", "SWITCH"]
    rows = [
        [
            str(h.get("revision", "")),
            str(h.get("image") or NONE),
            str(h.get("color", NONE)),
            str(h.get("result", NONE)),
            str(h.get("reason") or NONE),
            short_time(h.get("startedAt")),
            short_time(h.get("completedAt")),
            seconds(h.get("switchLatencySeconds")),
        ]
        for h in history
    ]
    return table(headers, rows)


# ----------------------------------------------------------------------------- timeline

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
    series = _dict(event.get("series"))
    for ts in (
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("deprecatedLastTimestamp"),
        event.get("deprecatedFirstTimestamp"),
        _dict(event.get("metadata")).get("creationTimestamp"),
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
        count = _dict(ev.get("series")).get("count")
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
    return _fields(fields) + "\n\n" + table(["OFFSET", "TIME", "WHAT", "DETAIL"], rows)


def timeline_data(
    release: Mapping[str, Any] | None, entries: Sequence[TimelineEntry]
) -> dict[str, Any]:
    """What `timeline -o json|yaml` prints."""
    return {
        "release": dict(release) if release else None,
        "timeline": [e.as_dict() for e in entries],
    }


# ----------------------------------------------------------------------------- values


def offset(delta: float) -> str:
    """+0.412s: milliseconds, always signed."""
    sign = "-" if delta < 0 else "+"
    return f"{sign}{abs(delta):.3f}s"


def seconds(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return NONE
    return f"{value:.3f}s"


def short_time(ts: Any) -> str:
    """An RFC 3339 time to the second, in UTC: 2026-11-26T14:10:07Z."""
    t = timestamps.parse_or_none(ts)
    return NONE if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump(data: Any, fmt: str) -> str:
    """-o json | yaml."""
    if fmt == "json":
        return json.dumps(data, indent=4, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")


def without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What kubectl get -o json shows by default: no metadata.managedFields."""
    out = dict(obj)
    meta = _dict(obj.get("metadata"))
    if "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


# ----------------------------------------------------------------------------- helpers


def _status(app: Mapping[str, Any]) -> dict[str, Any]:
    return _dict(app.get("status"))


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _conditions(st: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_dict(c) for c in st.get("conditions") or [] if isinstance(c, Mapping)]


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs) + 2
    return "\n".join(f"{(k + ':').ljust(width)}{v}".rstrip() for k, v in pairs)


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def _or_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
