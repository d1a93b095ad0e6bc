"""Gather: everything one pass reads, read once into a frozen `Observed` snapshot.

The reads come from the ClusterReader port (the watch caches), the analysis samples that
are due now (the release package says which) from the MetricsSource, and the image digests
from the ImageResolver. Nothing here decides anything; the parsing below turns API objects
into the small snapshot types of `bluegreen.core.world`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bluegreen.api import BlueGreenApp, Color
from bluegreen.api import timestamps as ts
from bluegreen.api.v1alpha1 import AnalysisTemplateSpec, ResolveDigest
from bluegreen.core import naming, placement, render, templates
from bluegreen.core.analysis import QueryResult, render_query
from bluegreen.core.images import Resolution, local_resolution
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.core.ports import (
    SEEN_AT,
    WRITTEN_AT,
    Clock,
    ClusterReader,
    ImageResolver,
    MetricsSource,
)
from bluegreen.core.sampling import sample_metric
from bluegreen.core.templates import TemplateKey, Templates, TemplateState
from bluegreen.core.world import (
    Backend,
    BudgetState,
    DeploymentState,
    Endpoint,
    IngressState,
    JobState,
    Marks,
    Observed,
    PodState,
    RouteRule,
    RouteState,
    ServiceState,
)
from bluegreen.release import gates
from bluegreen.runtime import gather_config


def gather(
    app: BlueGreenApp,
    reader: ClusterReader,
    clock: Clock,
    *,
    metrics: MetricsSource | None = None,
    resolver: ImageResolver | None = None,
    ingress_policy: IngressPolicy | None = None,
) -> Observed:
    """Read everything the decision needs, once, read-only. `ingress_policy` is the
    operator's Ingress guard (default: its secure defaults)."""
    ns, name = app.metadata.namespace, app.metadata.name
    now = clock.now()
    deployments: dict[Color, DeploymentState] = {}
    for color in Color:
        obj = reader.get("Deployment", ns, naming.deployment(name, color))
        if obj is not None:
            deployments[color] = _deployment_state(color, obj, app.metadata.uid)
    services: dict[str, ServiceState] = {}
    for svc_name in (
        naming.active_service(name),
        naming.preview_service(name),
        naming.metrics_service(name),
        naming.legacy_metrics_service(name),
    ):
        obj = reader.get("Service", ns, svc_name)
        if obj is not None:
            services[svc_name] = _service_state(obj, app.metadata.uid)
    pods = tuple(_pod_state(p) for p in reader.pods(ns, name))
    budgets = {}
    for color in Color:
        obj = reader.get("PodDisruptionBudget", ns, placement.pdb_name(name, color))
        if obj is not None:
            budgets[obj["metadata"]["name"]] = BudgetState(
                name=obj["metadata"]["name"],
                spec=dict(obj.get("spec") or {}),
                has_owner=_owned_by(obj, app.metadata.uid),
            )
    active_endpoints: tuple[Endpoint, ...] = ()
    active_since: tuple[datetime | None, bool] = (None, False)
    if naming.active_service(name) in services:
        active_slices = reader.endpoint_slices(ns, naming.active_service(name))
        active_endpoints = _endpoints(active_slices)
        active_since = _changed_at(active_slices)
    metrics_endpoints: tuple[Endpoint, ...] = ()
    for svc_name in (naming.metrics_service(name), naming.legacy_metrics_service(name)):
        if svc_name in services:
            metrics_endpoints += _endpoints(reader.endpoint_slices(ns, svc_name))
    ingresses: dict[str, IngressState] = {}
    if app.spec.ingress is not None or app.status.canary is not None:
        for ing_name in (naming.ingress(name), naming.canary_ingress(name)):
            obj = reader.get("Ingress", ns, ing_name)
            if obj is not None and _owned_by(obj, app.metadata.uid):
                ingresses[ing_name] = _ingress_state(obj)
    sm_supported = False
    service_monitor = None
    if app.spec.monitoring.service_monitor.enabled:
        sm_supported = reader.service_monitors_supported()
        if sm_supported:
            service_monitor = reader.get("ServiceMonitor", ns, naming.service_monitor(name))
    route, routes_served = _route(app, reader)
    found = _templates(app, reader)
    refused = _refused(app, metrics, found)
    samples = _sample(app, now, metrics, refused)
    jobs = _jobs(reader.analysis_jobs(ns, name), app.metadata.uid) if _has_jobs(app) else {}
    return Observed(
        now=now,
        samples=samples,
        images=_resolve_images(app, resolver),
        ingresses=ingresses,
        deployments=deployments,
        services=services,
        pods=pods,
        budgets=budgets,
        active_endpoints=active_endpoints,
        active_endpoints_since=active_since[0],
        active_endpoints_exact=active_since[1],
        metrics_endpoints=metrics_endpoints,
        service_monitor_supported=sm_supported,
        service_monitor=service_monitor,
        route=route,
        routes_served=routes_served,
        refused=refused,
        templates=found,
        jobs=jobs,
        ingress_policy=ingress_policy or IngressPolicy(),
        config={
            **gather_config.referenced(app, reader),
            **gather_config.serving(app, reader, deployments),
        },
        config_copies=gather_config.copies(app, reader),
        secrets_tracked=reader.secrets_tracked(),
    )


