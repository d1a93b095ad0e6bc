"""Resolving analysis templates (`bluegreen.core.templates`): table-driven, pure.

Each case is an app's reference (templates and args), the templates found, and either the
metrics they resolve into or the reason and words of why they do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import (
    AnalysisTemplateSpec,
    BlueGreenApp,
    Metric,
    TemplateAnalysis,
    TemplateMetric,
)
from bluegreen.core import templates
from bluegreen.core.templates import Resolved, Templates, TemplateState, Unresolved
from tests.unit.factories import app_body

ERRORS = (
    'sum(rate(http_requests_total{namespace="{{args.namespace}}",app="{{ args.service }}",'
    'color="{{color}}",status=~"5.."}[1m]))'
)


def template(
    *metrics: dict[str, Any], args: list[dict[str, Any]] | None = None
) -> AnalysisTemplateSpec:
    return AnalysisTemplateSpec.model_validate({"args": args or [], "metrics": list(metrics)})


ERROR_RATIO = template(
    {
        "name": "error-ratio",
        "query": ERRORS,
        "thresholdRange": {"max": "{{args.threshold}}"},
        "interval": "5s",
        "count": 3,
        "minRequestsQuery": 'sum(increase(x{app="{{args.service}}"}[1m]))',
        "minRequests": "{{args.min-requests}}",
    },
    args=[
        {"name": "service"},
        {"name": "namespace", "value": "{{namespace}}"},
        {"name": "threshold", "value": "0.05", "type": "Number"},
        {"name": "min-requests", "value": "20", "type": "Number"},
    ],
)
SMOKE = template(
    {"name": "smoke", "url": "{{args.base}}/health", "count": 2},
    args=[{"name": "base", "value": "http://{{name}}-preview.{{namespace}}.svc"}],
)


def found(*entries: tuple[bool, str, AnalysisTemplateSpec | None]) -> Templates:
    return Templates(
        found={
            (cluster, name): TemplateState(cluster, name, "7", spec=spec, error="bad")
            for cluster, name, spec in entries
        }
    )


def ref(*names: str, cluster: bool = False, **args: str) -> TemplateAnalysis:
    return TemplateAnalysis.model_validate(
        {
            "templates": [{"templateName": n, "clusterScope": cluster} for n in names],
            "args": [{"name": k.replace("_", "-"), "value": v} for k, v in args.items()],
        }
    )


@dataclass
class Case:
    id: str
    ref: TemplateAnalysis
    found: Templates
    want: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Resolved: metric name -> the fields it must have (camelCase, as in status)."""
    reason: Reason | None = None
    words: str = ""
    taken: tuple[str, ...] = ()
    prometheus: bool = True


