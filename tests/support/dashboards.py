"""The chart's Grafana dashboards and alert rules, as tests read them.

    for dashboard in load_dashboards().values():
        for panel, target in panel_targets(dashboard):
            promql = substitute(target["expr"], {"namespace": "web", "app": "shop", ...})

`grafana_sdk_python()` is a Python with Grafana's own schema models (PyPI
grafana-foundation-sdk, generated from Grafana's dashboard and panel schemas) in a virtualenv
of its own (.cache/grafana-sdk-venv), made on first use with uv like the checkov one
(tests/terraform/run_checkov.sh): the project's .venv does not carry it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO

CHART = REPO / "charts" / "bluegreen-operator"
DASHBOARDS = CHART / "dashboards"
RULES = CHART / "alerts" / "bluegreen.rules.yaml"
RULE_TESTS = REPO / "tests" / "alerts" / "bluegreen.rules.test.yaml"

# Grafana's schema models for Grafana 11.6 (the SDK's newest line); pinned, with its epoch.
GRAFANA_SDK = "grafana-foundation-sdk==1769699379!11.6.0"
GRAFANA_SDK_VENV = REPO / ".cache" / "grafana-sdk-venv"
SCHEMA_CHECK = Path(__file__).with_name("grafana_schema_check.py")
UV = REPO / ".cache" / "bootstrap" / "bin" / "uv"

# Variables Grafana defines itself.
GRAFANA_BUILTINS = {"__rate_interval", "__range", "__interval", "__interval_ms", "__range_s"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def chart_without_schema(tmp_path: Path) -> Path:
    """A copy of the chart without values.schema.json, so the dashboards and prometheusRule
    values can be set whether or not the schema lists them yet."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink(missing_ok=True)
    return copy


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of the chart, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def load_rules() -> list[dict[str, Any]]:
    """Every rule of the rule file, alerting or recording."""
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def panel_targets(dashboard: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels(dashboard):
        for target in panel.get("targets") or []:
            yield panel, target


def annotation_queries(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Prometheus annotation queries (not Grafana's built-in one)."""
    return [
        a
        for a in (dashboard.get("annotations") or {}).get("list") or []
        if (a.get("datasource") or {}).get("type") == "prometheus"
    ]


def variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in (dashboard.get("templating") or {}).get("list") or []}


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    if isinstance(query, Mapping):
        return str(query.get("query", ""))
    return str(query or "")


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(text)}


def textbox_defaults(dashboards: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The values Grafana starts the dashboards' text variables with (the app's metric
    names: the demo app's by default)."""
    return {
        v["name"]: str(v["query"])
        for d in dashboards.values()
        for v in variables(d).values()
        if v["type"] == "textbox"
    }


def substitute(text: str, values: Mapping[str, str]) -> str:
    """What Grafana sends: $name and ${name} replaced by the values; every one must be known."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {text!r}")
        return values[name]

    return _VARIABLE.sub(value, text)


def label_values(query: str) -> tuple[str, str]:
    """label_values(SELECTOR, LABEL) -> (SELECTOR, LABEL), as Grafana splits it."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
    if match is None:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group(1).strip(), match.group(2)


def grafana_sdk_python() -> Path:
    """The Python of .cache/grafana-sdk-venv, with the pinned grafana-foundation-sdk."""
    python = GRAFANA_SDK_VENV / "bin" / "python"
    wanted = GRAFANA_SDK.split("==", 1)[1]
    if python.exists():
        have = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print(m.version('grafana-foundation-sdk'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if have == wanted:
            return python
    if not python.exists():
        subprocess.run(
            [str(UV), "venv", "--quiet", "--python", "3.11", str(GRAFANA_SDK_VENV)], check=True
        )
    subprocess.run(
        [str(UV), "pip", "install", "--quiet", "--python", str(python), GRAFANA_SDK], check=True
    )
    return python
