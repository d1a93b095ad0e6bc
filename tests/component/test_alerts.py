"""The alert rules: promtool's checks and unit tests, and the chart's PrometheusRule.

`promtool test rules` runs tests/alerts/bluegreen.rules.test.yaml: for every alert, input
series that make it fire and series that must not, at chosen times. The rules run against
a real Prometheus with a real operator and a real rollback in
tests/cluster/test_observability.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.dashboards import (
    CHART,
    RULE_TESTS,
    RULES,
    chart_without_schema,
    load_rules,
)
from tests.support.tools import helm_template, promtool

ALERTS = {
    "BlueGreenReleaseStuck": "warning",
    "BlueGreenReleaseRolledBack": "warning",
    "BlueGreenAnalysisPausedTooLong": "warning",
    "BlueGreenOperatorDown": "critical",
    "BlueGreenOperatorTargetDown": "warning",
    "BlueGreenOperatorReconcileErrors": "warning",
}


def test_promtool_check_rules() -> None:
    proc = promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    proc = promtool("test", "rules", str(RULE_TESTS))
    assert "SUCCESS" in proc.stdout


def test_unit_tests_cover_every_alert_firing_and_not() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in document["tests"]:
        for check in case.get("alert_rule_test") or []:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == set(ALERTS), f"alerts never tested firing: {set(ALERTS) - firing}"
    assert quiet == set(ALERTS), f"alerts never tested quiet: {set(ALERTS) - quiet}"


def test_every_alert_has_severity_summary_and_description() -> None:
    rules = load_rules()
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == ALERTS
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        per_app = rule["alert"].startswith(("BlueGreenRelease", "BlueGreenAnalysis"))
        if per_app:
            for text in (annotations["summary"], annotations["description"]):
                assert "{{ $labels.namespace }}/{{ $labels.name }}" in text, rule["alert"]


# --------------------------------------------------------------------------- the chart


def test_no_prometheus_rule_by_default() -> None:
    assert not [d for d in helm_template(CHART) if d["kind"] == "PrometheusRule"]


def test_prometheus_rule_wraps_the_rule_file(tmp_path: Path) -> None:
    docs = helm_template(
        chart_without_schema(tmp_path),
        "prometheusRule.enabled=true",
        "prometheusRule.labels.release=kps",
    )
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "bluegreen-system"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    # What Prometheus Operator hands to Prometheus is that spec as a rule file: promtool
    # accepts it as it stands.
    extracted = tmp_path / "extracted.rules.yaml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    promtool("check", "rules", str(extracted))