def _route(app: BlueGreenApp, reader: ClusterReader) -> tuple[RouteState | None, bool]:
    routing = app.spec.gateway_api
    if routing is None:
        return None, True
    if not reader.http_routes_supported():
        return None, False
    obj = reader.get("HTTPRoute", app.metadata.namespace, routing.http_route)
    return (_route_state(obj) if obj is not None else None), True


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


def _templates(app: BlueGreenApp, reader: ClusterReader) -> Templates:
    """The analysis templates the app names, parsed (or why they do not parse)."""
    if app.status.release is None:
        return Templates()
    wanted = templates.keys(gates.template_analyses(app))
    found: dict[TemplateKey, TemplateState] = {}
    for cluster, name in sorted(wanted):
        obj = reader.get(
            templates.kind_of(cluster), "" if cluster else app.metadata.namespace, name
        )
        if obj is not None:
            found[(cluster, name)] = _template_state(cluster, name, obj)
    unreadable = frozenset(
        cluster
        for cluster in {c for c, _ in wanted}
        if not reader.analysis_templates_readable(cluster)
    )
    return Templates(found=found, unreadable=unreadable)


def _refused(app: BlueGreenApp, metrics: MetricsSource | None, found: Templates) -> dict[str, str]:
    """The metrics whose endpoint the policy refuses, with the rule (see Observed.refused).
    URLs are checked as they will be asked: placeholders filled in for the candidate."""
    release = app.status.release
    if (
        metrics is None
        or release is None
        or (app.spec.analysis is None and not app.spec.strategy.canary)
    ):
        return {}
    address = _prometheus_address(app)
    out = {}
    for phase, metric in gates.every_metric(app, found):
        url = None
        if metric.url is not None:
            url = render_query(
                metric.url,
                app.metadata.namespace,
                app.metadata.name,
                release.color.value,
                release.revision,
            )
        refused = metrics.refusal(address if metric.query is not None else None, url)
        if refused is not None:
            out[gates.sample_key(phase, metric)] = refused
    return out


def _prometheus_address(app: BlueGreenApp) -> str | None:
    analysis = app.spec.analysis
    return analysis.prometheus.address if analysis and analysis.prometheus else None


def _sample(
    app: BlueGreenApp, now: datetime, metrics: MetricsSource | None, refused: dict[str, str]
) -> dict[str, QueryResult]:
    """Take the analysis samples that are due now (decided by the pure core)."""
    due = [d for d in gates.due_samples(app, now) if gates.sample_key(*d) not in refused]
    release = app.status.release
    if not due or release is None:
        return {}
    address = _prometheus_address(app)
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
                now=now,
            )
        out[gates.sample_key(phase, metric)] = result
    return out


def _has_jobs(app: BlueGreenApp) -> bool:
    """Whether the app has (or had) job metrics: only then its Jobs are read."""
    return any(m.job is not None for _, m in gates.every_metric(app)) or bool(
        app.status.analysis and app.status.analysis.jobs
    )


