"""The operator's own metrics, scraped from the real process after real releases."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import Apps, app_manifest
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, /, **labels: str
) -> float | None:
    want = set(labels.items())
    hits = [v for (n, ls), v in samples.items() if n == metric and want <= ls]
    return sum(hits) if hits else None


def test_metrics_after_two_releases(apps: Apps, namespace: str, operator: OperatorProcess) -> None:
    apps.create(app_manifest("met"))
    apps.wait_phase("met", "Healthy")
    apps.set_image("met", "registry.example/shop:v2")
    st = apps.wait_release_done("met", 2)
    ids = {"namespace": namespace, "name": "met"}

    def promoted_twice() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        s = scrape(operator.metrics_port)
        return s if value(s, "bluegreen_releases_total", result="Promoted", **ids) == 2 else None

    samples = wait_for("two promoted releases in the metrics", promoted_twice, timeout=20)
    assert (
        value(
            samples,
            "bluegreen_app_info",
            active_color="green",
            stable_revision=st["stableRevision"],
            phase="Healthy",
            **ids,
        )
        == 1
    )
    assert value(samples, "bluegreen_app_phase", phase="Healthy", **ids) == 1
    assert value(samples, "bluegreen_app_phase", phase="Deploying", **ids) == 0
    assert value(samples, "bluegreen_app_active_color", **ids) == 1
    assert value(samples, "bluegreen_switch_latency_seconds_count", **ids) == 2
    assert 0 < (value(samples, "bluegreen_switch_latency_seconds_sum", **ids) or 0) < 20
    assert value(samples, "bluegreen_release_duration_seconds_count", result="Promoted", **ids) == 2
    assert (value(samples, "bluegreen_reconcile_duration_seconds_count") or 0) > 0
    assert (value(samples, "bluegreen_kube_api_requests_total") or 0) > 0
    assert (value(samples, "process_resident_memory_bytes") or 0) > 10_000_000
