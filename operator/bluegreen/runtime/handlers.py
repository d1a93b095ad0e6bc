"""The kopf edge: thin handlers that call `reconcile` and nothing else.

    kopf run -m bluegreen.runtime.handlers --all-namespaces

Every trigger ends in the same level-triggered `reconcile.reconcile`. A daemon drives an
app only while a release is in flight (or a delayed scale-down is due); settled apps cost
nothing until their spec or a person's request changes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from prometheus_client import start_http_server

from bluegreen.adapters.clock import SystemClock
from bluegreen.adapters.k8s import KubernetesGateway, load_api_client
from bluegreen.adapters.prometheus import HttpMetricsSource
from bluegreen.adapters.registry import EcrResolver
from bluegreen.api import GROUP, PLURAL, VERSION, BlueGreenAppStatus
from bluegreen.core.errors import TransientError
from bluegreen.release import timing
from bluegreen.runtime import reconcile, telemetry
from bluegreen.runtime.settings import Settings

RESOURCE = (GROUP, VERSION, PLURAL)
Logger = logging.Logger | logging.LoggerAdapter[Any]
TRANSIENT_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0
KOPF_PREFIX = f"kopf.{GROUP}"
PEERING_LIFETIME_SECONDS = 15
"""How long kopf peers trust a silent peer: a SIGKILLed active replica is replaced within it."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Any, logger: Logger, **_: Any) -> None:
    """All kopf tuning in one place; typed settings and the gateway built once."""
    cfg = Settings()
    # Passes run in worker threads (the API client is synchronous); the loop's default
    # pool has cpu+4 threads, far too few when hundreds of apps release at once.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="reconcile")
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # kopf hides annotations under its own prefix from change detection; keep it apart
    # from bluegreen.dev/request, which must trigger a pass.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events tell the release story
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.error_delays = [1, 2, 5, 10, 30]
    settings.execution.max_workers = cfg.workers
    # Peering (`--peering=NAME`, as the chart runs its replicas): kopf pauses every peer
    # that sees another live peer of the same or a higher priority, so each process takes
    # a priority of its own unless `--priority` gave one. Older processes rank higher: a
    # replica that starts later (a restart, a rolling update) waits as the standby instead
    # of taking over a release in flight; it takes over when the active one exits (at once)
    # or stops renewing its record (within the lifetime).
    if settings.peering.priority == 0:
        settings.peering.priority = -(time.time_ns() // 1_000)
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    memo.settings = cfg
    memo.gateway = KubernetesGateway(
        load_api_client(cfg.kubeconfig, pool_size=cfg.workers),
        timeout=cfg.api_timeout_seconds,
        on_request=telemetry.API_REQUESTS.inc,
    )
    memo.clock = SystemClock()
    memo.metrics = HttpMetricsSource(timeout=cfg.analysis_timeout_seconds)
    memo.images = EcrResolver(
        ttl_seconds=cfg.image_cache_seconds, timeout_seconds=cfg.registry_timeout_seconds
    )
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port, addr="0.0.0.0", registry=telemetry.REGISTRY)  # noqa: S104
    logger.info("bluegreen operator configured", extra={"metrics_port": cfg.metrics_port})


@kopf.on.probe(id="api")
def api_reachable(memo: Any, **_: Any) -> int:
    """Liveness: the operator counts the API requests it made (and so can make)."""
    return int(memo.gateway.requests)


def _locked_pass(
    lock: threading.Lock, namespace: str, name: str, memo: Any
) -> reconcile.PassResult:
    # The lock is taken in the worker thread, so a cancelled awaiter cannot release it
    # while a pass is still running: one pass per app at a time, always.
    with lock, telemetry.reconcile_timer():
        outcome = reconcile.reconcile(
            namespace, name, memo.gateway, memo.clock, metrics=memo.metrics, resolver=memo.images
        )
    if not outcome.exists:
        telemetry.forget(namespace, name)
    elif outcome.plan is not None:
        telemetry.observe_pass(namespace, name, outcome.previous, outcome.plan.status)
    return outcome


async def _pass(namespace: str, name: str, memo: Any) -> reconcile.PassResult:
    lock = memo.get("lock")
    if lock is None:
        lock = memo["lock"] = threading.Lock()
    return await asyncio.to_thread(_locked_pass, lock, namespace, name, memo)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def on_change(namespace: str | None, name: str, memo: Any, retry: int, **_: Any) -> None:
    try:
        await _pass(namespace or "default", name, memo)
    except TransientError as err:
        telemetry.RECONCILE_ERRORS.labels(kind="transient").inc()
        raise kopf.TemporaryError(str(err), delay=backoff(retry)) from err


def backoff(attempt: int) -> float:
    """2 s, 4 s, 8 s, ... at most a minute: a failing API call is retried, not stormed."""
    return float(min(TRANSIENT_RETRY_SECONDS * 2 ** max(attempt, 0), MAX_RETRY_SECONDS))


def _in_flight(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    try:
        parsed = BlueGreenAppStatus.model_validate(
            {k: v for k, v in (status or {}).items() if k in _STATUS_KEYS}
        )
        replicas = int(spec.get("replicas", 1))
    except (ValueError, TypeError):
        return False
    return timing.needs_polling(parsed, replicas)


_STATUS_KEYS = {f.alias or n for n, f in BlueGreenAppStatus.model_fields.items()}


@kopf.daemon(*RESOURCE, when=_in_flight, cancellation_timeout=5.0, initial_delay=0.05)
async def drive_release(
    namespace: str | None,
    name: str,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: Logger,
    **_: Any,
) -> None:
    """Move an in-flight release on as time passes; stops once the app is settled."""
    delay = 0.0
    failures = 0
    while not stopped:
        if delay:
            await stopped.wait(delay)
            if stopped:
                return
        try:
            outcome = await _pass(namespace or "default", name, memo)
        except TransientError as err:
            telemetry.RECONCILE_ERRORS.labels(kind="transient").inc()
            delay = backoff(failures)
            failures += 1
            logger.warning("transient error, retrying in %.0fs: %s", delay, err)
            continue
        failures = 0
        if not outcome.exists:
            return
        delay = (
            outcome.requeue_after
            if outcome.requeue_after is not None
            else memo.settings.idle_poll_seconds
        )


def _release_daemon_needs_no_finalizer() -> None:
    """kopf puts a finalizer on every object that has a daemon, so that it can stop the
    daemon before the object goes. This daemon holds nothing to clean up (every owned
    object has an ownerReference), and a finalizer would make deleting an app, or its
    namespace, hang whenever the operator is not running (a GitOps prune, an uninstall).
    So the daemon is registered without one; kopf still stops it when the app is gone."""
    spawning = kopf.get_default_registry()._spawning
    spawning._handlers = [
        dataclasses.replace(h, requires_finalizer=False) for h in spawning.get_all_handlers()
    ]


_release_daemon_needs_no_finalizer()
