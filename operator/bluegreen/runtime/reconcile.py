"""One reconcile pass: load -> observe -> decide -> apply -> status.

Level-triggered: every trigger (create, resume, update, a timer while a release is in
flight, a person's request) calls `reconcile` and it looks at the whole world each time.
This module knows nothing of kopf; it talks to the cluster only through the gateway port.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bluegreen import release
from bluegreen.api import BlueGreenApp, BlueGreenAppStatus, Color, timestamps
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.api.v1alpha1 import ResolveDigest
from bluegreen.core import naming, render
from bluegreen.core.analysis import QueryResult
from bluegreen.core.errors import InvalidSpecError, RejectedError
from bluegreen.core.images import Resolution, local_resolution
from bluegreen.core.plan import Apply, ClearRequest, Delete, Plan, Scale
from bluegreen.core.ports import Clock, ClusterGateway, ImageResolver, MetricsSource
from bluegreen.core.sampling import sample_metric
from bluegreen.core.world import (
    DeploymentState,
    Endpoint,
    IngressState,
    Observed,
    PodState,
    ServiceState,
)
from bluegreen.release import gates
from bluegreen.release.status import Wanted, condition, set_condition

log = logging.getLogger(__name__)


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


def observe(
    app: BlueGreenApp,
    gateway: ClusterGateway,
    clock: Clock,
    *,
    metrics: MetricsSource | None = None,
    resolver: ImageResolver | None = None,
) -> Observed:
    """Read everything the decision needs, once, read-only."""
    ns, name = app.metadata.namespace, app.metadata.name
    now = clock.now()
    deployments: dict[Color, DeploymentState] = {}
    for color in Color:
        obj = gateway.get("Deployment", ns, naming.deployment(name, color))
        if obj is not None:
            deployments[color] = _deployment_state(color, obj, app.metadata.uid)
    services: dict[str, ServiceState] = {}
    for svc_name in (
        naming.active_service(name),
        naming.preview_service(name),
        naming.metrics_service(name),
    ):
        obj = gateway.get("Service", ns, svc_name)
        if obj is not None:
            services[svc_name] = _service_state(obj, app.metadata.uid)
    pods = tuple(_pod_state(p) for p in gateway.list_pods(ns, naming.app_selector(name)))
    active_endpoints: tuple[Endpoint, ...] = ()
    if naming.active_service(name) in services:
        active_endpoints = _endpoints(gateway.list_endpoint_slices(ns, naming.active_service(name)))
    metrics_endpoints: tuple[Endpoint, ...] = ()
    if naming.metrics_service(name) in services:
        metrics_endpoints = _endpoints(
            gateway.list_endpoint_slices(ns, naming.metrics_service(name))
        )
    ingresses: dict[str, IngressState] = {}
    if app.spec.ingress is not None or app.status.canary is not None:
        for ing_name in (naming.ingress(name), naming.canary_ingress(name)):
            obj = gateway.get("Ingress", ns, ing_name)
            if obj is not None and _owned_by(obj, app.metadata.uid):
                ingresses[ing_name] = _ingress_state(obj)
    sm_supported = False
    service_monitor = None
    if app.spec.monitoring.service_monitor.enabled:
        sm_supported = gateway.service_monitors_supported()
        if sm_supported:
            service_monitor = gateway.get("ServiceMonitor", ns, naming.service_monitor(name))
    samples = _sample(app, now, metrics)
    return Observed(
        now=now,
        samples=samples,
        images=_resolve_images(app, resolver),
        ingresses=ingresses,
        deployments=deployments,
        services=services,
        pods=pods,
        active_endpoints=active_endpoints,
        metrics_endpoints=metrics_endpoints,
        service_monitor_supported=sm_supported,
        service_monitor=service_monitor,
    )


def _resolve_images(app: BlueGreenApp, resolver: ImageResolver | None) -> dict[str, Resolution]:
    if app.spec.image.resolve_digest is ResolveDigest.NEVER:
        return {}
    out = {}
    for image in render.images(app):
        local = local_resolution(image)
        if local is not None:
            out[image] = local
        elif resolver is not None:
            out[image] = resolver.resolve(image)
    return out


def _sample(
    app: BlueGreenApp, now: datetime, metrics: MetricsSource | None
) -> dict[str, QueryResult]:
    """Take the analysis samples that are due now (decided by the pure core)."""
    due = gates.due_samples(app, now)
    release = app.status.release
    if not due or release is None:
        return {}
    address = (
        app.spec.analysis.prometheus.address
        if app.spec.analysis and app.spec.analysis.prometheus
        else None
    )
    out = {}
    for phase, metric in due:
        if metrics is None:
            result = QueryResult(error="the operator has no metrics source")
        else:
            result = sample_metric(
                metrics,
                metric,
                address=address,
                namespace=app.metadata.namespace,
                name=app.metadata.name,
                color=release.color.value,
                revision=release.revision,
            )
        out[gates.sample_key(phase, metric)] = result
    return out


def execute(app: BlueGreenApp, plan: Plan, gateway: ClusterGateway) -> None:
    """Apply the plan's actions in order; the first failure stops the rest."""
    ns = app.metadata.namespace
    for action in plan.actions:
        if isinstance(action, Apply):
            gateway.apply(action.manifest)
        elif isinstance(action, Scale):
            gateway.scale(ns, action.deployment, action.replicas)
        elif isinstance(action, Delete):
            gateway.delete(action.kind, ns, action.name)
        elif isinstance(action, ClearRequest):
            gateway.remove_app_annotation(ns, app.metadata.name, naming.ANNOTATION_REQUEST)


