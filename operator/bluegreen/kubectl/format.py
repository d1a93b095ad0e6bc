r"""What `kubectl bluegreen` prints: pure functions, no I/O.

Every function takes the BlueGreenApp (or its status) as the plain dict the API server
returned, and `now` when it needs the time, and returns a string or plain data. The
module reads no clock, no file and no network, so each output can be checked exactly
(tests/unit/test_cli_format.py); bluegreen.kubectl.commands does the API calls and the
printing. What requests say and wait for is in `requests`, the timeline in `timeline`.

Nothing an app's author (or anyone who can write an Event) controls reaches the terminal
as it is: names, messages, annotations and Events may carry escape sequences that clear
the screen, forge hyperlinks or rewrite what was printed before, and bidi controls that
show text in another order than it is. `printable` shows every such character as an
escape (`\x1b`, `\u202e`): each cell of a table and each field is made printable before
it is measured, `terminal` does the same to whole blocks as they are printed (keeping
their line breaks), and -o json / yaml escape them in their own syntax (`\u001b`, `\e`),
so the data stays exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from bluegreen.api import Phase, timestamps
from bluegreen.api.text import printable

NONE = "<none>"  # what kubectl prints for a value that is not set
KIND_TEXT = "bluegreenapp"
RESOURCE = "bluegreenapp.bluegreen.dev"


def terminal(text: str) -> str:
    """A block of output as it may reach a terminal: line breaks and tabs kept, every other
    control character escaped. What `kubectl bluegreen` prints goes through here."""
    return printable(text, keep="\n\t")


def phase_of(app: Mapping[str, Any]) -> str:
    """The app's phase; an app the operator has not written yet is Pending."""
    return str(status_of(app).get("phase") or Phase.PENDING.value)


# ----------------------------------------------------------------------------- tables


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as kubectl aligns them (Go tabwriter: padding 3, minimum width 6); the last
    column is not padded and no line ends in spaces. Every cell is made printable first: a
    line break in a message cannot start a forged row."""
    safe = [[printable(c) for c in row] for row in [headers, *rows]]
    widths = [len(h) for h in safe[0]]
    for row in safe[1:]:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in safe:
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
        st = status_of(app)
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
    st = status_of(app)
    spec = as_dict(app.get("spec"))
    return f"{int(st.get('replicas') or 0)}/{int(spec.get('replicas', 1))}"


def summary_message(app: Mapping[str, Any]) -> str:
    """status.message, else what the Progressing or Paused condition says."""
    st = status_of(app)
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
    st = status_of(app)
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
    sd = as_dict(st.get("scaleDown"))
    if sd:
        fields.append(("Scale down", f"{sd.get('color')} at {sd.get('at')}"))
    if st.get("message"):
        fields.append(("Message", str(st["message"])))
    pending = as_dict(meta.get("annotations")).get("bluegreen.dev/request")
    if pending:
        fields.append(("Pending request", str(pending)))
    out = [fields_text(fields)]

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

    release = as_dict(st.get("release"))
    out.append("")
    out.append("Release:")
    if release:
        out.append(_indent(fields_text(release_fields(release, now))))
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
    r"""-o json | yaml. Control and bidi characters stay in the data, escaped in the
    format's own syntax (JSON `\u001b`, YAML `\e`): never raw on the terminal."""
    if fmt == "json":
        return json.dumps(data, indent=4, sort_keys=False, ensure_ascii=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False)
    return text.rstrip("\n")


def without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What kubectl get -o json shows by default: no metadata.managedFields."""
    out = dict(obj)
    meta = as_dict(obj.get("metadata"))
    if "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


# ----------------------------------------------------------------------------- helpers


def status_of(app: Mapping[str, Any]) -> dict[str, Any]:
    return as_dict(app.get("status"))


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _conditions(st: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [as_dict(c) for c in st.get("conditions") or [] if isinstance(c, Mapping)]


def fields_text(pairs: Sequence[tuple[str, str]]) -> str:
    """`Key:   value` lines, aligned; keys and values made printable (one line each)."""
    safe = [(printable(k), printable(v)) for k, v in pairs]
    width = max(len(k) for k, _ in safe) + 2
    return "\n".join(f"{(k + ':').ljust(width)}{v}".rstrip() for k, v in safe)


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def or_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
