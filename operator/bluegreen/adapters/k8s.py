"""The one gateway to the Kubernetes API.

Objects travel as plain dicts, exactly as the pure renderer built them. Writes are
server-side apply with one field manager; API errors become domain errors here and
nowhere else: 404 on a read is "absent", 409 and 5xx are transient, 400/422 are a
rejection the app's status must show.
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

from bluegreen.api import GROUP, PLURAL, VERSION, timestamps
from bluegreen.core import naming
from bluegreen.core.errors import RejectedError, TransientError

_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "BlueGreenApp": f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}",
}
_DISCOVERY_TTL = 10.0  # how long the answer to "is the ServiceMonitor CRD served?" is kept


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
    ) -> None:
        self._on_request = on_request
        self._api = api_client
        self._timeout = timeout
        self._sm_supported: tuple[float, bool] | None = None
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

    # ------------------------------------------------------------------ reads

    def get_app(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get("BlueGreenApp", namespace, name)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        status, body = self._request("GET", f"{_PATHS[kind].format(ns=namespace)}/{name}")
        if status == 404:
            return None
        self._ok(kind, name, status, body, "reading")
        return body if isinstance(body, dict) else None

    def list_pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        status, body = self._request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": naming.label_selector(dict(selector))},
        )
        self._ok("Pod", naming.label_selector(dict(selector)), status, body, "listing")
        return list(body.get("items", []))

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        status, body = self._request(
            "GET",
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            query={"labelSelector": f"kubernetes.io/service-name={service}"},
        )
        self._ok("EndpointSlice", service, status, body, "listing")
        return list(body.get("items", []))

    def service_monitors_supported(self) -> bool:
        now = time.monotonic()
        if self._sm_supported is not None and now - self._sm_supported[0] < _DISCOVERY_TTL:
            return self._sm_supported[1]
        status, _ = self._request("GET", "/apis/monitoring.coreos.com/v1")
        supported = status == 200
        self._sm_supported = (now, supported)
        return supported

    # ------------------------------------------------------------------ writes

    def apply(self, manifest: dict[str, Any]) -> None:
        kind = manifest["kind"]
        meta = manifest["metadata"]
        path = f"{_PATHS[kind].format(ns=meta['namespace'])}/{meta['name']}"
        status, body = self._request(
            "PATCH",
            path,
            body=manifest,
            content_type="application/apply-patch+yaml",
            query={"fieldManager": naming.MANAGER, "force": "true"},
        )
        self._ok(kind, meta["name"], status, body, "applying")

    def delete(self, kind: str, namespace: str, name: str) -> None:
        status, body = self._request("DELETE", f"{_PATHS[kind].format(ns=namespace)}/{name}")
        if status != 404:
            self._ok(kind, name, status, body, "deleting")

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        status, body = self._request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale",
            body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
            query={"fieldManager": naming.MANAGER},
        )
        self._ok("Deployment", deployment, status, body, "scaling")

    def patch_app_status(self, namespace: str, name: str, status_: dict[str, Any]) -> None:
        status, body = self._request(
            "PATCH",
            f"{_PATHS['BlueGreenApp'].format(ns=namespace)}/{name}/status",
            body={"status": status_},
            content_type="application/merge-patch+json",
            query={"fieldManager": naming.MANAGER},
        )
        if status == 404:
            return  # the app is gone; nothing to report on
        self._ok("BlueGreenApp", name, status, body, "writing status of")

    def remove_app_annotation(self, namespace: str, name: str, key: str) -> None:
        status, body = self._request(
            "PATCH",
            f"{_PATHS['BlueGreenApp'].format(ns=namespace)}/{name}",
            body={"metadata": {"annotations": {key: None}}},
            content_type="application/merge-patch+json",
            query={"fieldManager": naming.MANAGER},
        )
        if status != 404:
            self._ok("BlueGreenApp", name, status, body, "clearing the request of")

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
            "note": message[:1024],
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
