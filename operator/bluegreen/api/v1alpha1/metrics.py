"""Analysis: metrics (Prometheus queries, web checks, CloudWatch and Jobs), their thresholds
and windows."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from bluegreen.api import durations
from bluegreen.api.v1alpha1.base import (
    ANALYSIS_PROMETHEUS,
    CLOUDWATCH_THRESHOLD,
    GUARD_KIND,
    JOB_THRESHOLD,
    LIST_MAP,
    METRIC_FAILURE_LIMIT,
    METRIC_INTERVAL,
    METRIC_KIND,
    METRIC_MIN_REQUESTS,
    METRIC_THRESHOLD,
    MIN_INTERVAL_SECONDS,
    THRESHOLD_EMPTY,
    THRESHOLD_ORDER,
    Model,
    cel,
    unique_names,
)
from bluegreen.api.v1alpha1.providers import CloudWatchMetric, JobMetric
from bluegreen.api.v1alpha1.refs import TemplateAnalysis


class ThresholdRange(Model):
    model_config = cel(
        ("has(self.min) || has(self.max)", THRESHOLD_EMPTY),
        ("!has(self.min) || !has(self.max) || self.min <= self.max", THRESHOLD_ORDER),
    )

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError(THRESHOLD_EMPTY)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(THRESHOLD_ORDER)
        return self


class NoDataPolicy(enum.StrEnum):
    INCONCLUSIVE = "Inconclusive"
    FAIL = "Fail"
    PASS = "Pass"  # noqa: S105 - a no-data policy, not a password


def promql(description: str) -> Any:
    """An optional PromQL query field."""
    return Field(default=None, min_length=1, max_length=4096, description=description)


def web_url(pattern: str, description: str) -> Any:
    """An optional URL field of a web check."""
    return Field(
        default=None, min_length=1, max_length=2048, pattern=pattern, description=description
    )


class Metric(Model):
    model_config = cel(
        (
            "[has(self.query), has(self.url), has(self.cloudwatch), has(self.job)]"
            ".filter(x, x).size() == 1",
            METRIC_KIND,
        ),
        ("!has(self.query) || has(self.thresholdRange)", METRIC_THRESHOLD),
        ("!has(self.cloudwatch) || has(self.thresholdRange)", CLOUDWATCH_THRESHOLD),
        ("!has(self.job) || !has(self.thresholdRange)", JOB_THRESHOLD),
        (
            # minRequests goes with minRequestsQuery (its own rule): naming the query is enough.
            "!(has(self.cloudwatch) || has(self.job)) || !has(self.minRequestsQuery)",
            GUARD_KIND,
        ),
        ("self.failureLimit < self.count", METRIC_FAILURE_LIMIT),
        ("has(self.minRequestsQuery) == has(self.minRequests)", METRIC_MIN_REQUESTS),
        (
            f"!has(self.interval) || (duration(self.interval) >= duration('{MIN_INTERVAL_SECONDS}s')"
            " && duration(self.interval) <= duration('1h'))",
            METRIC_INTERVAL,
        ),
    )

    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ]
    query: str | None = promql(
        "PromQL; {{namespace}} {{name}} {{color}} {{revision}} are replaced."
    )
    url: str | None = web_url(r"^https?://", "web check: an http(s) URL that must answer 2xx.")
    cloudwatch: CloudWatchMetric | None = Field(
        default=None,
        description="Amazon CloudWatch GetMetricData: every datapoint the queries return over "
        "the lookback window must be inside thresholdRange.",
    )
    job: JobMetric | None = Field(
        default=None,
        description="A Kubernetes Job run against the preview Service: each measurement is "
        "one Job, Successful when it completes, Failed when it fails or times out.",
    )
    threshold_range: ThresholdRange | None = Field(
        default=None,
        description="The range a value must be in (min and max inclusive); a web check "
        "defaults to min 1: answered 2xx.",
    )
    interval: Annotated[
        str,
        Field(
            pattern=durations.PATTERN,
            description="Time between measurements: a Go duration such as 15s or 1m30s.",
        ),
    ] = "15s"
    count: Annotated[int, Field(ge=1, le=100, description="Measurements in one window.")] = 4
    failure_limit: Annotated[
        int, Field(ge=0, le=100, description="Failed measurements a window may hold and pass.")
    ] = 0
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.INCONCLUSIVE,
        description="What a measurement without data is: Inconclusive (pause), Fail or Pass.",
    )
    min_requests_query: str | None = promql(
        "PromQL giving the requests behind a measurement (a guard)."
    )
    min_requests: Annotated[
        float | None,
        Field(ge=0, description="Below this many requests a measurement is inconclusive."),
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        sources = (self.query, self.url, self.cloudwatch, self.job)
        if sum(source is not None for source in sources) != 1:
            raise ValueError(METRIC_KIND)
        if self.query is not None and self.threshold_range is None:
            raise ValueError(METRIC_THRESHOLD)
        if self.cloudwatch is not None and self.threshold_range is None:
            raise ValueError(CLOUDWATCH_THRESHOLD)
        if self.job is not None and self.threshold_range is not None:
            raise ValueError(JOB_THRESHOLD)
        guarded = self.min_requests_query is not None
        if (self.cloudwatch is not None or self.job is not None) and guarded:
            raise ValueError(GUARD_KIND)
        if self.failure_limit >= self.count:
            raise ValueError(METRIC_FAILURE_LIMIT)
        if (self.min_requests_query is None) != (self.min_requests is None):
            raise ValueError(METRIC_MIN_REQUESTS)
        if not MIN_INTERVAL_SECONDS <= durations.parse(self.interval) <= 3600:
            raise ValueError(METRIC_INTERVAL)
        return self


class PrometheusProvider(Model):
    address: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://")]


class Analysis(Model):
    model_config = cel(
        (
            "has(self.prometheus) || ((!has(self.prePromotion) || self.prePromotion.all(m, !has(m.query)))"
            " && (!has(self.postPromotion) || self.postPromotion.all(m, !has(m.query))))",
            ANALYSIS_PROMETHEUS,
        ),
    )

    prometheus: PrometheusProvider | None = Field(
        default=None, description="The Prometheus that query metrics ask."
    )
    pre_promotion: Annotated[list[Metric], Field(max_length=20, json_schema_extra=LIST_MAP)] = (
        Field(default_factory=list)
    )
    post_promotion: Annotated[list[Metric], Field(max_length=20, json_schema_extra=LIST_MAP)] = (
        Field(default_factory=list)
    )
    pre_promotion_analysis: TemplateAnalysis | None = Field(
        default=None,
        description="Metrics from AnalysisTemplates, judged with prePromotion (and by "
        "canary steps without checks of their own).",
    )
    post_promotion_analysis: TemplateAnalysis | None = Field(
        default=None,
        description="Metrics from AnalysisTemplates, judged with postPromotion.",
    )

    @field_validator("pre_promotion", "post_promotion")
    @classmethod
    def _unique_names(cls, metrics: list[Metric]) -> list[Metric]:
        return unique_names(
            metrics, "metric names must be unique within prePromotion and postPromotion"
        )

    @model_validator(mode="after")
    def _prometheus(self) -> Analysis:
        metrics = [*self.pre_promotion, *self.post_promotion]
        if self.prometheus is None and any(m.query is not None for m in metrics):
            raise ValueError(ANALYSIS_PROMETHEUS)
        return self
