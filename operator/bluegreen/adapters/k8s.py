"""The one gateway for the operator's writes to the Kubernetes API.

Objects travel as plain dicts, exactly as the pure renderer built them. Writes are
server-side apply with one field manager; API errors become domain errors here and
nowhere else: 409 and 5xx are transient, 400/422 are a rejection the app's status must
show, 404 on a delete is done already. Every write's answer goes into the watch cache at
once (`bluegreen.adapters.cache`), so the next pass reads at least what was written.
Reads are the cache's (`CachedReader`); watches are `bluegreen.adapters.watch`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bluegreen.adapters.cache import ObjectCache
from bluegreen.api import GROUP, PLURAL, VERSION, timestamps
from bluegreen.api.text import EVENT_NOTE_BYTES, clip_bytes
from bluegreen.core import configs, naming
from bluegreen.core.errors import ConflictError, RejectedError, TransientError
from bluegreen.core.plan import RouteBackends

_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "BlueGreenApp": f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}",
}


def load_api_client(
    kubeconfig: str | None = None, pool_size: int | None = None
) -> client.ApiClient:
    """In a pod: the ServiceAccount. Elsewhere: KUBECONFIG or the given file. `pool_size`
    keeps one HTTP connection per worker thread instead of the client's cpu*5."""
    cfg = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    if pool_size is not None:
        cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


