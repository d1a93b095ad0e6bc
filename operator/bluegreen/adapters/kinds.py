"""The kinds the operator watches (or reads from its cache): where each lives in the API,
which objects are the operator's, what of each it keeps (trimmed to the fields the decision
reads), and which app an object belongs to. `bluegreen.adapters.cache` holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bluegreen.api import GROUP, PLURAL, VERSION
from bluegreen.api.v1alpha1 import (
    CLUSTER_TEMPLATE_KIND,
    CLUSTER_TEMPLATE_PLURAL,
    TEMPLATE_KIND,
    TEMPLATE_PLURAL,
)
from bluegreen.core import configs, naming
from bluegreen.core.ports import WRITTEN_AT

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """A kind the operator watches: where it lives in the API, which objects are its, what
    to keep of each, and which app an object belongs to."""

    name: str
    api: str  # "/apis/apps/v1" or "/api/v1"
    plural: str
    selector: str
    trim: Callable[[Obj], Obj]
    app_of: Callable[[Obj], str | None]
    index_of: Callable[[Obj], str | None] = lambda _: None
    optional: bool = False
    """A kind whose API may not be served (a CRD not installed): absent, not an error."""
    cluster_scoped: bool = False
    """Listed and watched once for the whole cluster; a namespaced install, which reads
    nothing cluster-scoped, takes it as absent."""
    forbidden_is_absent: bool = False
    """A list the operator has no right to make (a namespaced install) is taken as an
    absent kind, not as an error."""

    def path(self, namespace: str | None = None) -> str:
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{self.api}{where}/{self.plural}"


# ----------------------------------------------------------------------------- trimming


def _meta(obj: Obj, *, annotations: bool = False) -> Obj:
    m = obj.get("metadata") or {}
    out: Obj = {
        "name": m.get("name"),
        "namespace": m.get("namespace"),
        "resourceVersion": m.get("resourceVersion", ""),
        "labels": dict(m.get("labels") or {}),
        "ownerReferences": [
            {"uid": o.get("uid"), "kind": o.get("kind"), "name": o.get("name")}
            for o in m.get("ownerReferences") or []
        ],
    }
    for key in ("generation", "deletionTimestamp", "uid"):
        if key in m:
            out[key] = m[key]
    managers = sorted({str(f.get("manager")) for f in m.get("managedFields") or []})
    if managers:
        out["managers"] = managers  # who else writes it, for a conflict's message
    if annotations:
        out["annotations"] = dict(m.get("annotations") or {})
        out["ownAnnotations"] = _own_annotations(m)
    return out


def _own_annotations(meta: Obj, part: str = "f:annotations") -> list[str]:
    """The annotation (or label) keys the operator's own writes set (its managedFields
    entries), so one taken out of the spec is taken off the object too."""
    keys: set[str] = set()
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") != naming.MANAGER:
            continue
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(part)
        keys.update(k[2:] for k in fields or {} if k.startswith("f:"))
    return sorted(keys)


def _marks(obj: Obj) -> Obj:
    """The labels and annotations the operator set on a pod (strategy.activeMetadata and
    previewMetadata), with their values now; nothing else of its annotations is kept."""
    m = obj.get("metadata") or {}
    out: Obj = {}
    for part in ("labels", "annotations"):
        values = m.get(part) or {}
        own = {k: values[k] for k in _own_annotations(m, f"f:{part}") if k in values}
        if own:
            out[part] = own
    return out


def _trim_deployment(obj: Obj) -> Obj:
    """Its identity, replicas, selector, pod labels and status; of its annotations only the
    config digests (`bluegreen.dev/config`: which copies its pods reference), never the
    template kept for undo."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    meta = _meta(obj)
    config = ((obj.get("metadata") or {}).get("annotations") or {}).get(naming.ANNOTATION_CONFIG)
    if config:
        meta["annotations"] = {naming.ANNOTATION_CONFIG: config}
    return {
        "metadata": meta,
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": spec.get("selector") or {},
            "template": {"metadata": {"labels": (template.get("metadata") or {}).get("labels")}},
        },
        "status": {
            k: status[k]
            for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas")
            if k in status
        },
    }


