"""CloudWatch metrics through the operator's metrics source (`AnalysisSources` with the boto3
`CloudWatchProvider`) against moto's real server mode on loopback, then judged as the
release judges them (`evaluate_sample`).

The metric is the one EKS users have behind an ALB: the 5xx answers of the candidate
colour's target group (`{{color}}` in the dimension). Faults AWS has and moto has not come
from loopback stand-ins (tests/support/aws.py): a proxy that answers Throttling, a socket
that never answers. Access denied is moto's own IAM check. What moto does not compute
(metric math beyond naming one query) is said in tests/support/moto.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bluegreen.adapters.cloudwatch import CloudWatchProvider
from bluegreen.adapters.prometheus import HttpMetricsSource
from bluegreen.adapters.sources import AnalysisSources
from bluegreen.api.v1alpha1 import Metric
from bluegreen.core.analysis import MeasurementVerdict, QueryResult, evaluate_sample
from bluegreen.core.sampling import sample_metric
from tests.support.aws import FaultProxy, isolated_aws_env, silent_server
from tests.support.moto import (
    REGION,
    access_key,
    put_datapoints,
    run_moto_server,
    signed_requests_only,
)
from tests.support.process import LOOPBACK, free_port

pytestmark = pytest.mark.timeout(90)

ALB = "AWS/ApplicationELB"
LOAD_BALANCER = "app/shop/0123456789abcdef"
TIMEOUT = 1.0


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def app() -> str:
    """A fresh app name, so tests never see each other's target groups."""
    return f"shop-{uuid.uuid4().hex[:8]}"


def target_group(app: str, color: str) -> str:
    return f"targetgroup/{app}-{color}/fedcba9876543210"


def dimensions(app: str, color: str) -> dict[str, str]:
    return {"LoadBalancer": LOAD_BALANCER, "TargetGroup": target_group(app, color)}


def alb_stat(metric: str, period: int = 60) -> dict[str, Any]:
    return {
        "namespace": ALB,
        "metricName": metric,
        "dimensions": [
            {"name": "LoadBalancer", "value": LOAD_BALANCER},
            {"name": "TargetGroup", "value": "targetgroup/{{name}}-{{color}}/fedcba9876543210"},
        ],
        "stat": "Sum",
        "period": period,
    }


def errors_metric(max_errors: float = 5, **extra: Any) -> Metric:
    """5xx answers of the candidate's target group per minute, over the last 5 minutes."""
    return Metric.model_validate(
        {
            "name": "alb-5xx",
            "thresholdRange": {"max": max_errors},
            "cloudwatch": {
                "lookback": "5m",
                "queries": [{"id": "errors", "metricStat": alb_stat("HTTPCode_Target_5XX_Count")}],
            },
            **extra,
        }
    )


def minutes_ago(*values: float) -> list[tuple[datetime, float]]:
    """One datapoint per minute, the newest a minute ago."""
    now = datetime.now(UTC)
    return [(now - timedelta(minutes=i + 1, seconds=5), v) for i, v in enumerate(values)]


def sources(endpoint: str, **provider: Any) -> AnalysisSources:
    return AnalysisSources(
        HttpMetricsSource(timeout=TIMEOUT),
        CloudWatchProvider(timeout_seconds=TIMEOUT, endpoint_url=endpoint, **provider),
    )


def sample(metric: Metric, source: AnalysisSources, app: str, color: str = "green") -> QueryResult:
    return sample_metric(
        source,
        metric,
        address=None,
        namespace="shop",
        name=app,
        color=color,
        revision="r2",
        now=datetime.now(UTC),
    )


def verdict(metric: Metric, result: QueryResult) -> MeasurementVerdict:
    return evaluate_sample(metric, result).verdict


# ----------------------------------------------------------------------------- data


