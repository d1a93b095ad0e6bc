"""An in-memory cluster behind the ClusterGateway port, for tick tests.

`FakeCluster` stores the BlueGreenApp body and every object the operator owns, records
every call in order, and `simulate()` plays the controllers the operator relies on:

- the Deployment controller and the kubelet: each Deployment gets exactly `replicas`
  pods of its template (Recreate: pods of another template go first), ready unless their
  revision is held back with `hold_not_ready`; its status counts them;
- the EndpointSlice controller: each Service gets one EndpointSlice listing the pods its
  selector matches, ready as the pods are.

Like the API server, it fills in the defaults the CRD schema declares for `status` when
the status is written (structural defaulting), so a field the operator leaves out of a merge
patch because it equals its default still reads back as that default.

Its whole state is plain data (`state()`), so a brand-new instance can be built from it:
that is an operator restart (`FakeCluster(state=old.state())`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bluegreen.core import configs, naming
from bluegreen.core.errors import RejectedError, TransientError
from bluegreen.core.ports import ClusterGateway
from tests.unit.factories import NAMESPACE, T0

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
WRITES = (
    "apply",
    "scale",
    "delete",
    "copy_config",
    "patch_app_status",
    "remove_app_annotation",
)


class Crash(Exception):  # noqa: N818 - it is not an error the operator handles: it died
    """The operator process died right after a write reached the API server."""


@dataclass(frozen=True)
class Call:
    op: str
    kind: str = ""
    name: str = ""
    body: Any = None

    @property
    def is_write(self) -> bool:
        return self.op in WRITES


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, written here independently of the operator's `merge_patch`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


CRD = Path(__file__).resolve().parents[2] / "crds" / "bluegreen.dev_bluegreenapps.yaml"


@functools.cache
def _status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """Structural defaulting: inside every object that is present, a missing property
    with a `default` gets it (as the API server does when it stores an object)."""
    if isinstance(value, dict):
        out = dict(value)
        for key, sub in (schema.get("properties") or {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = apply_defaults(out[key], sub)
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class FakeCluster:
    """One namespace of a cluster, in memory. Every gateway call is recorded in `calls`."""

    def __init__(self, state: dict[str, Any] | None = None, *, service_monitors: bool = False):
        s = copy.deepcopy(state) if state is not None else {}
        self.body: dict[str, Any] | None = s.get("app")  # the BlueGreenApp
        self.objects: dict[str, dict[str, Any]] = s.get("objects", {})  # "Kind/name"
        self.pod_objects: dict[str, dict[str, Any]] = s.get("pods", {})
        self.slices: dict[str, list[dict[str, Any]]] = s.get("slices", {})
        self.serial: int = s.get("serial", 0)
        self.not_ready: set[str] = set(s.get("not_ready", []))
        self.service_monitors = service_monitors
        self.calls: list[Call] = []
        self.events: list[tuple[str, str, str]] = []
        # Test controls
        self.reject: Callable[[dict[str, Any]], str | None] | None = None
        self.crash_after_write: int | None = None  # die right after the n-th write (1-based)
        self.writes_done = 0
        self.track_secrets = False  # the operator's BLUEGREEN_TRACK_SECRETS

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """Everything the API server stores, as plain data."""
        return copy.deepcopy(
            {
                "app": self.body,
                "objects": self.objects,
                "pods": self.pod_objects,
                "slices": self.slices,
                "serial": self.serial,
                "not_ready": sorted(self.not_ready),
            }
        )

    def create_app(self, body: dict[str, Any]) -> None:
        self.body = copy.deepcopy(body)
        self.body["status"] = apply_defaults(self.body.get("status") or {}, _status_schema())

    def update_spec(self, change: Callable[[dict[str, Any]], None]) -> None:
        """A person (or GitOps) edits the spec: the generation goes up."""
        assert self.body is not None
        before = copy.deepcopy(self.body["spec"])
        change(self.body["spec"])
        if self.body["spec"] != before:
            self.body["metadata"]["generation"] = self.body["metadata"].get("generation", 0) + 1

    def set_image(self, image: str) -> None:
        def change(spec: dict[str, Any]) -> None:
            spec["template"]["spec"]["containers"][0]["image"] = image

        self.update_spec(change)

    def annotate(self, key: str, value: str) -> None:
        assert self.body is not None
        self.body["metadata"].setdefault("annotations", {})[key] = value

    def hold_not_ready(self, revision: str, held: bool = True) -> None:
        """Pods of `revision` fail their readiness probe (or pass it again)."""
        (self.not_ready.add if held else self.not_ready.discard)(revision)

    @property
    def status(self) -> dict[str, Any]:
        assert self.body is not None
        return dict(self.body.get("status") or {})

    def obj(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(f"{kind}/{name}")

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.is_write]

    # ------------------------------------------------------------------ the port: reads

    def _ns(self, namespace: str) -> None:
        assert namespace == NAMESPACE, f"call for namespace {namespace!r}"

    def app(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._ns(namespace)
        self.calls.append(Call("app", "BlueGreenApp", name))
        if self.body is None or self.body["metadata"]["name"] != name:
            return None
        return copy.deepcopy(self.body)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._ns(namespace)
        self.calls.append(Call("get", kind, name))
        found = self.obj(kind, name)
        return copy.deepcopy(found) if found is not None else None

    def pods(self, namespace: str, app: str) -> list[dict[str, Any]]:
        """The app's pods as the watch cache indexes them: by `bluegreen.dev/app`, or by
        `app.kubernetes.io/name` for pods of an earlier operator version's Deployments."""
        self._ns(namespace)
        self.calls.append(Call("pods", "Pod", "", app))

        def of_app(labels: Mapping[str, str]) -> bool:
            return labels.get("bluegreen.dev/app", labels.get("app.kubernetes.io/name")) == app

        return [
            copy.deepcopy(p)
            for _, p in sorted(self.pod_objects.items())
            if of_app(p["metadata"]["labels"])
        ]

    def endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        self._ns(namespace)
        self.calls.append(Call("endpoint_slices", "EndpointSlice", service))
        return copy.deepcopy(self.slices.get(service, []))

    def service_monitors_supported(self) -> bool:
        self.calls.append(Call("service_monitors_supported"))
        return self.service_monitors

    def http_routes_supported(self) -> bool:
        return False

    def analysis_jobs(self, namespace: str, app: str) -> list[dict[str, Any]]:
        self._ns(namespace)
        self.calls.append(Call("analysis_jobs", "Job", app))
        return [
            copy.deepcopy(o)
            for key, o in sorted(self.objects.items())
            if key.startswith("Job/")
            and any(r.get("name") == app for r in o["metadata"].get("ownerReferences") or [])
        ]

    def config_copies(self, namespace: str, app: str) -> list[dict[str, Any]]:
        self._ns(namespace)
        return [
            copy.deepcopy(o)
            for key, o in sorted(self.objects.items())
            if key.split("/")[0] in (configs.CONFIG_MAP, configs.SECRET)
            and o["metadata"].get("labels", {}).get(naming.LABEL_CONFIG_COPY) == "true"
            and o["metadata"]["labels"].get(naming.LABEL_APP) == app
        ]

    def secrets_tracked(self) -> bool:
        return self.track_secrets

    def put_config(self, kind: str, name: str, data: dict[str, str], type_: str = "") -> None:
        """A person writes a ConfigMap (or Secret): stored as the watch cache keeps it."""
        obj: dict[str, Any] = {
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {}},
            "data": dict(data),
            "digest": configs.digest(data),
        }
        if type_:
            obj["type"] = type_
        self.objects[f"{kind}/{name}"] = obj

    # ------------------------------------------------------------------ the port: writes

    def copy_config(self, manifest: dict[str, Any], source: str, digest: str) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self._ns(manifest["metadata"]["namespace"])
        self.calls.append(Call("copy_config", kind, name, copy.deepcopy(manifest)))
        src = self.obj(kind, source)
        if src is None or src["digest"] != digest:
            raise TransientError(f"{kind} {source} changed before its copy was made")
        if f"{kind}/{name}" not in self.objects:
            new = {**copy.deepcopy(manifest), "data": dict(src.get("data") or {})}
            new["digest"] = src["digest"]
            if src.get("type"):
                new["type"] = src["type"]
            self.objects[f"{kind}/{name}"] = new
        self._wrote()

    def _wrote(self) -> None:
        self.writes_done += 1
        if self.crash_after_write is not None and self.writes_done >= self.crash_after_write:
            self.crash_after_write = None
            raise Crash(f"operator died after write #{self.writes_done}")

    def apply(self, manifest: dict[str, Any], *, adopt: bool = False) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self._ns(manifest["metadata"]["namespace"])
        self.calls.append(Call("apply", kind, name, copy.deepcopy(manifest)))
        if self.reject is not None:
            message = self.reject(manifest)
            if message is not None:
                raise RejectedError(kind, name, message)
        key = f"{kind}/{name}"
        old = self.objects.get(key)
        new = copy.deepcopy(manifest)
        generation = 1
        if old is not None:
            generation = old["metadata"]["generation"]
            if old.get("spec") != new.get("spec"):
                generation += 1
            if "status" in old:
                new["status"] = old["status"]
        new["metadata"]["generation"] = generation
        self.objects[key] = new
        self._wrote()

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self._ns(namespace)
        self.calls.append(Call("scale", "Deployment", deployment, replicas))
        obj = self.objects[f"Deployment/{deployment}"]  # a KeyError is a 404: a test bug
        if obj["spec"]["replicas"] != replicas:
            obj["spec"]["replicas"] = replicas
            obj["metadata"]["generation"] += 1
        self._wrote()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Gone at once; a Deployment's pods go at the next `simulate` (the garbage
        collector)."""
        self._ns(namespace)
        self.calls.append(Call("delete", kind, name))
        self.objects.pop(f"{kind}/{name}", None)
        self._wrote()

    def patch_app_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._ns(namespace)
        assert self.body is not None and self.body["metadata"]["name"] == name
        self.calls.append(Call("patch_app_status", "BlueGreenApp", name, copy.deepcopy(status)))
        patched = apply_merge_patch(self.body.get("status") or {}, status)
        self.body["status"] = apply_defaults(patched, _status_schema())
        self._wrote()

    def remove_app_annotation(self, namespace: str, name: str, key: str) -> None:
        self._ns(namespace)
        assert self.body is not None
        self.calls.append(Call("remove_app_annotation", "BlueGreenApp", name, key))
        self.body["metadata"].get("annotations", {}).pop(key, None)
        self._wrote()

    def emit_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.calls.append(Call("emit_event", type_, reason, message))
        self.events.append((type_, reason, message))

    # ------------------------------------------------------------------ the controllers

    def finish_jobs(self, result: str, reason: str = "") -> list[str]:
        """The Job controller: every Job without a result gets `result` (Complete or
        Failed) now. Returns their names."""
        done = []
        for key, job in sorted(self.objects.items()):
            if not key.startswith("Job/") or (job.get("status") or {}).get("conditions"):
                continue
            condition = {"type": result, "status": "True", "reason": reason, "message": ""}
            job["status"] = {"conditions": [condition]}
            done.append(job["metadata"]["name"])
        return done

    def simulate(self, *, endpoints: bool = True) -> None:
        """One round of the Deployment controller and kubelet, then (unless told not to)
        the EndpointSlice controller."""
        self._run_deployments()
        if endpoints:
            self._run_endpoint_slices()

    def _run_deployments(self) -> None:
        owned: set[str] = set()
        for key, dep in sorted(self.objects.items()):
            if not key.startswith("Deployment/"):
                continue
            spec = dep["spec"]
            selector = spec["selector"]["matchLabels"]
            labels = spec["template"]["metadata"]["labels"]
            revision = labels[naming.LABEL_REVISION]
            mine = sorted(
                n
                for n, p in self.pod_objects.items()
                if _matches(p["metadata"]["labels"], selector)
            )
            # Recreate: every pod of another template goes before new ones start.
            for pod in mine:
                if (
                    self.pod_objects[pod]["metadata"]["labels"].get(naming.LABEL_REVISION)
                    != revision
                ):
                    del self.pod_objects[pod]
            current = [n for n in mine if n in self.pod_objects]
            while len(current) > spec["replicas"]:
                del self.pod_objects[current.pop()]
            while len(current) < spec["replicas"]:
                self.serial += 1
                pod = f"{dep['metadata']['name']}-{revision[:6]}-{self.serial:04d}"
                self.pod_objects[pod] = {
                    "metadata": {
                        "name": pod,
                        "namespace": NAMESPACE,
                        "labels": copy.deepcopy(labels),
                    },
                    "status": {"conditions": []},
                }
                current.append(pod)
            ready = 0
            for pod in current:
                is_ready = revision not in self.not_ready
                ready += is_ready
                self.pod_objects[pod]["status"]["conditions"] = [
                    {"type": "Ready", "status": "True" if is_ready else "False"}
                ]
            owned.update(current)
            dep["status"] = {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": len(current),
                "updatedReplicas": len(current),
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
        for pod in [p for p in self.pod_objects if p not in owned]:
            del self.pod_objects[pod]  # its Deployment is gone: garbage-collected

    def _run_endpoint_slices(self) -> None:
        self.slices = {}
        for key, svc in sorted(self.objects.items()):
            if not key.startswith("Service/"):
                continue
            name = svc["metadata"]["name"]
            selector = svc["spec"].get("selector") or {}
            endpoints: list[dict[str, Any]] = []
            for pod_name, pod in sorted(self.pod_objects.items()):
                if not selector or not _matches(pod["metadata"]["labels"], selector):
                    continue
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in pod["status"]["conditions"]
                )
                endpoints.append(
                    {
                        "addresses": [f"10.0.0.{len(endpoints) + 1}"],
                        "conditions": {"ready": ready},
                        "targetRef": {"kind": "Pod", "name": pod_name},
                    }
                )
            self.slices[name] = [
                {
                    "metadata": {
                        "name": f"{name}-abcde",
                        "labels": {SERVICE_NAME_LABEL: name},
                    },
                    "endpoints": endpoints,
                }
            ]


def _conforms(cluster: FakeCluster) -> ClusterGateway:
    """mypy checks here that FakeCluster implements the ClusterGateway protocol."""
    return cluster
