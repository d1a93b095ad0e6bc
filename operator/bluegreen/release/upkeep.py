"""What holds in every phase: the Services follow the colours, the active colour has its
replicas, the Ingresses and the ServiceMonitor are as rendered, and a warm colour is
scaled down once its delay has passed. The Services select a colour by the labels its
Deployment selects (`context.pod_selector`): a Deployment of an earlier operator version
keeps serving, selected as it was, until its colour's next release replaces it."""

from __future__ import annotations

from bluegreen.api import Color, Phase
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.core import naming, render
from bluegreen.core.plan import Apply, Delete
from bluegreen.release import config, ingress, jobs, marks, routes, status
from bluegreen.release.context import Pass, legacy, pod_selector
from bluegreen.release.workloads import ensure_scale, ensure_service


def upkeep(p: Pass) -> None:
    active = p.status.active_color
    if active is not None:
        ensure_service(p, render.active_service(p.app, active, pod_selector(p, active)))
        preview = _preview_color(p, active)
        ensure_service(p, render.preview_service(p.app, preview, pod_selector(p, preview)))
        ensure_scale(p, active, p.spec.replicas)
    _ensure_legacy_metrics_service(p)
    if p.observed.deployments:
        ensure_service(p, render.metrics_service(p.app))
    if active is not None:
        ingress.ensure_ingresses(p)
    ingress.tell_when_refused(p)
    _ensure_service_monitor(p)
    _scale_down_when_due(p)
    marks.ensure_marks(p)
    marks.ensure_budgets(p)
    jobs.prune(p)
    config.collect(p)
    lost = config.keep_serving(p)
    routed = routes.ensure_route(p) if active is not None else None
    if routed is not None:
        _tell_when_routing_breaks(p, routed)
    extra = [w for w in (routed, config.condition(p, lost)) if w is not None]
    status.derive(p, extra)


def _preview_color(p: Pass, active: Color) -> Color:
    """The preview Service selects the candidate while it is judged, else the active colour."""
    st = p.status
    if st.phase in (Phase.ANALYZING, Phase.PAUSED) and st.release is not None:
        return st.release.color
    return active


def _tell_when_routing_breaks(p: Pass, routed: status.Wanted) -> None:
    """An Event when the route becomes unusable (or unusable for another reason)."""
    if routed.true:
        return
    old = next((c for c in p.status.conditions if c.type == routed.type), None)
    if old is None or old.status == "True" or old.reason != routed.reason:
        p.event(Reason(routed.reason), routed.message, warning=True)


def _has_legacy(p: Pass) -> bool:
    return any(legacy(p, color) for color in p.observed.deployments)


def _ensure_legacy_metrics_service(p: Pass) -> None:
    """`<name>-legacy` exists exactly while a Deployment of an earlier operator version
    does: its pods carry `app.kubernetes.io/name` but not `bluegreen.dev/app`, and the
    readiness checks and the scrapes must see both colours."""
    name = naming.legacy_metrics_service(p.name)
    if _has_legacy(p):
        ensure_service(p, render.legacy_metrics_service(p.app))
    elif (svc := p.observed.services.get(name)) is not None and svc.has_owner:
        p.actions.append(Delete("Service", name))


def _ensure_service_monitor(p: Pass) -> None:
    wanted = p.spec.monitoring.service_monitor.enabled
    if not (wanted and p.observed.service_monitor_supported and p.observed.deployments):
        return
    desired = render.service_monitor(p.app, legacy=_has_legacy(p))
    have = p.observed.service_monitor
    if have is None or have.get("spec") != desired["spec"]:
        p.actions.append(Apply(desired))


def _scale_down_when_due(p: Pass) -> None:
    """The warm colour of the last release goes to zero once `scaleDown.at` has passed,
    unless it serves again (a flip back) or is the candidate of the release in flight."""
    sd = p.status.scale_down
    if sd is None:
        return
    release = p.status.release
    busy = sd.color is p.status.active_color or (
        release is not None
        and release.color is sd.color
        and p.status.phase in (Phase.DEPLOYING, Phase.ANALYZING, Phase.PAUSED)
    )
    wait = (ts.parse(sd.at) - p.now).total_seconds()
    if busy:
        p.update(scale_down=None)
    elif wait <= 0:
        ensure_scale(p, sd.color, 0)
        p.update(scale_down=None)
        p.event(Reason.SCALED_DOWN, f"{sd.color.value} scaled to zero")
    else:
        p.poll(wait)
