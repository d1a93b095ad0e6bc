"""Taking one analysis sample through the MetricsSource port (`bluegreen.core.ports`).

Pure by imports (no network, no clock): the adapter (`bluegreen.adapters.sources`) is
handed in by the caller, and the time of the sample (`now`, for CloudWatch's window) too.
Job metrics are not sampled here: their measurements come from the Jobs the release
starts (`bluegreen.release.jobs`).
"""

from __future__ import annotations

from datetime import datetime

from bluegreen.api.v1alpha1 import Metric
from bluegreen.core.analysis import QueryResult, render_query, with_guard
from bluegreen.core.cloudwatch import build_request
from bluegreen.core.ports import MetricsSource


def sample_metric(
    source: MetricsSource,
    metric: Metric,
    *,
    address: str | None,
    namespace: str,
    name: str,
    color: str,
    revision: str,
    now: datetime | None = None,
) -> QueryResult:
    """Take one sample of `metric` for one colour: render its query (or URL) with the app's
    namespace, name, colour and revision, read it, and, for a metric with minRequestsQuery,
    read the guard too (only when the query itself answered). Blocking: call it from a
    worker thread."""

    def render(template: str) -> str:
        return render_query(template, namespace, name, color, revision)

    if metric.url is not None:
        return source.probe(render(metric.url))
    if metric.cloudwatch is not None:
        if now is None:
            return QueryResult(error="a CloudWatch sample needs the time it is taken", invalid=True)
        return source.cloudwatch(build_request(metric.cloudwatch, render, now))
    if metric.job is not None:
        return QueryResult(error="job metrics are measured by their Jobs", invalid=True)
    if metric.query is None:
        return QueryResult(error="the metric has no source", invalid=True)
    if address is None:
        return QueryResult(error="query metrics need analysis.prometheus.address", invalid=True)
    result = source.query(address, render(metric.query))
    if metric.min_requests_query is None or result.error is not None:
        return result
    return with_guard(result, source.query(address, render(metric.min_requests_query)))
