"""The operator's own Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

RECONCILE_DURATION = Histogram(
    "bluegreen_reconcile_duration_seconds",
    "Time of one reconcile pass (observe, decide, apply, status).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "bluegreen_reconcile_errors_total",
    "Reconcile passes that ended in an error, by kind.",
    ["kind"],
    registry=REGISTRY,
)


@contextmanager
def reconcile_timer() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.observe(time.perf_counter() - started)
