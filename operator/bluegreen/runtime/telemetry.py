"""The operator's own Prometheus metrics.

Names follow the field's conventions (Argo Rollouts' `rollout_info`/`rollout_phase`,
Flagger's `flagger_canary_*`): per-app info and phase series that dashboards join on
`namespace` and `name`, counters by result, histograms of the latencies users choose a
release controller on. Every metric is listed in the README.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from bluegreen.api import BlueGreenAppStatus, Phase

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)


def serve(port: int, address: str) -> WSGIServer:
    """Serve /metrics on `address`:`port` from a daemon thread (BLUEGREEN_METRICS_BIND and
    BLUEGREEN_METRICS_PORT). The server is returned: its `server_address` is where it listens."""
    server, _ = start_http_server(port, addr=address, registry=REGISTRY)
    return server


_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

Metric = TypeVar("Metric", Counter, Gauge, Histogram)
APP = ("namespace", "name")


def _metric(
    kind: type[Metric], name: str, doc: str, labels: tuple[str, ...] = (), **kw: Any
) -> Metric:
    return kind(name, doc, list(labels), registry=REGISTRY, **kw)


RECONCILE_DURATION = _metric(
    Histogram,
    "bluegreen_reconcile_duration_seconds",
    "Time of one reconcile pass (gather, decide, apply, status).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = _metric(
    Counter,
    "bluegreen_reconcile_errors_total",
    "Reconcile passes that ended in an error, by kind (transient, unexpected).",
    ("kind",),
)
PASSES = _metric(
    Counter,
    "bluegreen_reconcile_passes_total",
    "Reconcile passes, by what woke them: app (its spec or a request), object (something it "
    "owns changed), timer (a time it asked for), follow-up (one step after another), resume.",
    ("trigger",),
)
PASSES_THROTTLED = _metric(
    Counter,
    "bluegreen_reconcile_passes_throttled_total",
    "Passes put off because their app had used its budget of passes (a hot loop).",
)
EVENTS_DROPPED = _metric(
    Counter,
    "bluegreen_events_dropped_total",
    "Kubernetes Events not posted because the queue in front of the API server was full.",
)
API_REQUESTS = _metric(
    Counter,
    "bluegreen_kube_api_requests_total",
    "Requests the operator sent to the Kubernetes API server.",
)
APP_INFO = _metric(
    Gauge,
    "bluegreen_app_info",
    "Always 1: one series per app, labelled with its colours and revisions.",
    (*APP, "phase", "active_color", "stable_revision", "candidate_revision"),
)
APP_PHASE = _metric(
    Gauge,
    "bluegreen_app_phase",
    "1 for the app's current phase, 0 for the others.",
    (*APP, "phase"),
)
ACTIVE_COLOR = _metric(
    Gauge,
    "bluegreen_app_active_color",
    "Which colour serves traffic: 0 blue, 1 green, -1 none yet.",
    APP,
)
RELEASES = _metric(
    Counter,
    "bluegreen_releases_total",
    "Releases that ended, by result (Promoted, RolledBack, Aborted, Superseded, Failed).",
    (*APP, "result"),
)
SWITCH_LATENCY = _metric(
    Histogram,
    "bluegreen_switch_latency_seconds",
    "Selector flip to every ready endpoint behind the active Service being the new colour.",
    APP,
    buckets=_LATENCY_BUCKETS,
)
RELEASE_DURATION = _metric(
    Histogram,
    "bluegreen_release_duration_seconds",
    "New template seen to release ended, by result.",
    (*APP, "result"),
    buckets=_DURATION_BUCKETS,
)
NOTIFICATIONS_SENT = _metric(
    Counter,
    "bluegreen_notifications_sent_total",
    "Notifications delivered (answered 2xx), by endpoint and event.",
    ("endpoint", "event"),
)
NOTIFICATIONS_FAILED = _metric(
    Counter,
    "bluegreen_notifications_failed_total",
    "Notifications given up after their last attempt (or refused by the endpoint policy, "
    "or left when the operator stopped), by endpoint and event.",
    ("endpoint", "event"),
)
NOTIFICATIONS_DROPPED = _metric(
    Counter,
    "bluegreen_notifications_dropped_total",
    "Notifications never sent because the notification queue was full, by endpoint.",
    ("endpoint",),
)

_info_labels: dict[tuple[str, str], tuple[str, ...]] = {}
_lock = threading.Lock()


_TRIGGERS = {"app": "app", "object": "object", "timer": "timer", "again": "follow-up"}


def trigger_of(reasons: frozenset[str]) -> str:
    """One label for what woke a pass: the app itself first, then its objects, then a
    follow-up step, then a timer."""
    for reason in ("app", "object", "again", "timer"):
        if reason in reasons:
            return _TRIGGERS[reason]
    return "resume"


@contextmanager
def reconcile_timer() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.observe(time.perf_counter() - started)


def observe_pass(
    namespace: str, name: str, before: BlueGreenAppStatus | None, after: BlueGreenAppStatus
) -> None:
    """Update the per-app series from the status a pass started from and the one it wrote."""
    key = (namespace, name)
    labels = (
        namespace,
        name,
        after.phase.value,
        after.active_color.value if after.active_color else "",
        after.stable_revision or "",
        after.candidate_revision or "",
    )
    with _lock:
        old = _info_labels.get(key)
        if old != labels:
            if old is not None:
                APP_INFO.remove(*old)
            APP_INFO.labels(*labels).set(1)
            _info_labels[key] = labels
    for phase in Phase:
        APP_PHASE.labels(namespace, name, phase.value).set(1 if phase is after.phase else 0)
    color = after.active_color
    ACTIVE_COLOR.labels(namespace, name).set(
        -1 if color is None else (0 if color.value == "blue" else 1)
    )
    new, prev = after.release, before.release if before else None
    if new is None:
        return
    same_release = prev is not None and prev.started_at == new.started_at
    if new.switch_latency_seconds is not None and not (
        same_release and prev is not None and prev.switch_latency_seconds is not None
    ):
        SWITCH_LATENCY.labels(namespace, name).observe(new.switch_latency_seconds)
    if new.result is not None and not (
        same_release and prev is not None and prev.result is not None
    ):
        RELEASES.labels(namespace, name, new.result.value).inc()
        if new.duration_seconds is not None:
            RELEASE_DURATION.labels(namespace, name, new.result.value).observe(new.duration_seconds)


def forget(namespace: str, name: str) -> None:
    """Drop the series of an app that no longer exists."""
    with _lock:
        old = _info_labels.pop((namespace, name), None)
        if old is not None:
            APP_INFO.remove(*old)
    for phase in Phase:
        _remove(APP_PHASE, namespace, name, phase.value)
    _remove(ACTIVE_COLOR, namespace, name)


def _remove(metric: Gauge, *labels: str) -> None:
    with suppress(KeyError):
        metric.remove(*labels)
