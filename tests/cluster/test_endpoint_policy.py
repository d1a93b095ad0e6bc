"""An app author cannot make the operator send requests anywhere: a metric whose endpoint the
administrator's policy refuses is never asked, and the release waits in Paused, never a
pass and never a rollback, until the endpoint is allowed or changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import Apps, app_manifest
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def paused(apps: Apps, name: str) -> dict[str, Any] | None:
    st = apps.status(name)
    cond = next((c for c in st.get("conditions", []) if c["type"] == "Paused"), None)
    return st if st.get("phase") == "Paused" and cond and cond["status"] == "True" else None


@pytest.mark.parametrize(
    ("metric", "says"),
    [
        (
            {"name": "meta", "url": "http://169.254.169.254/latest/meta-data/iam/"},
            "instance metadata addresses are never allowed",
        ),
        (
            {"name": "scan", "url": "http://kubernetes.default:443/#.svc"},
            "a fragment (#) is not allowed",
        ),
        (
            {"name": "admin", "url": "http://10.96.0.1:10250/pods"},
            "host 10.96.0.1 is not allowed",
        ),
    ],
)
def test_a_refused_web_check_pauses_the_release(
    apps: Apps, metric: dict[str, Any], says: str
) -> None:
    body = app_manifest("shop")
    body["spec"]["analysis"] = {"prePromotion": [{**metric, "interval": "1s", "count": 2}]}
    apps.create(body)
    apps.wait_phase("shop", "Healthy")  # the first deploy has no pre-promotion analysis
    apps.set_image("shop", "registry.example/shop:v2")
    st = wait_for("the release to pause", lambda: paused(apps, "shop"), timeout=30)
    cond = next(c for c in st["conditions"] if c["type"] == "Paused")
    assert cond["reason"] == "AnalysisEndpointRefused", cond
    assert says in cond["message"], cond["message"]
    assert st["activeColor"] == "blue"
    assert st["analysis"]["refused"] and not st["analysis"]["measurements"]
    reasons = [e["reason"] for e in apps.events("shop")]
    assert reasons.count("AnalysisEndpointRefused") == 1, reasons
    # It stays: no window, no verdict, no rollback.
    again = apps.status("shop")
    assert again["phase"] == "Paused" and again["activeColor"] == "blue"


def test_a_refused_prometheus_pauses_until_the_author_names_an_allowed_one(apps: Apps) -> None:
    body = app_manifest("shop")
    query = {"name": "up", "query": "vector(1)", "thresholdRange": {"min": 1}}
    body["spec"]["analysis"] = {
        "prometheus": {"address": "http://prometheus.attacker.example:9090"},
        "prePromotion": [{**query, "interval": "1s", "count": 2}],
    }
    apps.create(body)
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    st = wait_for("the release to pause", lambda: paused(apps, "shop"), timeout=30)
    assert "host prometheus.attacker.example is not allowed" in st["message"], st["message"]
    # The author drops the refused check: the release goes on by itself.
    apps.patch_spec("shop", {"analysis": None})
    done = apps.wait_phase("shop", "Healthy", timeout=30, revision=st["candidateRevision"])
    assert done["activeColor"] == "green"
