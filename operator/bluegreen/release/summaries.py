"""An analysis window in one line per metric: what the status message and Events say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bluegreen.api import Measurement, MeasurementVerdict, Metric, Verdict
from bluegreen.core import analysis

_UNSURE = (MeasurementVerdict.INCONCLUSIVE, MeasurementVerdict.ERROR)


def _telling(taken: Sequence[Measurement], verdict: Verdict) -> Measurement | None:
    """The measurement that explains the metric's verdict: the latest failed one when it
    failed, the latest inconclusive one when it is inconclusive, else the latest."""
    wanted = {Verdict.FAILURE: (MeasurementVerdict.FAILED,), Verdict.INCONCLUSIVE: _UNSURE}
    for kinds in (wanted.get(verdict, ()), (MeasurementVerdict.FAILED,)):
        found = next((m for m in reversed(taken) if m.verdict in kinds), None)
        if found is not None:
            return found
    return taken[-1] if taken else None


def summary(
    metrics: Sequence[Metric],
    measurements: Sequence[Measurement],
    verdicts: Mapping[str, Verdict],
    now: datetime,
) -> str:
    """One line per metric: its verdict, how many measurements, and the latest value."""
    parts = []
    for metric in metrics:
        taken = analysis.window(metric, measurements, now)
        failed = sum(m.verdict is MeasurementVerdict.FAILED for m in taken)
        unsure = sum(m.verdict in _UNSURE for m in taken)
        last = _telling(taken, verdicts[metric.name])
        detail = last.message if last is not None and last.message else ""
        if last is not None and last.value is not None and not detail:
            detail = f"value {last.value:g}"
        counts = f"{len(taken)}/{metric.count} taken, {failed} failed"
        if unsure:
            counts += f", {unsure} inconclusive"
        parts.append(
            f"{metric.name} {verdicts[metric.name].value} ({counts}{'; ' + detail if detail else ''})"
        )
    return "; ".join(parts)