CASES = [
    Case(
        "args and defaults fill the query, the guard and the bounds",
        ref("errors", cluster=True, service="shop"),
        found((True, "errors", ERROR_RATIO)),
        want={
            "error-ratio": {
                "query": ERRORS.replace("{{args.namespace}}", "{{namespace}}").replace(
                    "{{ args.service }}", "shop"
                ),
                "thresholdRange": {"max": 0.05},
                "minRequestsQuery": 'sum(increase(x{app="shop"}[1m]))',
                "minRequests": 20.0,
                "interval": "5s",
                "count": 3,
            }
        },
    ),
    Case(
        "the app's values win over the defaults",
        ref("errors", cluster=True, service="cart", threshold="0.01", min_requests="5"),
        found((True, "errors", ERROR_RATIO)),
        want={"error-ratio": {"thresholdRange": {"max": 0.01}, "minRequests": 5.0}},
    ),
    Case(
        "a default may use the app's placeholders, filled in at sample time",
        ref("smoke"),
        found((False, "smoke", SMOKE)),
        want={"smoke": {"url": "http://{{name}}-preview.{{namespace}}.svc/health"}},
    ),
    Case(
        "several templates: metrics in order, args shared",
        ref("smoke", "errors", service="shop"),
        found((False, "smoke", SMOKE), (False, "errors", ERROR_RATIO)),
        want={"smoke": {}, "error-ratio": {}},
    ),
    Case(
        "a value is put in as it is, not scanned again",
        ref("errors", cluster=True, service="{{args.threshold}}"),
        found((True, "errors", ERROR_RATIO)),
        want={
            "error-ratio": {"minRequestsQuery": 'sum(increase(x{app="{{args.threshold}}"}[1m]))'}
        },
    ),
    Case(
        "both kinds of one name: without clusterScope, the namespace's template",
        ref("checks"),
        found((True, "checks", ERROR_RATIO), (False, "checks", SMOKE)),
        want={"smoke": {}},
    ),
    Case(
        "both kinds of one name: with clusterScope, the cluster's template",
        ref("checks", cluster=True, service="shop"),
        found((True, "checks", ERROR_RATIO), (False, "checks", SMOKE)),
        want={"error-ratio": {}},
    ),
    Case(
        "a namespaced template that is not there",
        ref("errors", service="shop"),
        found((True, "errors", ERROR_RATIO)),  # a cluster one of that name does not count
        reason=Reason.ANALYSIS_TEMPLATE_NOT_FOUND,
        words="AnalysisTemplate errors not found in namespace default",
    ),
    Case(
        "a cluster template that is not there",
        ref("errors", cluster=True, service="shop"),
        found((False, "errors", ERROR_RATIO)),
        reason=Reason.ANALYSIS_TEMPLATE_NOT_FOUND,
        words="ClusterAnalysisTemplate errors not found",
    ),
    Case(
        "a cluster template the operator cannot read",
        ref("errors", cluster=True, service="shop"),
        Templates(unreadable=frozenset({True})),
        reason=Reason.ANALYSIS_TEMPLATE_NOT_FOUND,
        words="cannot read ClusterAnalysisTemplates",
    ),
    Case(
        "the second of two templates is missing",
        ref("smoke", "errors", service="shop"),
        found((False, "smoke", SMOKE)),
        reason=Reason.ANALYSIS_TEMPLATE_NOT_FOUND,
        words="AnalysisTemplate errors not found",
    ),
    Case(
        "a stored template that does not parse",
        ref("errors"),
        found((False, "errors", None)),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="AnalysisTemplate errors is not valid: bad",
    ),
    Case(
        "an arg without default the app does not give",
        ref("errors", cluster=True),
        found((True, "errors", ERROR_RATIO)),
        reason=Reason.ANALYSIS_ARG_MISSING,
        words="arg service of ClusterAnalysisTemplate errors has no default value",
    ),
    Case(
        "an arg no template declares (a typo would silently keep the default)",
        ref("errors", cluster=True, service="shop", treshold="0.01"),
        found((True, "errors", ERROR_RATIO)),
        reason=Reason.ANALYSIS_ARG_INVALID,
        words="arg treshold is not an arg of ClusterAnalysisTemplate errors",
    ),
    Case(
        "a Number arg that is not a number",
        ref("errors", cluster=True, service="shop", threshold="five percent"),
        found((True, "errors", ERROR_RATIO)),
        reason=Reason.ANALYSIS_ARG_INVALID,
        words="arg threshold of ClusterAnalysisTemplate errors is a Number: 'five percent'",
    ),
    Case(
        "a Number arg that is not finite",
        ref("errors", cluster=True, service="shop", threshold="NaN"),
        found((True, "errors", ERROR_RATIO)),
        reason=Reason.ANALYSIS_ARG_INVALID,
        words="is not a number",
    ),
    Case(
        "a String arg that gives a bound must still be a number",
        ref("loose", threshold="high"),
        found(
            (
                False,
                "loose",
                template(
                    {"name": "x", "query": "up", "thresholdRange": {"min": "{{args.threshold}}"}},
                    args=[{"name": "threshold"}],
                ),
            )
        ),
        reason=Reason.ANALYSIS_ARG_INVALID,
        words="thresholdRange.min of metric x of AnalysisTemplate loose is {{args.threshold}}",
    ),
    Case(
        "a placeholder the template does not declare",
        ref("undeclared"),
        found((False, "undeclared", template({"name": "x", "url": "http://{{args.host}}/"}))),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="metric x of AnalysisTemplate undeclared uses {{args.host}}",
    ),
    Case(
        "what the args give must be a valid metric",
        ref("web", base="ftp://example"),
        found(
            (
                False,
                "web",
                template({"name": "x", "url": "{{args.base}}/x"}, args=[{"name": "base"}]),
            )
        ),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="metric x of AnalysisTemplate web is not a valid metric: url",
    ),
    Case(
        "bounds in the wrong order once filled in",
        ref("order", lo="2"),
        found(
            (
                False,
                "order",
                template(
                    {
                        "name": "x",
                        "query": "up",
                        "thresholdRange": {"min": "{{args.lo}}", "max": 1},
                    },
                    args=[{"name": "lo"}],
                ),
            )
        ),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="thresholdRange.min must not exceed max",
    ),
    Case(
        "a template metric named like an inline one",
        ref("smoke"),
        found((False, "smoke", SMOKE)),
        taken=("smoke",),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="metric smoke of AnalysisTemplate smoke has the name of a metric of the app's",
    ),
    Case(
        "the same template twice",
        ref("smoke", "smoke"),
        found((False, "smoke", SMOKE)),
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="names must be unique in a window",
    ),
    Case(
        "a query from a template needs the app's Prometheus",
        ref("errors", cluster=True, service="shop"),
        found((True, "errors", ERROR_RATIO)),
        prometheus=False,
        reason=Reason.ANALYSIS_TEMPLATE_INVALID,
        words="needs analysis.prometheus.address",
    ),
    Case(
        "a web check from a template needs no Prometheus",
        ref("smoke"),
        found((False, "smoke", SMOKE)),
        prometheus=False,
        want={"smoke": {}},
    ),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_resolve(c: Case) -> None:
    outcome = templates.resolve(
        c.ref, c.found, namespace="default", taken=c.taken, prometheus=c.prometheus
    )
    if c.reason is not None:
        assert isinstance(outcome, Unresolved), outcome
        assert outcome.reason is c.reason
        assert c.words in outcome.message, outcome.message
        return
    assert isinstance(outcome, Resolved), outcome
    assert [m.name for m in outcome.metrics] == list(c.want)
    for metric in outcome.metrics:
        assert type(metric) is Metric  # a plain metric: the core judges it like any other
        wire = metric.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in c.want[metric.name].items():
            assert wire[key] == value, (key, wire)
    assert outcome.sources == tuple(
        f"{s.kind}/{s.name}@7"
        for t in c.ref.templates
        if (s := c.found.found.get((t.cluster_scope, t.template_name)))
    )


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("text", "values", "want"),
    [
        ("{{args.a}}", {"a": "1"}, "1"),
        ("{{ args.a }}-{{args.a}}", {"a": "x"}, "x-x"),
        ("{{args.b}}", {"a": "1"}, "{{args.b}}"),  # not given: left as it is
        ("{{name}} {{args.a}}", {"a": "{{args.a}}"}, "{{name}} {{args.a}}"),
        ("{{args.a-b}}/{{args.a_b}}", {"a-b": "1", "a_b": "2"}, "1/2"),
        ("{args.a} {{args.a}", {"a": "1"}, "{args.a} {{args.a}"),
    ],
)
def test_substitute(text: str, values: dict[str, str], want: str) -> None:
    assert templates.substitute(text, values) == want


