"""The operator's view of the cluster: watch caches of the objects it owns.

One watch per kind (see `bluegreen.adapters.watch`) fills an `ObjectCache`; a reconcile pass
reads only from it, so a pass over a settled app makes no API request at all. Memory stays
bounded: only objects with the operator's labels are watched, and each is trimmed to the
fields the decision reads.

Two rules keep the view safe:

- **Never older than our own writes.** Every write's answer (the object as the API server
  stored it) goes into the cache at once (`write_through`). A watch event that arrives later
  with an older resourceVersion is ignored, and so is one for an object we deleted. So a
  decision that moves traffic is never based on a view older than the operator's previous
  write.
- **Nothing before the first list.** `synced()` is false until every kind has been listed
  once; passes wait for it (an empty cache would look like a cluster without objects).

resourceVersions are compared as numbers when both are (they are etcd revisions on every
API server backed by etcd); otherwise a newer event always wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bluegreen.api import GROUP, PLURAL, VERSION
from bluegreen.core import naming
from bluegreen.core.ports import SEEN_AT, WRITTEN_AT

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
OnChange = Callable[[str, str | None, str, str], None]
"""Called with (namespace, app name or None, kind, object name) after an object changed."""


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


def _own_annotations(meta: Obj) -> list[str]:
    """The annotation keys the operator's own applies set (its managedFields entry), so an
    annotation taken out of the spec is taken off the object too."""
    keys: set[str] = set()
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") != naming.MANAGER:
            continue
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:annotations")
        keys.update(k[2:] for k in fields or {} if k.startswith("f:"))
    return sorted(keys)


def _trim_deployment(obj: Obj) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    return {
        "metadata": _meta(obj),
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
    return {
        "metadata": _meta(obj),
        "spec": {k: spec[k] for k in ("selector", "ports", "clusterIP") if k in spec},
    }


def _trim_pod(obj: Obj) -> Obj:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {
        "metadata": _meta(obj),
        "status": {"conditions": [c for c in conditions if c.get("type") == "Ready"]},
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

WATCHED = (DEPLOYMENTS, SERVICES, PODS, ENDPOINT_SLICES, INGRESSES, SERVICE_MONITORS, HTTP_ROUTES)
KINDS = {k.name: k for k in (*WATCHED, APPS, CLUSTER_PEERINGS, PEERINGS)}


# ----------------------------------------------------------------------------- the cache


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion `candidate` is newer than `current` (numbers when both are)."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate != current


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ObjectCache:
    """Trimmed objects by kind and (namespace, name), with one secondary index per kind.

    Thread-safe: watch threads write, reconcile passes in worker threads read. Objects are
    replaced, never changed in place, so what a read returns stays as it was read."""

    def __init__(self, on_change: OnChange | None = None) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._objects: dict[str, dict[Key, Obj]] = {k: {} for k in KINDS}
        self._index: dict[str, dict[Key, set[str]]] = {k: {} for k in KINDS}
        self._gone: dict[str, dict[Key, str]] = {k: {} for k in KINDS}
        self._synced: set[tuple[str, str]] = set()  # (kind, namespace or "" for all)
        self._expected: set[tuple[str, str]] = {(k.name, "") for k in WATCHED}
        self._served: dict[str, bool] = {}

    def watch_namespaces(self, namespaces: Iterable[str]) -> None:
        """The watches are per namespace (a namespaced install): each is listed apart."""
        listed = list(namespaces)
        if listed:
            self._expected = {(k.name, ns) for k in WATCHED for ns in listed}

    # ------------------------------------------------------------------ reads

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects[kind].get((namespace, name))

    def indexed(self, kind: str, namespace: str, key: str) -> list[Obj]:
        with self._lock:
            names = self._index[kind].get((namespace, key), ())
            objects = self._objects[kind]
            return [objects[(namespace, n)] for n in sorted(names) if (namespace, n) in objects]

    def all(self, kind: str) -> list[Obj]:
        with self._lock:
            return list(self._objects[kind].values())

    def has_list(self, kind: str) -> bool:
        with self._lock:
            return any(k == kind for k, _ in self._synced)

    def served(self, kind: str) -> bool:
        """False while an optional kind's API is not served (its CRD is not installed)."""
        with self._lock:
            return self._served.get(kind, True)

    def synced(self) -> bool:
        with self._lock:
            return self._expected <= self._synced

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self._objects.items()}

    # ------------------------------------------------------------------ writes

    def upsert(self, kind: str, raw: Obj) -> None:
        """A watch event (ADDED, MODIFIED) or a write's answer: keep it if it is newer."""
        spec = KINDS[kind]
        obj = spec.trim(raw)
        key, rv = _key(obj), _rv(obj)
        with self._lock:
            current = self._objects[kind].get(key)
            gone = self._gone[kind].get(key)
            if current is not None and not newer(rv, _rv(current)):
                return
            if current is None and gone is not None and not newer(rv, gone):
                return  # a late event of an object already deleted
            self._gone[kind].pop(key, None)
            obj[SEEN_AT] = time.time()
            self._put(spec, key, obj, current)
        self._changed(spec, obj)

    def remove(self, kind: str, raw: Obj) -> None:
        """A DELETED event, or the answer to the operator's own delete."""
        spec = KINDS[kind]
        key, rv = _key(raw), _rv(raw)
        with self._lock:
            current = self._objects[kind].get(key)
            if current is not None and rv and not newer(rv, _rv(current)) and rv != _rv(current):
                return
            self._gone[kind][key] = rv
            if current is None:
                return
            self._drop(spec, key, current)
        self._changed(spec, current)

    def replace_all(self, kind: str, items: Iterable[Obj], namespace: str = "") -> None:
        """A full list (of one namespace, or of all): what is not in it is gone; changes are
        reported like events."""
        spec = KINDS[kind]
        fresh = {_key(o): o for o in (spec.trim(i) for i in items)}
        changed: list[Obj] = []
        with self._lock:
            old = self._objects[kind]
            for key, obj in list(old.items()):
                if namespace and key[0] != namespace:
                    continue
                if key not in fresh:
                    self._drop(spec, key, obj)
                    changed.append(obj)
            for key, obj in fresh.items():
                current = old.get(key)
                if current is None or _rv(current) != _rv(obj):
                    self._put(spec, key, obj, current)
                    changed.append(obj)
            self._gone[kind] = {
                k: v for k, v in self._gone[kind].items() if namespace and k[0] != namespace
            }
            self._synced.add((kind, namespace))
            self._served[kind] = True
        for obj in changed:
            self._changed(spec, obj)

    def not_served(self, kind: str, namespace: str = "") -> None:
        """An optional kind's API is not there: empty, and synced."""
        with self._lock:
            self._objects[kind].clear()
            self._index[kind].clear()
            self._synced.add((kind, namespace))
            self._served[kind] = False

    def _put(self, spec: Kind, key: Key, obj: Obj, current: Obj | None) -> None:
        if current is not None:
            self._unindex(spec, key, current)
        self._objects[spec.name][key] = obj
        index = spec.index_of(obj)
        if index is not None:
            self._index[spec.name].setdefault((key[0], index), set()).add(key[1])

    def _drop(self, spec: Kind, key: Key, obj: Obj) -> None:
        self._objects[spec.name].pop(key, None)
        self._unindex(spec, key, obj)

    def _unindex(self, spec: Kind, key: Key, obj: Obj) -> None:
        index = spec.index_of(obj)
        if index is None:
            return
        names = self._index[spec.name].get((key[0], index))
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._index[spec.name][(key[0], index)]

    def _changed(self, spec: Kind, obj: Obj) -> None:
        if self._on_change is None or spec is APPS:
            return
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        self._on_change(namespace, spec.app_of(obj), spec.name, name)


class CachedReader:
    """Implements `bluegreen.core.ports.ClusterReader` on an ObjectCache."""

    def __init__(self, cache: ObjectCache) -> None:
        self.cache = cache

    def app(self, namespace: str, name: str) -> Obj | None:
        return self.cache.get(APPS.name, namespace, name)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.cache.get(kind, namespace, name)

    def pods(self, namespace: str, app: str) -> list[Obj]:
        return self.cache.indexed(PODS.name, namespace, app)

    def endpoint_slices(self, namespace: str, service: str) -> list[Obj]:
        return self.cache.indexed(ENDPOINT_SLICES.name, namespace, service)

    def service_monitors_supported(self) -> bool:
        return self.cache.served(SERVICE_MONITORS.name)

    def http_routes_supported(self) -> bool:
        return self.cache.served(HTTP_ROUTES.name)
