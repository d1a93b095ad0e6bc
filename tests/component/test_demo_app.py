"""The demo app, run as a real process on a loopback port: page, health, metrics, faults,
shutdown. Analysis and rollback tests rely on each of these behaving exactly as stated."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.demo_app import (
    APP_DIR,
    Response,
    demo_app_command,
    demo_app_env,
    free_port,
    http_request,
    run_demo_app,
    start_demo_app,
)

pytestmark = pytest.mark.timeout(120)

DEFAULT_FAULTS = {"errorRatio": 0.0, "latencyMs": 0, "healthFail": False}
APP_FAMILIES = ("http_requests", "http_request_duration_seconds", "bluegreen_environment_info")


def get(url: str) -> Response:
    return http_request("GET", url)


def post_json(url: str, document: object) -> Response:
    return post_raw(url, json.dumps(document).encode())


def post_raw(url: str, body: bytes) -> Response:
    return http_request("POST", url, body=body, headers={"Content-Type": "application/json"})


def scrape(base_url: str) -> list[Sample]:
    response = get(base_url + "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one sample with this name and (at least) these labels, or None."""
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def statuses(url: str, count: int) -> list[int]:
    return [get(url).status for _ in range(count)]


@pytest.mark.parametrize(
    ("color", "version", "background", "other_background"),
    [("blue", "v1.4.2", "#1d4ed8", "#15803d"), ("green", "2f9c1e0", "#15803d", "#1d4ed8")],
)
def test_page_shows_its_colour_and_version(
    color: str, version: str, background: str, other_background: str
) -> None:
    with run_demo_app(color, version) as url:
        page = get(url + "/")
        head = http_request("HEAD", url + "/")

    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f"<h1>{color}</h1>" in page.text
    assert f"<code>{version}</code>" in page.text
    assert f"background: {background}" in page.text
    assert other_background not in page.text
    assert page.headers["x-app-color"] == color
    assert page.headers["x-app-version"] == version
    assert head.status == 200
    assert head.body == b""


def test_page_escapes_what_it_shows() -> None:
    with run_demo_app("blue", "<script>alert(1)</script>") as url:
        page = get(url + "/")

    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_metrics_count_every_request_by_route_template_and_status() -> None:
    with run_demo_app("blue", "v1.0.0") as url:
        before = scrape(url)  # the helper's readiness probe has hit /health already
        assert statuses(url + "/", 3) == [200] * 3
        assert statuses(url + "/health", 2) == [200] * 2
        assert get(url + "/no/such/page?id=42").status == 404
        assert get(url + "/health/extra").status == 404
        assert http_request("POST", url + "/", body=b"").status == 405
        samples = scrape(url)  # counts the scrape before, not itself

    def delta(name: str, **labels: str) -> float:
        return (value(samples, name, **labels) or 0) - (value(before, name, **labels) or 0)

    labels = {"color": "blue", "version": "v1.0.0"}
    assert delta("http_requests_total", method="GET", route="/", status="200") == 3
    # The error series is exported from the start, so error-rate queries see 0, not nothing.
    assert value(before, "http_requests_total", method="GET", route="/", status="500") == 0
    assert value(samples, "http_requests_total", method="GET", route="/", status="500") == 0
    assert delta("http_requests_total", route="/health", status="200") == 2
    assert delta("http_requests_total", route="other", status="404") == 2
    assert delta("http_requests_total", method="POST", route="/", status="405") == 1
    assert delta("http_requests_total", route="/metrics", status="200") == 1
    assert delta("http_request_duration_seconds_count", method="GET", route="/") == 3
    assert delta("http_request_duration_seconds_bucket", method="GET", route="/", le="+Inf") == 3
    assert delta("http_request_duration_seconds_count", route="/health") == 2
    assert value(samples, "bluegreen_environment_info", **labels) == 1

    app_samples = [s for s in samples if s.name.startswith(APP_FAMILIES)]
    assert {s.name.removesuffix("_total") for s in app_samples} >= {
        "http_requests",
        "http_request_duration_seconds_count",
        "bluegreen_environment_info",
    }
    for sample in app_samples:
        assert sample.labels["color"] == "blue", sample
        assert sample.labels["version"] == "v1.0.0", sample
        if "route" in sample.labels:  # templates only: the raw paths above never appear
            assert sample.labels["route"] in {"/", "/health", "/metrics", "/admin/faults", "other"}
    assert not any(s.name.endswith("_created") for s in samples)


def test_error_ratio_one_half_fails_exactly_every_second_request() -> None:
    with run_demo_app("green", "v2", env={"FAULT_ERROR_RATIO": "0.5"}) as url:
        answers = statuses(url + "/", 20)
        health = get(url + "/health").status
        samples = scrape(url)

    assert answers == [200, 500] * 10
    assert health == 200  # the error fault is for the page only
    labels = {"color": "green", "version": "v2", "route": "/"}
    assert value(samples, "http_requests_total", status="500", **labels) == 10
    assert value(samples, "http_requests_total", status="200", **labels) == 10