def _trim_service(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    meta = _meta(obj, annotations=True)
    meta["ownLabels"] = _own_annotations(obj.get("metadata") or {}, "f:labels")
    return {
        "metadata": meta,
        "spec": {k: spec[k] for k in ("selector", "ports", "clusterIP") if k in spec},
    }


def _trim_pod(obj: Obj) -> Obj:
    conditions = (obj.get("status") or {}).get("conditions") or []
    out = {
        "metadata": _meta(obj),
        "status": {"conditions": [c for c in conditions if c.get("type") == "Ready"]},
    }
    marks = _marks(obj)
    if marks:
        out["marks"] = marks
    return out


def _trim_pdb(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    return {
        "metadata": _meta(obj),
        "spec": {k: spec[k] for k in ("selector", "minAvailable", "maxUnavailable") if k in spec},
    }


def _trim_slice(obj: Obj) -> Obj:
    written = [
        str(f["time"])
        for f in (obj.get("metadata") or {}).get("managedFields") or []
        if f.get("time")
    ]
    return {
        "metadata": _meta(obj),
        # The API server's time of the last write (to the second): when this version was made,
        # for a view that was not watched as it changed (after a restart).
        WRITTEN_AT: max(written, default=None),
        "endpoints": [
            {
                "targetRef": {"name": (e.get("targetRef") or {}).get("name")},
                "conditions": {"ready": (e.get("conditions") or {}).get("ready")},
            }
            for e in obj.get("endpoints") or []
        ],
    }


def _trim_with_spec(obj: Obj) -> Obj:
    return {"metadata": _meta(obj, annotations=True), "spec": obj.get("spec") or {}}


def _owner_app(obj: Obj) -> str | None:
    """The BlueGreenApp that owns `obj` (its controller ownerReference)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "BlueGreenApp":
            return str(ref.get("name"))
    return None


def _label(*names: str) -> Callable[[Obj], str | None]:
    """The value of the first of `names` the object's labels have."""

    def read(obj: Obj) -> str | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        value = next((labels[n] for n in names if n in labels), None)
        return str(value) if value is not None else None

    return read


_APP_OF_LABELS = _label(naming.LABEL_APP, naming.LABEL_NAME)
"""The app of a pod (or of an EndpointSlice, by its Service's labels): `bluegreen.dev/app`;
objects an earlier operator version made carry only `app.kubernetes.io/name`, and its
pods keep running until their colour's next release (docs/upgrade.md)."""


_OWNED = f"{naming.LABEL_MANAGED_BY}={naming.MANAGER}"

DEPLOYMENTS = Kind(
    "Deployment", "/apis/apps/v1", "deployments", _OWNED, _trim_deployment, _owner_app
)
SERVICES = Kind("Service", "/api/v1", "services", _OWNED, _trim_service, _owner_app)
PODS = Kind(
    "Pod",
    "/api/v1",
    "pods",
    naming.LABEL_COLOR,  # every pod of every app carries its colour
    _trim_pod,
    _APP_OF_LABELS,
    index_of=_APP_OF_LABELS,
)
ENDPOINT_SLICES = Kind(
    "EndpointSlice",
    "/apis/discovery.k8s.io/v1",
    "endpointslices",
    _OWNED,  # the EndpointSlice controller copies the Service's labels
    _trim_slice,
    _APP_OF_LABELS,
    index_of=_label("kubernetes.io/service-name"),
)
PDBS = Kind(
    "PodDisruptionBudget",
    "/apis/policy/v1",
    "poddisruptionbudgets",
    _OWNED,
    _trim_pdb,
    _owner_app,
    forbidden_is_absent=True,
)
"""The colours' budgets (spec.podDisruptionBudget). Without the right to list them (the RBAC
of an older chart), they are absent: apps that ask for one retry writing it, the others go
on."""
INGRESSES = Kind(
    "Ingress", "/apis/networking.k8s.io/v1", "ingresses", _OWNED, _trim_with_spec, _owner_app
)
SERVICE_MONITORS = Kind(
    "ServiceMonitor",
    "/apis/monitoring.coreos.com/v1",
    "servicemonitors",
    _OWNED,
    _trim_with_spec,
    _owner_app,
    optional=True,
)


def _trim_route(obj: Obj) -> Obj:
    rules = (obj.get("spec") or {}).get("rules") or []
    return {
        "metadata": _meta(obj),
        "spec": {
            "rules": [{"name": r.get("name"), "backendRefs": r.get("backendRefs")} for r in rules]
        },
    }


HTTP_ROUTES = Kind(
    "HTTPRoute",
    "/apis/gateway.networking.k8s.io/v1",
    "httproutes",
    "",  # the user's routes: not labelled by the operator (few, and trimmed to their rules)
    _trim_route,
    lambda _: None,
    optional=True,
)
"""The HTTPRoutes apps route through (spec.trafficRouting.gatewayAPI): owned by their
authors, so they carry no label of the operator's; a change wakes the apps that name it."""


def _trim_template(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "spec": obj.get("spec") or {}}


ANALYSIS_TEMPLATES = Kind(
    TEMPLATE_KIND,
    f"/apis/{GROUP}/{VERSION}",
    TEMPLATE_PLURAL,
    "",  # the users' templates: not labelled by the operator
    _trim_template,
    lambda _: None,
    optional=True,
    forbidden_is_absent=True,
)
CLUSTER_ANALYSIS_TEMPLATES = Kind(
    CLUSTER_TEMPLATE_KIND,
    f"/apis/{GROUP}/{VERSION}",
    CLUSTER_TEMPLATE_PLURAL,
    "",
    _trim_template,
    lambda _: None,
    optional=True,
    cluster_scoped=True,
    forbidden_is_absent=True,
)
"""The analysis templates apps name: a change wakes the apps that name it. Without the
right to list them (RBAC of an older install), they are absent: the apps that name one
wait with AnalysisTemplateNotFound, the others go on."""


def _trim_job(obj: Obj) -> Obj:
    """An analysis Job: its identity, when it was made, and its terminal conditions."""
    meta = _meta(obj)
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if created:
        meta["creationTimestamp"] = created
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {
        "metadata": meta,
        "status": {
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message")}
                for c in conditions
                if c.get("type") in ("Complete", "Failed")
            ]
        },
    }


JOBS = Kind(
    "Job",
    "/apis/batch/v1",
    "jobs",
    f"{_OWNED},{naming.LABEL_ROLE}={naming.ROLE_ANALYSIS}",
    _trim_job,
    _owner_app,
    index_of=_owner_app,
)
"""The analysis Jobs of job metrics: a finished Job wakes its app at once."""


def _trim_config(obj: Obj) -> Obj:
    """A ConfigMap or Secret: its identity and a digest of its content, never the content
    (the gateway reads that when it makes a copy)."""
    out: Obj = {"metadata": _meta(obj), "digest": configs.object_digest(obj)}
    if obj.get("type"):
        out["type"] = obj["type"]
    return out


def _copy_of_app(obj: Obj) -> str | None:
    """The app of one of the operator's config copies; None for any other object."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(naming.LABEL_CONFIG_COPY) != "true":
        return None
    return _owner_app(obj)


CONFIG_MAPS = Kind(
    configs.CONFIG_MAP,
    "/api/v1",
    "configmaps",
    "",  # the users' ConfigMaps: an app may reference any of its namespace
    _trim_config,
    _copy_of_app,
    index_of=_copy_of_app,
    forbidden_is_absent=True,
)
"""ConfigMaps, for config tracking: a change wakes the apps that reference it. Kept as a
digest each. Without the right to list them (RBAC of an older install) they are absent:
the apps that track config wait with ConfigMissing."""
SECRETS = Kind(
    configs.SECRET,
    "/api/v1",
    "secrets",
    "",
    _trim_config,
    _copy_of_app,
    index_of=_copy_of_app,
    forbidden_is_absent=True,
)
"""Secrets, watched only when the administrator allows tracking them
(BLUEGREEN_TRACK_SECRETS): kept as a digest each, never their data."""

APPS = Kind("BlueGreenApp", f"/apis/{GROUP}/{VERSION}", PLURAL, "", lambda o: o, _label(""))
"""Apps are not watched here (kopf watches them); the cache keeps their latest bodies."""


def _trim_peering(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "status": dict(obj.get("status") or {})}


def _nobody(_: Obj) -> str | None:
    return None


CLUSTER_PEERINGS = Kind(
    "ClusterKopfPeering",
    "/apis/kopf.dev/v1",
    "clusterkopfpeerings",
    "",
    _trim_peering,
    _nobody,
    optional=True,
)
PEERINGS = Kind(
    "KopfPeering", "/apis/kopf.dev/v1", "kopfpeerings", "", _trim_peering, _nobody, optional=True
)
"""kopf's peering records (who else runs): read to know whether this replica is active.
Optional: without kopf's peering CRDs kopf runs standalone, and so does the operator."""

WATCHED = (
    DEPLOYMENTS,
    SERVICES,
    PODS,
    ENDPOINT_SLICES,
    PDBS,
    INGRESSES,
    SERVICE_MONITORS,
    HTTP_ROUTES,
    ANALYSIS_TEMPLATES,
    CLUSTER_ANALYSIS_TEMPLATES,
    JOBS,
    CONFIG_MAPS,
)
KINDS = {k.name: k for k in (*WATCHED, SECRETS, APPS, CLUSTER_PEERINGS, PEERINGS)}
