"""The pure analysis core: one sample -> a measurement verdict, a window of measurements ->
a metric verdict, several metrics -> one verdict. Table tests with named cases, fake time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.api.timestamps import format as format_time
from bluegreen.api.v1alpha1 import Color, Metric, NoDataPolicy, ThresholdRange
from bluegreen.core.analysis import (
    Measurement,
    MeasurementVerdict,
    QueryResult,
    Verdict,
    bounded,
    evaluate_sample,
    measure,
    metric_verdict,
    next_due,
    overall,
    render_query,
    with_guard,
)
from bluegreen.release.summaries import summary

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
NAN = math.nan
INF = math.inf

OK = MeasurementVerdict.SUCCESSFUL
FAILED = MeasurementVerdict.FAILED
UNSURE = MeasurementVerdict.INCONCLUSIVE
ERROR = MeasurementVerdict.ERROR


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def query_metric(**changes: Any) -> Metric:
    fields: dict[str, Any] = {
        "name": "error-rate",
        "query": "sum(rate(errors[1m])) / sum(rate(requests[1m]))",
        "threshold_range": ThresholdRange(max=0.05),
    }
    fields.update(changes)
    return Metric(**fields)


def web_metric(**changes: Any) -> Metric:
    return Metric(name="health", url="http://shop-preview.default.svc/health", **changes)


GUARDED = {"min_requests_query": "sum(increase(requests[1m]))", "min_requests": 20}


# ----------------------------------------------------------------------------- one sample

SAMPLE_CASES = [
    # name, metric, result, verdict, value, message (a substring)
    ("healthy", query_metric(), QueryResult([0.01]), OK, 0.01, "0.01 <= max 0.05"),
    ("exactly max passes", query_metric(), QueryResult([0.05]), OK, 0.05, "0.05 <= max 0.05"),
    (
        "just above max fails",
        query_metric(),
        QueryResult([0.0501]),
        FAILED,
        0.0501,
        "0.0501 > max 0.05",
    ),
    ("zero errors", query_metric(), QueryResult([0.0]), OK, 0.0, "0 <= max 0.05"),
    (
        "exactly min passes",
        query_metric(threshold_range=ThresholdRange(min=0.9)),
        QueryResult([0.9]),
        OK,
        0.9,
        "0.9 >= min 0.9",
    ),
    (
        "just below min fails",
        query_metric(threshold_range=ThresholdRange(min=0.9)),
        QueryResult([0.8999]),
        FAILED,
        0.8999,
        "0.8999 < min 0.9",
    ),
    (
        "both bounds, at min",
        query_metric(threshold_range=ThresholdRange(min=1, max=2)),
        QueryResult([1.0]),
        OK,
        1.0,
        "1 <= 1 <= 2",
    ),
    (
        "both bounds, at max",
        query_metric(threshold_range=ThresholdRange(min=1, max=2)),
        QueryResult([2.0]),
        OK,
        2.0,
        "1 <= 2 <= 2",
    ),
    (
        "both bounds, above",
        query_metric(threshold_range=ThresholdRange(min=1, max=2)),
        QueryResult([2.5]),
        FAILED,
        2.5,
        "2.5 > max 2",
    ),
    ("NaN (0/0: no requests)", query_metric(), QueryResult([NAN]), UNSURE, None, "NaN"),
    ("+Inf", query_metric(), QueryResult([INF]), UNSURE, None, "+Inf"),
    ("-Inf", query_metric(), QueryResult([-INF]), UNSURE, None, "-Inf"),
    ("empty vector: no data", query_metric(), QueryResult([]), UNSURE, None, "no data"),
    (
        "no data, noData Fail",
        query_metric(no_data=NoDataPolicy.FAIL),
        QueryResult([]),
        FAILED,
        None,
        "no data (noData: Fail)",
    ),
    (
        "no data, noData Pass",
        query_metric(no_data=NoDataPolicy.PASS),
        QueryResult([]),
        OK,
        None,
        "no data (noData: Pass)",
    ),
    (
        "no data, noData Inconclusive (explicit)",
        query_metric(no_data=NoDataPolicy.INCONCLUSIVE),
        QueryResult([]),
        UNSURE,
        None,
        "no data",
    ),
    (
        "several series, all inside: the worst is reported",
        query_metric(),
        QueryResult([0.01, 0.03, 0.0]),
        OK,
        0.03,
        "all 3 series inside thresholdRange; worst: 0.03 <= max 0.05",
    ),
    (
        "several series, one outside",
        query_metric(),
        QueryResult([0.01, 0.3, 0.02]),
        FAILED,
        0.3,
        "1 of 3 series outside thresholdRange; series 2: 0.3 > max 0.05",
    ),
    (
        "several series, two outside: the first is named",
        query_metric(),
        QueryResult([0.2, 0.01, 0.3]),
        FAILED,
        0.2,
        "2 of 3 series outside thresholdRange; series 1: 0.2 > max 0.05",
    ),
    (
        "several series, one NaN",
        query_metric(),
        QueryResult([0.01, NAN]),
        UNSURE,
        0.01,
        "series 2 of 2 is NaN",
    ),
    (
        "several series, one NaN and one outside: the failure wins",
        query_metric(),
        QueryResult([NAN, 0.3]),
        FAILED,
        0.3,
        "1 of 2 series outside",
    ),
    (
        "several series with min: the smallest is the worst",
        query_metric(threshold_range=ThresholdRange(min=0.9)),
        QueryResult([0.99, 0.95]),
        OK,
        0.95,
        "worst: 0.95 >= min 0.9",
    ),
    (
        "provider error: inconclusive, with the reason",
        query_metric(),
        QueryResult(error="Prometheus unreachable: connection refused"),
        UNSURE,
        None,
        "Prometheus unreachable: connection refused",
    ),
    (
        "invalid query: Error",
        query_metric(),
        QueryResult(error="Prometheus query error (bad_data): parse error", invalid=True),
        ERROR,
        None,
        "bad_data",
    ),
    (
        "an error wins over values",
        query_metric(),
        QueryResult([0.9], error="timed out"),
        UNSURE,
        None,
        "timed out",
    ),
    (
        "minRequests: below",
        query_metric(**GUARDED),
        QueryResult([0.01], requests=3.2),
        UNSURE,
        0.01,
        "3.2 requests < minRequests 20",
    ),
    (
        "minRequests: equal is enough",
        query_metric(**GUARDED),
        QueryResult([0.01], requests=20.0),
        OK,
        0.01,
        "0.01 <= max 0.05",
    ),
    (
        "minRequests: above",
        query_metric(**GUARDED),
        QueryResult([0.01], requests=250.0),
        OK,
        0.01,
        "0.01 <= max 0.05",
    ),
    (
        "minRequests: above, value outside fails",
        query_metric(**GUARDED),
        QueryResult([0.5], requests=250.0),
        FAILED,
        0.5,
        "0.5 > max 0.05",
    ),
    (
        "minRequests: below, a bad value proves nothing either",
        query_metric(**GUARDED),
        QueryResult([0.5], requests=4.0),
        UNSURE,
        0.5,
        "4 requests < minRequests 20",
    ),
    (
        "minRequests: below, no data with noData Fail is still inconclusive",
        query_metric(no_data=NoDataPolicy.FAIL, **GUARDED),
        QueryResult([], requests=0.0),
        UNSURE,
        None,
        "0 requests < minRequests 20",
    ),
    (
        "minRequests: below, NaN says why",
        query_metric(**GUARDED),
        QueryResult([NAN], requests=0.0),
        UNSURE,
        None,
        "0 requests < minRequests 20",
    ),
    (
        "minRequests: guard not measured",
        query_metric(**GUARDED),
        QueryResult([0.01]),
        UNSURE,
        0.01,
        "minRequests guard not measured",
    ),
    (
        "minRequests: guard NaN",
        query_metric(**GUARDED),
        QueryResult([0.01], requests=NAN),
        UNSURE,
        0.01,
        "minRequestsQuery gave NaN",
    ),
    (
        "web check 2xx: min 1 by default",
        web_metric(),
        QueryResult([1.0], detail="HTTP 200"),
        OK,
        1.0,
        "HTTP 200: 1 >= min 1",
    ),
    (
        "web check non-2xx",
        web_metric(),
        QueryResult([0.0], detail="HTTP 503"),
        FAILED,
        0.0,
        "HTTP 503: 0 < min 1",
    ),
    (
        "web check unreachable: inconclusive",
        web_metric(),
        QueryResult(error="GET http://x/health unreachable: connection refused"),
        UNSURE,
        None,
        "unreachable",
    ),
    (
        "web check with its own range",
        web_metric(threshold_range=ThresholdRange(max=0)),
        QueryResult([1.0], detail="HTTP 200"),
        FAILED,
        1.0,
        "1 > max 0",
    ),
    (
        "query metric without thresholdRange (bypassing validation): Error",
        Metric.model_construct(**query_metric().__dict__ | {"threshold_range": None}),
        QueryResult([0.0]),
        ERROR,
        None,
        "needs thresholdRange",
    ),
]


@pytest.mark.parametrize(
    ("metric", "result", "verdict", "value", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in SAMPLE_CASES],
)
def test_evaluate_sample(
    metric: Metric,
    result: QueryResult,
    verdict: MeasurementVerdict,
    value: float | None,
    message: str,
) -> None:
    outcome = evaluate_sample(metric, result)
    assert outcome.verdict is verdict, outcome
    assert outcome.value == value, outcome
    assert message in outcome.message, outcome


@pytest.mark.parametrize(
    ("result", "guard", "expected"),
    [
        pytest.param(
            QueryResult([0.1]), QueryResult([]), QueryResult([0.1], requests=0.0), id="no series: 0"
        ),
        pytest.param(
            QueryResult([0.1]),
            QueryResult([12.5, 7.5]),
            QueryResult([0.1], requests=20.0),
            id="several series: summed",
        ),
        pytest.param(
            QueryResult([0.1]),
            QueryResult(error="Prometheus unreachable: x"),
            QueryResult([0.1], error="minRequestsQuery: Prometheus unreachable: x"),
            id="guard error: sample error",
        ),
        pytest.param(
            QueryResult([0.1]),
            QueryResult(error="bad_data", invalid=True),
            QueryResult([0.1], error="minRequestsQuery: bad_data", invalid=True),
            id="invalid guard: invalid sample",
        ),
        pytest.param(
            QueryResult(error="down"),
            QueryResult([50.0]),
            QueryResult(error="down"),
            id="query error kept",
        ),
    ],
)
def test_with_guard(result: QueryResult, guard: QueryResult, expected: QueryResult) -> None:
    assert with_guard(result, guard) == expected


def test_measure_stamps_the_outcome_for_status() -> None:
    m = measure(query_metric(), "pre", QueryResult([0.5]), at(1.5))
    assert m.model_dump(by_alias=True, mode="json") == {
        "metric": "error-rate",
        "phase": "pre",
        "at": "2030-01-01T12:00:01.500000Z",
        "value": 0.5,
        "verdict": "Failed",
        "message": "0.5 > max 0.05",
    }
    assert Measurement.model_validate(m.model_dump(by_alias=True, mode="json")) == m


def test_measurement_never_holds_nan_or_a_bad_time() -> None:
    """Status is JSON: NaN and Inf cannot be stored; evaluate_sample never produces them."""
    with pytest.raises(ValidationError):
        Measurement(metric="m", phase="pre", at=format_time(T0), value=NAN, verdict=UNSURE)
    with pytest.raises(ValidationError):
        Measurement(metric="m", phase="pre", at="yesterday", verdict=UNSURE)
    with pytest.raises(ValidationError):
        Measurement.model_validate(
            {"metric": "m", "phase": "during", "at": format_time(T0), "verdict": "Inconclusive"}
        )
    for value in (NAN, INF, -INF):
        assert measure(query_metric(), "post", QueryResult([value]), T0).value is None


# ----------------------------------------------------------------------------- windows

LETTERS = {"S": OK, "F": FAILED, "I": UNSURE, "E": ERROR}


def series(letters: str, metric: str = "error-rate", interval: float = 15) -> list[Measurement]:
    """One measurement per letter (S, F, I, E), `interval` seconds apart from T0."""
    return [
        Measurement(
            metric=metric, phase="pre", at=format_time(at(i * interval)), verdict=LETTERS[c]
        )
        for i, c in enumerate(letters)
    ]


WINDOW_CASES = [
    # name, count, failureLimit, measurements, verdict
    ("nothing measured yet", 4, 0, "", Verdict.RUNNING),
    ("half the window, all good", 4, 0, "SS", Verdict.RUNNING),
    ("window complete, all good", 4, 0, "SSSS", Verdict.SUCCESS),
    ("count 1", 1, 0, "S", Verdict.SUCCESS),
    ("failureLimit 0: the first failure ends it", 4, 0, "F", Verdict.FAILURE),
    ("failureLimit 0: a failure mid-window", 4, 0, "SSF", Verdict.FAILURE),
    ("failureLimit 1: one failure tolerated", 4, 1, "SFSS", Verdict.SUCCESS),
    ("failureLimit 1: one failure, still running", 4, 1, "FS", Verdict.RUNNING),
    ("failureLimit 1: early failure at the second", 4, 1, "FSF", Verdict.FAILURE),
    ("failureLimit 1: two failures at the end", 4, 1, "SSFF", Verdict.FAILURE),
    ("failureLimit 2: at the limit", 5, 2, "FSFSS", Verdict.SUCCESS),
    ("inconclusive at the end, failureLimit 0", 4, 0, "SSSI", Verdict.INCONCLUSIVE),
    ("all no data", 4, 0, "IIII", Verdict.INCONCLUSIVE),
    ("inconclusive does not end the window early", 4, 0, "II", Verdict.RUNNING),
    ("inconclusive then a failure: failure", 4, 0, "IF", Verdict.FAILURE),
    ("inconclusive within the failureLimit budget", 4, 1, "SISS", Verdict.SUCCESS),
    ("inconclusive plus failure beyond the budget", 4, 1, "SISF", Verdict.INCONCLUSIVE),
    ("two inconclusive beyond the budget", 4, 1, "SIIS", Verdict.INCONCLUSIVE),
    ("error counts like inconclusive", 4, 0, "SSSE", Verdict.INCONCLUSIVE),
    ("error within the budget", 4, 1, "SESS", Verdict.SUCCESS),
    ("measurements beyond count are ignored", 2, 0, "SSF", Verdict.SUCCESS),
]


@pytest.mark.parametrize(
    ("count", "failure_limit", "letters", "verdict"),
    [pytest.param(*case[1:], id=case[0]) for case in WINDOW_CASES],
)
def test_metric_verdict(count: int, failure_limit: int, letters: str, verdict: Verdict) -> None:
    metric = query_metric(count=count, failure_limit=failure_limit)
    assert metric_verdict(metric, series(letters), now=at(3600)) is verdict


def test_metric_verdict_reads_only_its_own_measurements() -> None:
    metric = query_metric(count=2)
    others = series("FFFF", metric="latency")
    assert metric_verdict(metric, [*others, *series("S")], now=at(3600)) is Verdict.RUNNING
    assert metric_verdict(metric, [*others, *series("SS")], now=at(3600)) is Verdict.SUCCESS


def test_metric_verdict_ignores_measurements_from_the_future() -> None:
    """A clock that stepped back must not count samples it has not taken yet."""
    metric = query_metric(count=2)
    assert metric_verdict(metric, series("SS"), now=at(10)) is Verdict.RUNNING
    assert metric_verdict(metric, series("SS"), now=at(15)) is Verdict.SUCCESS


def test_metric_verdict_order_does_not_matter() -> None:
    metric = query_metric(count=2)
    assert metric_verdict(metric, list(reversed(series("SSF"))), now=at(3600)) is Verdict.SUCCESS


NEXT_DUE_CASES = [
    # name, interval, count, measurements (letters, 15 s apart from T0), now, due (s from T0)
    ("the first one at the window start", "15s", 4, "", 0, 0),
    ("the first one, window start in the future", "15s", 4, "", -5, 0),
    ("an interval after the previous one", "15s", 4, "S", 1, 15),
    ("an interval after the last of several", "15s", 4, "SSI", 31, 45),
    ("1m30s interval", "1m30s", 4, "S", 1, 90),
    ("1500ms interval (the shortest is 1s)", "1500ms", 4, "S", 0, 1.5),
    ("overdue: in the past, one sample now", "15s", 4, "S", 100, 15),
    ("window complete: none", "15s", 2, "SS", 16, None),
    ("failed early: none", "15s", 4, "F", 1, None),
    ("complete but inconclusive: none", "15s", 2, "SI", 16, None),
]


@pytest.mark.parametrize(
    ("interval", "count", "letters", "now", "due"),
    [pytest.param(*case[1:], id=case[0]) for case in NEXT_DUE_CASES],
)
def test_next_due(interval: str, count: int, letters: str, now: float, due: float | None) -> None:
    metric = query_metric(interval=interval, count=count)
    got = next_due(metric, series(letters), window_start=T0, now=at(now))
    assert got == (None if due is None else at(due))


def test_next_due_walks_a_whole_window_on_a_fake_clock() -> None:
    """Take each sample when due: 4 samples at 0, 15, 30, 45 s, then the verdict."""
    metric = query_metric(interval="15s", count=4)
    taken: list[Measurement] = []
    now = T0
    while (due := next_due(metric, taken, window_start=T0, now=now)) is not None:
        if due <= now:
            taken.append(measure(metric, "pre", QueryResult([0.0]), now))
        now += timedelta(seconds=1)
    assert [m.at for m in taken] == [format_time(at(s)) for s in (0, 15, 30, 45)]
    assert metric_verdict(metric, taken, now) is Verdict.SUCCESS


R, S, F, U = Verdict.RUNNING, Verdict.SUCCESS, Verdict.FAILURE, Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        pytest.param([], S, id="no metrics: success"),
        pytest.param([S, S], S, id="all successful"),
        pytest.param([S, R], R, id="one still running"),
        pytest.param([S, U], U, id="one inconclusive"),
        pytest.param([U, R], R, id="running before inconclusive"),
        pytest.param([S, R, U, F], F, id="any failure first"),
        pytest.param([F], F, id="single failure"),
    ],
)
def test_overall(verdicts: list[Verdict], expected: Verdict) -> None:
    assert overall(verdicts) is expected
    assert overall(iter(verdicts)) is expected


# ----------------------------------------------------------------------------- helpers

API_MD_QUERY = (
    'sum(rate(http_requests_total{namespace="{{namespace}}",app="{{name}}",color="{{color}}",status=~"5.."}[1m]))\n'
    '/ sum(rate(http_requests_total{namespace="{{namespace}}",app="{{name}}",color="{{color}}"}[1m]))'
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(
            "{{namespace}}/{{name}}/{{color}}/{{revision}}", "prod/shop/green/7c9f", id="all four"
        ),
        pytest.param(
            "{{ namespace }}|{{  name}}|{{color  }}|{{\trevision\t}}",
            "prod|shop|green|7c9f",
            id="spaces inside the braces",
        ),
        pytest.param("{{name}}-{{name}}", "shop-shop", id="repeated"),
        pytest.param(
            "{{pod}} {{ other }} {{Name}} {name} {{{name}}}",
            "{{pod}} {{ other }} {{Name}} {name} {shop}",
            id="nothing else is replaced",
        ),
        pytest.param('up{job="x"}', 'up{job="x"}', id="no placeholder"),
        pytest.param(
            API_MD_QUERY,
            'sum(rate(http_requests_total{namespace="prod",app="shop",color="green",status=~"5.."}[1m]))\n'
            '/ sum(rate(http_requests_total{namespace="prod",app="shop",color="green"}[1m]))',
            id="the api.md error-rate query",
        ),
    ],
)
def test_render_query(template: str, expected: str) -> None:
    assert render_query(template, "prod", "shop", Color.GREEN, "7c9f") == expected


def test_render_query_does_not_rescan_values() -> None:
    assert render_query("{{revision}}", "ns", "shop", "blue", "{{name}}\\1") == "{{name}}\\1"


def test_bounded_keeps_the_newest_per_phase_and_metric_in_order() -> None:
    a = series("SSSS", metric="a")
    b = series("FF", metric="b")
    post = [m.model_copy(update={"phase": "post"}) for m in series("III", metric="a")]
    mixed = [a[0], b[0], a[1], post[0], a[2], b[1], post[1], a[3], post[2]]
    assert bounded(mixed, 2) == [b[0], a[2], b[1], post[1], a[3], post[2]]
    assert bounded(mixed, 10) == mixed
    assert bounded(mixed, 0) == []
    with pytest.raises(ValueError, match="negative"):
        bounded(mixed, -1)


# ----------------------------------------------------------------------------- summaries

SUMMARY_CASES = [
    # name, failureLimit, measurements (letter, message), the summary line
    (
        "success quotes the latest sample",
        0,
        [("S", "0.01 <= max 0.05"), ("S", "0.02 <= max 0.05")],
        "error-rate Successful (2/2 taken, 0 failed; 0.02 <= max 0.05)",
    ),
    (
        "failure quotes the failed sample, not a later good one",
        1,
        [("F", "0.4 > max 0.05"), ("F", "0.3 > max 0.05")],
        "error-rate Failed (2/2 taken, 2 failed; 0.3 > max 0.05)",
    ),
    (
        "inconclusive quotes why, not the last good sample",
        0,
        [("I", "12 requests < minRequests 20"), ("S", "0 <= max 0.05")],
        "error-rate Inconclusive (2/2 taken, 0 failed, 1 inconclusive; "
        "12 requests < minRequests 20)",
    ),
    (
        "an error counts as inconclusive and is quoted",
        0,
        [("S", "0 <= max 0.05"), ("E", "bad_data: parse error")],
        "error-rate Inconclusive (2/2 taken, 0 failed, 1 inconclusive; bad_data: parse error)",
    ),
]


@pytest.mark.parametrize(
    ("failure_limit", "taken", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in SUMMARY_CASES],
)
def test_summary_explains_the_verdict(
    failure_limit: int, taken: list[tuple[str, str]], expected: str
) -> None:
    metric = query_metric(count=len(taken), failure_limit=failure_limit)
    measurements = [
        m.model_copy(update={"message": message})
        for m, (_, message) in zip(series("".join(c for c, _ in taken)), taken, strict=True)
    ]
    verdicts = {metric.name: metric_verdict(metric, measurements, now=at(3600))}
    assert summary([metric], measurements, verdicts, at(3600)) == expected
