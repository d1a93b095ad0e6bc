"""Durations in Go's syntax, as Kubernetes, Argo Rollouts and Flagger write them.

One or more decimal numbers, each with a unit, concatenated: `15s`, `1m30s`, `1.5m`, `500ms`,
`2h45m`. Units: `ns`, `us`, `ms`, `s`, `m`, `h`. No sign, no days. Every duration the
operator or the plugin takes is parsed here, and the CRD checks the same syntax (`PATTERN`).

Prometheus writes durations in a narrower syntax (whole numbers only, and it adds `d`, `w`,
`y`); `prometheus()` turns seconds into that form for PromQL and ServiceMonitors.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|ms|s|m|h)"
PATTERN = rf"^({_PART})+$"
"""The syntax as a JSON Schema pattern (the CRD uses it for a clear first message)."""
_WHOLE = re.compile(PATTERN)
_PARTS = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|ms|s|m|h)")

PROMETHEUS_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
"""Prometheus's own duration syntax (a ServiceMonitor's interval)."""


def parse(text: str) -> float:
    """`1m30s` -> 90.0 seconds. ValueError, saying what is expected, for anything else."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: expected a Go duration such as 15s, 1m30s, 1.5m "
            "or 500ms (units ns, us, ms, s, m, h)"
        )
    return sum(float(number) * _UNITS[unit] for number, unit in _PARTS.findall(text))


def prometheus(seconds: float) -> str:
    """Seconds as PromQL writes a range: whole seconds, or milliseconds below one second."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    return f"{round(seconds)}s"
