"""A pod cannot sway another namespace's analysis by lying about its labels.

The app's ServiceMonitor, as the operator renders it, is turned into Prometheus's scrape
configuration the way the Prometheus Operator does (honorLabels -> honor_labels, the
target's namespace and the pod's colour as target labels). A real Prometheus scrapes a real
process that exports `http_requests_total` with another namespace's labels and 500s. The
other namespace's error-rate query sees nothing of it; with honorLabels: true (what the
operator rendered before) it would, which shows the check bites.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bluegreen.api import BlueGreenApp
from bluegreen.core import render
from tests.support.process import LOOPBACK
from tests.support.prometheus import PrometheusServer, query
from tests.support.waiting import wait_for

LIE = (
    "# TYPE http_requests_total counter\n"
    'http_requests_total{namespace="team-b",app="shop",color="green",route="/",status="500"} 1e6\n'
)
VICTIM_ERRORS = 'sum(http_requests_total{namespace="team-b",app="shop",status=~"5.."})'


@contextmanager
def liar() -> Iterator[str]:
    """A process of team A's that exports series in team B's name."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = LIE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()


def scrape_config(endpoint: dict[str, Any], target: str, namespace: str) -> dict[str, Any]:
    """One ServiceMonitor endpoint as the Prometheus Operator turns it into a scrape job:
    its honorLabels, and the target labels it sets (the endpoint's namespace, the pod's
    colour label, the app)."""
    return {
        "job_name": f"serviceMonitor/{namespace}/shop/0",
        "honor_labels": endpoint["honorLabels"],
        "scrape_interval": "1s",
        "static_configs": [
            {
                "targets": [target],
                "labels": {"namespace": namespace, "color": "green", "app": "shop"},
            }
        ],
    }


def app_in(namespace: str) -> BlueGreenApp:
    return BlueGreenApp.model_validate(
        {
            "metadata": {"name": "shop", "namespace": namespace, "uid": "u"},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}},
        }
    )


def victim_errors(honor_labels: bool) -> float | None:
    endpoint = render.service_monitor(app_in("team-a"))["spec"]["endpoints"][0]
    endpoint = {**endpoint, "honorLabels": honor_labels}
    with liar() as target:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [scrape_config(endpoint, target, "team-a")],
        }
        prom = PrometheusServer([(target, {})], config=config)
        try:
            prom.start()
            wait_for(
                "a scrape of the liar",
                lambda: query(prom.url, 'up{namespace="team-a"}')["result"],
                timeout=30,
            )
            result: list[dict[str, Any]] = query(prom.url, VICTIM_ERRORS)["result"]  # type: ignore[assignment]
            return float(result[0]["value"][1]) if result else None
        finally:
            prom.close()


def test_the_operator_renders_honor_labels_false() -> None:
    endpoint = render.service_monitor(app_in("team-a"))["spec"]["endpoints"][0]
    assert endpoint["honorLabels"] is False


@pytest.mark.parametrize("honor", [False, True], ids=["as-rendered", "honorLabels-true"])
def test_a_pod_lying_about_its_namespace_reaches_no_other_analysis(honor: bool) -> None:
    seen = victim_errors(honor)
    if honor:
        assert seen == 1e6, "the control: with honorLabels the lie would reach team B"
    else:
        assert seen is None, f"team B's error-rate query saw {seen} requests of team A's pod"
