"""Analysis: turn metric samples into verdicts. Pure: no I/O, no clock reads (`now` is given).

Three levels, each with a verdict that can say "I do not know":

    QueryResult  what a provider answered for one query (values, or an error)
        -> evaluate_sample(metric, result) -> SampleJudgement: Successful | Failed | Inconclusive | Error
    Measurement  one SampleJudgement stamped with its metric, analysis phase and time (lives in status)
        -> metric_verdict(metric, measurements, now) -> Verdict: Running | Successful | Failed
                                                                  | Inconclusive
    overall(verdicts) -> Verdict of a whole analysis phase (prePromotion or postPromotion)

"No data" is never a pass and never a failure unless the metric says so (`noData`); NaN, an
unreachable Prometheus (or CloudWatch) and too little traffic (`minRequests`) are
inconclusive. Only a measured value outside `thresholdRange` fails, or a Job that failed
(a job metric). (flagger's ErrNoValuesFound, argo-rollouts' Inconclusive.)

Window rules (`metric_verdict`), for a metric with `count` and `failureLimit`:

- FAILURE as soon as more than `failureLimit` measurements failed, even mid-window.
- RUNNING until `count` measurements are taken.
- At the end, SUCCESS needs at least `count - failureLimit` successful measurements. So the
  inconclusive (and error) measurements share the `failureLimit` budget with the failures,
  but they can never turn the window into a FAILURE: beyond that budget the window is
  INCONCLUSIVE. With the default `failureLimit: 0`, a single inconclusive measurement makes
  the window INCONCLUSIVE: no data never becomes SUCCESS by default.
- The window is not cut short by inconclusive measurements: the remaining ones may still
  show a failure, which is worth more (a rollback) than an early "do not know" (a pause).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bluegreen.api import durations, timestamps
from bluegreen.api.v1alpha1 import (
    AnalysisPhase,
    Measurement,
    MeasurementVerdict,
    Metric,
    NoDataPolicy,
    ThresholdRange,
    Verdict,
)

WEB_DEFAULT_RANGE = ThresholdRange(min=1.0)
"""A web check (`url`) without thresholdRange: its value is 1 on a 2xx answer and 0 on any
other status, so the default asks for min 1, that is "answered 2xx"."""


@dataclass(frozen=True)
class QueryResult:
    """What a provider answered for one query (or one web check)."""

    values: Sequence[float] = ()
    """One value per series of an instant vector (a scalar is one value); empty = no data."""
    error: str | None = None
    """Set when there is no answer to judge: the message says why."""
    requests: float | None = None
    """The value of the metric's minRequestsQuery, when it has one (see `with_guard`)."""
    invalid: bool = False
    """With `error`: the query itself is wrong, retrying will not help (an Error verdict)."""
    detail: str = ""
    """Extra words for the measurement's message, such as "HTTP 503" for a web check."""


@dataclass(frozen=True)
class SampleJudgement:
    """The verdict of one sample, before it is stamped with a time."""

    verdict: MeasurementVerdict
    value: float | None
    message: str


# ----------------------------------------------------------------------------- queries


_PLACEHOLDER = re.compile(r"\{\{\s*(namespace|name|color|revision)\s*\}\}")


def render_query(template: str, namespace: str, name: str, color: str, revision: str) -> str:
    """Replace {{namespace}} {{name}} {{color}} {{revision}} (spaces inside the braces are
    fine) and leave everything else, other {{...}} included, as it is. The values are DNS
    labels, a colour and a hash, so they need no quoting inside PromQL strings."""
    values = {"namespace": namespace, "name": name, "color": str(color), "revision": revision}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def with_guard(result: QueryResult, guard: QueryResult) -> QueryResult:
    """Attach the answer of a metric's minRequestsQuery to the answer of its query.

    No series means no requests (0). Several series are added up. A guard that could not be
    measured makes the whole sample an error (so inconclusive): no guard, no verdict."""
    if result.error is not None:
        return result
    if guard.error is not None:
        return replace(result, error=f"minRequestsQuery: {guard.error}", invalid=guard.invalid)
    return replace(result, requests=math.fsum(guard.values) if guard.values else 0.0)


# ----------------------------------------------------------------------------- one sample


def threshold_range(metric: Metric) -> ThresholdRange | None:
    """The metric's range; a web check defaults to WEB_DEFAULT_RANGE (min 1: answered 2xx),
    and so does a job metric (1: its Job completed, 0: it failed)."""
    if metric.threshold_range is not None:
        return metric.threshold_range
    return WEB_DEFAULT_RANGE if metric.url is not None or metric.job is not None else None