def test_the_candidate_s_target_group_within_the_range_passes(moto: str, app: str) -> None:
    put_datapoints(
        moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(1, 0, 2)
    )
    # The stable colour's errors are not the candidate's: they do not count.
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "blue"), minutes_ago(90))
    metric = errors_metric(max_errors=5)

    result = sample(metric, sources(moto), app)

    assert result.error is None, result.error
    assert sorted(result.values) == [0.0, 1.0, 2.0]
    assert result.detail == "CloudWatch errors: 3 datapoints in 5m"
    assert verdict(metric, result) is MeasurementVerdict.SUCCESSFUL


def test_one_datapoint_outside_the_range_fails(moto: str, app: str) -> None:
    put_datapoints(
        moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(1, 40)
    )
    metric = errors_metric(max_errors=5)

    result = sample(metric, sources(moto), app)

    assert sorted(result.values) == [1.0, 40.0]
    judged = evaluate_sample(metric, result)
    assert judged.verdict is MeasurementVerdict.FAILED
    assert judged.value == 40.0


def test_inputs_of_an_expression_are_not_judged_only_what_it_returns(moto: str, app: str) -> None:
    """The queries with returnData false feed metric math; only the returned ids count.
    (moto evaluates an expression only when it names one query: see tests/support/moto.py.)"""
    put_datapoints(moto, ALB, "RequestCount", dimensions(app, "green"), minutes_ago(500, 480))
    put_datapoints(
        moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(2, 3)
    )
    metric = Metric.model_validate(
        {
            "name": "alb-5xx",
            "thresholdRange": {"max": 5},
            "cloudwatch": {
                "queries": [
                    {"id": "requests", "returnData": False, "metricStat": alb_stat("RequestCount")},
                    {
                        "id": "errors",
                        "returnData": False,
                        "metricStat": alb_stat("HTTPCode_Target_5XX_Count"),
                    },
                    {"id": "judged", "expression": "errors"},
                ]
            },
        }
    )

    result = sample(metric, sources(moto), app)

    assert sorted(result.values) == [2.0, 3.0]  # not the 500 and 480 requests
    assert result.detail == "CloudWatch judged: 2 datapoints in 5m"
    assert verdict(metric, result) is MeasurementVerdict.SUCCESSFUL


# ----------------------------------------------------------------------------- no data


def test_no_datapoint_is_inconclusive_never_a_pass(moto: str, app: str) -> None:
    """A target group nothing was published for (a new one, a wrong dimension, a period
    without requests): no data, which halts the release instead of passing it."""
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "blue"), minutes_ago(0))
    metric = errors_metric()

    result = sample(metric, sources(moto), app, color="green")

    assert result.error is None and result.values == ()
    assert result.detail == "CloudWatch errors: 0 datapoints in 5m"
    judged = evaluate_sample(metric, result)
    assert judged.verdict is MeasurementVerdict.INCONCLUSIVE
    assert "no data" in judged.message


def test_datapoints_older_than_the_lookback_are_no_data(moto: str, app: str) -> None:
    old = datetime.now(UTC) - timedelta(minutes=20)
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), [(old, 0.0)])

    result = sample(errors_metric(), sources(moto), app)

    assert result.values == ()


def test_no_data_fails_when_the_metric_says_so(moto: str, app: str) -> None:
    metric = errors_metric(noData="Fail")
    assert verdict(metric, sample(metric, sources(moto), app)) is MeasurementVerdict.FAILED


# ----------------------------------------------------------------------------- faults


def test_throttled_on_every_attempt_is_inconclusive_after_backing_off(moto: str, app: str) -> None:
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(0))
    with FaultProxy(moto, fail_first=100, error_type="Throttling", protocol="json-query") as proxy:
        result = sample(errors_metric(), sources(proxy.url, max_attempts=2), app)

    assert proxy.requests == 2  # the first attempt and one retry, then it gives up
    assert result.error == (
        "CloudWatch throttled the request (Throttling: Rate exceeded) 2 times, with backoff"
    )
    assert not result.invalid
    assert verdict(errors_metric(), result) is MeasurementVerdict.INCONCLUSIVE