def _jobs(objects: list[dict[str, Any]], uid: str) -> dict[str, JobState]:
    out = {}
    for obj in objects:
        if not _owned_by(obj, uid):
            continue
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        created = meta.get("creationTimestamp")
        finished = next(
            (
                c
                for c in (obj.get("status") or {}).get("conditions") or []
                if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            ),
            None,
        )
        name = str(meta.get("name") or "")
        out[name] = JobState(
            name=name,
            window=labels.get(naming.LABEL_ANALYSIS_WINDOW),
            metric=labels.get(naming.LABEL_METRIC),
            created_at=ts.parse(created) if created else None,
            finished=str(finished["type"]) if finished else None,
            reason=str((finished or {}).get("reason") or ""),
            message=str((finished or {}).get("message") or ""),
        )
    return out


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
        selector=dict((spec.get("selector") or {}).get("matchLabels") or {}),
        config=gather_config.deployment_config(obj),
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
        annotations=dict(obj["metadata"].get("annotations") or {}),
        own_labels=frozenset(obj["metadata"].get("ownLabels") or ()),
        own_annotations=frozenset(obj["metadata"].get("ownAnnotations") or ()),
        protocols={
            str(p.get("name", "")): (str(p.get("protocol") or "TCP"), p.get("appProtocol"))
            for p in spec.get("ports", [])
        },
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
        marks=Marks(
            dict((obj.get("marks") or {}).get("labels") or {}),
            dict((obj.get("marks") or {}).get("annotations") or {}),
        ),
    )


def _changed_at(slices: list[dict[str, Any]]) -> tuple[datetime | None, bool]:
    """When the active Service's EndpointSlices last changed, and whether that is exact: the
    time the watch saw the newest of them, or, for one that came from a full list (the
    operator was not watching), the API server's time of its last write, to the second."""
    times: list[tuple[datetime, bool]] = []
    for s in slices:
        if s.get(SEEN_AT) is not None:
            times.append((datetime.fromtimestamp(float(s[SEEN_AT]), UTC), True))
        elif s.get(WRITTEN_AT):
            times.append((ts.parse(str(s[WRITTEN_AT])), False))
    if not times:
        return None, False
    return max(t for t, _ in times), all(exact for _, exact in times)


def _endpoints(slices: list[dict[str, Any]]) -> tuple[Endpoint, ...]:
    out = []
    for s in slices:
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            # The EndpointSlice API says an absent `ready` means ready.
            ready = (ep.get("conditions") or {}).get("ready")
            out.append(Endpoint(pod=ref.get("name"), ready=ready is not False))
    return tuple(out)


def _template_state(cluster: bool, name: str, obj: dict[str, Any]) -> TemplateState:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    try:
        spec = AnalysisTemplateSpec.model_validate(obj.get("spec") or {})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return TemplateState(cluster, name, rv, error=f"spec.{loc}: {first['msg']}")
    return TemplateState(cluster, name, rv, spec=spec)


def _route_state(obj: dict[str, Any]) -> RouteState:
    rules = []
    for rule in (obj.get("spec") or {}).get("rules") or []:
        backends = tuple(
            Backend(
                kind=str(b.get("kind") or "Service"),
                name=str(b.get("name") or ""),
                port=int(b["port"]) if b.get("port") is not None else None,
                weight=int(b["weight"]) if b.get("weight") is not None else 1,
            )
            for b in rule.get("backendRefs") or []
        )
        rules.append(RouteRule(name=rule.get("name"), backends=backends))
    meta = obj.get("metadata") or {}
    return RouteState(
        name=str(meta.get("name") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        rules=tuple(rules),
    )


def _ingress_state(obj: dict[str, Any]) -> IngressState:
    spec = obj.get("spec", {})
    return IngressState(
        name=obj["metadata"]["name"],
        annotations=dict(obj["metadata"].get("annotations") or {}),
        spec=spec,
        own_annotations=frozenset(obj["metadata"].get("ownAnnotations") or ()),
    )