def evaluate_sample(metric: Metric, result: QueryResult) -> SampleJudgement:
    """Judge one sample. In this order:

    1. the provider gave an error -> Inconclusive (Error if the query itself is invalid);
    2. below minRequests (or the guard has no value) -> Inconclusive, whatever the value:
       a handful of requests proves nothing either way;
    3. no series -> metric.noData: Inconclusive (default), Fail or Pass;
    4. a finite value outside thresholdRange (min and max inclusive) in ANY series -> Failed;
    5. a NaN or +-Inf in any series -> Inconclusive (0/0 is what an error ratio gives
       when there was no traffic);
    6. otherwise every series is inside the range -> Successful.

    A failing series wins over a NaN one: a measured failure is a fact.
    """
    if result.error is not None:
        verdict = MeasurementVerdict.ERROR if result.invalid else MeasurementVerdict.INCONCLUSIVE
        return SampleJudgement(verdict, None, _join(result.detail, result.error))
    if metric.job is not None:
        return _job_outcome(result)
    bounds = threshold_range(metric)
    if bounds is None:
        return SampleJudgement(
            MeasurementVerdict.ERROR, None, "a query metric needs thresholdRange"
        )
    values = list(result.values)
    if metric.min_requests is not None:
        short = _below_min_requests(metric.min_requests, result.requests)
        if short is not None:
            return SampleJudgement(MeasurementVerdict.INCONCLUSIVE, _worst(values, bounds), short)
    if not values:
        return _no_data(metric.no_data, result.detail)
    several = len(values) > 1
    outside = [(i, v) for i, v in enumerate(values) if math.isfinite(v) and not _inside(v, bounds)]
    if outside:
        i, v = outside[0]
        message = _compare(v, bounds)
        if several:
            message = f"{len(outside)} of {len(values)} series outside thresholdRange; series {i + 1}: {message}"
        return SampleJudgement(MeasurementVerdict.FAILED, v, _join(result.detail, message))
    odd = [(i, v) for i, v in enumerate(values) if not math.isfinite(v)]
    if odd:
        i, v = odd[0]
        message = _fmt(v) if not several else f"series {i + 1} of {len(values)} is {_fmt(v)}"
        return SampleJudgement(
            MeasurementVerdict.INCONCLUSIVE, _worst(values, bounds), _join(result.detail, message)
        )
    worst = _worst(values, bounds)
    assert worst is not None
    message = _compare(worst, bounds)
    if several:
        message = f"all {len(values)} series inside thresholdRange; worst: {message}"
    return SampleJudgement(MeasurementVerdict.SUCCESSFUL, worst, _join(result.detail, message))


def measure(metric: Metric, phase: AnalysisPhase, result: QueryResult, at: datetime) -> Measurement:
    """evaluate_sample, stamped: the Measurement to keep in status."""
    outcome = evaluate_sample(metric, result)
    return Measurement(
        metric=metric.name,
        phase=phase,
        at=timestamps.format(at),
        value=outcome.value,
        verdict=outcome.verdict,
        message=outcome.message,
    )


def _below_min_requests(minimum: float, requests: float | None) -> str | None:
    if requests is None:
        return "minRequests guard not measured"
    if math.isnan(requests):
        return f"minRequestsQuery gave NaN, minRequests {_fmt(minimum)}"
    if requests < minimum:
        return f"{_fmt(requests)} requests < minRequests {_fmt(minimum)}"
    return None


def _job_outcome(result: QueryResult) -> SampleJudgement:
    """A finished Job: 1 (Complete) is Successful, 0 (Failed) is Failed; its detail names the
    Job and how to read its logs."""
    if len(result.values) != 1 or result.values[0] not in (0.0, 1.0):
        return SampleJudgement(MeasurementVerdict.ERROR, None, "a Job gives 1 or 0")
    value = result.values[0]
    verdict = MeasurementVerdict.SUCCESSFUL if value == 1.0 else MeasurementVerdict.FAILED
    return SampleJudgement(verdict, value, result.detail)


def _no_data(policy: NoDataPolicy, detail: str) -> SampleJudgement:
    if policy is NoDataPolicy.FAIL:
        return SampleJudgement(
            MeasurementVerdict.FAILED, None, _join(detail, "no data (noData: Fail)")
        )
    if policy is NoDataPolicy.PASS:
        return SampleJudgement(
            MeasurementVerdict.SUCCESSFUL, None, _join(detail, "no data (noData: Pass)")
        )
    return SampleJudgement(MeasurementVerdict.INCONCLUSIVE, None, _join(detail, "no data"))