def test_faults_change_at_runtime() -> None:
    with run_demo_app("blue", "v3") as url:
        faults = url + "/admin/faults"
        assert get(faults).json() == DEFAULT_FAULTS
        assert get(url + "/").status == 200

        changed = post_json(faults, {"errorRatio": 1})
        assert changed.status == 200
        assert changed.json() == {**DEFAULT_FAULTS, "errorRatio": 1.0}
        assert statuses(url + "/", 3) == [500] * 3

        # Setting a ratio restarts the schedule: every 4th request fails, from now on.
        assert post_json(faults, {"errorRatio": 0.25}).status == 200
        assert statuses(url + "/", 8) == [200, 200, 200, 500] * 2

        # A partial update keeps the other faults.
        assert post_json(faults, {"latencyMs": 400}).status == 200
        assert get(faults).json() == {"errorRatio": 0.25, "latencyMs": 400, "healthFail": False}
        started = time.monotonic()
        get(url + "/")
        assert time.monotonic() - started >= 0.4
        started = time.monotonic()
        assert get(url + "/health").status == 200
        assert time.monotonic() - started < 0.4  # latency is for the page only

        assert post_json(faults, {"healthFail": True}).status == 200
        failing = get(url + "/health")
        assert failing.status == 503

        assert post_json(faults, DEFAULT_FAULTS).status == 200
        assert get(faults).json() == DEFAULT_FAULTS
        assert statuses(url + "/", 5) == [200] * 5
        assert get(url + "/health").status == 200


@pytest.fixture(scope="module")
def shared_app() -> Iterator[str]:
    """One app for the rejected-input cases: none of them may change its state."""
    with run_demo_app("blue", "v4") as url:
        yield url


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"", "JSON"),
        (b"errorRatio=0.5", "JSON"),
        (b"[0.5]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"errorRatio": 1.5}', "errorRatio"),
        (b'{"errorRatio": -0.1}', "errorRatio"),
        (b'{"errorRatio": "0.5"}', "errorRatio"),
        (b'{"errorRatio": true}', "errorRatio"),
        (b'{"errorRatio": NaN}', "errorRatio"),
        (b'{"errorRatio": 1e400}', "errorRatio"),
        (b'{"latencyMs": -1}', "latencyMs"),
        (b'{"latencyMs": 2.5}', "latencyMs"),
        (b'{"latencyMs": "100"}', "latencyMs"),
        (b'{"latencyMs": 600000}', "latencyMs"),
        (b'{"healthFail": "yes"}', "healthFail"),
        (b'{"healthFail": 1}', "healthFail"),
        (b'{"errorRate": 0.5}', "errorRate"),
        # One bad field rejects the whole update: the valid ratio is not applied either.
        (b'{"errorRatio": 0.5, "latencyMs": -1}', "latencyMs"),
    ],
)
def test_bad_fault_input_is_rejected_and_changes_nothing(
    shared_app: str, body: bytes, mentions: str
) -> None:
    response = post_raw(shared_app + "/admin/faults", body)

    assert response.status == 400
    document = response.json()
    assert isinstance(document, dict)
    assert mentions in document["error"]
    assert get(shared_app + "/admin/faults").json() == DEFAULT_FAULTS
    assert get(shared_app + "/").status == 200


def test_failing_health_from_the_environment() -> None:
    with run_demo_app("green", "v5", env={"FAULT_HEALTH_FAIL": "true"}) as url:
        health = get(url + "/health")
        page = get(url + "/")
        faults = get(url + "/admin/faults").json()

    assert health.status == 503
    assert page.status == 200
    assert faults == {**DEFAULT_FAULTS, "healthFail": True}


def test_latency_from_the_environment() -> None:
    with run_demo_app("blue", "v6", env={"FAULT_LATENCY_MS": "300"}) as url:
        started = time.monotonic()
        page = get(url + "/")
        elapsed = time.monotonic() - started

    assert page.status == 200
    assert elapsed >= 0.3


@pytest.mark.parametrize(
    ("name", "bad_value"),
    [("FAULT_ERROR_RATIO", "2"), ("FAULT_LATENCY_MS", "soon"), ("FAULT_HEALTH_FAIL", "maybe")],
)
def test_invalid_environment_stops_the_app_with_a_message(name: str, bad_value: str) -> None:
    result = subprocess.run(
        demo_app_command(),
        cwd=APP_DIR,
        env=demo_app_env("blue", "v7", free_port(), {name: bad_value}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert name in result.stderr


def test_sigterm_finishes_the_request_in_flight_and_exits_promptly() -> None:
    # A 10 s injected latency: if shutdown waited for it, the exit would take too long.
    with start_demo_app("green", "v8", env={"FAULT_LATENCY_MS": "10000"}) as app:
        in_flight: list[Response | BaseException] = []

        def slow_request() -> None:
            try:
                in_flight.append(http_request("GET", app.url + "/", timeout=30))
            except BaseException as error:  # noqa: BLE001 - reported by the assertions below
                in_flight.append(error)

        client = threading.Thread(target=slow_request)
        client.start()
        time.sleep(1.0)  # the request is now being delayed inside the app
        assert not in_flight

        started = time.monotonic()
        app.process.send_signal(signal.SIGTERM)
        exit_code = app.process.wait(timeout=10)
        elapsed = time.monotonic() - started
        client.join(timeout=10)
        logs = app.logs()

    assert exit_code == 0, logs
    assert elapsed < 5, f"exit took {elapsed:.1f} s"
    assert len(in_flight) == 1
    answer = in_flight[0]
    assert isinstance(answer, Response), answer
    assert answer.status == 200
    assert "<h1>green</h1>" in answer.text
    assert '"event":"stopped","reason":"SIGTERM"' in logs


def test_sigterm_on_an_idle_app_exits_with_zero() -> None:
    with start_demo_app("blue", "v9") as app:
        started = time.monotonic()
        exit_code = app.terminate(timeout=5)
        elapsed = time.monotonic() - started

        assert exit_code == 0, app.logs()
        assert elapsed < 5
        with pytest.raises(OSError):
            get(app.url + "/health")