def test_throttling_within_the_retry_budget_still_reads_the_data(moto: str, app: str) -> None:
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(4))
    with FaultProxy(moto, fail_first=1, error_type="Throttling", protocol="json-query") as proxy:
        result = sample(errors_metric(), sources(proxy.url, max_attempts=3), app)

    assert proxy.requests == 2
    assert result.error is None and result.values == (4.0,)


def test_access_denied_is_inconclusive_and_names_the_missing_permission(
    moto: str, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's role lacks cloudwatch:GetMetricData (moto checks its IAM policies)."""
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", dimensions(app, "green"), minutes_ago(0))
    key_id, secret = access_key(moto, f"operator-{app}", actions=["ecr:DescribeImages"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    metric = errors_metric()

    with signed_requests_only(moto):
        result = sample(metric, sources(moto), app)

    assert result.error is not None
    assert result.error.startswith("access denied by CloudWatch: User: arn:aws:iam::")
    assert f"user/operator-{app} is not authorized to perform" in result.error
    assert "GetMetricData" in result.error
    judged = evaluate_sample(metric, result)
    assert judged.verdict is MeasurementVerdict.INCONCLUSIVE
    assert "access denied by CloudWatch" in judged.message


def test_a_query_cloudwatch_refuses_is_an_error_not_a_retry(moto: str, app: str) -> None:
    with FaultProxy(
        moto,
        fail_first=100,
        error_type="InvalidParameterValue",
        message="The value p100x for parameter Stat is not valid.",
        protocol="json-query",
    ) as proxy:
        result = sample(errors_metric(), sources(proxy.url), app)

    assert proxy.requests == 1
    assert result.invalid
    assert result.error == (
        "CloudWatch refused the query (InvalidParameterValue: The value p100x for parameter "
        "Stat is not valid.)"
    )
    assert verdict(errors_metric(), result) is MeasurementVerdict.ERROR


def test_an_endpoint_that_never_answers_times_out(app: str) -> None:
    with silent_server() as url:
        result = sample(errors_metric(), sources(url, max_attempts=1), app)
    assert result.error == f"CloudWatch unreachable: no answer within {TIMEOUT:g}s"


def test_an_endpoint_nobody_listens_on_is_unreachable(app: str) -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    result = sample(errors_metric(), sources(url, max_attempts=1), app)
    assert result.error is not None
    assert result.error.startswith("CloudWatch unreachable: cannot connect to")


def test_without_credentials_it_says_how_irsa_provides_them(
    moto: str, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = sample(errors_metric(), sources(moto), app)
    assert result.error is not None
    assert result.error.startswith("no AWS credentials found")
    assert "eks.amazonaws.com/role-arn" in result.error


# ----------------------------------------------------------------------------- regions


def test_without_any_region_the_metric_is_an_error(
    moto: str, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    metric = errors_metric()
    result = sample(metric, sources(moto), app)
    assert result.invalid
    assert result.error is not None and "no AWS region" in result.error
    assert verdict(metric, result) is MeasurementVerdict.ERROR


def test_aws_region_alone_is_the_operator_s_region(
    moto: str, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EKS sets AWS_REGION for IRSA; botocore itself reads only AWS_DEFAULT_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    eu = dimensions(app, "green")
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", eu, minutes_ago(3), region="eu-west-1")
    assert sample(errors_metric(), sources(moto), app).values == (3.0,)


def test_the_metric_s_region_wins_over_the_operator_s(moto: str, app: str) -> None:
    here = dimensions(app, "green")
    put_datapoints(
        moto, ALB, "HTTPCode_Target_5XX_Count", here, minutes_ago(7), region="ap-south-1"
    )
    put_datapoints(moto, ALB, "HTTPCode_Target_5XX_Count", here, minutes_ago(1))  # us-east-1
    metric = Metric.model_validate(
        {
            **errors_metric().model_dump(mode="json", by_alias=True, exclude_none=True),
            "cloudwatch": {
                **errors_metric().cloudwatch.model_dump(  # type: ignore[union-attr]
                    mode="json", by_alias=True, exclude_none=True
                ),
                "region": "ap-south-1",
            },
        }
    )
    assert sample(metric, sources(moto), app).values == (7.0,)
