"""CloudWatch metrics, the pure parts: the spec's rules, the GetMetricData request a
measurement sends, and the verdict its answer gives. Table tests with named cases."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.api.v1alpha1 import Metric
from bluegreen.api.v1alpha1.base import (
    CLOUDWATCH_LOOKBACK,
    CLOUDWATCH_PERIOD,
    CLOUDWATCH_QUERY_KIND,
    CLOUDWATCH_RETURN,
    CLOUDWATCH_THRESHOLD,
    GUARD_KIND,
    METRIC_KIND,
    METRIC_MIN_REQUESTS,
)
from bluegreen.core.analysis import MeasurementVerdict, QueryResult, evaluate_sample, render_query
from bluegreen.core.cloudwatch import CloudWatchRequest, build_request, judge_results
from bluegreen.core.sampling import sample_metric

T0 = datetime(2030, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)
DIMENSIONS = [
    {"name": "LoadBalancer", "value": "app/shop/0123456789abcdef"},
    {"name": "TargetGroup", "value": "targetgroup/{{name}}-{{color}}/fedcba9876543210"},
]


def alb_queries() -> list[dict[str, Any]]:
    """The ALB 5xx ratio of one target group: two metrics and the expression over them."""

    def stat(metric: str) -> dict[str, Any]:
        return {
            "namespace": "AWS/ApplicationELB",
            "metricName": metric,
            "dimensions": DIMENSIONS,
            "stat": "Sum",
            "period": 60,
        }

    return [
        {"id": "errors", "returnData": False, "metricStat": stat("HTTPCode_Target_5XX_Count")},
        {"id": "requests", "returnData": False, "metricStat": stat("RequestCount")},
        {"id": "ratio", "expression": "errors / requests"},
    ]


def cloudwatch_metric(**source: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"queries": alb_queries(), **source}
    return {"name": "alb-5xx", "thresholdRange": {"max": 0.01}, "cloudwatch": body}


def with_source(change: dict[str, Any], **metric: Any) -> dict[str, Any]:
    body = cloudwatch_metric()
    body["cloudwatch"].update(change)
    body.update(metric)
    return body


STAT = alb_queries()[0]["metricStat"]

# ----------------------------------------------------------------------------- the spec

VALID = [
    pytest.param(cloudwatch_metric(), id="alb-ratio"),
    pytest.param(cloudwatch_metric(region="eu-west-1", lookback="1m"), id="region-and-1m"),
    pytest.param(cloudwatch_metric(region="us-gov-west-1", lookback="24h"), id="gov-region-24h"),
    pytest.param(
        with_source({"queries": [{"id": "p99", "metricStat": {**STAT, "period": 5}}]}),
        id="high-resolution-period-5",
    ),
    pytest.param(
        with_source({"queries": [{"id": "m1", "metricStat": {**STAT, "period": 300}}]}),
        id="period-300",
    ),
]


@pytest.mark.parametrize("body", VALID)
def test_valid_cloudwatch_metrics_parse(body: dict[str, Any]) -> None:
    metric = Metric.model_validate(body)
    assert metric.cloudwatch is not None


INVALID = [
    pytest.param({**cloudwatch_metric(), "query": "up"}, METRIC_KIND, id="cloudwatch-and-query"),
    pytest.param(
        {k: v for k, v in cloudwatch_metric().items() if k != "thresholdRange"},
        CLOUDWATCH_THRESHOLD,
        id="no-thresholdRange",
    ),
    pytest.param(
        {**cloudwatch_metric(), "minRequestsQuery": "sum(x)", "minRequests": 5},
        GUARD_KIND,
        id="a-promql-guard",
    ),
    pytest.param(
        {**cloudwatch_metric(), "minRequests": 5},
        METRIC_MIN_REQUESTS,
        id="minRequests-without-its-query",
    ),
    pytest.param(
        with_source({"queries": [{"id": "a"}]}), CLOUDWATCH_QUERY_KIND, id="query-with-nothing"
    ),
    pytest.param(
        with_source(
            {
                "queries": [
                    {"id": "a", "expression": "b", "metricStat": alb_queries()[0]["metricStat"]}
                ]
            }
        ),
        CLOUDWATCH_QUERY_KIND,
        id="query-with-both",
    ),
    pytest.param(
        with_source({"queries": [{**q, "returnData": False} for q in alb_queries()]}),
        CLOUDWATCH_RETURN,
        id="nothing-returns-data",
    ),
    pytest.param(
        with_source({"queries": [{"id": "m", "metricStat": {**STAT, "period": 45}}]}),
        CLOUDWATCH_PERIOD,
        id="period-45",
    ),
    pytest.param(with_source({"lookback": "30s"}), CLOUDWATCH_LOOKBACK, id="lookback-30s"),
    pytest.param(with_source({"lookback": "25h"}), CLOUDWATCH_LOOKBACK, id="lookback-25h"),
    pytest.param(with_source({"lookback": "5 minutes"}), "should match", id="lookback-words"),
    pytest.param(with_source({"region": "US-EAST-1"}), "should match", id="region-uppercase"),
    pytest.param(with_source({"region": "evil.example.com/"}), "should match", id="region-a-host"),
    pytest.param(
        with_source({"queries": [{"id": "Errors", "expression": "1"}]}),
        "should match",
        id="id-uppercase",
    ),
    pytest.param(
        with_source({"queries": [{"id": "a", "expression": "1"}, {"id": "a", "expression": "2"}]}),
        "unique",
        id="duplicate-ids",
    ),
    pytest.param(with_source({"queries": []}), "at least 1", id="no-queries"),
    pytest.param(
        with_source({"endpointUrl": "http://169.254.169.254/"}),
        "Extra inputs are not permitted",
        id="no-endpoint-for-app-authors",
    ),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_invalid_cloudwatch_metrics_say_why(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Metric.model_validate(body)
    assert message in str(info.value)


# ----------------------------------------------------------------------------- the request


def render(template: str) -> str:
    return render_query(template, "shop", "checkout", "green", "abc123")


def test_the_request_is_the_api_shape_with_placeholders_filled_and_whole_seconds() -> None:
    metric = Metric.model_validate(cloudwatch_metric(region="eu-west-1", lookback="5m"))
    assert metric.cloudwatch is not None
    request = build_request(metric.cloudwatch, render, T0)
    assert request.region == "eu-west-1"
    assert request.end == T0.replace(microsecond=0)
    assert request.end - request.start == timedelta(minutes=5)
    assert request.returned == ("ratio",)
    errors, requests, ratio = request.queries
    assert errors == {
        "Id": "errors",
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": "app/shop/0123456789abcdef"},
                    {"Name": "TargetGroup", "Value": "targetgroup/checkout-green/fedcba9876543210"},
                ],
            },
            "Period": 60,
            "Stat": "Sum",
        },
    }
    assert requests["MetricStat"]["Metric"]["MetricName"] == "RequestCount"
    assert ratio == {"Id": "ratio", "Expression": "errors / requests"}  # ReturnData: default
    arguments = request.api_arguments()
    assert arguments["StartTime"] == request.start and arguments["EndTime"] == request.end
    assert arguments["ScanBy"] == "TimestampDescending"
    assert request.lookback == "5m"


def test_without_a_region_the_operator_s_own_is_used() -> None:
    metric = Metric.model_validate(cloudwatch_metric())
    assert metric.cloudwatch is not None
    assert build_request(metric.cloudwatch, render, T0).region is None


# ----------------------------------------------------------------------------- the answer

REQUEST = CloudWatchRequest(
    region="us-east-1",
    queries=(),
    start=T0 - timedelta(minutes=5),
    end=T0,
    returned=("ratio",),
)
TWO = CloudWatchRequest(
    region="us-east-1",
    queries=(),
    start=T0 - timedelta(minutes=5),
    end=T0,
    returned=("a", "b"),
)


def result(query: str, *values: float, status: str = "Complete", **extra: Any) -> dict[str, Any]:
    return {"Id": query, "Values": list(values), "StatusCode": status, **extra}


OK, FAILED, UNSURE = (
    MeasurementVerdict.SUCCESSFUL,
    MeasurementVerdict.FAILED,
    MeasurementVerdict.INCONCLUSIVE,
)


@dataclass(frozen=True)
class Answer:
    results: list[dict[str, Any]]
    verdict: MeasurementVerdict
    value: float | None
    words: str
    messages: tuple[dict[str, Any], ...] = ()
    request: CloudWatchRequest = REQUEST


ANSWERS = {
    "every-datapoint-inside": Answer([result("ratio", 0.001, 0.004)], OK, 0.004, "2 datapoints"),
    "one-datapoint-outside": Answer([result("ratio", 0.001, 0.2)], FAILED, 0.2, "0.2 > max 0.01"),
    "no-datapoint-is-no-data": Answer([result("ratio")], UNSURE, None, "no data"),
    "absent-query-is-no-data": Answer([], UNSURE, None, "ratio: 0 datapoints"),
    "no-data-says-cloudwatch-s-messages": Answer(
        [result("ratio")],
        UNSURE,
        None,
        "MaxQueryTimeRangeExceed: too long",
        messages=({"Code": "MaxQueryTimeRangeExceed", "Value": "too long"},),
    ),
    "inputs-not-returned-are-not-judged": Answer(
        [result("errors", 500.0), result("ratio", 0.002)], OK, 0.002, "ratio: 1 datapoint in 5m"
    ),
    "pages-are-joined": Answer(
        [result("ratio", 0.001), result("ratio", 0.5)], FAILED, 0.5, "2 datapoints"
    ),
    "forbidden-is-inconclusive": Answer(
        [result("ratio", 0.001, status="Forbidden", Messages=[{"Code": "Forbidden"}])],
        UNSURE,
        None,
        "CloudWatch query ratio: Forbidden",
    ),
    "internal-error-is-inconclusive": Answer(
        [result("ratio", status="InternalError")], UNSURE, None, "InternalError"
    ),
    "partial-data-is-inconclusive": Answer(
        [result("ratio", 0.001, status="PartialData")], UNSURE, None, "PartialData"
    ),
    "two-returned-queries-both-judged": Answer(
        [result("a", 0.001), result("b", 0.3)],
        FAILED,
        0.3,
        "a: 1 datapoint, b: 1 datapoint",
        request=TWO,
    ),
    "one-of-two-with-data": Answer(
        [result("a", 0.001), result("b")], OK, 0.001, "b: 0 datapoints", request=TWO
    ),
}


@pytest.mark.parametrize("c", [pytest.param(c, id=k) for k, c in ANSWERS.items()])
def test_the_answer_gives_the_verdict(c: Answer) -> None:
    metric = Metric.model_validate(cloudwatch_metric())
    judged = evaluate_sample(metric, judge_results(c.request, c.results, c.messages))
    assert judged.verdict is c.verdict
    if c.value is None:
        assert judged.value is None
    else:
        assert judged.value is not None and math.isclose(judged.value, c.value)
    assert c.words in judged.message


@pytest.mark.parametrize(
    ("policy", "verdict"), [("Inconclusive", UNSURE), ("Fail", FAILED), ("Pass", OK)]
)
def test_no_datapoint_follows_the_no_data_policy(policy: str, verdict: MeasurementVerdict) -> None:
    metric = Metric.model_validate({**cloudwatch_metric(), "noData": policy})
    assert evaluate_sample(metric, judge_results(REQUEST, [result("ratio")])).verdict is verdict


# ----------------------------------------------------------------------------- sampling


class RecordingSource:
    """A MetricsSource that records the CloudWatch request it is handed."""

    def __init__(self) -> None:
        self.requests: list[CloudWatchRequest] = []

    def query(self, address: str, promql: str) -> QueryResult:
        raise AssertionError("a CloudWatch metric asks no Prometheus")

    def probe(self, url: str) -> QueryResult:
        raise AssertionError("a CloudWatch metric makes no web check")

    def refusal(self, prometheus: str | None, url: str | None) -> str | None:
        return None

    def cloudwatch(self, request: CloudWatchRequest) -> QueryResult:
        self.requests.append(request)
        return QueryResult(values=(0.0,))


def test_sampling_a_cloudwatch_metric_sends_one_request_for_the_candidate_at_now() -> None:
    source = RecordingSource()
    metric = Metric.model_validate(cloudwatch_metric())
    sample = sample_metric(
        source, metric, address=None, namespace="shop", name="checkout", color="blue",
        revision="r1", now=T0,
    )  # fmt: skip
    assert sample.values == (0.0,)
    (sent,) = source.requests
    assert sent.end == T0.replace(microsecond=0)
    dims = sent.queries[0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims[1]["Value"] == "targetgroup/checkout-blue/fedcba9876543210"


def test_sampling_a_cloudwatch_metric_without_a_time_is_an_error_not_a_request() -> None:
    source = RecordingSource()
    metric = Metric.model_validate(cloudwatch_metric())
    sample = sample_metric(
        source, metric, address=None, namespace="shop", name="checkout", color="blue",
        revision="r1",
    )  # fmt: skip
    assert sample.error is not None and sample.invalid
    assert source.requests == []
