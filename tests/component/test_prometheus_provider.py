"""The analysis adapters on real parts: a real Prometheus (the Debian package) scraping real
demo app processes, labelled the way the operator's ServiceMonitor labels pods (namespace,
app, color), with real traffic sent on loopback; real web checks against a demo app.

Each scenario ("world") has its own Prometheus with a fresh TSDB and its own pair of apps, so
the one-minute rate windows of one scenario never see the traffic of another.

What the api.md error-rate query really does, measured here:
- healthy colour: exactly 0; half the page requests failing: about 0.5 (a little less,
  because the denominator counts every request of the colour, /metrics scrapes included);
- a colour that gets no page traffic: 0, NOT no data or NaN, since scrapes (and, in a
  cluster, kubelet probes) are requests too. That is why minRequests matters: a guard on
  page requests makes it inconclusive. A page-only ratio gives NaN (0/0): inconclusive;
- no data (an empty vector) only for a colour without scraped pods: the demo app exports
  its page series at zero from the start, so a colour with pods always has series.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.prometheus import HttpMetricsSource, PrometheusProvider, WebProvider
from bluegreen.api.v1alpha1 import Metric, NoDataPolicy, ThresholdRange
from bluegreen.core.analysis import MeasurementVerdict, QueryResult, evaluate_sample, render_query
from bluegreen.core.sampling import sample_metric
from tests.support.demo_app import DemoApp, http_request, start_demo_app
from tests.support.operator import TEST_HOST, for_operator
from tests.support.process import free_port
from tests.support.prometheus import run_prometheus, wait_for_scrape_after
from tests.support.traffic import Traffic

pytestmark = pytest.mark.timeout(120)

NAMESPACE = "default"
APP = "shop"
QUIET = {"ACCESS_LOG": "false"}

SELECT = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}"'
# The error-rate query of the API documentation (docs api.md), as users write it.
ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SELECT},status=~"5.."}}[1m]))\n'
    f"/ sum(rate(http_requests_total{{{SELECT}}}[1m]))"
)
PAGE_ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SELECT},route="/",status=~"5.."}}[1m]))\n'
    f'/ sum(rate(http_requests_total{{{SELECT},route="/"}}[1m]))'
)
PAGE_REQUESTS = f'sum(increase(http_requests_total{{{SELECT},route="/"}}[1m]))'
ERROR_RATE_BY_COLOR = (
    'sum by (color) (rate(http_requests_total{namespace="{{namespace}}",app="{{name}}",status=~"5.."}[1m]))\n'
    '/ sum by (color) (rate(http_requests_total{namespace="{{namespace}}",app="{{name}}"}[1m]))'
)

# The operator's source, with the endpoint policy the tests' operators run with: loopback
# servers by name (loopback IP addresses are refused whatever the policy says).
SOURCE = HttpMetricsSource(
    timeout=5.0, policy=EndpointPolicy(prometheus=(TEST_HOST,), web=(TEST_HOST,))
)


def metric(query: str, *, guarded: bool = False, **changes: Any) -> Metric:
    fields: dict[str, Any] = {
        "name": "error-rate",
        "query": query,
        "threshold_range": ThresholdRange(max=0.05),
    }
    if guarded:
        fields.update(min_requests_query=PAGE_REQUESTS, min_requests=20)
    fields.update(changes)
    return Metric(**fields)


@dataclass
class World:
    prometheus: str
    blue: DemoApp
    green: DemoApp
    traffic: dict[str, Traffic]

    def sample(self, m: Metric, color: str) -> QueryResult:
        return sample_metric(
            SOURCE,
            m,
            address=for_operator(self.prometheus),
            namespace=NAMESPACE,
            name=APP,
            color=color,
            revision="rev-" + color,
        )


def target(app: DemoApp) -> tuple[str, dict[str, str]]:
    return (f"127.0.0.1:{app.port}", {"namespace": NAMESPACE, "app": APP, "color": app.color})


def set_faults(app: DemoApp, **faults: object) -> None:
    response = http_request(
        "POST",
        app.url + "/admin/faults",
        body=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, response.text


@contextlib.contextmanager
def world(
    traffic: dict[str, tuple[int, float]], green_faults: dict[str, object] | None = None
) -> Iterator[World]:
    """Blue v1 and green v2 of one app, both scraped every second; `traffic` sends
    (requests, rate) to a colour's page; returns once Prometheus has it all."""
    with (
        start_demo_app("blue", "v1", env=QUIET) as blue,
        start_demo_app("green", "v2", env=QUIET) as green,
    ):
        if green_faults:
            set_faults(green, **green_faults)  # before the first scrape: not in the window
        with run_prometheus([target(blue), target(green)]) as url:
            apps = {"blue": blue, "green": green}
            sent = {
                color: Traffic([apps[color].url], requests, rate).start()
                for color, (requests, rate) in traffic.items()
            }
            for t in sent.values():
                t.wait(timeout=30)
            wait_for_scrape_after(url, max(t.finished_at or 0.0 for t in sent.values()))
            yield World(url, blue, green, sent)


