"""Analysis windows: the gates before the switch (prePromotion, canary steps) and after it
(postPromotion).

A window lives in `status.analysis`. The pure core says which samples are due
(`due_samples`); the gatherer takes them and hands them back in `observed.samples`; a pass
stamps them into measurements and judges the window. FAILURE rolls back, INCONCLUSIVE
pauses and takes the window again, SUCCESS opens the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bluegreen.api import (
    AnalysisPhase,
    AnalysisRun,
    BlueGreenApp,
    Measurement,
    MeasurementVerdict,
    Metric,
    Phase,
    ReleaseResult,
    Verdict,
)
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.core import analysis
from bluegreen.release import timing
from bluegreen.release.context import Pass
from bluegreen.release.lifecycle import begin_rollback


def analysis_metrics(
    app: BlueGreenApp, phase: AnalysisPhase, step: int | None = None
) -> list[Metric]:
    """The metrics of an analysis phase; for a canary step, its own metrics if it has any."""
    canary = app.spec.strategy.canary
    if step is not None and canary is not None and step < len(canary.steps):
        own = canary.steps[step].metrics
        if own is not None:
            return list(own)
    spec = app.spec.analysis
    if spec is None:
        return []
    return list(spec.pre_promotion if phase == "pre" else spec.post_promotion)


def due_samples(app: BlueGreenApp, now: datetime) -> list[tuple[AnalysisPhase, Metric]]:
    """The metrics whose next measurement is due now: what the gatherer must sample."""
    st = app.status
    run, release = st.analysis, st.release
    if run is None or release is None or run.revision != release.revision:
        return []
    if run.verdict is not Verdict.RUNNING:
        return []
    if st.phase not in (Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING):
        return []
    start = ts.parse(run.window_start)
    return [
        (run.phase, metric)
        for metric in analysis_metrics(app, run.phase, run.step)
        if (at := analysis.next_due(metric, run.measurements, start, now)) is not None and at <= now
    ]


def sample_key(phase: AnalysisPhase, metric: Metric) -> str:
    return f"{phase}/{metric.name}"


def passed(
    p: Pass,
    phase: AnalysisPhase,
    failure: Reason,
    step: int | None = None,
    prefix: str = "",
) -> bool:
    """Judge the phase's window: roll back when it failed, pause when it is inconclusive,
    wait while it runs. True once it passed."""
    verdict = judge(p, phase, step)
    if verdict is Verdict.FAILURE:
        begin_rollback(p, ReleaseResult.ROLLED_BACK, failure, prefix + summary_of(p))
    elif verdict is Verdict.INCONCLUSIVE:
        pause_inconclusive(p)
    return verdict is Verdict.SUCCESS


def judge(p: Pass, phase: AnalysisPhase, step: int | None = None) -> Verdict:
    """Open the phase's window if needed, take in this pass's samples, and judge."""
    run = p.status.analysis
    release = p.release
    if run is None or (run.phase, run.revision, run.step) != (phase, release.revision, step):
        open_window(p, phase, runs=1, step=step)
        return Verdict.RUNNING
    if run.verdict is not Verdict.RUNNING:
        return run.verdict
    metrics = analysis_metrics(p.app, phase, step)
    measurements = [*run.measurements, *_new_measurements(p, phase, metrics)]
    verdicts = {m.name: analysis.metric_verdict(m, measurements, p.now) for m in metrics}
    verdict = analysis.overall(verdicts.values())
    message = summary(metrics, measurements, verdicts, p.now)
    keep = max((m.count for m in metrics), default=1)
    p.update(
        analysis=run.model_copy(
            update={
                "measurements": analysis.bounded(measurements, keep),
                "verdict": verdict,
                "message": message,
            }
        )
    )
    first_failure = next(
        (m.at for m in measurements if m.verdict is MeasurementVerdict.FAILED), None
    )
    if release.first_failure_at is None and first_failure is not None:
        p.update_release(first_failure_at=first_failure)
    if verdict is Verdict.RUNNING:
        p.poll(_next_sample_in(p, metrics, measurements, ts.parse(run.window_start)))
    elif verdict is Verdict.SUCCESS:
        p.event(Reason.ANALYSIS_SUCCEEDED, f"{phase}-promotion analysis passed: {message}")
    return verdict


def _new_measurements(p: Pass, phase: AnalysisPhase, metrics: list[Metric]) -> list[Measurement]:
    """This pass's samples, stamped and judged one by one."""
    return [
        analysis.measure(metric, phase, result, p.now)
        for metric in metrics
        if (result := p.observed.samples.get(sample_key(phase, metric))) is not None
    ]


def _next_sample_in(
    p: Pass, metrics: list[Metric], measurements: list[Measurement], start: datetime
) -> float:
    dues = [
        d for m in metrics if (d := analysis.next_due(m, measurements, start, p.now)) is not None
    ]
    return max(0.0, (min(dues) - p.now).total_seconds()) if dues else timing.ROLLOUT


def judge_again(p: Pass, phase: AnalysisPhase) -> Verdict:
    """After an inconclusive window, take a new one; judge it like the first."""
    run = p.status.analysis
    step = run.step if run is not None else None
    if run is not None and run.phase == phase and run.verdict is Verdict.INCONCLUSIVE:
        open_window(p, phase, runs=run.runs + 1, step=step)
        return Verdict.RUNNING
    return judge(p, phase, step)


def open_window(p: Pass, phase: AnalysisPhase, runs: int, step: int | None = None) -> None:
    release = p.release
    metrics = analysis_metrics(p.app, phase, step)
    # The first sample one interval after the window opens: a rate() over a colour that
    # just became ready needs two scrapes before it says anything.
    first = min(analysis.interval_seconds(m) for m in metrics)
    start = p.now + timedelta(seconds=first)
    p.update(
        analysis=AnalysisRun(
            phase=phase,
            revision=release.revision,
            window_start=ts.format(start),
            runs=runs,
            step=step,
        )
    )
    if runs == 1:
        p.event(
            Reason.ANALYSIS_STARTED,
            f"{phase}-promotion analysis of {release.revision} on {release.color.value}: "
            + ", ".join(m.name for m in metrics),
        )
    p.poll(first)


def summary_of(p: Pass) -> str:
    run = p.status.analysis
    return run.message if run is not None else ""


def pause_inconclusive(p: Pass) -> None:
    message = f"analysis inconclusive, taking it again: {summary_of(p)}"
    p.update(phase=Phase.PAUSED, message=message)
    p.event(Reason.ANALYSIS_INCONCLUSIVE, message, warning=True)
    p.poll(0)


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
        last = next((m for m in reversed(taken) if m.verdict is MeasurementVerdict.FAILED), None)
        last = last or (taken[-1] if taken else None)
        detail = last.message if last is not None and last.message else ""
        if last is not None and last.value is not None and not detail:
            detail = f"value {last.value:g}"
        parts.append(
            f"{metric.name} {verdicts[metric.name].value} ({len(taken)}/{metric.count} taken, "
            f"{failed} failed{'; ' + detail if detail else ''})"
        )
    return "; ".join(parts)
