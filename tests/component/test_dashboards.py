"""The chart's Grafana dashboards, without a cluster: Grafana's schema, structure, PromQL.

Every panel query is also run against a real Prometheus with data in
tests/cluster/test_observability.py; here each one is parsed by a real (empty) Prometheus,
so a syntax error shows up without a cluster.
"""

from __future__ import annotations

import json
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboards import (
    CHART,
    DASHBOARDS,
    GRAFANA_BUILTINS,
    SCHEMA_CHECK,
    annotation_queries,
    chart_without_schema,
    grafana_sdk_python,
    label_values,
    load_dashboards,
    panel_targets,
    panels,
    substitute,
    used_variables,
    variable_query,
    variables,
)
from tests.support.prometheus import query, run_prometheus
from tests.support.tools import helm_template

DS = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {"release.json", "operator.json"}
# What Grafana would send, for a PromQL parse of every query.
VALUES = {
    "datasource": "prometheus",
    "namespace": "web",
    "app": "shop",
    "job": "bluegreen-operator",
    "__rate_interval": "1m",
    "__range": "1h",
    "__interval": "15s",
    "requests": "http_requests_total",
    "latency": "http_request_duration_seconds",
    "route": "/",
}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    found = load_dashboards()
    assert set(found) == EXPECTED, f"dashboards in {DASHBOARDS}: {sorted(found)}"
    return found