@pytest.fixture(scope="class")
def healthy() -> Iterator[World]:
    """Green (the candidate) gets 80 page requests, all fine; blue gets no page traffic."""
    with world({"green": (80, 40.0)}) as w:
        yield w


@pytest.fixture(scope="class")
def faulty() -> Iterator[World]:
    """Green answers every 2nd page request with a 500 (100 requests); blue gets a trickle
    of 5 healthy requests."""
    with world({"green": (100, 50.0), "blue": (5, 5.0)}, green_faults={"errorRatio": 0.5}) as w:
        yield w


class TestHealthyCandidate:
    def test_error_rate_of_a_healthy_colour_is_zero(self, healthy: World) -> None:
        assert healthy.traffic["green"].statuses == {200: 80}
        result = healthy.sample(metric(ERROR_RATE, guarded=True), "green")

        assert result.error is None
        assert result.values == (0.0,)
        assert result.requests is not None and result.requests >= 60  # the guard is met
        outcome = evaluate_sample(metric(ERROR_RATE, guarded=True), result)
        assert outcome.verdict is MeasurementVerdict.SUCCESSFUL, outcome
        assert outcome.message == "0 <= max 0.05"

    def test_idle_colour_looks_healthy_without_the_guard(self, healthy: World) -> None:
        """Scrapes are requests too: the api.md query gives 0 for a colour nobody uses,
        which would pass. The minRequests guard on page requests makes it inconclusive."""
        unguarded = metric(ERROR_RATE)
        result = healthy.sample(unguarded, "blue")
        assert result.values == (0.0,)
        assert evaluate_sample(unguarded, result).verdict is MeasurementVerdict.SUCCESSFUL

        guarded = metric(ERROR_RATE, guarded=True)
        result = healthy.sample(guarded, "blue")
        assert result.requests == 0.0
        outcome = evaluate_sample(guarded, result)
        assert outcome.verdict is MeasurementVerdict.INCONCLUSIVE, outcome
        assert outcome.message == "0 requests < minRequests 20"

    def test_page_error_rate_of_a_colour_without_traffic_is_nan(self, healthy: World) -> None:
        m = metric(PAGE_ERROR_RATE)
        result = healthy.sample(m, "blue")
        assert len(result.values) == 1 and result.values[0] != result.values[0]  # NaN
        outcome = evaluate_sample(m, result)
        assert outcome.verdict is MeasurementVerdict.INCONCLUSIVE
        assert (outcome.value, outcome.message) == (None, "NaN")

        assert healthy.sample(m, "green").values == (0.0,)  # the same query, with traffic

    def test_several_series_all_inside(self, healthy: World) -> None:
        m = metric(ERROR_RATE_BY_COLOR)
        result = healthy.sample(m, "green")
        assert result.values == (0.0, 0.0)
        outcome = evaluate_sample(m, result)
        assert outcome.verdict is MeasurementVerdict.SUCCESSFUL
        assert outcome.message.startswith("all 2 series inside thresholdRange")

    @pytest.mark.parametrize(
        ("promql", "values", "verdict"),
        [
            pytest.param("0/0", None, MeasurementVerdict.INCONCLUSIVE, id="scalar NaN"),
            pytest.param("1/0", (float("inf"),), MeasurementVerdict.INCONCLUSIVE, id="scalar +Inf"),
            pytest.param(
                'scalar(sum(up{app="shop"}))', (2.0,), MeasurementVerdict.FAILED, id="scalar"
            ),
            pytest.param("vector(0.01)", (0.01,), MeasurementVerdict.SUCCESSFUL, id="vector"),
        ],
    )
    def test_scalars_and_special_values(
        self,
        healthy: World,
        promql: str,
        values: tuple[float, ...] | None,
        verdict: MeasurementVerdict,
    ) -> None:
        result = PrometheusProvider(healthy.prometheus).query(promql)
        assert result.error is None
        if values is None:
            assert len(result.values) == 1 and result.values[0] != result.values[0]
        else:
            assert result.values == values
        assert evaluate_sample(metric(promql), result).verdict is verdict

    @pytest.mark.parametrize(
        ("promql", "message"),
        [
            pytest.param("sum((", "Prometheus query error (bad_data)", id="syntax error"),
            pytest.param("up[1m]", "gives a matrix", id="range vector"),
            pytest.param('"text"', "gives a string", id="string"),
        ],
    )
    def test_invalid_queries_are_errors(self, healthy: World, promql: str, message: str) -> None:
        result = PrometheusProvider(healthy.prometheus).query(promql)
        assert result.invalid
        assert result.error is not None and message in result.error
        outcome = evaluate_sample(metric(promql), result)
        assert outcome.verdict is MeasurementVerdict.ERROR
        assert message in outcome.message


