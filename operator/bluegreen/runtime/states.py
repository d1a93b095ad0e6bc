"""API objects, as the watch caches keep them (trimmed by `bluegreen.adapters.kinds`), into
the small snapshot types of `bluegreen.core.world` that a pass decides on. Reading only: what
to read is `bluegreen.runtime.gather`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bluegreen.api import Color
from bluegreen.api import timestamps as ts
from bluegreen.api.v1alpha1 import AnalysisTemplateSpec
from bluegreen.core import naming
from bluegreen.core.ports import SEEN_AT, WRITTEN_AT
from bluegreen.core.templates import TemplateState
from bluegreen.core.world import (
    Backend,
    BudgetState,
    DeploymentState,
    Endpoint,
    IngressState,
    JobState,
    Marks,
    PodState,
    RouteRule,
    RouteState,
    ServiceState,
)
from bluegreen.runtime import gather_config


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj.get("metadata", {}).get("ownerReferences", []))


def deployment_state(color: Color, obj: dict[str, Any], uid: str) -> DeploymentState:
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
        has_owner=owned_by(obj, uid),
        selector=dict((spec.get("selector") or {}).get("matchLabels") or {}),
        config=gather_config.deployment_config(obj),
    )


def service_state(obj: dict[str, Any], uid: str) -> ServiceState:
    spec = obj.get("spec", {})
    return ServiceState(
        name=obj["metadata"]["name"],
        selector=dict(spec.get("selector") or {}),
        ports=tuple(
            (str(p.get("name", "")), int(p["port"]), str(p.get("targetPort", p["port"])))
            for p in spec.get("ports", [])
        ),
        headless=spec.get("clusterIP") == "None",
        has_owner=owned_by(obj, uid),
        labels=dict(obj["metadata"].get("labels") or {}),
        annotations=dict(obj["metadata"].get("annotations") or {}),
        own_labels=frozenset(obj["metadata"].get("ownLabels") or ()),
        own_annotations=frozenset(obj["metadata"].get("ownAnnotations") or ()),
        protocols={
            str(p.get("name", "")): (str(p.get("protocol") or "TCP"), p.get("appProtocol"))
            for p in spec.get("ports", [])
        },
    )


def budget_state(obj: dict[str, Any], uid: str) -> BudgetState:
    return BudgetState(
        name=obj["metadata"]["name"],
        spec=dict(obj.get("spec") or {}),
        has_owner=owned_by(obj, uid),
    )


def pod_state(obj: dict[str, Any]) -> PodState:
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


def changed_at(slices: list[dict[str, Any]]) -> tuple[datetime | None, bool]:
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


def endpoints(slices: list[dict[str, Any]]) -> tuple[Endpoint, ...]:
    out = []
    for s in slices:
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            # The EndpointSlice API says an absent `ready` means ready.
            ready = (ep.get("conditions") or {}).get("ready")
            out.append(Endpoint(pod=ref.get("name"), ready=ready is not False))
    return tuple(out)


def template_state(cluster: bool, name: str, obj: dict[str, Any]) -> TemplateState:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    try:
        spec = AnalysisTemplateSpec.model_validate(obj.get("spec") or {})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return TemplateState(cluster, name, rv, error=f"spec.{loc}: {first['msg']}")
    return TemplateState(cluster, name, rv, spec=spec)


def route_state(obj: dict[str, Any]) -> RouteState:
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


def ingress_state(obj: dict[str, Any]) -> IngressState:
    spec = obj.get("spec", {})
    return IngressState(
        name=obj["metadata"]["name"],
        annotations=dict(obj["metadata"].get("annotations") or {}),
        spec=spec,
        own_annotations=frozenset(obj["metadata"].get("ownAnnotations") or ()),
    )


def jobs(objects: list[dict[str, Any]], uid: str) -> dict[str, JobState]:
    out = {}
    for obj in objects:
        if not owned_by(obj, uid):
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
