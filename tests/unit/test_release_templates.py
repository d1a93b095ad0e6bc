"""The release machine with analysis templates: pass after pass of `machine.plan`, pure.

The world is built as in `test_release_machine` (fake clock, seconds after T0); the
templates the gatherer would have read are put in `observed.templates`, and the samples it
would have taken (what `gates.due_samples` asks for) in `observed.samples`. Every pass is
checked against the machine's invariants.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bluegreen.api import BlueGreenApp, Phase, Verdict
from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import AnalysisTemplateSpec
from bluegreen.core.analysis import QueryResult
from bluegreen.core.plan import Plan
from bluegreen.core.templates import Templates, TemplateState
from bluegreen.core.world import Observed
from bluegreen.release import gates, machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    V1,
    V2,
    ObservedBuilder,
    app_body,
    at,
    in_release,
)
from tests.unit.test_release_machine import assert_invariants, deploying_world

PROMETHEUS = {"address": "http://prometheus.monitoring.svc:9090"}


def error_ratio(threshold: Any = "{{args.threshold}}", count: int = 3) -> AnalysisTemplateSpec:
    return AnalysisTemplateSpec.model_validate(
        {
            "args": [
                {"name": "service"},
                {"name": "threshold", "value": "0.05", "type": "Number"},
            ],
            "metrics": [
                {
                    "name": "errors",
                    "query": 'ratio{app="{{args.service}}",color="{{color}}"}',
                    "thresholdRange": {"max": threshold},
                    "interval": "1s",
                    "count": count,
                }
            ],
        }
    )


def reference(name: str = "errors", cluster: bool = True, **args: str) -> dict[str, Any]:
    return {
        "templates": [{"templateName": name, "clusterScope": cluster}],
        "args": [{"name": k, "value": v} for k, v in args.items()],
    }


def make(status: Any, **analysis: Any) -> BlueGreenApp:
    body = app_body(image=V2, status=status)
    body["spec"]["analysis"] = {"prometheus": PROMETHEUS, **analysis}
    return BlueGreenApp.model_validate(body)


def found(
    *specs: tuple[str, AnalysisTemplateSpec], cluster: bool = True, rv: str = "1"
) -> Templates:
    return Templates(
        found={(cluster, name): TemplateState(cluster, name, rv, spec=s) for name, s in specs}
    )


def world(now: float, templates: Templates, *, switched: bool = False) -> Observed:
    base = (
        ObservedBuilder(at(now)).color(BLUE, V1).color(GREEN, V2).services(active=GREEN).build()
        if switched
        else deploying_world(now)
    )
    return dataclasses.replace(base, templates=templates)


Values = float | dict[str, float]


def sampled(app: BlueGreenApp, observed: Observed, value: Values) -> Observed:
    """The world with every sample that is due answered with `value` (by metric name, if a
    mapping): the gatherer's job."""
    due = gates.due_samples(app, observed.now)
    samples = {
        gates.sample_key(p, m): QueryResult(
            values=(value[m.name] if isinstance(value, dict) else value,)
        )
        for p, m in due
    }
    return dataclasses.replace(observed, samples=samples)


def step(app: BlueGreenApp, observed: Observed) -> tuple[BlueGreenApp, Plan]:
    plan = machine.plan(app, observed)
    assert_invariants(app, observed, plan)
    return app.model_copy(update={"status": plan.status}), plan


def paused_condition(plan: Plan) -> tuple[str, str, str]:
    (c,) = [c for c in plan.status.conditions if c.type == "Paused"]
    return c.status, c.reason, c.message


def run_window(
    app: BlueGreenApp, templates: Templates, value: Values, start: float, *, switched: bool = False
) -> tuple[BlueGreenApp, Plan, float]:
    """Pass after pass, each at the time the last one asked for, until the window ends."""
    now = start
    for _ in range(20):
        observed = sampled(app, world(now, templates, switched=switched), value)
        app, plan = step(app, observed)
        run = plan.status.analysis
        if run is not None and run.verdict is not Verdict.RUNNING:
            return app, plan, now
        if plan.status.phase not in (Phase.ANALYZING, Phase.OBSERVING, Phase.PAUSED):
            return app, plan, now
        now += plan.requeue_after if plan.requeue_after else 1.0
    raise AssertionError("the window never ended")


ANALYZING = in_release(Phase.ANALYZING, started=0, candidate_ready=20)
OBSERVING = in_release(
    Phase.OBSERVING,
    started=0,
    candidate_ready=20,
    promotion_requested=21,
    switched=21,
    converged=21.25,
    latency=0.25,
)


