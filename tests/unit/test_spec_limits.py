"""Limits of the spec that the CRD cannot state and the model enforces, so a spec the API
server stores but the operator cannot carry out becomes an InvalidSpec condition, never a
pass that crashes on every try."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.api import BlueGreenApp
from bluegreen.api.v1alpha1 import MAX_TEMPLATE_DEPTH, TEMPLATE_DEPTH
from bluegreen.api.v1alpha1.pods import nesting
from tests.support.hostile import deep
from tests.unit.factories import app_body
from tests.unit.fake_cluster import FakeCluster
from tests.unit.test_reconcile_ticks import Harness


def with_extra(extra: Any) -> dict[str, Any]:
    body = app_body(image="registry.example/shop:v1")
    body["spec"]["template"]["spec"]["x"] = extra
    return body


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        pytest.param(1, 0, id="scalar"),
        pytest.param({}, 1, id="empty object"),
        pytest.param({"a": [{"b": 1}]}, 3, id="object list object"),
        pytest.param(deep(5, "x"), 5, id="five"),
        pytest.param(deep(10_000, "x"), MAX_TEMPLATE_DEPTH + 1, id="stops counting past the limit"),
    ],
)
def test_nesting(value: Any, levels: int) -> None:
    assert nesting(value) == levels


def test_a_template_as_deep_as_the_limit_is_accepted() -> None:
    # template (1) > spec (2) > x (3) ...: the template itself is one level.
    app = BlueGreenApp.model_validate(with_extra(deep(MAX_TEMPLATE_DEPTH - 2, 1)))
    assert nesting(app.spec.template.model_dump(mode="json")) == MAX_TEMPLATE_DEPTH


@pytest.mark.parametrize("depth", [MAX_TEMPLATE_DEPTH - 1, 400, 100_000])
def test_a_deeper_template_is_refused_with_the_limit_in_the_message(depth: int) -> None:
    with pytest.raises(ValidationError, match=TEMPLATE_DEPTH):
        BlueGreenApp.model_validate(with_extra(deep(depth, 1)))


def test_a_pass_on_a_template_400_deep_writes_invalid_spec_and_does_not_crash() -> None:
    cluster = FakeCluster()
    cluster.create_app(with_extra(deep(400, 1)))
    h = Harness(cluster)
    for _ in range(3):
        outcome = h.tick().outcome
        assert outcome is not None and outcome.requeue_after is None
    (degraded,) = [c for c in cluster.status["conditions"] if c["type"] == "Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert TEMPLATE_DEPTH in degraded["message"]
    assert len([c for c in h.calls() if c.op == "patch_app_status"]) == 1
    assert [c for c in h.calls() if c.is_write and c.op != "patch_app_status"] == []
