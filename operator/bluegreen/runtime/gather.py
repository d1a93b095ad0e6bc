"""Gather: everything one pass reads, read once into a frozen `Observed` snapshot.

The reads come from the ClusterReader port (the watch caches), the analysis samples that
are due now (the release package says which) from the MetricsSource, and the image digests
from the ImageResolver. Nothing here decides anything; `bluegreen.runtime.states` turns the
API objects into the small snapshot types of `bluegreen.core.world`.
"""

from __future__ import annotations

from datetime import datetime

from bluegreen.api import BlueGreenApp, Color
from bluegreen.api.v1alpha1 import ResolveDigest
from bluegreen.core import naming, placement, render, templates
from bluegreen.core.analysis import QueryResult, render_query
from bluegreen.core.images import Resolution, local_resolution
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.core.ports import Clock, ClusterReader, ImageResolver, MetricsSource
from bluegreen.core.sampling import sample_metric
from bluegreen.core.templates import TemplateKey, Templates, TemplateState
from bluegreen.core.world import (
    DeploymentState,
    Endpoint,
    IngressState,
    Observed,
    RouteState,
    ServiceState,
)
from bluegreen.release import gates
from bluegreen.runtime import gather_config, states


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
            deployments[color] = states.deployment_state(color, obj, app.metadata.uid)
    services: dict[str, ServiceState] = {}
    for svc_name in (
        naming.active_service(name),
        naming.preview_service(name),
        naming.metrics_service(name),
        naming.legacy_metrics_service(name),
    ):
        obj = reader.get("Service", ns, svc_name)
        if obj is not None:
            services[svc_name] = states.service_state(obj, app.metadata.uid)
    pods = tuple(states.pod_state(p) for p in reader.pods(ns, name))
    budgets = {}
    for color in Color:
        obj = reader.get("PodDisruptionBudget", ns, placement.pdb_name(name, color))
        if obj is not None:
            budgets[obj["metadata"]["name"]] = states.budget_state(obj, app.metadata.uid)
    active_endpoints: tuple[Endpoint, ...] = ()
    active_since: tuple[datetime | None, bool] = (None, False)
    if naming.active_service(name) in services:
        active_slices = reader.endpoint_slices(ns, naming.active_service(name))
        active_endpoints = states.endpoints(active_slices)
        active_since = states.changed_at(active_slices)
    metrics_endpoints: tuple[Endpoint, ...] = ()
    for svc_name in (naming.metrics_service(name), naming.legacy_metrics_service(name)):
        if svc_name in services:
            metrics_endpoints += states.endpoints(reader.endpoint_slices(ns, svc_name))
    ingresses: dict[str, IngressState] = {}
    if app.spec.ingress is not None or app.status.canary is not None:
        for ing_name in (naming.ingress(name), naming.canary_ingress(name)):
            obj = reader.get("Ingress", ns, ing_name)
            if obj is not None and states.owned_by(obj, app.metadata.uid):
                ingresses[ing_name] = states.ingress_state(obj)
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
    jobs = states.jobs(reader.analysis_jobs(ns, name), app.metadata.uid) if _has_jobs(app) else {}
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
    return (states.route_state(obj) if obj is not None else None), True


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
            found[(cluster, name)] = states.template_state(cluster, name, obj)
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