def test_grafana_schema_accepts_the_dashboards() -> None:
    """Grafana's own schema models (grafana-foundation-sdk, Grafana 11.6) decode every
    dashboard without dropping a key, and every enum field holds an allowed value."""
    python = grafana_sdk_python()
    files = [str(p) for p in sorted(DASHBOARDS.glob("*.json"))]
    proc = subprocess.run(
        [str(python), "-I", str(SCHEMA_CHECK), *files],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert set(map(Path, report)) == set(map(Path, files))
    assert all(problems == [] for problems in report.values()), report


def test_uids_are_unique_and_schema_version_set(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for d in dashboards.values():
        assert 0 < len(d["uid"]) <= 40  # Grafana's limit
        assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
        assert d["title"] and "id" not in d  # Grafana assigns the numeric id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panels_are_complete_and_laid_out(dashboards: dict[str, dict[str, Any]], name: str) -> None:
    dashboard = dashboards[name]
    every = list(panels(dashboard))
    ids = [p["id"] for p in every]
    assert len(set(ids)) == len(ids), f"duplicate panel ids in {name}: {ids}"
    for panel in every:
        where = f"{name} panel {panel['id']} {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel["datasource"] == DS, where
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), where
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
        targets = panel.get("targets") or []
        assert targets, f"{where}: no queries"
        ref_ids = [t["refId"] for t in targets]
        assert len(set(ref_ids)) == len(ref_ids), where
        for target in targets:
            assert target["datasource"] == DS, where
            assert target["expr"].strip(), where
    # No two panels overlap on the 24-column grid.
    for a, b in combinations(every, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{name}: panels {a['id']} and {b['id']} overlap"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_variables(dashboards: dict[str, dict[str, Any]], name: str) -> None:
    found = variables(dashboards[name])
    ds = found["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for var in ("namespace", "app"):
        assert found[var]["type"] == "query"
        assert found[var]["datasource"] == DS
        selector, label = label_values(variable_query(found[var]))
        assert selector.startswith("bluegreen_app_info")
        assert label == {"namespace": "namespace", "app": "name"}[var]
    # Every variable a query uses is defined by the dashboard or by Grafana.
    defined = set(found) | GRAFANA_BUILTINS
    texts = [t["expr"] for _, t in panel_targets(dashboards[name])]
    texts += [a["expr"] for a in annotation_queries(dashboards[name])]
    texts += [variable_query(v) for v in found.values() if v["type"] == "query"]
    for text in texts:
        assert used_variables(text) <= defined, text


def test_release_dashboard_has_what_a_release_needs(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    release = dashboards["release.json"]
    exprs = [t["expr"] for _, t in panel_targets(release)]
    crossover = (
        'sum by (color) (rate(${requests}{namespace="$namespace",app="$app",route=~"$route"}'
        "[$__rate_interval]))"
    )
    assert crossover in exprs
    assert any("histogram_quantile(0.95" in e and "${latency}_bucket" in e for e in exprs)
    # The app's own metric names are variables, defaulting to the demo app's.
    found = variables(release)
    for name, default in (
        ("requests", "http_requests_total"),
        ("latency", "http_request_duration_seconds"),
        ("route", "/"),
    ):
        assert found[name]["type"] == "textbox"
        assert found[name]["query"] == default == found[name]["current"]["value"]
    assert not any("http_request" in e for e in exprs), "a metric name is hard-wired"
    assert any('status=~"5.."' in e for e in exprs)
    assert any(e.startswith("bluegreen_app_active_color") for e in exprs)
    types = {p["type"] for p in panels(release)}
    assert "state-timeline" in types
    annotations = {a["name"]: a["expr"] for a in annotation_queries(release)}
    assert any("RolledBack" in e for e in annotations.values())
    assert any('result="Promoted"' in e for e in annotations.values())


def test_operator_dashboard_has_what_an_operator_needs(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    exprs = " ".join(t["expr"] for _, t in panel_targets(dashboards["operator.json"]))
    for needle in (
        "rate(bluegreen_reconcile_duration_seconds_count",
        "histogram_quantile(0.5, sum by (le) (rate(bluegreen_reconcile_duration_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(bluegreen_reconcile_duration_seconds_bucket",
        "bluegreen_reconcile_errors_total",
        "bluegreen_app_phase",
        "bluegreen_kube_api_requests_total",
        "process_resident_memory_bytes",
        "rate(process_cpu_seconds_total",
    ):
        assert needle in exprs, needle


def test_every_query_parses_in_prometheus(dashboards: dict[str, dict[str, Any]]) -> None:
    """A real Prometheus (no targets, so no data) evaluates every query without an error."""
    with run_prometheus([]) as url:
        for dashboard in dashboards.values():
            texts = [t["expr"] for _, t in panel_targets(dashboard)]
            texts += [a["expr"] for a in annotation_queries(dashboard)]
            for text in texts:
                query(url, substitute(text, VALUES))  # raises on a Prometheus error
            for var in variables(dashboard).values():
                if var["type"] == "query":
                    selector, _ = label_values(variable_query(var))
                    query(url, substitute(selector, VALUES))


# --------------------------------------------------------------------------- the chart


def test_chart_renders_no_dashboards_by_default() -> None:
    docs = helm_template(CHART)
    assert not [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]


def test_chart_renders_one_configmap_per_dashboard(tmp_path: Path) -> None:
    chart = chart_without_schema(tmp_path)
    docs = helm_template(
        chart,
        "dashboards.enabled=true",
        "dashboards.labels.team=platform",
        "dashboards.annotations.grafana_folder=bluegreen",
    )
    maps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert len(maps) == len(EXPECTED)
    for cm in maps:
        meta = cm["metadata"]
        assert meta["labels"]["grafana_dashboard"] == "1"
        assert meta["labels"]["team"] == "platform"
        assert meta["annotations"] == {"grafana_folder": "bluegreen"}
        assert meta["namespace"] == "bluegreen-system"
        ((key, text),) = cm["data"].items()
        assert json.loads(text) == json.loads((DASHBOARDS / key).read_text())
    assert len({cm["metadata"]["name"] for cm in maps}) == len(maps)
    elsewhere = helm_template(chart, "dashboards.enabled=true", "dashboards.namespace=monitoring")
    assert {d["metadata"]["namespace"] for d in elsewhere if d["kind"] == "ConfigMap"} == {
        "monitoring"
    }