def test_the_window_opens_with_the_templates_metrics_kept_in_status() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop", threshold="0.01"))
    app, plan = step(app, world(21, found(("errors", error_ratio()))))
    run = plan.status.analysis
    assert run is not None and run.phase == "pre" and run.verdict is Verdict.RUNNING
    (metric,) = run.template_metrics
    assert metric.query == 'ratio{app="shop",color="{{color}}"}'
    assert metric.threshold_range is not None and metric.threshold_range.max == 0.01
    assert run.templates == ["ClusterAnalysisTemplate/errors@1"]
    started = [e for e in plan.events if e.reason == Reason.ANALYSIS_STARTED]
    assert (
        "errors" in started[0].message and "ClusterAnalysisTemplate/errors@1" in started[0].message
    )
    # The gatherer samples the metric as kept in status.
    due = gates.due_samples(app, at(30))
    assert [(p, m.query) for p, m in due] == [("pre", metric.query)]


def test_a_template_that_passes_promotes() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    app, plan, _ = run_window(app, found(("errors", error_ratio())), 0.01, 21)
    assert plan.status.phase is Phase.OBSERVING  # switched
    run = plan.status.analysis
    assert run is not None and run.verdict is Verdict.SUCCESS and len(run.measurements) == 3


def test_a_template_that_fails_rolls_back_like_an_inline_metric() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    app, plan, _ = run_window(app, found(("errors", error_ratio())), 0.5, 21)
    assert plan.status.phase is Phase.ROLLING_BACK
    assert plan.status.release is not None
    assert plan.status.release.reason == Reason.PRE_PROMOTION_ANALYSIS_FAILED
    assert "0.5 > max 0.05" in plan.status.release.message


def test_an_edit_during_the_window_does_not_change_it_the_next_window_takes_it() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    before = found(("errors", error_ratio()), rv="1")
    app, plan = step(app, world(21, before))  # the window opens with max 0.05
    strict = found(("errors", error_ratio(threshold=0.001)), rv="2")
    # Mid-window the template asks for 0.001; 0.01 would fail it, the window keeps 0.05.
    app, plan, _ = run_window(app, strict, 0.01, 22)
    assert plan.status.phase is Phase.OBSERVING, plan.status.message
    run = plan.status.analysis
    assert run is not None and run.templates == ["ClusterAnalysisTemplate/errors@1"]
    assert all(m.verdict == "Successful" for m in run.measurements)
    # A new window (here: the same release taken again after an inconclusive one) resolves
    # the template as it is now.
    again = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    again, plan, _ = run_window(again, strict, 0.01, 21)
    assert plan.status.phase is Phase.ROLLING_BACK
    assert plan.status.analysis is not None
    assert plan.status.analysis.templates == ["ClusterAnalysisTemplate/errors@2"]


def test_an_inconclusive_window_is_taken_again_with_the_template_as_it_is_now() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    app, plan, now = run_window(app, found(("errors", error_ratio()), rv="1"), float("nan"), 21)
    assert plan.status.phase is Phase.PAUSED
    assert plan.status.analysis is not None
    assert plan.status.analysis.verdict is Verdict.INCONCLUSIVE
    edited = found(("errors", error_ratio(threshold=0.2)), rv="2")
    app, plan = step(app, world(now + 1, edited))
    run = plan.status.analysis
    assert (
        run is not None and run.runs == 2 and run.templates == ["ClusterAnalysisTemplate/errors@2"]
    )
    assert run.template_metrics[0].threshold_range is not None
    assert run.template_metrics[0].threshold_range.max == 0.2


def test_a_window_taken_again_waits_for_its_template_as_the_next_run() -> None:
    app = make(ANALYZING, prePromotionAnalysis=reference(service="shop"))
    app, plan, now = run_window(app, found(("errors", error_ratio())), float("nan"), 21)
    assert plan.status.analysis is not None
    assert plan.status.analysis.verdict is Verdict.INCONCLUSIVE and plan.status.analysis.runs == 1
    app, plan = step(app, world(now + 1, Templates()))  # deleted meanwhile
    run = plan.status.analysis
    assert run is not None and run.unresolved is not None and run.runs == 2
    assert paused_condition(plan)[1] == "AnalysisTemplateNotFound"
    app, plan = step(app, world(now + 2, Templates()))
    assert plan.events == () and plan.status.analysis == run  # waits, says nothing new
    app, plan = step(app, world(now + 3, found(("errors", error_ratio()), rv="2")))
    run = plan.status.analysis
    assert run is not None and run.unresolved is None and run.runs == 2
    assert run.templates == ["ClusterAnalysisTemplate/errors@2"]


