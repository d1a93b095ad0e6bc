"""The chart's README.md is generated from Chart.yaml and values.yaml (tools/chart_readme.py),
documents every value, and ships in the packaged chart (`helm show readme`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from tools.chart_readme import CHART, README, render, rows

from tests.support.cluster import REPO
from tests.support.tools import helm

GENERATOR = REPO / "tools" / "chart_readme.py"


def _leaves(values: object, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for k, v in values.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_the_readme_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        "charts/bluegreen-operator/README.md drifted from values.yaml; run "
        f"`.venv/bin/python tools/chart_readme.py`:\n{result.stdout}{result.stderr}"
    )
    assert README.read_text() == render()


def test_every_value_is_in_the_table_and_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    table = rows(text)
    described = {r.key for r in table if r.description}
    assert [r.key for r in table if r.default] == _leaves(yaml.safe_load(text))
    undocumented = [
        r.key
        for r in table
        if not r.description
        and not any(r.key.startswith(d + ".") for d in described)  # a documented mapping
    ]
    assert undocumented == [], "values.yaml: add a comment above these keys"


def test_defaults_and_comments_are_read_right() -> None:
    table = {r.key: r for r in rows((CHART / "values.yaml").read_text())}
    assert table["replicaCount"].default == "2"
    assert table["image.pullPolicy"].default == '"IfNotPresent"'
    assert table["securityContext.capabilities.drop"].default == '["ALL"]'
    # A trailing comment, and a group of keys under one comment.
    assert table["dashboards.labels"].description == 'merged over grafana_dashboard: "1"'
    assert table["podLabels"].description == "See `priorityClassName`."
    assert table["resources"].default == "" and "peak RSS" in table["resources"].description


def test_helm_show_readme_of_the_packaged_chart(tmp_path: Path) -> None:
    helm("package", str(CHART), "--destination", str(tmp_path))
    (tgz,) = tmp_path.glob("bluegreen-operator-*.tgz")
    # helm prints the file and a newline of its own.
    assert helm("show", "readme", str(tgz)).stdout.rstrip("\n") == README.read_text().rstrip("\n")
