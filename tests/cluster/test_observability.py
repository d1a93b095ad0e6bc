"""Dashboards, alerts and `kubectl bluegreen graph`, on real parts.

A real Prometheus (Debian's) scrapes the session's real operator process (job
bluegreen-operator) and two real demo app processes, one per colour (labelled as the
operator's ServiceMonitor labels pods), and evaluates the chart's alert rules. A router
sends page requests to the colour the real active Service selects while the real operator
releases v1 (blue), v2 (green, promoted) and v3 (blue, errors after the switch, rolled back
to green by post-promotion analysis). Then:

- every panel, annotation and variable query of both dashboards, with the variables set as
  Grafana would set them, returns data of the shape the panel expects;
- every alert expression evaluates, every rule is healthy in the real Prometheus, and the
  rollback alert fires for the app;
- the real console script `kubectl-bluegreen graph` draws the crossover into a PNG with
  blue and green lines (set BLUEGREEN_GRAPH_KEEP=path to keep a copy of it).

The operator is scraped as the chart's ServiceMonitor should scrape it: with honor_labels,
and a target `namespace` label (the operator's own) that the apps' `namespace` label of
bluegreen_app_* must win over.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.dashboards import (
    RULES,
    annotation_queries,
    label_values,
    load_dashboards,
    load_rules,
    panel_targets,
    substitute,
    textbox_defaults,
    variable_query,
    variables,
)
from tests.support.demo_app import DemoApp, http_request, start_demo_app
from tests.support.operator import OperatorProcess, for_operator
from tests.support.prometheus import PrometheusServer
from tests.support.router import Router

pytestmark = pytest.mark.cluster

CLI = Path(sys.executable).parent / "kubectl-bluegreen"
OPERATOR_JOB = "bluegreen-operator"
APPS_JOB = "bluegreen-apps"
OPERATOR_NAMESPACE = "bluegreen-system"  # the operator's target label, as a ServiceMonitor sets it
SEL = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",route="/"'
ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SEL},status=~"5.."}}[4s]))'
    f" / sum(rate(http_requests_total{{{SEL}}}[4s]))"
)
REQUESTS = f"sum(increase(http_requests_total{{{SEL}}}[4s]))"


@dataclass
class Run:
    """What the release left behind, for the checks."""

    namespace: str
    prometheus: str
    started: float  # Unix time before the first release
    v2: dict[str, Any]  # the app's status when v2 was done
    final: dict[str, Any]  # after v3 rolled back
    kubeconfig: Path


def _config(operator_port: int, blue: DemoApp, green: DemoApp, namespace: str) -> dict[str, Any]:
    app = {"namespace": namespace, "app": "shop"}
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": APPS_JOB,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{blue.port}"], "labels": {**app, "color": "blue"}},
                    {"targets": [f"127.0.0.1:{green.port}"], "labels": {**app, "color": "green"}},
                ],
            },
            {
                "job_name": OPERATOR_JOB,
                "honor_labels": True,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{operator_port}"],
                        "labels": {"namespace": OPERATOR_NAMESPACE},
                    }
                ],
            },
        ],
    }


def _faults(app: DemoApp, **faults: Any) -> None:
    r = http_request("POST", app.url + "/admin/faults", body=json.dumps(faults).encode())
    assert r.status == 200, r.text


@pytest.fixture
def release_run(
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    cluster: Cluster,
) -> Iterator[Run]:
    with start_demo_app("blue", "v1") as blue, start_demo_app("green", "v2") as green:
        prom = PrometheusServer(
            [(f"127.0.0.1:{port}", {}) for port in (blue.port, green.port, operator.metrics_port)],
            config=_config(operator.metrics_port, blue, green, namespace),
        )
        prom.start()
        # Next to no preview traffic: the graph shows what users got, the active colour.
        router = Router(
            api_client,
            namespace,
            "shop",
            {"blue": blue.url, "green": green.url},
            rate=20.0,
            preview_rate=0.01,
            max_seconds=300,
        ).start()
        try:
            started = time.time()
            body = app_manifest("shop")
            body["spec"]["analysis"] = {
                "prometheus": {"address": for_operator(prom.url)},
                "prePromotion": [],
                "postPromotion": [
                    {
                        "name": "error-rate",
                        "query": ERROR_RATE,
                        "thresholdRange": {"max": 0.05},
                        "interval": "1s",
                        "count": 6,
                        "failureLimit": 1,
                        "minRequestsQuery": REQUESTS,
                        "minRequests": 8,
                    }
                ],
            }
            apps.create(body)
            apps.wait_phase("shop", "Healthy", timeout=60)
            time.sleep(8)  # blue serves alone for a while
            apps.set_image("shop", "registry.example/shop:v2")
            v2 = apps.wait_release_done("shop", 2, timeout=90)
            assert v2["activeColor"] == "green" and v2["release"]["result"] == "Promoted"
            time.sleep(8)  # green serves alone
            apps.set_image("shop", "registry.example/shop:v3")
            _wait(lambda: apps.status("shop").get("phase") == "Observing", "v3 switched")
            _faults(blue, errorRatio=0.5)  # v3 runs on the blue process: it fails
            final = apps.wait_phase("shop", "Degraded", timeout=60)
            assert final["activeColor"] == "green"
            assert final["release"]["result"] == "RolledBack"
            _faults(blue, errorRatio=0.0)
            time.sleep(8)  # green serves alone again
            yield Run(namespace, prom.url, started, v2, final, cluster.kubeconfig)
        finally:
            router.stop()
            prom.close()


def _wait(probe: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _api(url: str, path: str, **params: Any) -> Any:
    r = http_request("GET", f"{url}{path}?{urlencode(params, doseq=True)}")
    document = json.loads(r.body)
    assert document.get("status") == "success", f"{path} {params}: {r.text}"
    return document["data"]


def _range(run: Run, promql: str) -> list[dict[str, Any]]:
    data = _api(
        run.prometheus,
        "/api/v1/query_range",
        query=promql,
        start=f"{run.started:.3f}",
        end=f"{time.time():.3f}",
        step="1",
    )
    assert data["resultType"] == "matrix", promql
    result: list[dict[str, Any]] = data["result"]
    return result


def _instant(run: Run, promql: str, at: float | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data: dict[str, Any] = _api(run.prometheus, "/api/v1/query", **params)
    return data


def _values(series: list[dict[str, Any]]) -> list[float]:
    return [float(v) for s in series for _, v in s["values"]]


def _grafana_values(run: Run) -> dict[str, str]:
    """The variables as Grafana would set them for this app, on this Prometheus (1 s scrapes:
    $__rate_interval is then max($__interval + 1s, 4 * 1s))."""
    elapsed = math.ceil(time.time() - run.started)
    return {
        "datasource": "prometheus",
        "namespace": run.namespace,
        "app": "shop",
        "job": OPERATOR_JOB,
        "__rate_interval": "4s",
        "__interval": "1s",
        "__range": f"{elapsed}s",
        **textbox_defaults(load_dashboards()),
    }


def test_dashboards_alerts_and_graph_after_a_release_and_a_rollback(
    release_run: Run, tmp_path: Path
) -> None:
    run = release_run
    values = _grafana_values(run)
    dashboards = load_dashboards()
    _check_panels(run, values, dashboards)
    _check_annotations_and_variables(run, values, dashboards)
    _check_alerts(run)
    _check_graph(run, tmp_path / "switch.png")


def _check_panels(run: Run, values: dict[str, str], dashboards: dict[str, Any]) -> None:
    """Every panel has data, of the shape it expects; the key ones show the release."""
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for name, dashboard in dashboards.items():
        for panel, target in panel_targets(dashboard):
            promql = substitute(target["expr"], values)
            if target.get("instant"):
                data = _instant(run, promql)
                assert data["resultType"] == "vector", (name, panel["title"], promql)
                result = data["result"]
            else:
                result = _range(run, promql)
            assert result, f"{name}: panel {panel['title']!r} has no data: {promql}"
            results[(name, panel["title"], target["refId"])] = result

    # The crossover: both colours served page requests, each while it was active.
    by_color = {
        s["metric"].get("color"): s
        for s in results[("release.json", "Requests per second by colour", "A")]
    }
    assert {"blue", "green"} <= set(by_color)
    # The active colour went blue (0) -> green (1) -> blue -> green.
    active = _values(results[("release.json", "Active colour over time", "A")])
    assert {0.0, 1.0} <= set(active)
    phases = {
        s["metric"]["phase"]
        for s in results[("release.json", "Phase over time", "A")]
        if 1.0 in _values([s])
    }
    assert {"Healthy", "Degraded"} <= phases, phases
    errors = {
        s["metric"]["color"]: max((v for v in _values([s]) if math.isfinite(v)), default=0.0)
        for s in results[("release.json", "Error ratio by colour", "A")]
    }
    assert errors["blue"] > 0.1, errors  # v3's injected errors, on blue
    releases = {s["metric"]["result"] for s in results[("release.json", "Releases by result", "A")]}
    assert {"Promoted", "RolledBack"} <= releases
    p95 = _values(results[("release.json", "p95 latency by colour", "A")])
    assert any(0 < v < 1 for v in p95)  # NaN where a colour served nothing
    # The operator's own panels see one operator target, its memory and its work.
    assert _values(results[("operator.json", "Memory (RSS)", "A")])[-1] > 10_000_000
    assert max(_values(results[("operator.json", "Reconcile passes per second", "A")])) > 0
    apps_table = results[("operator.json", "Apps", "A")]
    assert any(s["metric"]["namespace"] == run.namespace for s in apps_table), (
        "honor_labels: the app's namespace must win over the operator's target label"
    )

    # ------------------------------------------------------- the crossover, in numbers
    # Before v2's switch blue served everything; after it, green did.
    switched = _ts(run.v2["release"]["switchedAt"])
    rate = substitute(
        'sum by (color) (rate(http_requests_total{namespace="$namespace",app="$app",route="/"}[4s]))',
        values,
    )
    before = _by_color(_instant(run, rate, at=switched - 2))
    after = _by_color(_instant(run, rate, at=switched + 6))
    assert before["blue"] > 10 and before["green"] < 1, before
    assert after["green"] > 10 and after["blue"] < 1, after


def _check_annotations_and_variables(
    run: Run, values: dict[str, str], dashboards: dict[str, Any]
) -> None:
    for name, dashboard in dashboards.items():
        for annotation in annotation_queries(dashboard):
            result = _range(run, substitute(annotation["expr"], values))
            assert result, f"{name}: annotation {annotation['name']!r} has no data"
        for var in variables(dashboard).values():
            if var["type"] != "query":
                continue
            selector, label = label_values(variable_query(var))
            found = _api(
                run.prometheus,
                f"/api/v1/label/{label}/values",
                **{"match[]": substitute(selector, values)},
            )
            assert values[var["name"]] in found, (name, var["name"], found)
    rollbacks = _range(
        run,
        substitute(
            next(
                a["expr"]
                for a in annotation_queries(dashboards["release.json"])
                if "RolledBack" in a["expr"]
            ),
            values,
        ),
    )
    assert {s["metric"]["result"] for s in rollbacks} == {"RolledBack"}


def _check_alerts(run: Run) -> None:
    """Every expression evaluates, every rule is healthy, the rollback fires its alert."""
    for rule in load_rules():
        data = _instant(run, rule["expr"])  # evaluates without an error
        assert data["resultType"] == "vector", rule["alert"]
    groups = _api(run.prometheus, "/api/v1/rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {r["alert"] for r in load_rules()}
    assert all(r["health"] == "ok" for r in loaded.values()), loaded

    def rollback_alert() -> list[dict[str, Any]]:
        alerts = _api(run.prometheus, "/api/v1/alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "BlueGreenReleaseRolledBack"
            and a["labels"].get("namespace") == run.namespace
            and a["state"] == "firing"
        ]

    _wait(rollback_alert, "the rollback alert to fire", timeout=15)
    (alert,) = rollback_alert()
    assert alert["labels"]["name"] == "shop" and alert["labels"]["result"] == "RolledBack"
    assert alert["annotations"]["summary"] == f"Release of {run.namespace}/shop ended RolledBack"
    firing = {a["labels"]["alertname"] for a in _api(run.prometheus, "/api/v1/alerts")["alerts"]}
    assert "BlueGreenOperatorDown" not in firing


def _check_graph(run: Run, png: Path) -> None:
    """The real console script draws the crossover."""
    since = math.ceil(time.time() - run.started) + 5
    proc = subprocess.run(
        [
            str(CLI),
            "--kubeconfig",
            str(run.kubeconfig),
            "-n",
            run.namespace,
            "graph",
            "shop",
            "--since",
            f"{since}s",
            "-o",
            str(png),
            "--prometheus",
            run.prometheus,
            "--rate-window",
            "4s",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"wrote {png}: colours blue, green;" in proc.stdout, proc.stdout
    assert "no page requests" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    _check_png(png)
    keep = os.environ.get("BLUEGREEN_GRAPH_KEEP")
    if keep:
        shutil.copyfile(png, keep)


def test_graph_without_prometheus_says_so(apps: Apps, cluster: Cluster, tmp_path: Path) -> None:
    """No Prometheus to ask, or none at the address: a message saying so, no traceback,
    no file."""
    apps.create(app_manifest("shop"))
    png = tmp_path / "x.png"

    def graph(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(CLI), "--kubeconfig", str(cluster.kubeconfig), "-n", apps.namespace]
        env = {k: v for k, v in os.environ.items() if k != "BLUEGREEN_PROMETHEUS_URL"}
        return subprocess.run(
            [*argv, "graph", "shop", "-o", str(png), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    down = graph("--prometheus", "http://127.0.0.1:9")
    assert down.returncode == 5, down.stdout + down.stderr
    assert "error: cannot reach Prometheus at http://127.0.0.1:9" in down.stderr
    none = graph()  # the app has no spec.analysis.prometheus
    assert none.returncode == 2, none.stdout + none.stderr
    assert "error: no Prometheus to ask: give --prometheus URL" in none.stderr
    missing = graph("--prometheus", "http://127.0.0.1:9", "--since", "soon")
    assert missing.returncode == 2 and "invalid duration 'soon'" in missing.stderr
    for proc in (down, none, missing):
        assert "Traceback" not in proc.stderr
    assert not png.exists()


def _check_png(path: Path) -> None:
    from matplotlib import image  # noqa: PLC0415 - the dev group's, like the plugin's

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(str(path))
    assert pixels.shape[:2] == (600, 1200), pixels.shape
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    blueish = int(((b > 0.6) & (r < 0.35) & (g < 0.6)).sum())
    greenish = int(((g > 0.45) & (r < 0.35) & (b < 0.35)).sum())
    assert blueish > 800, f"{blueish} blue pixels"
    assert greenish > 800, f"{greenish} green pixels"


def _by_color(data: dict[str, Any]) -> dict[str, float]:
    return {s["metric"]["color"]: float(s["value"][1]) for s in data["result"]}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