def test_too_many_metrics_for_status() -> None:
    many = template(*({"name": f"m{i}", "url": "http://x.svc/"} for i in range(15)))
    outcome = templates.resolve(
        ref("a", "b"),
        found(
            (False, "a", many),
            (False, "b", template(*({"name": f"n{i}", "url": "http://y.svc/"} for i in range(6)))),
        ),
        namespace="default",
    )
    assert isinstance(outcome, Unresolved)
    assert "21 metrics; a window takes at most 20" in outcome.message


def test_too_many_bytes_for_status() -> None:
    long = "x" * 1000
    big = template(
        *(
            {"name": f"m{i}", "query": 'up{a="{{args.v}}"}', "thresholdRange": {"max": 1}}
            for i in range(10)
        ),
        args=[{"name": "v", "value": long}],
    )
    outcome = templates.resolve(ref("big"), found((False, "big", big)), namespace="default")
    assert isinstance(outcome, Resolved)  # 10 kB
    bigger = template(
        *(
            {
                "name": f"m{i}",
                "query": "up{" + ",".join(f'a{j}="{{{{args.v}}}}"' for j in range(3)) + "}",
                "thresholdRange": {"max": 1},
            }
            for i in range(12)
        ),
        args=[{"name": "v", "value": long}],
    )
    outcome = templates.resolve(ref("big"), found((False, "big", bigger)), namespace="default")
    assert isinstance(outcome, Unresolved)
    assert outcome.reason is Reason.ANALYSIS_TEMPLATE_INVALID
    assert "a window keeps at most 32768 in status" in outcome.message


