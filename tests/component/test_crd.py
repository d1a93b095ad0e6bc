"""The CRD is generated from the pydantic models; committed copies must not drift."""

from __future__ import annotations

import yaml

from bluegreen.api import crdgen
from tests.support.cluster import REPO


def test_committed_crds_match_the_models() -> None:
    want = crdgen.render()
    for path in crdgen.targets(REPO):
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == want, f"{path} drifted from the models: run `make crds`"


def test_crd_is_structural() -> None:
    """No construct a structural schema forbids survives the conversion."""
    crd = yaml.safe_load(crdgen.render())
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
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Phase", "Active", "Stable", "Candidate"]
    assert crd["spec"]["names"]["shortNames"] == ["bga"]
