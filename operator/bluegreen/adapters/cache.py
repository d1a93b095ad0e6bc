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
from collections.abc import Callable, Iterable, Sequence

from bluegreen.adapters.kinds import (
    ANALYSIS_TEMPLATES,
    APPS,
    CLUSTER_ANALYSIS_TEMPLATES,
    CLUSTER_PEERINGS,
    CONFIG_MAPS,
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    HTTP_ROUTES,
    INGRESSES,
    JOBS,
    KINDS,
    PEERINGS,
    PODS,
    SECRETS,
    SERVICE_MONITORS,
    SERVICES,
    WATCHED,
    Kind,
)
from bluegreen.adapters.trim import Obj
from bluegreen.core.ports import SEEN_AT

__all__ = [
    "ANALYSIS_TEMPLATES",
    "APPS",
    "CLUSTER_ANALYSIS_TEMPLATES",
    "CLUSTER_PEERINGS",
    "CONFIG_MAPS",
    "DEPLOYMENTS",
    "ENDPOINT_SLICES",
    "HTTP_ROUTES",
    "INGRESSES",
    "KINDS",
    "PEERINGS",
    "PODS",
    "SECRETS",
    "SERVICES",
    "SERVICE_MONITORS",
    "WATCHED",
    "CachedReader",
    "Kind",
    "ObjectCache",
    "newer",
]

Key = tuple[str, str]  # (namespace, name)
OnChange = Callable[[str, str | None, str, str], None]
"""Called with (namespace, app name or None, kind, object name) after an object changed."""


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

    def __init__(
        self, on_change: OnChange | None = None, watched: Sequence[Kind] = WATCHED
    ) -> None:
        """`watched`: the kinds listed and watched (WATCHED, and SECRETS when the operator
        tracks them); the others are only read or written through."""
        self._on_change = on_change
        self._watched = tuple(watched)
        self._lock = threading.Lock()
        self._objects: dict[str, dict[Key, Obj]] = {k: {} for k in KINDS}
        self._index: dict[str, dict[Key, set[str]]] = {k: {} for k in KINDS}
        self._gone: dict[str, dict[Key, str]] = {k: {} for k in KINDS}
        self._synced: set[tuple[str, str]] = set()  # (kind, namespace or "" for all)
        self._expected: set[tuple[str, str]] = {(k.name, "") for k in self._watched}
        self._served: dict[str, bool] = {}

    def watch_namespaces(self, namespaces: Iterable[str]) -> None:
        """The watches are per namespace (a namespaced install): each is listed apart. Such
        an install reads nothing cluster-scoped: those kinds are absent, never listed."""
        listed = list(namespaces)
        if listed:
            self._expected = {
                (k.name, ns) for k in self._watched if not k.cluster_scoped for ns in listed
            }
            for kind in self._watched:
                if kind.cluster_scoped:
                    self.not_served(kind.name)

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

    def watches(self, kind: str) -> bool:
        """Whether the kind is listed and watched (not only read through writes)."""
        return any(k.name == kind for k in self._watched)

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

    def analysis_templates_readable(self, cluster: bool) -> bool:
        kind = CLUSTER_ANALYSIS_TEMPLATES if cluster else ANALYSIS_TEMPLATES
        return self.cache.served(kind.name)

    def analysis_jobs(self, namespace: str, app: str) -> list[Obj]:
        return self.cache.indexed(JOBS.name, namespace, app)

    def config_copies(self, namespace: str, app: str) -> list[Obj]:
        return [
            {**obj, "kind": kind.name}
            for kind in (CONFIG_MAPS, SECRETS)
            for obj in self.cache.indexed(kind.name, namespace, app)
        ]

    def secrets_tracked(self) -> bool:
        return self.cache.watches(SECRETS.name) and self.cache.served(SECRETS.name)