class TestFaultyCandidate:
    def test_half_the_requests_failing_fails(self, faulty: World) -> None:
        assert faulty.traffic["green"].statuses == {200: 50, 500: 50}
        m = metric(ERROR_RATE, guarded=True)
        result = faulty.sample(m, "green")

        assert result.error is None
        (value,) = result.values
        # 50 errors out of 100 page requests plus a few /metrics scrapes in the window.
        assert 0.4 < value <= 0.5
        outcome = evaluate_sample(m, result)
        assert outcome.verdict is MeasurementVerdict.FAILED, outcome
        assert outcome.message.endswith("> max 0.05")

    def test_several_series_one_outside(self, faulty: World) -> None:
        m = metric(ERROR_RATE_BY_COLOR)
        result = faulty.sample(m, "green")
        assert sorted(result.values)[0] == 0.0  # blue
        assert 0.4 < sorted(result.values)[1] <= 0.5  # green
        outcome = evaluate_sample(m, result)
        assert outcome.verdict is MeasurementVerdict.FAILED
        assert outcome.message.startswith("1 of 2 series outside thresholdRange")

    def test_a_trickle_is_inconclusive(self, faulty: World) -> None:
        assert faulty.traffic["blue"].statuses == {200: 5}
        unguarded = metric(ERROR_RATE)
        assert evaluate_sample(unguarded, faulty.sample(unguarded, "blue")).verdict is (
            MeasurementVerdict.SUCCESSFUL  # 5 requests "prove" a healthy colour
        )
        guarded = metric(ERROR_RATE, guarded=True)
        result = faulty.sample(guarded, "blue")
        assert result.requests is not None and 4 <= result.requests < 20
        outcome = evaluate_sample(guarded, result)
        assert outcome.verdict is MeasurementVerdict.INCONCLUSIVE, outcome
        assert outcome.message.endswith("requests < minRequests 20")


def test_no_data_for_a_colour_without_pods() -> None:
    """Blue has no pods (scaled to zero, or not scraped yet): no series at all. No data is
    inconclusive by default; noData: Fail and Pass say otherwise."""
    with (
        start_demo_app("green", "v2", env=QUIET) as green,
        run_prometheus([target(green)]) as url,
    ):
        # rate() needs two samples: right after the first scrape even green has no data.
        wait_for_scrape_after(url, time.time())
        for policy, verdict in [
            (NoDataPolicy.INCONCLUSIVE, MeasurementVerdict.INCONCLUSIVE),
            (NoDataPolicy.FAIL, MeasurementVerdict.FAILED),
            (NoDataPolicy.PASS, MeasurementVerdict.SUCCESSFUL),
        ]:
            m = metric(ERROR_RATE, no_data=policy)
            result = sample_metric(
                SOURCE,
                m,
                address=for_operator(url),
                namespace=NAMESPACE,
                name=APP,
                color="blue",
                revision="r",
            )
            assert result == QueryResult(values=())
            outcome = evaluate_sample(m, result)
            assert outcome.verdict is verdict
            assert outcome.value is None
            assert outcome.message.startswith("no data")
        # The same query finds the colour that has pods (once its /metrics series, which
        # appears at the second scrape, has two samples; before that it is 0/0, NaN).
        wait_for_scrape_after(url, time.time() + 1.0)
        green_query = render_query(ERROR_RATE, NAMESPACE, APP, "green", "r")
        assert PrometheusProvider(url).query(green_query).values == (0.0,)