class KubernetesGateway:
    """Implements ports.ClusterGateway on the official client's HTTP layer."""

    def __init__(
        self,
        api_client: client.ApiClient,
        timeout: float = 10.0,
        on_request: Callable[[], None] | None = None,
        cache: ObjectCache | None = None,
    ) -> None:
        self._on_request = on_request
        self._cache = cache
        self._api = api_client
        self._timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0  # counted for the operator's metrics and benchmarks

    # ------------------------------------------------------------------ HTTP

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, headers_, body_, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        with self._lock:
            self.requests += 1
        if self._on_request is not None:
            self._on_request()
        try:
            resp = self._api.call_api(
                method_, url, header_params=headers_, body=body_, _request_timeout=self._timeout
            )
            raw = resp.read()  # type: ignore[no-untyped-call]
        except (HTTPError, OSError) as err:
            raise TransientError(f"{method} {path}: {err}") from err
        except ApiException as err:
            return err.status or 0, _decode(err.body)
        return resp.status, _decode(raw)

    def _patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Any,
        content_type: str,
        *,
        sub: str = "",
        force: bool = False,
    ) -> tuple[int, Any]:
        """A PATCH of one object (or its subresource `sub`) under the operator's field
        manager; `force` takes over fields other managers own (server-side apply)."""
        query = {"fieldManager": naming.MANAGER}
        if force:
            query["force"] = "true"
        return self._request(
            "PATCH",
            f"{_PATHS[kind].format(ns=namespace)}/{name}{sub}",
            body=patch,
            content_type=content_type,
            query=query,
        )

    def _ok(self, kind: str, name: str, status: int, body: Any, what: str) -> None:
        if 200 <= status < 300:
            return
        message = body.get("message", str(body)) if isinstance(body, dict) else str(body)
        if status in (400, 422) or (status == 403 and "forbidden" not in message.lower()):
            raise RejectedError(kind, name, message)
        if status == 500 and "convert" in message and "quantities" in message:
            # Server-side apply answers 500 when a value cannot be converted to the typed
            # object (a resource quantity that is not one): the input is wrong, not the server.
            raise RejectedError(kind, name, message)
        raise TransientError(f"{what} {kind} {name}: HTTP {status}: {message}")

    # ------------------------------------------------------------------ writes

    def apply(self, manifest: dict[str, Any], *, adopt: bool = False) -> None:
        """Server-side apply, but never onto an object that is not the app's. An object the
        cache does not know (it carries none of the operator's labels) is created, so the
        API server says whether one of that name exists already; one the cache knows is
        checked for the app's ownerReference first."""
        kind = manifest["kind"]
        meta = manifest["metadata"]
        owner = _owner_uid(manifest)
        known = self._cache.get(kind, meta["namespace"], meta["name"]) if self._cache else None
        if known is None and not adopt:
            # Under the operator's field manager, so what it sets at creation counts as its
            # own (labels and annotations it later takes off, trim.py).
            status, body = self._request(
                "POST",
                _PATHS[kind].format(ns=meta["namespace"]),
                body=manifest,
                query={"fieldManager": naming.MANAGER},
            )
            if status != 409:
                self._ok(kind, meta["name"], status, body, "creating")
                self._seen(kind, body)
                return
            known = self._read(kind, meta["namespace"], meta["name"])
        if known is not None and owner not in _owner_uids(known) and not adopt:
            raise ConflictError(kind, meta["name"], _holder(known))
        status, body = self._patch(
            kind,
            meta["namespace"],
            meta["name"],
            manifest,
            "application/apply-patch+yaml",
            force=True,
        )
        self._ok(kind, meta["name"], status, body, "applying")
        self._seen(kind, body)

    def copy_config(self, manifest: dict[str, Any], source: str, digest: str) -> None:
        """Create the immutable copy of ConfigMap or Secret `source` that `manifest` names,
        with the source's content, if that content is still the revision's (`digest`). The
        content passes through; the cache keeps only the copy's digest."""
        kind, meta = manifest["kind"], manifest["metadata"]
        namespace = meta["namespace"]
        status, body = self._request("GET", f"{_PATHS[kind].format(ns=namespace)}/{source}")
        if status == 404:
            raise TransientError(f"{kind} {source} is gone before its copy was made")
        self._ok(kind, source, status, body, "reading")
        if not isinstance(body, dict) or configs.object_digest(body) != digest:
            raise TransientError(f"{kind} {source} changed before its copy was made")
        copy = dict(manifest)
        for key in ("data", "binaryData", "type"):
            if body.get(key):
                copy[key] = body[key]
        status, created = self._request("POST", _PATHS[kind].format(ns=namespace), body=copy)
        if status == 409:
            existing = self._read(kind, namespace, meta["name"])
            if existing is not None and _owner_uid(manifest) not in _owner_uids(existing):
                raise ConflictError(kind, meta["name"], _holder(existing))
            self._seen(kind, existing)
            return
        self._ok(kind, meta["name"], status, created, "copying")
        self._seen(kind, created)

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        status, body = self._request("GET", f"{_PATHS[kind].format(ns=namespace)}/{name}")
        if status == 404:
            return None
        self._ok(kind, name, status, body, "reading")
        return body if isinstance(body, dict) else None

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete it now; what it owned (a Deployment's ReplicaSets and pods) the garbage
        collector removes afterwards, so an object of that name can be created at once."""
        status, body = self._request(
            "DELETE",
            f"{_PATHS[kind].format(ns=namespace)}/{name}",
            query={"propagationPolicy": "Background"},
        )
        if status == 404:
            return
        self._ok(kind, name, status, body, "deleting")
        if self._cache is not None and isinstance(body, dict):
            if body.get("kind") == kind:
                self._cache.remove(kind, body)  # the object, as it was deleted
            else:
                self._cache.remove(kind, {"metadata": {"namespace": namespace, "name": name}})

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """A merge patch of spec.replicas on the Deployment itself: its answer is the whole
        Deployment, which the cache takes at once."""
        status, body = self._patch(
            "Deployment",
            namespace,
            deployment,
            {"spec": {"replicas": replicas}},
            "application/merge-patch+json",
        )
        self._ok("Deployment", deployment, status, body, "scaling")
        self._seen("Deployment", body)

    def _merge_patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        what: str,
        sub: str = "",
    ) -> None:
        """A merge patch under the operator's field manager; an object that is gone is done
        (there is nothing left to write to)."""
        status, body = self._patch(
            kind, namespace, name, patch, "application/merge-patch+json", sub=sub
        )
        if status == 404:
            return
        self._ok(kind, name, status, body, what)
        self._seen(kind, body)

    def patch_app_status(self, namespace: str, name: str, status_: dict[str, Any]) -> None:
        self._merge_patch(
            "BlueGreenApp",
            namespace,
            name,
            {"status": status_},
            what="writing status of",
            sub="/status",
        )

    def remove_app_annotation(self, namespace: str, name: str, key: str) -> None:
        patch = {"metadata": {"annotations": {key: None}}}
        self._merge_patch("BlueGreenApp", namespace, name, patch, what="clearing the request of")

    def route_backends(self, namespace: str, change: RouteBackends) -> None:
        """A JSON patch of one rule's backendRefs, guarded by the route's resourceVersion:
        the other rules, and everything else of the route, are its author's."""
        route, rule = change.route, change.rule
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": change.resource_version},
            {
                "op": "replace",
                "path": f"/spec/rules/{rule}/backendRefs",
                "value": list(change.backends),
            },
        ]
        status, body = self._patch(
            "HTTPRoute", namespace, route, patch, "application/json-patch+json"
        )
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        if status in (409, 422) and "test" in message.lower():
            raise TransientError(f"HTTPRoute {route} changed meanwhile; reading it again")
        self._ok("HTTPRoute", route, status, body, "routing through")
        self._seen("HTTPRoute", body)

    def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """A merge patch of the object's metadata under the operator's field manager: its
        managedFields then say which labels and annotations are the operator's, so they can
        be taken off again. A pod keeps running (metadata is not its spec); one gone
        meanwhile is done (its replacement is marked when it comes)."""
        self._merge_patch(kind, namespace, name, {"metadata": metadata}, what="marking")

    def _seen(self, kind: str, body: Any) -> None:
        """A write's answer is the object as stored: the cache takes it at once."""
        if self._cache is not None and isinstance(body, dict) and body.get("metadata"):
            self._cache.upsert(kind, body)

    def emit_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = app["metadata"]
        now = datetime.now(UTC)
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{time.time_ns():x}",
                "namespace": meta["namespace"],
            },
            "eventTime": timestamps.format(now),
            "reportingController": f"{GROUP}/operator",
            "reportingInstance": naming.MANAGER,
            "action": reason,
            "reason": reason,
            "type": type_,
            "note": clip_bytes(message, EVENT_NOTE_BYTES),
            "regarding": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BlueGreenApp",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
        }
        status, body = self._request(
            "POST", f"/apis/events.k8s.io/v1/namespaces/{meta['namespace']}/events", body=event
        )
        # Events are best effort: a lost one must never stop a release.
        if status >= 300 and status not in (403, 404):
            raise TransientError(f"posting event {reason}: HTTP {status}: {body}")


def _owner_uid(manifest: Mapping[str, Any]) -> str:
    refs = manifest["metadata"].get("ownerReferences") or [{}]
    return str(refs[0].get("uid", ""))


def _owner_uids(obj: Mapping[str, Any]) -> set[str]:
    return {str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or []}


def _holder(obj: Mapping[str, Any]) -> str:
    """Who holds an object, for a person: its owners, else the managers of its fields."""
    meta = obj.get("metadata") or {}
    owners = [f"{r.get('kind')}/{r.get('name')}" for r in meta.get("ownerReferences") or []]
    if owners:
        return "owned by " + ", ".join(owners)
    managers = sorted({str(m.get("manager")) for m in meta.get("managedFields") or []})
    managers = managers or list(meta.get("managers") or [])
    return "managed by " + ", ".join(managers) if managers else "made by hand"


def _decode(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            return raw
    return raw
