"""The chart's error-ratio ClusterAnalysisTemplate: rendered, valid for the operator, and
valid PromQL once its args are filled in.

`tests/cluster/test_analysis_templates.py` applies the same rendered object to a real API
server and releases an app that names it, against a real Prometheus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.api.v1alpha1 import AnalysisTemplateSpec, TemplateAnalysis
from bluegreen.core import templates
from bluegreen.core.analysis import render_query
from bluegreen.core.templates import Resolved, Templates, TemplateState
from tests.support.cluster import REPO
from tests.support.tools import helm, helm_template, promtool

CHART = REPO / "charts" / "bluegreen-operator"


def rendered(*sets: str, kind: str = "ClusterAnalysisTemplate") -> list[dict[str, Any]]:
    return [d for d in helm_template(CHART, *sets) if d["kind"] == kind]


def resolve(spec: AnalysisTemplateSpec, **args: str) -> Resolved:
    ref = TemplateAnalysis.model_validate(
        {
            "templates": [{"templateName": "error-ratio", "clusterScope": True}],
            "args": [{"name": k.replace("_", "-"), "value": v} for k, v in args.items()],
        }
    )
    found = Templates(found={(True, "error-ratio"): TemplateState(True, "error-ratio", "1", spec)})
    outcome = templates.resolve(ref, found, namespace="shop")
    assert isinstance(outcome, Resolved), outcome
    return outcome


def test_the_chart_renders_the_error_ratio_template_by_default() -> None:
    (doc,) = rendered()
    assert doc["apiVersion"] == "bluegreen.dev/v1alpha1"
    assert doc["metadata"]["name"] == "error-ratio"
    assert "namespace" not in doc["metadata"]  # cluster-scoped
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    spec = AnalysisTemplateSpec.model_validate(doc["spec"])  # what the operator parses
    (metric,) = spec.metrics
    assert (metric.interval, metric.count, metric.failure_limit) == ("15s", 4, 1)
    # Every arg has a default: an app that names the template needs to give none.
    assert all(a.value is not None for a in spec.args)
    # Helm left the operator's placeholders alone.
    assert metric.query is not None and "{{color}}" in metric.query
    assert "{{args.threshold}}" in str(doc["spec"]["metrics"][0]["thresholdRange"]["max"])


def test_values_set_its_name_and_window_or_leave_it_out() -> None:
    (doc,) = rendered(
        "analysisTemplates.errorRatio.name=team-errors",
        "analysisTemplates.errorRatio.interval=30s",
        "analysisTemplates.errorRatio.count=10",
        "analysisTemplates.errorRatio.failureLimit=2",
    )
    assert doc["metadata"]["name"] == "team-errors"
    (metric,) = AnalysisTemplateSpec.model_validate(doc["spec"]).metrics
    assert (metric.interval, metric.count, metric.failure_limit) == ("30s", 10, 2)
    assert rendered("analysisTemplates.errorRatio.enabled=false") == []


def test_a_namespaced_install_gets_an_analysis_template_in_each_namespace() -> None:
    """Nothing cluster-scoped in a namespaced install, and its Roles cannot read
    ClusterAnalysisTemplates: the same template, namespaced, where the apps are."""
    sets = ("watchNamespaces={shop,blog}",)
    assert rendered(*sets) == []
    docs = rendered(*sets, kind="AnalysisTemplate")
    assert sorted(d["metadata"]["namespace"] for d in docs) == ["blog", "shop"]
    (cluster_wide,) = rendered()
    for doc in docs:
        assert doc["metadata"]["name"] == "error-ratio"
        assert doc["spec"] == cluster_wide["spec"]
    assert (
        rendered(*sets, "analysisTemplates.errorRatio.enabled=false", kind="AnalysisTemplate") == []
    )


@pytest.mark.parametrize(
    "bad",
    [
        "analysisTemplates.errorRatio.name=Error_Ratio",
        "analysisTemplates.errorRatio.interval=fast",
        "analysisTemplates.errorRatio.count=0",
        "analysisTemplates.errorRatio.unknown=1",
    ],
)
def test_values_schema_rejects(bad: str) -> None:
    result = helm("template", "bg", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0, f"{bad} was accepted"


def test_defaults_resolve_into_the_documented_error_ratio() -> None:
    (doc,) = rendered()
    (metric,) = resolve(AnalysisTemplateSpec.model_validate(doc["spec"])).metrics
    sel = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",'
    assert metric.query == (
        f'sum(rate(http_requests_total{{{sel}status=~"5..",}}[1m]))'
        f" / sum(rate(http_requests_total{{{sel}}}[1m]))"
    )
    assert metric.min_requests_query == f"sum(increase(http_requests_total{{{sel}}}[1m]))"
    assert metric.threshold_range is not None and metric.threshold_range.max == 0.05
    assert metric.min_requests == 20


def test_args_fill_in_valid_promql(tmp_path: Path) -> None:
    """Defaults and every arg given: the queries, as the operator sends them, parse."""
    (doc,) = rendered()
    spec = AnalysisTemplateSpec.model_validate(doc["spec"])
    given = resolve(
        spec,
        threshold="0.01",
        min_requests="100",
        window="5m",
        metric="http_server_requests_seconds_count",
        status_label="code",
        errors="5..|429",
        matchers='route="/",method!="OPTIONS"',
    )
    (metric,) = given.metrics
    assert metric.threshold_range is not None and metric.threshold_range.max == 0.01
    assert metric.min_requests == 100
    assert (
        metric.query is not None and 'code=~"5..|429",route="/",method!="OPTIONS"}' in metric.query
    )
    rules = []
    for m in (*resolve(spec).metrics, metric):
        for i, text in enumerate((m.query, m.min_requests_query)):
            assert text is not None
            expr = render_query(text, "shop", "web", "green", "7c9f")
            rules.append({"record": f"check:q{len(rules)}_{i}", "expr": expr})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "error-ratio", "rules": rules}]}))
    proc = promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
