"""The kopf edge: thin handlers, and the only module that imports kopf.

    kopf run -m bluegreen.runtime.handlers --all-namespaces

kopf watches the BlueGreenApps (and the namespaces, for `--namespace` patterns), runs the
peering between replicas, and serves the liveness probe. Everything else is the operator's
own runtime (`bluegreen.runtime.operator`): watch caches of the objects it owns, and a
scheduler that runs a pass of an app whenever something of it changes, or a timer it asked
for is due. No daemon, no timer and no finalizer of kopf's: deleting an app never waits for
the operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from bluegreen.adapters.notifyconfig import NotificationConfigError
from bluegreen.adapters.promauth import AuthConfigError
from bluegreen.api import GROUP, PLURAL, VERSION
from bluegreen.runtime import telemetry
from bluegreen.runtime.operator import PeeringSettings, Runtime
from bluegreen.runtime.settings import Settings

RESOURCE = (GROUP, VERSION, PLURAL)
Logger = logging.Logger | logging.LoggerAdapter[Any]
KOPF_PREFIX = f"kopf.{GROUP}"
BATCH_WINDOW_SECONDS = 0.005
PEERING_LIFETIME_SECONDS = 15
"""How long kopf peers trust a silent peer: a SIGKILLed active replica is replaced within it."""


def runtime_of(memo: Any) -> Runtime:
    """The Runtime built at startup (kopf's memo is untyped)."""
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Any, logger: Logger, **_: Any) -> None:
    """All kopf tuning in one place; the runtime built once. Wrong settings stop the
    operator with the reason (retrying cannot fix them)."""
    try:
        cfg = Settings()
    except ValidationError as err:
        raise kopf.PermanentError(f"invalid BLUEGREEN_* settings: {err}") from err
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # the operator's own Events tell the story
    if cfg.watch_namespaces:
        # A namespaced install has no cluster-wide rights: kopf must not list CRDs or
        # namespaces; the resources it watches are known.
        settings.scanning.disabled = True
    # kopf logs every handled app event at INFO; the operator logs its own transitions.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf holds each app's events for its batch window (0.1 s by default) to coalesce a
    # burst; the runtime coalesces passes itself, so a spec change starts its pass at once.
    settings.batching.batch_window = BATCH_WINDOW_SECONDS
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.queueing.error_delays = [1, 2, 5, 10, 30]
    # Peering (`--peering=NAME`, as the chart runs its replicas): kopf pauses every peer
    # that sees another live peer of the same or a higher priority, so each process takes
    # a priority of its own unless `--priority` gave one. Older processes rank higher: a
    # replica that starts later (a restart, a rolling update) waits as the standby instead
    # of taking over a release in flight; it takes over when the active one exits (at once)
    # or stops renewing its record (within the lifetime).
    if settings.peering.priority == 0:
        settings.peering.priority = -(time.time_ns() // 1_000)
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    peering = PeeringSettings(
        name=settings.peering.name,
        clusterwide=settings.peering.clusterwide,
        priority=settings.peering.priority,
        standalone=settings.peering.standalone,
    )
    try:
        runtime = Runtime(cfg, asyncio.get_running_loop(), peering)
    except AuthConfigError as err:
        raise kopf.PermanentError(f"invalid Prometheus credentials settings: {err}") from err
    except NotificationConfigError as err:
        raise kopf.PermanentError(f"invalid notification settings: {err}") from err
    runtime.start()
    memo.runtime = runtime
    if cfg.metrics_port:
        telemetry.serve(cfg.metrics_port, cfg.metrics_bind)
    logger.info(
        "bluegreen operator configured",
        extra={"metrics_port": cfg.metrics_port, "metrics_bind": cfg.metrics_bind},
    )


@kopf.on.cleanup()
async def shutdown(memo: Any, **_: Any) -> None:
    runtime_of(memo).stop()


@kopf.on.probe(id="api")
def api_reachable(memo: Any, **_: Any) -> int:
    """Liveness: the operator counts the API requests it made (and so can make)."""
    return int(runtime_of(memo).gateway.requests)


@kopf.on.event(*RESOURCE)
async def on_app(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    """Every event of every app: the runtime decides whether it is worth a pass."""
    runtime_of(memo).app_event(event.get("type"), event["object"])
