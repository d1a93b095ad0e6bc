"""Recorders that watch the API server while a test runs and keep every change.

`EndpointRecorder` follows the EndpointSlices behind a Service; `SelectorRecorder` follows
the Service's selector. Tests assert over the whole recorded history: never an instant
without ready endpoints, never a mix of colours after a switch, exactly one flip.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch


@dataclass(frozen=True)
class EndpointSample:
    at: float
    ready: frozenset[str]  # pod names of ready endpoints, over all slices


@dataclass
class _Recorder:
    api_client: client.ApiClient
    namespace: str
    service: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    errors: list[str] = field(default_factory=list)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        resource_version = None
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self._list,
                    self.namespace,
                    resource_version=resource_version,
                    timeout_seconds=2,
                    **self._params(),
                ):
                    obj = event["raw_object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    self._record(event["type"], obj)
                    if self._stop.is_set():
                        break
            except Exception as err:  # noqa: BLE001 - reported through .errors
                self.errors.append(repr(err))
                resource_version = None
                time.sleep(0.1)
            finally:
                w.stop()

    # set by subclasses
    def _list(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        raise NotImplementedError


class EndpointRecorder(_Recorder):
    def __init__(self, api_client: client.ApiClient, namespace: str, service: str) -> None:
        super().__init__(api_client, namespace, service)
        self._slices: dict[str, frozenset[str]] = {}
        self.samples: list[EndpointSample] = []
        self._lock = threading.Lock()

    def _list(self, *args: Any, **kwargs: Any) -> Any:
        return client.DiscoveryV1Api(self.api_client).list_namespaced_endpoint_slice(
            *args, **kwargs
        )

    def _params(self) -> dict[str, Any]:
        return {"label_selector": f"kubernetes.io/service-name={self.service}"}

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self._slices.pop(name, None)
            else:
                self._slices[name] = frozenset(
                    (ep.get("targetRef") or {}).get("name", "?")
                    for ep in obj.get("endpoints") or []
                    if (ep.get("conditions") or {}).get("ready") is not False
                )
            ready = frozenset().union(*self._slices.values()) if self._slices else frozenset()
            if not self.samples or self.samples[-1].ready != ready:
                self.samples.append(EndpointSample(time.monotonic(), ready))

    def history(self) -> list[EndpointSample]:
        with self._lock:
            return list(self.samples)


class SelectorRecorder(_Recorder):
    """Every distinct selector the Service had, in order."""

    def __init__(self, api_client: client.ApiClient, namespace: str, service: str) -> None:
        super().__init__(api_client, namespace, service)
        self.selectors: list[dict[str, str]] = []

    def _list(self, *args: Any, **kwargs: Any) -> Any:
        return client.CoreV1Api(self.api_client).list_namespaced_service(*args, **kwargs)

    def _params(self) -> dict[str, Any]:
        return {"field_selector": f"metadata.name={self.service}"}

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            return
        selector = dict(obj.get("spec", {}).get("selector") or {})
        if not self.selectors or self.selectors[-1] != selector:
            self.selectors.append(selector)


def colors_of(pods: frozenset[str], app: str) -> set[str]:
    """Pod names are <app>-<colour>-<hash>-<suffix>."""
    out = set()
    for pod in pods:
        rest = pod.removeprefix(f"{app}-")
        out.add(rest.split("-", 1)[0])
    return out


@dataclass(frozen=True)
class ObjectEvent:
    kind: str  # ADDED | MODIFIED | DELETED
    name: str
    resource_version: int
    obj: dict[str, Any]


class ObjectRecorder(_Recorder):
    """Every event of the namespace's Ingresses, Services or BlueGreenApps, with its
    resourceVersion.

    The resourceVersions of all objects come from one etcd revision counter, so comparing
    them orders changes made to different objects (the tests rely on it to check that a
    selector flip happened before an Ingress was removed)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, kind: str) -> None:
        super().__init__(api_client, namespace, "")
        self.kind = kind
        self.events: list[ObjectEvent] = []
        self._lock = threading.Lock()

    def _list(self, *args: Any, **kwargs: Any) -> Any:
        if self.kind == "Ingress":
            return client.NetworkingV1Api(self.api_client).list_namespaced_ingress(*args, **kwargs)
        if self.kind == "BlueGreenApp":
            (namespace,) = args
            return client.CustomObjectsApi(self.api_client).list_namespaced_custom_object(
                "bluegreen.dev", "v1alpha1", namespace, "bluegreenapps", **kwargs
            )
        return client.CoreV1Api(self.api_client).list_namespaced_service(*args, **kwargs)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(
                ObjectEvent(
                    kind, obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"]), obj
                )
            )

    def history(self, name: str | None = None) -> list[ObjectEvent]:
        with self._lock:
            return [e for e in self.events if name is None or e.name == name]
