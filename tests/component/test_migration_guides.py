"""The migration guides (docs/migrate-from-manifests.md, migrate-from-argo-rollouts.md) show
valid objects and name only fields that exist:

- every YAML block parses; every BlueGreenApp is valid for the model (the CRD is generated
  from it), and so is each `spec:` fragment put into the page's app;
- the Argo page's tables name every field of a blue-green Rollout and of an analysis
  metric that Argo Rollouts' own CRDs (v1.10.1, from the Go module cache) define, and
  every BlueGreenApp field they give as an equivalent is in this project's CRD;
- its `kubectl bluegreen` column parses with the plugin's parser.

The guides' steps themselves run against the real control plane in
tests/cluster/test_migrate_from_manifests.py and test_migrate_from_argo_rollouts.py.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.api import BlueGreenApp
from bluegreen.kubectl.cli import build_parser
from tests.support import argo_rollouts, docs
from tests.support.cluster import REPO

DOCS = REPO / "docs"
GUIDES = [DOCS / "migrate-from-manifests.md", DOCS / "migrate-from-argo-rollouts.md"]
ARGO = DOCS / "migrate-from-argo-rollouts.md"
CRD = yaml.safe_load((REPO / "crds" / "bluegreen.dev_bluegreenapps.yaml").read_text())
OUR_SPEC = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _documents(page: Path) -> list[dict[str, Any]]:
    return [d for b in docs.blocks(page, "yaml") for d in yaml.safe_load_all(b) if d]


@pytest.mark.parametrize("page", GUIDES, ids=[p.name for p in GUIDES])
def test_the_apps_and_fragments_of_the_guide_are_valid(page: Path) -> None:
    documents = _documents(page)
    (app,) = [d for d in documents if d.get("kind") == "BlueGreenApp"]
    app["metadata"]["namespace"] = "shop"
    BlueGreenApp.model_validate(app)
    for fragment in (d for d in documents if "kind" not in d):
        merged = copy.deepcopy(app)
        merged["spec"].update(fragment["spec"])
        BlueGreenApp.model_validate(merged)


def _argo_schema(name: str) -> dict[str, Any]:
    path = Path(argo_rollouts._tool("crds")) / name
    crd = yaml.safe_load(path.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _named(table: list[list[str]], column: int) -> set[str]:
    """The code spans of a column, `a.b`, `c` read as `a.b` and `a.c`."""
    out: set[str] = set()
    for row in table[1:]:
        spans = re.findall(r"`([^`]+)`", row[column])
        if not spans:
            continue
        parent = spans[0].rsplit(".", 1)[0] + "." if "." in spans[0] else ""
        out.add(spans[0])
        out.update(s if "." in s else parent + s for s in spans[1:])
    return out


def _ours(path: str) -> bool:
    node: Any = OUR_SPEC
    for part in path.removeprefix("spec.").split("."):
        props = node.get("properties") or node.get("items", {}).get("properties") or {}
        if part not in props:
            return False
        node = props[part]
    return True


def test_every_rollout_field_is_in_the_table() -> None:
    spec = _argo_schema("rollout-crd.yaml")["properties"]["spec"]["properties"]
    blue_green = spec["strategy"]["properties"]["blueGreen"]["properties"]
    table = docs.table_rows(docs.section(ARGO.read_text(), "## The Rollout's fields"))
    assert table[0] == ["Rollout", "BlueGreenApp", "notes"]
    named = _named(table, 0)
    wanted = {f"spec.{k}" for k in spec if k != "strategy"} | {f"blueGreen.{k}" for k in blue_green}
    assert sorted(wanted - named) == [], "fields of the Rollout CRD the table leaves out"
    for path in _named(table, 1):
        if re.fullmatch(r"[a-z][\w.]*", path) and "." in path:
            assert _ours(path), f"{path} is not a field of BlueGreenApp"


def test_every_analysis_metric_field_is_in_the_table() -> None:
    template = _argo_schema("analysis-template-crd.yaml")["properties"]["spec"]["properties"]
    metric = template["metrics"]["items"]["properties"]
    table = docs.table_rows(docs.section(ARGO.read_text(), "## Analysis templates"))
    assert table[0] == ["AnalysisTemplate metric", "BlueGreenApp metric", "notes"]
    first = " ".join(r[0] for r in table[1:])
    spec_fields = [k for k in template if k != "metrics"]
    for field in [*metric, *spec_fields, *metric["provider"]["properties"]]:
        assert f"`{field}" in first or f".{field}" in first, f"{field} is not in the table"
    ours = OUR_SPEC["properties"]["analysis"]["properties"]["prePromotion"]["items"]
    for path in _named(table, 1):
        if not re.fullmatch(r"[a-z][\w.]*", path):
            continue
        if "." in path:
            assert _ours(path), path
        else:
            assert path in ours["properties"], f"{path} is not a field of a metric"


def test_the_plugin_commands_of_the_table_parse() -> None:
    table = docs.table_rows(docs.section(ARGO.read_text(), "## Commands"))
    assert table[0] == ["`kubectl argo rollouts`", "`kubectl bluegreen`"]
    parser = build_parser()
    subcommands = {"status", "promote", "abort", "retry", "history", "timeline", "graph"}
    checked = 0
    for row in table[1:]:
        for span in re.findall(r"`([^`]+)`", row[1]):
            argv = shlex.split(span.replace("[", "").replace("]", ""))
            if argv[0] in subcommands:
                parser.parse_args(argv)
                checked += 1
    assert checked >= 5