def reconcile(
    namespace: str,
    name: str,
    gateway: ClusterGateway,
    clock: Clock,
    *,
    metrics: MetricsSource | None = None,
    resolver: ImageResolver | None = None,
) -> PassResult:
    """One full pass for one app. The caller holds the app's lock."""
    body = gateway.get_app(namespace, name)
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return PassResult(plan=None, status_written=False, requeue_after=None, exists=False)
    try:
        app = load(body)
    except InvalidSpecError as err:
        written = _write_invalid(body, str(err), gateway, clock)
        return PassResult(plan=None, status_written=written, requeue_after=None)
    observed = observe(app, gateway, clock, metrics=metrics, resolver=resolver)
    plan = release.plan(app, observed)
    status = plan.status
    try:
        execute(app, plan, gateway)
    except RejectedError as err:
        status = _rejected(app.status, status, err, app, clock)
        plan = Plan(actions=plan.actions, status=status, events=plan.events, requeue_after=None)
    written = _write_status(app, app.status, status, gateway)
    for event in plan.events:
        try:
            gateway.emit_event(body, event.type, event.reason, event.message)
        except Exception as err:  # noqa: BLE001 - events are best effort, never fatal
            log.warning("could not post event %s for %s/%s: %s", event.reason, namespace, name, err)
    return PassResult(
        plan=plan, status_written=written, requeue_after=plan.requeue_after, previous=app.status
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


def _rejected(
    stored: BlueGreenAppStatus,
    status: BlueGreenAppStatus,
    err: RejectedError,
    app: BlueGreenApp,
    clock: Clock,
) -> BlueGreenAppStatus:
    """The API server refused an object built from the spec: say so, do not retry. The
    condition's transition time is kept from the stored status while it stays rejected."""
    message = str(err)
    wanted = Wanted(ConditionType.DEGRADED, True, Reason.OBJECT_REJECTED, message)
    degraded = condition(
        wanted, stored.conditions, timestamps.format(clock.now()), app.metadata.generation
    )
    conditions = [c for c in status.conditions if c.type != ConditionType.DEGRADED]
    return status.model_copy(update={"conditions": [*conditions, degraded], "message": message})


def _write_invalid(
    body: dict[str, Any], message: str, gateway: ClusterGateway, clock: Clock
) -> bool:
    """The spec does not parse into the model: a Degraded condition says why (once)."""
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


# ---------------------------------------------------------------------------- parsing


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj.get("metadata", {}).get("ownerReferences", []))


def _deployment_state(color: Color, obj: dict[str, Any], uid: str) -> DeploymentState:
    spec = obj.get("spec", {})
    status = obj.get("status", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    return DeploymentState(
        color=color,
        revision=labels.get(naming.LABEL_REVISION),
        replicas=int(spec.get("replicas", 1)),
        generation=int(obj["metadata"].get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", 0)),
        total_replicas=int(status.get("replicas", 0)),
        updated_replicas=int(status.get("updatedReplicas", 0)),
        ready_replicas=int(status.get("readyReplicas", 0)),
        has_owner=_owned_by(obj, uid),
    )


def _service_state(obj: dict[str, Any], uid: str) -> ServiceState:
    spec = obj.get("spec", {})
    return ServiceState(
        name=obj["metadata"]["name"],
        selector=dict(spec.get("selector") or {}),
        ports=tuple(
            (str(p.get("name", "")), int(p["port"]), str(p.get("targetPort", p["port"])))
            for p in spec.get("ports", [])
        ),
        headless=spec.get("clusterIP") == "None",
        has_owner=_owned_by(obj, uid),
        labels=dict(obj["metadata"].get("labels") or {}),
    )


def _pod_state(obj: dict[str, Any]) -> PodState:
    labels = obj["metadata"].get("labels", {})
    color_label = labels.get(naming.LABEL_COLOR)
    conditions = obj.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return PodState(
        name=obj["metadata"]["name"],
        color=Color(color_label) if color_label in ("blue", "green") else None,
        revision=labels.get(naming.LABEL_REVISION),
        ready=ready,
        deleting=bool(obj["metadata"].get("deletionTimestamp")),
    )


def _endpoints(slices: list[dict[str, Any]]) -> tuple[Endpoint, ...]:
    out = []
    for s in slices:
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            # The EndpointSlice API says an absent `ready` means ready.
            ready = (ep.get("conditions") or {}).get("ready")
            out.append(Endpoint(pod=ref.get("name"), ready=ready is not False))
    return tuple(out)


def _ingress_state(obj: dict[str, Any]) -> IngressState:
    spec = obj.get("spec", {})
    return IngressState(
        name=obj["metadata"]["name"],
        annotations=dict(obj["metadata"].get("annotations") or {}),
        spec=spec,
    )
