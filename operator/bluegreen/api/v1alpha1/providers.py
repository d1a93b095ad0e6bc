"""Analysis providers beside Prometheus and web checks: Amazon CloudWatch and Kubernetes Jobs.

A metric names exactly one source (`query`, `url`, `cloudwatch` or `job`); the window rules
(`interval`, `count`, `failureLimit`, `noData`) are the same for all of them.

    cloudwatch:                      # GetMetricData, with the operator's AWS credentials
      region: us-east-1              # default: the operator's own region
      lookback: 5m                   # the data asked for: [now - lookback, now]
      queries:                       # MetricDataQueries, as the CloudWatch API takes them
        - {id: errors, returnData: false, metricStat: {namespace: AWS/ApplicationELB,
           metricName: HTTPCode_Target_5XX_Count, stat: Sum, period: 60, dimensions: [...]}}
        - {id: requests, returnData: false, metricStat: {...RequestCount...}}
        - {id: ratio, expression: "errors / requests"}

    job:                             # a Kubernetes Job run against the preview Service
      timeout: 2m                    # the Job's activeDeadlineSeconds
      template: {spec: {containers: [...]}}
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from bluegreen.api import durations
from bluegreen.api.v1alpha1.base import (
    CLOUDWATCH_LOOKBACK,
    CLOUDWATCH_PERIOD,
    CLOUDWATCH_QUERY_KIND,
    CLOUDWATCH_RETURN,
    JOB_TIMEOUT,
    Model,
    cel,
)
from bluegreen.api.v1alpha1.pods import JobTemplate

LOOKBACK_SECONDS = (60, 86400)
JOB_TIMEOUT_SECONDS = (1, 6 * 3600)
_SHORT_PERIODS = (1, 5, 10, 30)
_KEYED_BY_NAME = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
_KEYED_BY_ID = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]}


# ----------------------------------------------------------------------------- CloudWatch


class Dimension(Model):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    value: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1024,
            description="{{namespace}} {{name}} {{color}} {{revision}} are replaced.",
        ),
    ]


class MetricStat(Model):
    """One metric and how to aggregate it (the API's MetricStat, its Metric flattened in)."""

    model_config = cel(
        (
            "self.period in [1, 5, 10, 30] || self.period % 60 == 0",
            CLOUDWATCH_PERIOD,
        ),
    )

    namespace: Annotated[
        str, Field(min_length=1, max_length=255, description="e.g. AWS/ApplicationELB.")
    ]
    metric_name: Annotated[
        str, Field(min_length=1, max_length=255, description="e.g. HTTPCode_Target_5XX_Count.")
    ]
    dimensions: Annotated[
        list[Dimension], Field(max_length=30, json_schema_extra=_KEYED_BY_NAME)
    ] = Field(default_factory=list)
    stat: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="Sum, Average, Minimum, Maximum, SampleCount, p99, TM(10%:90%)...",
        ),
    ]
    period: Annotated[
        int, Field(ge=1, le=86400, description="Seconds per datapoint: 1, 5, 10, 30 or 60n.")
    ] = 60

    @model_validator(mode="after")
    def _period(self) -> MetricStat:
        if self.period not in _SHORT_PERIODS and self.period % 60 != 0:
            raise ValueError(CLOUDWATCH_PERIOD)
        return self


class MetricDataQuery(Model):
    """One MetricDataQuery of GetMetricData: a metric (metricStat) or metric math
    (expression) over the other queries' ids."""

    model_config = cel(("has(self.expression) != has(self.metricStat)", CLOUDWATCH_QUERY_KIND))

    id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=255,
            pattern=r"^[a-z][a-zA-Z0-9_]*$",
            description="Names the query in expressions: a lowercase letter, then letters, "
            "digits and underscores.",
        ),
    ]
    expression: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2048,
            description="Metric math, e.g. `errors / requests`; {{namespace}} {{name}} "
            "{{color}} {{revision}} are replaced.",
        ),
    ] = None
    metric_stat: MetricStat | None = None
    return_data: bool | None = Field(
        default=None,
        description="Whether its datapoints are judged (CloudWatch's default: true). Set "
        "false on the inputs of an expression.",
    )

    @model_validator(mode="after")
    def _kind(self) -> MetricDataQuery:
        if (self.expression is None) == (self.metric_stat is None):
            raise ValueError(CLOUDWATCH_QUERY_KIND)
        return self

    @property
    def returns_data(self) -> bool:
        return self.return_data is not False


class CloudWatchMetric(Model):
    """Amazon CloudWatch GetMetricData. Every datapoint of the queries that return data,
    over the lookback window, must be inside thresholdRange; no datapoint at all is no data.
    Set `period` equal to `lookback` to judge one value over the whole window."""

    model_config = cel(
        ("self.queries.exists(q, !has(q.returnData) || q.returnData)", CLOUDWATCH_RETURN),
        (
            "duration(self.lookback) >= duration('1m') && duration(self.lookback) <= duration('24h')",
            CLOUDWATCH_LOOKBACK,
        ),
    )

    region: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=32,
            pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$",
            description="The AWS region of the metrics; default: the operator's own region.",
        ),
    ] = None
    lookback: Annotated[
        str,
        Field(
            pattern=durations.PATTERN,
            description="How far back each measurement looks: a Go duration, 1m to 24h.",
        ),
    ] = "5m"
    queries: Annotated[
        list[MetricDataQuery],
        Field(min_length=1, max_length=20, json_schema_extra=_KEYED_BY_ID),
    ]

    @model_validator(mode="after")
    def _consistent(self) -> CloudWatchMetric:
        if not any(q.returns_data for q in self.queries):
            raise ValueError(CLOUDWATCH_RETURN)
        low, high = LOOKBACK_SECONDS
        if not low <= durations.parse(self.lookback) <= high:
            raise ValueError(CLOUDWATCH_LOOKBACK)
        ids = [q.id for q in self.queries]
        if len(set(ids)) != len(ids):
            raise ValueError("CloudWatch query ids must be unique")
        return self


# ----------------------------------------------------------------------------- Jobs


class JobMetric(Model):
    """A Kubernetes Job run against the preview Service: Complete is a Successful
    measurement, Failed a Failed one. A Job still running at `timeout` is stopped by
    Kubernetes (activeDeadlineSeconds) and is Failed."""

    model_config = cel(
        (
            "duration(self.timeout) >= duration('1s') && duration(self.timeout) <= duration('6h')",
            JOB_TIMEOUT,
        ),
    )

    template: JobTemplate
    timeout: Annotated[
        str,
        Field(
            pattern=durations.PATTERN,
            description="The Job's activeDeadlineSeconds: a Go duration, 1s to 6h.",
        ),
    ] = "5m"
    backoff_limit: Annotated[
        int,
        Field(ge=0, le=10, description="Pods that may fail before the Job fails (a retry)."),
    ] = 0

    @model_validator(mode="after")
    def _timeout(self) -> JobMetric:
        low, high = JOB_TIMEOUT_SECONDS
        if not low <= durations.parse(self.timeout) <= high:
            raise ValueError(JOB_TIMEOUT)
        return self

    @property
    def timeout_seconds(self) -> int:
        """Whole seconds, at least one (activeDeadlineSeconds is an integer)."""
        return max(1, round(durations.parse(self.timeout)))
