"""The analysis templates of a window: resolved when it opens, waited for when they cannot be.

A window's metrics are its inline metrics (from the spec) and its templates' metrics,
resolved by `bluegreen.core.templates` from the templates this pass observed and kept in
`status.analysis.templateMetrics` while the window runs: an edited template changes the
next window, never the one in flight. A template or arg that is missing or wrong holds the
release in Paused with the reason as the Paused condition, until it is fixed; creating or
editing a template wakes the apps that name it.
"""

from __future__ import annotations

from bluegreen.api import AnalysisPhase, AnalysisRun, Phase
from bluegreen.api.v1alpha1 import Metric, TemplateAnalysis, UnresolvedAnalysis
from bluegreen.core import templates
from bluegreen.core.templates import Resolved, Unresolved
from bluegreen.release.context import Pass

NOTHING = Resolved(metrics=(), sources=())


def resolve(p: Pass, inline: list[Metric], ref: TemplateAnalysis | None) -> Resolved | Unresolved:
    """The metrics of `ref`'s templates as they are now (none without a reference)."""
    if ref is None:
        return NOTHING
    analysis = p.spec.analysis
    return templates.resolve(
        ref,
        p.observed.templates,
        namespace=p.app.metadata.namespace,
        taken=[m.name for m in inline],
        prometheus=analysis is not None and analysis.prometheus is not None,
    )


def wait(
    p: Pass,
    phase: AnalysisPhase,
    step: int | None,
    problem: Unresolved,
    run: AnalysisRun | None,
    *,
    runs: int | None = None,
) -> None:
    """Never a pass, never a rollback: the window does not open, and the release waits in
    Paused, the reason in the Paused condition, until the templates resolve. `run` is the
    phase's current run, if any; `runs` counts the window that waits (default: run's)."""
    unresolved = UnresolvedAnalysis(reason=problem.reason.value, message=problem.message)
    if runs is None:
        runs = run.runs if run is not None else 1
    if run is None or run.unresolved != unresolved or run.runs != runs:
        p.event(problem.reason, problem.message, warning=True)
        p.update(
            analysis=AnalysisRun(
                phase=phase,
                revision=p.release.revision,
                window_start=p.stamp(),
                step=step,
                runs=runs,
                unresolved=unresolved,
            )
        )
    message = f"analysis waits for its templates: {problem.message}"
    if p.status.phase in (Phase.ANALYZING, Phase.OBSERVING) or p.status.message != message:
        p.update(phase=Phase.PAUSED, message=message)


def resume(p: Pass) -> None:
    """The templates resolve now: a release paused only for them goes on in its phase."""
    if p.status.phase is Phase.PAUSED:
        switched = p.release.switched_at is not None
        p.update(phase=Phase.OBSERVING if switched else Phase.ANALYZING, message="")
