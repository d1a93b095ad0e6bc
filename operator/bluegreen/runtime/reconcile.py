"""One reconcile pass: load -> observe -> decide -> apply -> status.

Level-triggered: every trigger (create, resume, update, a timer while a release is in
flight, a person's request) calls `reconcile` and it looks at the whole world each time.
This module knows nothing of kopf; it talks to the cluster only through the gateway port.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bluegreen import release
from bluegreen.api import BlueGreenApp, BlueGreenAppStatus, timestamps
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.api.text import readable
from bluegreen.core import naming
from bluegreen.core.errors import ConflictError, InvalidSpecError, RejectedError
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.core.plan import (
    Apply,
    ClearRequest,
    CopyConfig,
    Delete,
    Event,
    PatchMetadata,
    Plan,
    RouteBackends,
    Scale,
)
from bluegreen.core.ports import (
    Clock,
    ClusterGateway,
    ClusterReader,
    EventSink,
    ImageResolver,
    MetricsSource,
    NoticeSink,
)
from bluegreen.release import notices as notifications
from bluegreen.release.status import Wanted, condition, set_condition
from bluegreen.runtime.gather import gather

log = logging.getLogger(__name__)

CONFLICT_RECHECK_SECONDS = 30.0
"""How often an app whose object's name is taken looks again (the object is not watched)."""


@dataclass(frozen=True)
class AppDefaults:
    """What the operator's administrator sets for every app; an app's own spec wins."""

    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    notifications: notifications.Routing = field(default_factory=notifications.Routing)
    """The notification endpoints' names and every app's subscriptions."""


def with_defaults(app: BlueGreenApp, defaults: AppDefaults) -> BlueGreenApp:
    if not defaults.service_monitor_labels:
        return app
    monitoring = app.spec.monitoring
    sm = monitoring.service_monitor
    sm = sm.model_copy(update={"labels": {**defaults.service_monitor_labels, **sm.labels}})
    monitoring = monitoring.model_copy(update={"service_monitor": sm})
    return app.model_copy(update={"spec": app.spec.model_copy(update={"monitoring": monitoring})})


@dataclass(frozen=True)
class PassResult:
    """What a pass did, for the kopf edge (requeue) and for metrics."""

    plan: Plan | None
    status_written: bool
    requeue_after: float | None
    exists: bool = True
    previous: BlueGreenAppStatus | None = None  # the status this pass started from


def load(body: dict[str, Any]) -> BlueGreenApp:
    try:
        return BlueGreenApp.model_validate(body)
    except ValidationError as err:
        raise InvalidSpecError(_validation_message(err)) from err


def execute(app: BlueGreenApp, plan: Plan, gateway: ClusterGateway) -> None:
    """Apply the plan's actions in order; the first failure stops the rest."""
    ns = app.metadata.namespace
    adopt = app.metadata.annotations.get(naming.ANNOTATION_ADOPT, "").lower() == "true"
    for action in plan.actions:
        if isinstance(action, Apply):
            gateway.apply(action.manifest, adopt=adopt)
        elif isinstance(action, Scale):
            gateway.scale(ns, action.deployment, action.replicas)
        elif isinstance(action, Delete):
            gateway.delete(action.kind, ns, action.name)
        elif isinstance(action, CopyConfig):
            gateway.copy_config(action.manifest, action.source, action.digest)
        elif isinstance(action, RouteBackends):
            gateway.route_backends(ns, action)
        elif isinstance(action, PatchMetadata):
            gateway.patch_metadata(action.kind, ns, action.name, action.metadata)
        elif isinstance(action, ClearRequest):
            gateway.remove_app_annotation(ns, app.metadata.name, naming.ANNOTATION_REQUEST)


def reconcile(
    namespace: str,
    name: str,
    reader: ClusterReader,
    gateway: ClusterGateway,
    clock: Clock,
    *,
    events: EventSink | None = None,
    metrics: MetricsSource | None = None,
    resolver: ImageResolver | None = None,
    ingress_policy: IngressPolicy | None = None,
    defaults: AppDefaults = AppDefaults(),
    notices: NoticeSink | None = None,
) -> PassResult:
    """One full pass for one app: load, gather, decide, apply, write status, post events.
    The caller runs one pass per app at a time."""
    body = reader.app(namespace, name)
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return PassResult(plan=None, status_written=False, requeue_after=None, exists=False)
    try:
        app = load(body)
    except InvalidSpecError as err:
        written = _write_invalid(body, str(err), gateway, clock)
        return PassResult(plan=None, status_written=written, requeue_after=None)
    app = with_defaults(app, defaults)
    observed = gather(
        app, reader, clock, metrics=metrics, resolver=resolver, ingress_policy=ingress_policy
    )
    plan = release.plan(app, observed)
    status = plan.status
    try:
        execute(app, plan, gateway)
    except RejectedError as err:
        status = _refused(
            app.status, status, Reason.OBJECT_REJECTED, readable(str(err)), app=app, clock=clock
        )
        plan = dataclasses.replace(plan, status=status, requeue_after=None)
    except ConflictError as err:
        # Not written, and not retried on every event: a person deletes the object or
        # lets the app adopt it; the app looks again now and then meanwhile.
        message = readable(str(err))
        status = _refused(app.status, status, Reason.OBJECT_CONFLICT, message, app=app, clock=clock)
        told = _tell_once(app.status, Reason.OBJECT_CONFLICT, message, plan.events)
        plan = dataclasses.replace(
            plan, status=status, events=told, requeue_after=CONFLICT_RECHECK_SECONDS
        )
    status = notifications.with_readiness(app, status, defaults.notifications, observed.now)
    plan = dataclasses.replace(plan, status=status)
    written = _write_status(app, app.status, status, gateway)
    _post(body, plan, events)
    if written:
        _notify(app, plan, observed.now, defaults.notifications, notices)
    return PassResult(
        plan=plan, status_written=written, requeue_after=plan.requeue_after, previous=app.status
    )


