"""Analysis windows: the gates before the switch (prePromotion, canary steps) and after it
(postPromotion).

A window lives in `status.analysis`. The pure core says which samples are due
(`due_samples`); the gatherer takes them and hands them back in `observed.samples`; a pass
stamps them into measurements and judges the window. FAILURE rolls back, INCONCLUSIVE
pauses and takes the window again, SUCCESS opens the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from bluegreen.api.v1alpha1 import TemplateAnalysis
from bluegreen.core import analysis, templates
from bluegreen.core.analysis import QueryResult
from bluegreen.core.templates import Resolved, Templates, Unresolved
from bluegreen.release import jobs, timing
from bluegreen.release import templates as windows
from bluegreen.release.context import Pass
from bluegreen.release.lifecycle import begin_rollback
from bluegreen.release.summaries import summary


def _source(
    app: BlueGreenApp, phase: AnalysisPhase, step: int | None = None
) -> tuple[list[Metric], TemplateAnalysis | None]:
    """A window's checks as the spec gives them: its inline metrics and its templates. A
    canary step with metrics or analysis of its own judges those, else prePromotion's."""
    canary = app.spec.strategy.canary
    if step is not None and canary is not None and step < len(canary.steps):
        own = canary.steps[step]
        if own.metrics is not None or own.analysis is not None:
            return list(own.metrics or []), own.analysis
    spec = app.spec.analysis
    if spec is None:
        return [], None
    if phase == "pre":
        return list(spec.pre_promotion), spec.pre_promotion_analysis
    return list(spec.post_promotion), spec.post_promotion_analysis


def analysis_metrics(
    app: BlueGreenApp, phase: AnalysisPhase, step: int | None = None
) -> list[Metric]:
    """The inline metrics of an analysis phase; for a canary step, its own if it has any."""
    return _source(app, phase, step)[0]


def has_checks(app: BlueGreenApp, phase: AnalysisPhase, step: int | None = None) -> bool:
    """Whether the phase (or canary step) has a window to judge: inline metrics or templates."""
    inline, ref = _source(app, phase, step)
    return bool(inline) or ref is not None


def window_metrics(app: BlueGreenApp, run: AnalysisRun) -> list[Metric]:
    """The metrics of an open window: the inline ones, and its templates' as resolved
    when it opened."""
    return [*analysis_metrics(app, run.phase, run.step), *run.template_metrics]


def _windows(app: BlueGreenApp) -> list[tuple[AnalysisPhase, int | None]]:
    canary = app.spec.strategy.canary
    steps: list[tuple[AnalysisPhase, int | None]] = [
        ("pre", i) for i in range(len(canary.steps) if canary else 0)
    ]
    return [("pre", None), ("post", None), *steps]


def template_analyses(app: BlueGreenApp) -> list[TemplateAnalysis]:
    """Every reference to templates of every window of the app."""
    return [ref for phase, step in _windows(app) if (ref := _source(app, phase, step)[1])]


def every_metric(
    app: BlueGreenApp, found: Templates | None = None
) -> list[tuple[AnalysisPhase, Metric]]:
    """Every metric the app may judge: pre- and post-promotion, and the canary steps';
    with `found`, the templates' metrics too (as the open window holds them, and as they
    resolve now for the others)."""
    out: list[tuple[AnalysisPhase, Metric]] = [
        (p, m) for p in ("pre", "post") for m in analysis_metrics(app, p)
    ]
    canary = app.spec.strategy.canary
    for step in canary.steps if canary else []:
        out += [("pre", m) for m in step.metrics or []]
    if found is None:
        return out
    run = app.status.analysis
    for phase, step_index in _windows(app):
        inline, ref = _source(app, phase, step_index)
        if ref is None:
            continue
        if run is not None and _is_open(app, run, phase, step_index):
            out += [(phase, m) for m in run.template_metrics]
            continue
        analysis = app.spec.analysis
        resolved = templates.resolve(
            ref,
            found,
            namespace=app.metadata.namespace,
            taken=[m.name for m in inline],
            prometheus=analysis is not None and analysis.prometheus is not None,
        )
        if isinstance(resolved, Resolved):
            out += [(phase, m) for m in resolved.metrics]
    return out


