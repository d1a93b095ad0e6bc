"""Amazon CloudWatch metrics, the pure half: the GetMetricData request a metric asks for,
and the sample its answer gives. The adapter (`bluegreen.adapters.cloudwatch`) only sends
the request and maps transport errors.

    request = build_request(metric.cloudwatch, render, now)   # CloudWatchRequest
    answer = client.get_metric_data(**request.api_arguments())
    sample = judge_results(request, answer["MetricDataResults"], answer.get("Messages", []))

The values judged are every datapoint of the queries that return data (`returnData`, true
unless set false), over [now - lookback, now]; each must be inside thresholdRange, as the
series of a Prometheus answer. No datapoint at all is no data (the metric's `noData`),
never a pass and never a failure by default: CloudWatch leaves out the periods where a
metric was not published, and metric math leaves out what it cannot compute (0/0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bluegreen.api import durations
from bluegreen.api.v1alpha1 import CloudWatchMetric, MetricDataQuery
from bluegreen.core.analysis import QueryResult

PARTIAL = "PartialData"
COMPLETE = "Complete"


@dataclass(frozen=True)
class CloudWatchRequest:
    """One GetMetricData call, ready to send."""

    region: str | None
    """None: the operator's own region (its AWS configuration)."""
    queries: tuple[Mapping[str, Any], ...]
    """MetricDataQueries exactly as the API takes them (placeholders filled in)."""
    start: datetime
    end: datetime
    returned: tuple[str, ...]
    """The ids whose datapoints are judged."""

    @property
    def lookback(self) -> str:
        seconds = (self.end - self.start).total_seconds()
        return f"{seconds / 60:g}m" if seconds % 60 == 0 else f"{seconds:g}s"

    def api_arguments(self) -> dict[str, Any]:
        """Keyword arguments of boto3's `get_metric_data` (NextToken aside)."""
        return {
            "MetricDataQueries": [dict(q) for q in self.queries],
            "StartTime": self.start,
            "EndTime": self.end,
            "ScanBy": "TimestampDescending",
        }


def build_request(
    source: CloudWatchMetric, render: Callable[[str], str], now: datetime
) -> CloudWatchRequest:
    """The request for one measurement at `now`: [now - lookback, now], whole seconds.
    `render` fills {{namespace}} {{name}} {{color}} {{revision}} into dimension values and
    expressions."""
    end = now.replace(microsecond=0)
    start = end - timedelta(seconds=durations.parse(source.lookback))
    return CloudWatchRequest(
        region=source.region,
        queries=tuple(_query(q, render) for q in source.queries),
        start=start,
        end=end,
        returned=tuple(q.id for q in source.queries if q.returns_data),
    )


def _query(query: MetricDataQuery, render: Callable[[str], str]) -> dict[str, Any]:
    out: dict[str, Any] = {"Id": query.id}
    if query.expression is not None:
        out["Expression"] = render(query.expression)
    if query.metric_stat is not None:
        stat = query.metric_stat
        out["MetricStat"] = {
            "Metric": {
                "Namespace": stat.namespace,
                "MetricName": stat.metric_name,
                "Dimensions": [{"Name": d.name, "Value": render(d.value)} for d in stat.dimensions],
            },
            "Period": stat.period,
            "Stat": stat.stat,
        }
    if query.return_data is not None:
        out["ReturnData"] = query.return_data
    return out


def judge_results(
    request: CloudWatchRequest,
    results: Sequence[Mapping[str, Any]],
    messages: Sequence[Mapping[str, Any]] = (),
) -> QueryResult:
    """The sample of a GetMetricData answer (every page's MetricDataResults together).

    - a returned query whose StatusCode is Forbidden or InternalError -> an error
      (inconclusive): its datapoints cannot be trusted to be all of them;
    - one still PartialData (more pages than the adapter reads) -> an error;
    - otherwise every datapoint of the returned queries, newest first per query; none at
      all -> no data, with CloudWatch's messages, if any, in the detail.
    """
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        by_id.setdefault(str(result.get("Id", "")), []).append(result)
    values: list[float] = []
    counts: list[str] = []
    for query_id in request.returned:
        parts = by_id.get(query_id, [])
        status = _status(parts)
        if status in ("Forbidden", "InternalError"):
            why = _messages([m for r in parts for m in r.get("Messages") or []])
            return QueryResult(error=f"CloudWatch query {query_id}: {status}{why}")
        if status == PARTIAL:
            return QueryResult(
                error=f"CloudWatch query {query_id}: more datapoints than one measurement "
                "reads (PartialData); raise its period or shorten the lookback"
            )
        points = [float(v) for r in parts for v in r.get("Values") or []]
        values.extend(points)
        counts.append(f"{query_id}: {len(points)} datapoint{'s' if len(points) != 1 else ''}")
    detail = f"CloudWatch {', '.join(counts)} in {request.lookback}"
    if not values:
        detail += _messages(messages)
    return QueryResult(values=tuple(values), detail=detail)


def _status(parts: Sequence[Mapping[str, Any]]) -> str:
    """The status of one query over all pages: the last page's, unless one was worse."""
    codes = [str(r.get("StatusCode") or COMPLETE) for r in parts]
    for bad in ("Forbidden", "InternalError"):
        if bad in codes:
            return bad
    return codes[-1] if codes else COMPLETE


def _messages(messages: Sequence[Mapping[str, Any]]) -> str:
    texts = [f"{m.get('Code', '')}: {m.get('Value', '')}".strip(": ") for m in messages]
    texts = [t for t in texts if t]
    return f" ({'; '.join(texts)[:300]})" if texts else ""
