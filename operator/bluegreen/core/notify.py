"""Notifications, pure: what a notice says, the two payloads it is sent as, and the retry
schedule of a delivery. The adapter (`adapters/notify.py`) sends; nothing here does I/O.

    notice = Notice(event=NotificationEvent.PROMOTED, namespace="shop", name="web", ...)
    text(notice)              # "Release promoted: shop/web revision 5d8c0e1a2b, blue -> green ..."
    slack_payload(notice)     # {"text": ..., "attachments": [...]}: a Slack incoming webhook
    webhook_payload(notice)   # the documented JSON document (README, "Notifications")
    RetryPolicy(attempts=4).delays()   # (1.0, 2.0, 4.0): the waits between the attempts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bluegreen.api import AnalysisRun, Color, MeasurementVerdict, NotificationEvent, Phase
from bluegreen.api import timestamps as ts

PAYLOAD_VERSION = "bluegreen.dev/v1alpha1"
MAX_MEASUREMENTS = 100
"""A JSON payload carries at most this many measurements (the latest); the per-metric
summary counts them all."""

_HEADLINES = {
    NotificationEvent.STARTED: "Release started",
    NotificationEvent.PAUSED: "Release paused",
    NotificationEvent.PROMOTED: "Release promoted",
    NotificationEvent.ROLLED_BACK: "Release rolled back",
    NotificationEvent.ABORTED: "Release aborted",
    NotificationEvent.DEGRADED: "App degraded",
}
SEVERITY = {
    NotificationEvent.STARTED: "info",
    NotificationEvent.PAUSED: "warning",
    NotificationEvent.PROMOTED: "info",
    NotificationEvent.ROLLED_BACK: "error",
    NotificationEvent.ABORTED: "warning",
    NotificationEvent.DEGRADED: "error",
}
_SLACK_COLORS = {"info": "good", "warning": "warning", "error": "danger"}


@dataclass(frozen=True)
class MetricSummary:
    """One metric of the analysis window: how many measurements, how many failed, the last."""

    metric: str
    measurements: int
    failed: int
    last_value: float | None
    last_verdict: MeasurementVerdict

    def describe(self) -> str:
        value = "no value" if self.last_value is None else f"{self.last_value:g}"
        return (
            f"{self.metric}: {self.failed} of {self.measurements} failed, "
            f"last {value} ({self.last_verdict.value})"
        )


@dataclass(frozen=True)
class Notice:
    """One release event of one app, with the facts its message reports (from status)."""

    event: NotificationEvent
    namespace: str
    name: str
    uid: str
    at: str
    """When the transition happened (RFC 3339)."""
    phase: Phase
    reason: str = ""
    message: str = ""
    revision: str | None = None
    image: str | None = None
    from_color: Color | None = None
    """The colour that served when the release started (None: the first deploy)."""
    to_color: Color | None = None
    """The colour the release deployed to."""
    active_color: Color | None = None
    """The colour that serves now."""
    started_at: str | None = None
    duration_seconds: float | None = None
    switch_latency_seconds: float | None = None
    rollback_seconds: float | None = None
    analysis: AnalysisRun | None = None

    @property
    def key(self) -> str:
        """The same for every delivery of this notice (retries included), different for any
        other: a receiver may drop repeats by it."""
        return f"{self.uid}/{self.revision or '-'}/{self.event.value}/{self.at}"

    @property
    def severity(self) -> str:
        return SEVERITY[self.event]


def summarize(run: AnalysisRun | None) -> tuple[MetricSummary, ...]:
    """Per metric of the window, in the order first measured."""
    if run is None:
        return ()
    by_metric: dict[str, list[Any]] = {}
    for m in run.measurements:
        by_metric.setdefault(m.metric, []).append(m)
    return tuple(
        MetricSummary(
            metric=name,
            measurements=len(taken),
            failed=sum(1 for m in taken if m.verdict is MeasurementVerdict.FAILED),
            last_value=taken[-1].value,
            last_verdict=taken[-1].verdict,
        )
        for name, taken in by_metric.items()
    )


def _colors(n: Notice) -> str:
    if n.to_color is None:
        return ""
    if n.from_color is None:
        return f"first deploy to {n.to_color.value}"
    return f"{n.from_color.value} -> {n.to_color.value}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def facts(n: Notice) -> list[tuple[str, str]]:
    """(label, value) pairs of what is known, in reading order; empty values left out."""
    pairs = [
        ("App", f"{n.namespace}/{n.name}"),
        ("Revision", n.revision or ""),
        ("Image", n.image or ""),
        ("Colours", _colors(n)),
        ("Serving", n.active_color.value if n.active_color else ""),
        ("Duration", _seconds(n.duration_seconds)),
        (
            "Switch latency",
            "" if n.switch_latency_seconds is None else f"{n.switch_latency_seconds:.3f}s",
        ),
        ("Rollback", "" if n.rollback_seconds is None else f"{n.rollback_seconds:.3f}s"),
        ("Reason", n.reason),
    ]
    return [(label, value) for label, value in pairs if value]


def analysis_lines(n: Notice) -> list[str]:
    run = n.analysis
    if run is None or not run.measurements:
        return []
    head = f"analysis ({run.phase}-promotion, {run.verdict.value})"
    return [head, *(f"  {s.describe()}" for s in summarize(run))]


def text(n: Notice) -> str:
    """The notice as plain text: a headline line, then the message and the analysis."""
    parts = [f"{_HEADLINES[n.event]}: {n.namespace}/{n.name}"]
    if n.revision:
        parts.append(f"revision {n.revision}")
    colors = _colors(n)
    if colors:
        parts.append(colors)
    if n.duration_seconds is not None:
        parts.append(f"after {n.duration_seconds:.1f}s")
    if n.switch_latency_seconds is not None:
        parts.append(f"switch latency {n.switch_latency_seconds:.3f}s")
    lines = [", ".join(parts)]
    if n.message:
        lines.append(f"{n.reason}: {n.message}" if n.reason else n.message)
    return "\n".join([*lines, *analysis_lines(n)])


def slack_payload(n: Notice) -> dict[str, Any]:
    """A Slack incoming webhook's message (also read by Mattermost, Rocket.Chat and
    Discord's /slack endpoint): `text`, and one attachment with the facts as fields."""
    headline = f"*{_HEADLINES[n.event]}*: {n.namespace}/{n.name}"
    if n.revision:
        headline += f" revision {n.revision}"
    fields = [{"title": label, "value": value, "short": True} for label, value in facts(n)]
    if n.message:
        fields.append({"title": "Message", "value": n.message, "short": False})
    analysis = analysis_lines(n)
    if analysis:
        fields.append({"title": "Analysis", "value": "\n".join(analysis), "short": False})
    return {
        "text": headline,
        "attachments": [
            {
                "color": _SLACK_COLORS[n.severity],
                "fallback": text(n),
                "fields": fields,
                "footer": "bluegreen",
                "ts": int(ts.parse(n.at).timestamp()),
            }
        ],
    }


