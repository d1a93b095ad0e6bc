"""The CRDs are generated from the pydantic models; committed copies must not drift."""

from __future__ import annotations

import pytest
import yaml

from bluegreen.api import crdgen
from tests.support.cluster import REPO


def test_committed_crds_match_the_models() -> None:
    files = crdgen.generated(REPO)
    assert len(files) == 7  # three CRDs, each in crds/ and in the chart; docs/api.md
    for path, want in files.items():
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == want, f"{path} drifted from the models: run `make crds`"


@pytest.mark.parametrize("file", sorted(crdgen.crds()))
def test_crd_is_structural(file: str) -> None:
    """No construct a structural schema forbids survives the conversion."""
    crd = yaml.safe_load(crdgen.render(crdgen.crds()[file]))
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title"}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            found = forbidden & node.keys()
            assert not found, f"{path}: {found}"
            if node.get("additionalProperties") is False:
                raise AssertionError(f"{path}: additionalProperties: false")
            if "properties" in node or "items" in node:
                assert "type" in node, f"{path}: no type"
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    walk(schema, "openAPIV3Schema")
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.bluegreen.dev"


def test_app_crd_has_scale_columns_and_short_name() -> None:
    crd = yaml.safe_load(crdgen.render())
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Phase", "Active", "Stable", "Candidate"]
    assert crd["spec"]["names"]["shortNames"] == ["bga"]


@pytest.mark.parametrize(
    ("file", "kind", "scope"),
    [
        ("bluegreen.dev_analysistemplates.yaml", "AnalysisTemplate", "Namespaced"),
        ("bluegreen.dev_clusteranalysistemplates.yaml", "ClusterAnalysisTemplate", "Cluster"),
    ],
)
def test_template_crds(file: str, kind: str, scope: str) -> None:
    crd = crdgen.crds()[file]
    assert (crd["spec"]["names"]["kind"], crd["spec"]["scope"]) == (kind, scope)
    (version,) = crd["spec"]["versions"]
    assert "subresources" not in version  # the operator only reads them
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    metric = spec["properties"]["metrics"]["items"]["properties"]
    # Bounds an arg may give take a number or a string: no type, the operator checks them.
    for bound in ("min", "max"):
        node = metric["thresholdRange"]["properties"][bound]
        assert node["x-kubernetes-preserve-unknown-fields"] is True and "type" not in node
    assert spec["properties"]["metrics"]["x-kubernetes-list-type"] == "map"