# ----------------------------------------------------------------------------- failures


def test_a_stopped_prometheus_is_unreachable_and_inconclusive() -> None:
    with run_prometheus([]) as url:
        assert PrometheusProvider(url).query("vector(1)") == QueryResult(values=(1.0,))
    started = time.monotonic()
    result = PrometheusProvider(url, timeout=5.0).query("vector(1)")
    assert time.monotonic() - started < 2

    assert result.error == "Prometheus unreachable: no connection or no answer within 5 s"
    outcome = evaluate_sample(metric(ERROR_RATE), result)
    assert outcome.verdict is MeasurementVerdict.INCONCLUSIVE
    assert "unreachable" in outcome.message


def test_a_prometheus_that_does_not_answer_times_out() -> None:
    """A listening socket that never accepts: the connection opens, no answer comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = PrometheusProvider(f"http://127.0.0.1:{port}", timeout=0.5).query("up")
        elapsed = time.monotonic() - started

    # The same words as a refused connection: status must not tell open ports from closed.
    assert result.error == "Prometheus unreachable: no connection or no answer within 0.5 s"
    assert 0.4 < elapsed < 3
    assert evaluate_sample(metric("up"), result).verdict is MeasurementVerdict.INCONCLUSIVE


def test_an_address_that_is_not_prometheus() -> None:
    with start_demo_app("blue", "v1", env=QUIET) as app:
        result = PrometheusProvider(app.url + "/").query("up")
    assert result.error is not None
    assert result.error.startswith("Prometheus answered HTTP 404")
    assert not result.invalid
    assert evaluate_sample(metric("up"), result).verdict is MeasurementVerdict.INCONCLUSIVE


def test_an_invalid_address_is_an_error() -> None:
    result = PrometheusProvider("ftp://127.0.0.1:9090").query("up")
    assert result.invalid and result.error is not None
    assert evaluate_sample(metric("up"), result).verdict is MeasurementVerdict.ERROR


# ----------------------------------------------------------------------------- web checks


def test_web_check_of_the_app_health() -> None:
    with start_demo_app("green", "v2", env=QUIET) as app:
        # The URL is rendered like a query: {{color}} -> green (the app ignores the query string).
        check = Metric(name="health", url=f"{for_operator(app.url)}/health?from={{{{color}}}}")

        healthy = sample_metric(
            SOURCE, check, address=None, namespace=NAMESPACE, name=APP, color="green", revision="r"
        )
        assert healthy == QueryResult(values=(1.0,), detail="HTTP 200")
        outcome = evaluate_sample(check, healthy)
        assert outcome.verdict is MeasurementVerdict.SUCCESSFUL
        assert outcome.message == "HTTP 200: 1 >= min 1"

        set_faults(app, healthFail=True)
        unhealthy = WebProvider(timeout=5.0).probe(f"{app.url}/health")
        assert unhealthy == QueryResult(values=(0.0,), detail="HTTP 503")
        outcome = evaluate_sample(check, unhealthy)
        assert outcome.verdict is MeasurementVerdict.FAILED
        assert outcome.message == "HTTP 503: 0 < min 1"

        missing = WebProvider(timeout=5.0).probe(f"{app.url}/nothing-here")
        assert missing == QueryResult(values=(0.0,), detail="HTTP 404")


def test_web_check_of_a_closed_port_is_inconclusive() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    result = WebProvider(timeout=5.0).probe(url)
    assert result.error == f"GET {url} unreachable: no connection or no answer within 5 s"
    check = Metric(name="health", url=url)
    outcome = evaluate_sample(check, result)
    assert outcome.verdict is MeasurementVerdict.INCONCLUSIVE
    assert "unreachable" in outcome.message