# ----------------------------------------------------------------------------- the models


@pytest.mark.parametrize(
    "bound",
    [0.05, 1, "{{args.t}}", "{{ args.t }}"],
)
def test_a_template_bound_is_a_number_or_one_arg(bound: Any) -> None:
    metric = TemplateMetric.model_validate(
        {"name": "x", "query": "up", "thresholdRange": {"max": bound}}
    )
    assert metric.threshold_range is not None and metric.threshold_range.max == bound


@pytest.mark.parametrize(
    "bound", ["0.05", "{{args.t}} ", "x{{args.t}}", "{{args.t}}{{args.u}}", True, False]
)
def test_a_template_bound_is_nothing_else(bound: Any) -> None:
    """The CRD cannot type these fields (a number or a string): the model checks them, as
    the operator reads a stored template. A boolean (YAML's `yes`) is not taken as 1."""
    with pytest.raises(ValidationError, match="must be a number or a single"):
        TemplateMetric.model_validate(
            {"name": "x", "query": "up", "thresholdRange": {"max": bound}}
        )
    with pytest.raises(ValidationError, match="must be a number or a single"):
        TemplateMetric.model_validate(
            {
                "name": "x",
                "query": "up",
                "thresholdRange": {"max": 1},
                "minRequestsQuery": "up",
                "minRequests": bound,
            }
        )


def test_template_metric_keeps_the_metric_rules() -> None:
    with pytest.raises(ValidationError, match="exactly one of query"):
        TemplateMetric.model_validate({"name": "x"})
    with pytest.raises(ValidationError, match="minRequestsQuery and minRequests go together"):
        TemplateMetric.model_validate(
            {"name": "x", "query": "up", "thresholdRange": {"max": 1}, "minRequests": 3}
        )


def test_inline_metrics_still_take_numbers_only() -> None:
    """The template's looser bounds are the template's: an app's own metric is unchanged."""
    with pytest.raises(ValidationError):
        Metric.model_validate({"name": "x", "query": "up", "thresholdRange": {"max": "{{args.t}}"}})


def test_referenced_reads_every_window_of_the_raw_spec() -> None:
    body = app_body(
        strategy={
            "canary": {
                "steps": [
                    {"weight": 10, "analysis": {"templates": [{"templateName": "step"}]}},
                    {"weight": 50},
                ]
            }
        }
    )
    body["spec"]["ingress"] = {"host": "shop.example.com"}
    body["spec"]["analysis"] = {
        "prePromotionAnalysis": {"templates": [{"templateName": "pre", "clusterScope": True}]},
        "postPromotionAnalysis": {"templates": [{"templateName": "post"}]},
    }
    BlueGreenApp.model_validate(body)  # a valid app
    assert templates.referenced(body["spec"]) == {(True, "pre"), (False, "post"), (False, "step")}
    assert templates.referenced({"analysis": {"prePromotionAnalysis": "junk"}}) == set()
