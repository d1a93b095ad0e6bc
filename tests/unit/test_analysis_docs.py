"""The metrics that docs/analysis.md and the README's analysis section show are valid:
each YAML example parses into the model the CRD is generated from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.api.v1alpha1 import Metric

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def metrics_in(path: Path, needle: str) -> list[dict[str, Any]]:
    """The metrics of every YAML block of `path` that mentions `needle`: a list of metrics,
    or a mapping whose prePromotion/postPromotion lists them."""
    found: list[dict[str, Any]] = []
    for block in BLOCK.findall(path.read_text()):
        if needle not in block:
            continue
        doc = yaml.safe_load(block)
        if isinstance(doc, dict):
            doc = [*doc.get("prePromotion", []), *doc.get("postPromotion", [])]
        found.extend(doc)
    return found


EXAMPLES = [
    *(("docs/analysis.md", m) for m in metrics_in(REPO / "docs" / "analysis.md", "name:")),
    *(("README.md", m) for m in metrics_in(REPO / "README.md", "cloudwatch:")),
]


def test_the_examples_show_both_providers() -> None:
    shown = {(where, "cloudwatch" in m, "job" in m) for where, m in EXAMPLES}
    assert shown == {
        ("docs/analysis.md", True, False),
        ("docs/analysis.md", False, True),
        ("README.md", True, False),
        ("README.md", False, True),
    }


@pytest.mark.parametrize(
    ("where", "body"), EXAMPLES, ids=lambda v: v if isinstance(v, str) else v["name"]
)
def test_an_example_is_a_valid_metric(where: str, body: dict[str, Any]) -> None:
    Metric.model_validate(body)