def _post(body: dict[str, Any], plan: Plan, events: EventSink | None) -> None:
    if events is None:
        return
    for event in plan.events:
        try:
            events.emit_event(body, event.type, event.reason, event.message)
        except Exception as err:  # noqa: BLE001 - events are best effort, never fatal
            meta = body.get("metadata", {})
            log.warning(
                "could not post event %s for %s/%s: %s",
                event.reason,
                meta.get("namespace"),
                meta.get("name"),
                err,
            )


def _notify(
    app: BlueGreenApp,
    plan: Plan,
    now: datetime,
    routing: notifications.Routing,
    sink: NoticeSink | None,
) -> None:
    """The notifications of this pass's transition (app.status -> plan.status), once
    written."""
    if sink is None:
        return
    try:
        found = notifications.notices(app, app.status, plan.status, now, target=plan.target)
        for endpoint, notice in notifications.deliveries(app, found, routing):
            sink.send(endpoint, notice)
    except Exception:  # notifications are best effort, never fatal
        log.exception(
            "could not queue notifications for %s/%s", app.metadata.namespace, app.metadata.name
        )


# ---------------------------------------------------------------------------- status


def _status_dict(status: BlueGreenAppStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _write_status(
    app: BlueGreenApp,
    old: BlueGreenAppStatus,
    new: BlueGreenAppStatus,
    gateway: ClusterGateway,
) -> bool:
    """Compute the whole status, compare, write once; nothing when nothing changed."""
    before = _status_dict(old)
    after = _status_dict(new)
    if before == after:
        return False
    gateway.patch_app_status(app.metadata.namespace, app.metadata.name, merge_patch(before, after))
    return True


def merge_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `before` into `after`."""
    patch: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            inner = merge_patch(old, value)
            if inner:
                patch[key] = inner
        elif old != value or key not in before:
            patch[key] = value
    for key in before:
        if key not in after:
            patch[key] = None
    return patch


def _refused(
    stored: BlueGreenAppStatus,
    status: BlueGreenAppStatus,
    reason: Reason,
    message: str,
    *,
    app: BlueGreenApp,
    clock: Clock,
) -> BlueGreenAppStatus:
    """An object built from the spec was refused (by the API server, or because its name
    is someone else's): Degraded says so. The condition's transition time is kept from the
    stored status while it stays refused."""
    wanted = Wanted(ConditionType.DEGRADED, True, reason, message)
    degraded = condition(
        wanted, stored.conditions, timestamps.format(clock.now()), app.metadata.generation
    )
    conditions = [c for c in status.conditions if c.type != ConditionType.DEGRADED]
    return status.model_copy(update={"conditions": [*conditions, degraded], "message": message})


def _tell_once(
    stored: BlueGreenAppStatus, reason: Reason, message: str, events: tuple[Event, ...]
) -> tuple[Event, ...]:
    """An Event the first time a refusal is seen (not on every retry)."""
    old = next((c for c in stored.conditions if c.type == ConditionType.DEGRADED), None)
    if old is not None and old.reason == reason and old.message == message:
        return events
    return (*events, Event("Warning", reason.value, message))


def _write_invalid(
    body: dict[str, Any], message: str, gateway: ClusterGateway, clock: Clock
) -> bool:
    """The spec does not parse into the model: a Degraded condition says why (once)."""
    message = readable(message)
    meta = body["metadata"]
    current = BlueGreenAppStatus.model_validate(_known_status(body.get("status")))
    prev = next((c for c in current.conditions if c.type == ConditionType.DEGRADED), None)
    if prev and prev.reason == Reason.INVALID_SPEC and prev.message == message:
        return False
    wanted = Wanted(ConditionType.DEGRADED, True, Reason.INVALID_SPEC, message)
    conditions = set_condition(
        current.conditions, wanted, timestamps.format(clock.now()), meta.get("generation")
    )
    gateway.patch_app_status(
        meta["namespace"],
        meta["name"],
        {
            "conditions": [c.model_dump(mode="json", by_alias=True) for c in conditions],
            "message": message,
            "observedGeneration": meta.get("generation"),
        },
    )
    return True


def _known_status(raw: Any) -> dict[str, Any]:
    """The parts of a stored status that still parse (conditions, mostly)."""
    if not isinstance(raw, dict):
        return {}
    try:
        BlueGreenAppStatus.model_validate({"conditions": raw.get("conditions") or []})
    except ValidationError:
        return {}
    return {"conditions": raw.get("conditions") or []}


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}")
    return "invalid spec: " + "; ".join(parts)
