"""bluegreen.kubectl.graph without Prometheus or a cluster: durations, the query, the answer, the
marks taken from an app's status, the picture, and the error without matplotlib.

The real thing (a real Prometheus scraping real app processes during a real release, and
the real console script) is in tests/cluster/test_observability.py."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bluegreen.adapters import prometheus
from bluegreen.kubectl import cli, graph

T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_step() -> None:
    assert graph.auto_step(900) == 2
    assert graph.auto_step(60) == 1
    assert graph.auto_step(86400) == 144


def test_rate_query() -> None:
    assert graph.rate_query("web", "shop", "1m") == (
        'sum by (color) (rate(http_requests_total{namespace="web",app="shop",route="/"}[1m]))'
    )
    assert 'app="a\\"b"' in graph.rate_query("web", 'a"b', "1m")


def test_parse_matrix() -> None:
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {"metric": {"color": "green"}, "values": [[1, "0"], [2, "3.5"]]},
                    {"metric": {"color": "blue"}, "values": [[1, "20"], [2, "NaN"]]},
                    {"metric": {}, "values": [[1, "1"]]},
                ],
            },
        }
    ).encode()
    series = graph.by_color(prometheus.parse_matrix(body))
    assert [s.color for s in series] == ["blue", "green", ""]
    assert series[1].times == (1.0, 2.0) and series[1].values == (0.0, 3.5)
    assert series[0].peak == 20


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"status": "error", "error": "parse error"}', "parse error"),
        (b'{"status": "success", "data": {"resultType": "vector", "result": []}}', "matrix"),
    ],
)
def test_parse_matrix_errors(body: bytes, message: str) -> None:
    with pytest.raises(prometheus.PrometheusError, match=message):
        prometheus.parse_matrix(body)


def test_unreachable_prometheus() -> None:
    start = T0
    with pytest.raises(graph.GraphError) as err:
        graph.query_range("http://127.0.0.1:9", "up", start, start + timedelta(minutes=1), 1)
    assert err.value.unreachable
    with pytest.raises(graph.GraphError, match="expected http"):
        graph.query_range("ftp://x", "up", start, start, 1)


def status_after_rollback() -> dict[str, Any]:
    """v2 promoted (blue -> green), then v3 switched to blue and rolled back to green."""
    return {
        "release": {
            "revision": "rev3",
            "color": "blue",
            "previousColor": "green",
            "startedAt": at(100),
            "switchedAt": at(110),
            "rollbackStartedAt": at(115),
            "switchedBackAt": at(115.2),
            "completedAt": at(116),
            "result": "RolledBack",
        },
        "history": [
            {
                "revision": "rev3",
                "result": "RolledBack",
                "startedAt": at(100),
                "completedAt": at(116),
            },
            {"revision": "rev2", "result": "Promoted", "startedAt": at(40), "completedAt": at(52)},
            {
                "revision": "rev1",
                "result": "Promoted",
                "startedAt": at(-600),
                "completedAt": at(-590),
            },
        ],
    }


def test_markers_from_status() -> None:
    marks = graph.markers(status_after_rollback(), T0, T0 + timedelta(minutes=5))
    assert [(m.at, m.kind, m.label) for m in marks] == [
        (T0 + timedelta(seconds=40), "start", "rev2 started"),
        (T0 + timedelta(seconds=52), "done", "rev2 Promoted"),
        (T0 + timedelta(seconds=100), "start", "rev3 started"),
        (T0 + timedelta(seconds=110), "switch", "switch to blue"),
        (T0 + timedelta(seconds=115), "rollback", "rollback started"),
        (T0 + timedelta(seconds=115.2), "rollback", "back to green"),
        (T0 + timedelta(seconds=116), "failed", "rev3 RolledBack"),
    ]


def test_markers_of_a_release_in_flight_and_of_nothing() -> None:
    status = {
        "release": {"revision": "r", "color": "green", "startedAt": at(1), "switchedAt": at(2)}
    }
    marks = graph.markers(status, T0, T0 + timedelta(minutes=1))
    assert [m.kind for m in marks] == ["start", "switch"]
    assert graph.markers({}, T0, T0 + timedelta(minutes=1)) == []


def test_metric_switches_add_the_switches_the_status_does_not_time() -> None:
    known = graph.markers(status_after_rollback(), T0, T0 + timedelta(minutes=5))
    # The operator's metric, sampled every 2 s: green from 44 s (v2's switch), blue from
    # 112 s (v3's switch, known), green again from 116 s (the switch back, known).
    times = tuple(T0.timestamp() + t for t in range(0, 130, 2))
    values = tuple(
        0.0 if t < 44 else 1.0 if t < 112 else 0.0 if t < 116 else 1.0 for t in range(0, 130, 2)
    )
    marks = graph.metric_switches(known, [graph.Series("", times, values)])
    added = [m for m in marks if m not in known]
    assert [(m.at, m.kind, m.label, m.color) for m in added] == [
        (T0 + timedelta(seconds=44), "switch", "switch to green", "green")
    ]
    assert marks == sorted(marks, key=lambda m: m.at)
    # No metric (the operator is not scraped by this Prometheus): the status alone.
    assert graph.metric_switches(known, []) == known


def test_label_places_keep_close_labels_apart() -> None:
    end = T0 + timedelta(minutes=5)
    marks = [
        graph.Marker(T0 + timedelta(seconds=s), "switch", "switch to green")
        for s in (10, 11, 12, 200, 299)
    ]
    places = graph.label_places(marks, T0, end)
    assert [p.row for p in places[:3]] == [0, 1, 2]  # one second apart: one row each
    assert places[3].row == 0  # far enough: the top row is free again
    assert places[4].align == "right"  # at the right edge: the text ends at the mark
    crowd = [graph.Marker(T0, "start", "x" * 30)] * 20
    assert max(p.row for p in graph.label_places(crowd, T0, end)) == graph.MAX_LABEL_ROWS - 1


def test_draw_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib import image  # noqa: PLC0415

    times = tuple(T0.timestamp() + i for i in range(120))
    blue = tuple(20.0 if i < 60 else 0.0 for i in range(120))
    green = tuple(0.0 if i < 60 else 20.0 for i in range(120))
    path = tmp_path / "g.png"
    marks = [graph.Marker(T0 + timedelta(seconds=60), "switch", "switch to green")]
    graph.draw_png(
        [graph.Series("blue", times, blue), graph.Series("green", times, green)],
        marks,
        str(path),
        "web/shop",
        start=T0,
        end=T0 + timedelta(seconds=120),
    )
    pixels = image.imread(str(path))
    assert pixels.shape[:2] == (600, 1200)


def test_draw_png_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    with pytest.raises(graph.GraphError, match="needs matplotlib") as err:
        graph.draw_png([], [], str(tmp_path / "x.png"), "t", start=T0, end=T0)
    assert "pipx install 'bluegreen[graph]'" in err.value.message


def test_prometheus_address_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    app = {"spec": {"analysis": {"prometheus": {"address": "http://from-spec:9090"}}}}
    monkeypatch.delenv(cli.PROMETHEUS_ENV, raising=False)
    assert cli.prometheus_address(app, None) == "http://from-spec:9090"
    assert cli.prometheus_address({"spec": {}}, None) is None
    monkeypatch.setenv(cli.PROMETHEUS_ENV, "http://from-env:9090")
    assert cli.prometheus_address(app, None) == "http://from-env:9090"
    assert cli.prometheus_address(app, "http://flag:9090") == "http://flag:9090"


def test_graph_parser() -> None:
    args = cli.build_parser().parse_args(
        ["graph", "shop", "--since", "5m", "-o", "s.png", "--rate-window", "4s"]
    )
    assert (args.command, args.name, args.since, args.output, args.rate_window) == (
        "graph",
        "shop",
        300,
        "s.png",
        4,
    )
    assert args.prometheus is None and args.step is None
    with pytest.raises(SystemExit) as err:
        cli.build_parser().parse_args(["graph", "shop", "--since", "soon"])
    assert err.value.code == 2


@pytest.mark.parametrize(
    ("metric", "route", "expected"),
    [
        (
            "http_requests_total",
            "/",
            'sum by (color) (rate(http_requests_total{namespace="web",app="shop",route="/"}[1m]))',
        ),
        (
            "requests_served_total",
            "/api/.*",
            'sum by (color) (rate(requests_served_total{namespace="web",app="shop",'
            'route=~"/api/.*"}[1m]))',
        ),
        (
            "http_requests_total",
            "/checkout",
            'sum by (color) (rate(http_requests_total{namespace="web",app="shop",'
            'route="/checkout"}[1m]))',
        ),
        (
            "nginx:requests",
            "",
            'sum by (color) (rate(nginx:requests{namespace="web",app="shop"}[1m]))',
        ),
    ],
)
def test_rate_query_of_an_apps_own_counter(metric: str, route: str, expected: str) -> None:
    assert graph.rate_query("web", "shop", "1m", metric=metric, route=route) == expected


@pytest.mark.parametrize("metric", ["", "http requests", 'x{a="b"}', "1st", "a\x1b[2J"])
def test_a_metric_that_is_not_a_name_is_refused(metric: str) -> None:
    with pytest.raises(graph.GraphError, match="not a Prometheus metric name"):
        graph.rate_query("web", "shop", "1m", metric=metric)