def _is_open(app: BlueGreenApp, run: AnalysisRun, phase: AnalysisPhase, step: int | None) -> bool:
    release = app.status.release
    return (
        release is not None
        and (run.phase, run.revision, run.step) == (phase, release.revision, step)
        and run.refused is None
        and run.unresolved is None
    )


def due_samples(app: BlueGreenApp, now: datetime) -> list[tuple[AnalysisPhase, Metric]]:
    """The metrics whose next measurement is due now: what the gatherer must sample (job
    metrics aside: their Jobs measure them)."""
    st = app.status
    run, release = st.analysis, st.release
    if run is None or release is None or run.revision != release.revision:
        return []
    if run.verdict is not Verdict.RUNNING or run.unresolved is not None:
        return []
    if st.phase not in (Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING):
        return []
    start = ts.parse(run.window_start)
    return [
        (run.phase, metric)
        for metric in window_metrics(app, run)
        if metric.job is None  # measured by its Jobs (release.jobs), not sampled
        and (at := analysis.next_due(metric, run.measurements, start, now)) is not None
        and at <= now
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
    inline, ref = _source(p.app, phase, step)
    if not inline and ref is None:
        return Verdict.SUCCESS  # the checks were removed from the spec meanwhile
    current = run is not None and (run.phase, run.revision, run.step) == (
        phase,
        release.revision,
        step,
    )
    resolved = windows.NOTHING
    if run is not None and _is_open(p.app, run, phase, step):
        metrics = [*inline, *run.template_metrics]
    else:
        now = windows.resolve(p, inline, ref)
        if isinstance(now, Unresolved):
            windows.wait(p, phase, step, now, run if current else None)
            return Verdict.RUNNING
        resolved = now
        metrics = [*inline, *resolved.metrics]
    refused = _refused(p, phase, metrics)
    if refused is not None:
        _wait_refused(p, phase, step, refused, run if current else None)
        return Verdict.RUNNING
    if run is None or not _is_open(p.app, run, phase, step):
        if current and run is not None and run.unresolved is not None:
            windows.resume(p)
        runs = run.runs if current and run is not None else 1
        open_window(p, phase, runs=runs, step=step, resolved=resolved)
        return Verdict.RUNNING
    if run.verdict is not Verdict.RUNNING:
        return run.verdict
    job_samples, started = jobs.samples(p, run, phase, metrics)
    samples = {**p.observed.samples, **job_samples}
    measurements = [*run.measurements, *_new_measurements(p, phase, metrics, samples)]
    verdicts = {m.name: analysis.metric_verdict(m, measurements, p.now) for m in metrics}
    verdict = analysis.overall(verdicts.values())
    message = summary(metrics, measurements, verdicts, p.now)
    in_flight: dict[str, tuple[str, datetime]] = {}
    if verdict is Verdict.RUNNING:
        started, in_flight = jobs.start_due(p, run, metrics, measurements, started)
        if in_flight:
            message += "; " + jobs.running(p, [name for name, _ in in_flight.values()])
    keep = max((m.count for m in metrics), default=1)
    p.update(
        analysis=run.model_copy(
            update={
                "measurements": analysis.bounded(measurements, keep),
                "verdict": verdict,
                "message": message,
                "jobs": started,
            }
        )
    )
    first_failure = next(
        (m.at for m in measurements if m.verdict is MeasurementVerdict.FAILED), None
    )
    if release.first_failure_at is None and first_failure is not None:
        p.update_release(first_failure_at=first_failure)
    if verdict is Verdict.RUNNING:
        backstops = {m: at for m, (_, at) in in_flight.items()}
        p.poll(_next_sample_in(p, metrics, measurements, ts.parse(run.window_start), backstops))
    elif verdict is Verdict.SUCCESS:
        p.event(Reason.ANALYSIS_SUCCEEDED, f"{phase}-promotion analysis passed: {message}")
    return verdict


def _new_measurements(
    p: Pass, phase: AnalysisPhase, metrics: list[Metric], samples: Mapping[str, QueryResult]
) -> list[Measurement]:
    """This pass's samples, stamped and judged one by one."""
    return [
        analysis.measure(metric, phase, result, p.now)
        for metric in metrics
        if (result := samples.get(sample_key(phase, metric))) is not None
    ]


def _next_sample_in(
    p: Pass,
    metrics: list[Metric],
    measurements: list[Measurement],
    start: datetime,
    backstops: Mapping[str, datetime],
) -> float:
    """Until the next sample is due; a job metric whose Job runs waits for the Job (its
    watch wakes the app), at the latest until the Job's deadline has passed."""
    dues = [
        d
        for m in metrics
        if (d := backstops.get(m.name) or analysis.next_due(m, measurements, start, p.now))
        is not None
    ]
    return max(0.0, (min(dues) - p.now).total_seconds()) if dues else timing.SAMPLE_RETRY


def _refused(p: Pass, phase: AnalysisPhase, metrics: list[Metric]) -> str | None:
    found = [
        f"{m.name}: {p.observed.refused[key]}"
        for m in metrics
        if (key := sample_key(phase, m)) in p.observed.refused
    ]
    return "; ".join(found) if found else None


def _wait_refused(
    p: Pass, phase: AnalysisPhase, step: int | None, refused: str, run: AnalysisRun | None
) -> None:
    """Never a pass, never a rollback: no sample is taken, the release waits in Paused
    until the administrator allows the address or the author changes it."""
    release = p.release
    waiting = AnalysisRun(
        phase=phase,
        revision=release.revision,
        window_start=p.stamp(),
        step=step,
        runs=run.runs if run is not None else 1,
        refused=refused,
    )
    if run is None or run.refused != refused:
        p.event(Reason.ANALYSIS_ENDPOINT_REFUSED, refused, warning=True)
        p.update(analysis=waiting)
    message = f"analysis endpoint refused: {refused}"
    if p.status.phase in (Phase.ANALYZING, Phase.OBSERVING) or p.status.message != message:
        p.update(phase=Phase.PAUSED, message=message)


def judge_again(p: Pass, phase: AnalysisPhase) -> Verdict:
    """After an inconclusive window, take a new one (its templates resolved anew); judge it
    like the first."""
    run = p.status.analysis
    step = run.step if run is not None else None
    if run is not None and run.phase == phase and run.verdict is Verdict.INCONCLUSIVE:
        inline, ref = _source(p.app, phase, step)
        resolved = windows.resolve(p, inline, ref)
        if isinstance(resolved, Unresolved):
            windows.wait(p, phase, step, resolved, run, runs=run.runs + 1)
        else:
            open_window(p, phase, runs=run.runs + 1, step=step, resolved=resolved)
        return Verdict.RUNNING
    return judge(p, phase, step)


def open_window(
    p: Pass,
    phase: AnalysisPhase,
    runs: int,
    step: int | None = None,
    resolved: Resolved | None = None,
) -> None:
    """Open a window: the inline metrics of the spec, and `resolved` (the templates'
    metrics as they are now), kept in status until the window ends."""
    release = p.release
    snapshot = resolved or windows.NOTHING
    metrics = [*analysis_metrics(p.app, phase, step), *snapshot.metrics]
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
            template_metrics=list(snapshot.metrics),
            templates=list(snapshot.sources),
        )
    )
    if runs == 1:
        p.event(
            Reason.ANALYSIS_STARTED,
            f"{phase}-promotion analysis of {release.revision} on {release.color.value}: "
            + ", ".join(m.name for m in metrics)
            + (f" (from {', '.join(snapshot.sources)})" if snapshot.sources else ""),
        )
    p.poll(first)


def summary_of(p: Pass) -> str:
    run = p.status.analysis
    return run.message if run is not None else ""


def pause_inconclusive(p: Pass) -> None:
    message = f"analysis inconclusive, taking it again: {summary_of(p)}"
    p.update(phase=Phase.PAUSED, message=message)
    p.event(Reason.ANALYSIS_INCONCLUSIVE, message, warning=True)
    p.follow_up()