def test_a_missing_template_pauses_and_its_creation_resumes() -> None:
    smoke = {"name": "smoke", "url": "http://shop-preview.default.svc/", "interval": "1s"}
    app = make(
        ANALYZING,
        prePromotion=[smoke],  # inline checks wait with the templates: one window
        prePromotionAnalysis=reference("absent", cluster=False, service="shop"),
    )
    app, plan = step(app, world(21, Templates()))
    assert plan.status.phase is Phase.PAUSED
    assert plan.status.active_color is BLUE  # traffic untouched
    assert [a.key for a in plan.actions] == ["Service/shop-preview"]  # the candidate's preview
    assert paused_condition(plan) == (
        "True",
        "AnalysisTemplateNotFound",
        "AnalysisTemplate absent not found in namespace default",
    )
    assert "AnalysisTemplate absent not found" in plan.status.message
    assert [e.reason for e in plan.events] == ["AnalysisTemplateNotFound"]
    assert gates.due_samples(app, at(100)) == []  # no window, no sample
    # Nothing changes by itself: the next pass says nothing new.
    app, plan = step(app, world(40, Templates()))
    assert plan.status.phase is Phase.PAUSED and plan.events == ()
    # The template is created: the window opens at once, back in Analyzing.
    app, plan = step(app, world(41, found(("absent", error_ratio()), cluster=False)))
    assert plan.status.phase is Phase.ANALYZING and plan.status.message == ""
    assert plan.status.analysis is not None and plan.status.analysis.unresolved is None
    assert paused_condition(plan)[0] == "False"
    assert {m.metric for m in plan.status.analysis.measurements} == set()
    app, plan, _ = run_window(
        app, found(("absent", error_ratio()), cluster=False), {"smoke": 1, "errors": 0}, 42
    )
    assert plan.status.phase is Phase.OBSERVING, plan.status.message
    assert plan.status.analysis is not None
    assert {m.metric for m in plan.status.analysis.measurements} == {"smoke", "errors"}


def test_a_missing_arg_after_the_switch_waits_it_never_rolls_back() -> None:
    app = make(OBSERVING, postPromotionAnalysis=reference())  # no service
    templates = found(("errors", error_ratio()))
    app, plan = step(app, world(22, templates, switched=True))
    assert plan.status.phase is Phase.PAUSED
    assert plan.status.active_color is GREEN  # traffic stays on the candidate, old colour warm
    assert paused_condition(plan)[1] == "AnalysisArgMissing"
    assert "arg service of ClusterAnalysisTemplate errors" in paused_condition(plan)[2]
    # The template gets a default for it: the window opens, back in Observing.
    fixed = AnalysisTemplateSpec.model_validate(
        {
            **error_ratio().model_dump(mode="json", by_alias=True, exclude_none=True),
            "args": [{"name": "service", "value": "shop"}, {"name": "threshold", "value": "1"}],
        }
    )
    app, plan = step(app, world(30, found(("errors", fixed)), switched=True))
    assert plan.status.phase is Phase.OBSERVING
    app, plan, _ = run_window(app, found(("errors", fixed)), 0.0, 31, switched=True)
    assert plan.status.phase is Phase.HEALTHY


def test_a_canary_step_judges_its_own_templates() -> None:
    body = app_body(
        image=V2,
        status=in_release(Phase.ANALYZING, started=0, candidate_ready=20),
        strategy={
            "canary": {
                "steps": [
                    {
                        "weight": 20,
                        "pauseSeconds": 0,
                        "analysis": reference("step-check", service="shop"),
                    }
                ]
            }
        },
    )
    body["spec"]["ingress"] = {"host": "shop.example.com"}
    body["spec"]["analysis"] = {"prometheus": PROMETHEUS}
    app = BlueGreenApp.model_validate(body)
    templates = found(("step-check", error_ratio()))
    app, plan = step(app, world(21, templates))  # step 1 starts
    assert plan.status.canary is not None and plan.status.canary.weight == 20
    app, plan = step(app, world(21.1, templates))
    run = plan.status.analysis
    assert run is not None and run.step == 0
    assert run.templates == ["ClusterAnalysisTemplate/step-check@1"]
    assert gates.has_checks(app, "pre", 0) and not gates.has_checks(app, "pre")


def test_every_metric_gives_the_open_window_as_kept_and_the_others_as_they_resolve() -> None:
    app = make(
        ANALYZING,
        prePromotionAnalysis=reference(service="shop"),
        postPromotionAnalysis=reference("post", service="shop"),
    )
    app, _ = step(app, world(21, found(("errors", error_ratio()), ("post", error_ratio()))))
    edited = found(("errors", error_ratio(threshold=0.9)), ("post", error_ratio(threshold=0.7)))
    bounds = {
        (phase, m.threshold_range.max if m.threshold_range else None)
        for phase, m in gates.every_metric(app, edited)
    }
    assert bounds == {("pre", 0.05), ("post", 0.7)}
