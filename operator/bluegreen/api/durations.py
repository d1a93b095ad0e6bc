"""Durations in Go's syntax, as Kubernetes, Argo Rollouts and Flagger write them.

One or more decimal numbers, each with a unit, concatenated: `15s`, `1m30s`, `1.5m`, `500ms`,
`2h45m`. Units: `ns`, `us`, `ms`, `s`, `m`, `h`. No sign, no days. Every duration the
operator or the plugin takes is parsed here, and the CRD checks the same syntax (`PATTERN`).

Prometheus writes durations in a narrower syntax (whole numbers only, and it adds `d`, `w`,
`y`); `prometheus()` turns seconds into that form for PromQL and ServiceMonitors.
"""

from __future__ import annotations

import re

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
MAX_NS = 2**63 - 1
"""Go holds a duration in an int64 of nanoseconds: about 292 years."""
_PART = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|ms|s|m|h)"
PATTERN = rf"^({_PART})+$"
"""The syntax as a JSON Schema pattern (the CRD uses it for a clear first message)."""
_WHOLE = re.compile(PATTERN)
_PARTS = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|ms|s|m|h)")

PROMETHEUS_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
"""Prometheus's own duration syntax (a ServiceMonitor's interval)."""


def parse(text: str) -> float:
    """`1m30s` -> 90.0 seconds. ValueError, saying what is expected, for anything else.

    Exactly as Go's time.ParseDuration (and so CEL's `duration()`, which the CRD's rules
    use) reads it: whole nanoseconds, digits below a nanosecond dropped, at most int64
    nanoseconds. `3600.0000000001s` is 1h here as it is for the API server; a float sum
    would make it a little more, and refuse what the CRD admitted."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: expected a Go duration such as 15s, 1m30s, 1.5m "
            "or 500ms (units ns, us, ms, s, m, h)"
        )
    total = 0
    for number, unit in _PARTS.findall(text):
        whole, _, fraction = number.partition(".")
        scale = _UNIT_NS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
    if total > MAX_NS:
        raise ValueError(f"invalid duration {text!r}: longer than Go's limit of about 292 years")
    return total / 1e9


def prometheus(seconds: float) -> str:
    """Seconds as PromQL writes a range: whole seconds, or milliseconds below one second."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    return f"{round(seconds)}s"