def _inside(value: float, bounds: ThresholdRange) -> bool:
    if bounds.min is not None and value < bounds.min:
        return False
    return bounds.max is None or value <= bounds.max


def _compare(value: float, bounds: ThresholdRange) -> str:
    v = _fmt(value)
    if bounds.min is not None and value < bounds.min:
        return f"{v} < min {_fmt(bounds.min)}"
    if bounds.max is not None and value > bounds.max:
        return f"{v} > max {_fmt(bounds.max)}"
    if bounds.min is not None and bounds.max is not None:
        return f"{_fmt(bounds.min)} <= {v} <= {_fmt(bounds.max)}"
    if bounds.max is not None:
        return f"{v} <= max {_fmt(bounds.max)}"
    assert bounds.min is not None
    return f"{v} >= min {_fmt(bounds.min)}"


def _worst(values: Sequence[float], bounds: ThresholdRange) -> float | None:
    """The finite value closest to (or furthest beyond) the bound that matters: the largest
    with a max, else the smallest. None when no value is finite."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    lo, hi = bounds.min, bounds.max
    if lo is not None and hi is not None:
        return max(finite, key=lambda v: max(v - hi, lo - v))
    return max(finite) if hi is not None else min(finite)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _join(detail: str, message: str) -> str:
    return f"{detail}: {message}" if detail else message


# ----------------------------------------------------------------------------- windows


def interval_seconds(metric: Metric) -> float:
    return durations.parse(metric.interval)


def window(metric: Metric, measurements: Iterable[Measurement], now: datetime) -> list[Measurement]:
    """The measurements that count for `metric`: its own (by name; pass one analysis phase's
    list), taken no later than `now` (a clock that stepped back does not count the future),
    oldest first, at most `count` of them."""
    own = [m for m in measurements if m.metric == metric.name and m.taken_at <= now]
    own.sort(key=lambda m: m.taken_at)
    return own[: metric.count]


def metric_verdict(metric: Metric, measurements: Iterable[Measurement], now: datetime) -> Verdict:
    """The verdict of one metric's window (see the module docstring for the rules)."""
    taken = window(metric, measurements, now)
    failed = sum(m.verdict is MeasurementVerdict.FAILED for m in taken)
    if failed > metric.failure_limit:
        return Verdict.FAILURE
    if len(taken) < metric.count:
        return Verdict.RUNNING
    successful = sum(m.verdict is MeasurementVerdict.SUCCESSFUL for m in taken)
    if successful >= metric.count - metric.failure_limit:
        return Verdict.SUCCESS
    return Verdict.INCONCLUSIVE


def next_due(
    metric: Metric, measurements: Iterable[Measurement], window_start: datetime, now: datetime
) -> datetime | None:
    """When the next measurement of `metric` is due: the first at `window_start`, each next
    one `interval` after the previous one. None once the metric has a verdict.

    The time may be in the past (the operator was away): take one sample then, and the next
    is an interval after it; missed samples are not taken in a burst."""
    taken = window(metric, measurements, now)
    if metric_verdict(metric, taken, now) is not Verdict.RUNNING:
        return None
    if not taken:
        return window_start
    return taken[-1].taken_at + timedelta(seconds=interval_seconds(metric))


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict for several metrics: any FAILURE, else any RUNNING, else any
    INCONCLUSIVE, else SUCCESS (also for no metrics at all)."""
    seen = set(verdicts)
    for verdict in (Verdict.FAILURE, Verdict.RUNNING, Verdict.INCONCLUSIVE):
        if verdict in seen:
            return verdict
    return Verdict.SUCCESS


def bounded(measurements: Sequence[Measurement], limit: int) -> list[Measurement]:
    """Keep the `limit` most recent measurements of each (phase, metric), in their order.

    For status size. metric_verdict needs a metric's whole window, so keep `limit` at least
    the largest `count` of the metrics still running (or keep counters instead)."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    groups: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for index, m in enumerate(measurements):
        groups[(m.phase, m.metric)].append(index)
    keep: set[int] = set()
    for indexes in groups.values():
        newest_first = sorted(indexes, key=lambda i: (measurements[i].taken_at, i), reverse=True)
        keep.update(newest_first[:limit])
    return [m for index, m in enumerate(measurements) if index in keep]