def webhook_payload(n: Notice) -> dict[str, Any]:
    """The JSON document of a generic webhook (its fields are listed in the README)."""
    run = n.analysis
    analysis = None
    if run is not None:
        analysis = {
            "phase": run.phase,
            "verdict": run.verdict.value,
            "message": run.message,
            "metrics": [
                {
                    "metric": s.metric,
                    "measurements": s.measurements,
                    "failed": s.failed,
                    "lastValue": s.last_value,
                    "lastVerdict": s.last_verdict.value,
                }
                for s in summarize(run)
            ],
            "measurements": [
                m.model_dump(mode="json", by_alias=True, exclude_none=True)
                for m in run.measurements[-MAX_MEASUREMENTS:]
            ],
        }
    return {
        "apiVersion": PAYLOAD_VERSION,
        "kind": "Notification",
        "id": n.key,
        "event": n.event.value,
        "severity": n.severity,
        "at": n.at,
        "text": text(n),
        "app": {"namespace": n.namespace, "name": n.name, "uid": n.uid},
        "phase": n.phase.value,
        "activeColor": n.active_color.value if n.active_color else None,
        "release": {
            "revision": n.revision,
            "image": n.image,
            "fromColor": n.from_color.value if n.from_color else None,
            "toColor": n.to_color.value if n.to_color else None,
            "startedAt": n.started_at,
            "durationSeconds": n.duration_seconds,
            "switchLatencySeconds": n.switch_latency_seconds,
            "rollbackSeconds": n.rollback_seconds,
            "reason": n.reason,
            "message": n.message,
        },
        "analysis": analysis,
    }


# ----------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries; after the n-th failed one, wait first_delay * factor**(n-1)
    seconds (at most max_delay) before the next."""

    attempts: int = 4
    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0 or self.factor < 1 or self.max_delay < 0:
            raise ValueError(f"invalid retry policy {self}")

    def delay_after(self, attempt: int) -> float | None:
        """The wait after failed attempt number `attempt` (1-based); None: it was the last."""
        if attempt >= self.attempts:
            return None
        return float(min(self.first_delay * self.factor ** (attempt - 1), self.max_delay))

    def delays(self) -> tuple[float, ...]:
        return tuple(d for a in range(1, self.attempts) if (d := self.delay_after(a)) is not None)


def retryable(status: int | None) -> bool:
    """Worth another attempt: no answer at all (None: refused, reset, timed out), 408, 425,
    429 or a 5xx. Any other answer (a 3xx is never followed, a 4xx) will not change."""
    if status is None:
        return True
    return status in (408, 425, 429) or 500 <= status <= 599
