"""One external watch harness that times any release controller the same way.

The harness knows nothing of a controller's insides. It creates and patches objects through
the API, and watches the namespace: the apps (BlueGreenApps, Rollouts or Deployments),
their Pods, the EndpointSlices and the Services. Every event is timestamped
(`time.monotonic()`) the moment its line is read off the watch, and each app's release is
judged on those timestamps:

- **patch -> traffic**: from the moment the template patch is sent until every ready
  endpoint of the active Service (EndpointSlices labelled
  kubernetes.io/service-name=<service>) is a pod of the new release, and there is at
  least one. A pod's release is the value of the `BENCH_RELEASE` variable in its pod
  template, which the harness sets to a new number on every release: it is the same for
  every controller, whatever labels or hashes the controller adds.
- **patch -> at rest**: until the app itself says the release is over, as its controller
  defines that (each `Peer` below says how). A controller that says so before traffic has
  moved is counted (`rest_before_traffic`).
- **patch -> flip**: until the active Service's selector changed (blue-green controllers
  flip it); **flip -> traffic** is then the control plane's own share.

The apps all use one pod template shape, 2 replicas and no analysis; each controller keeps
the old pods warm for `scaleDownDelaySeconds` (30 s unless told otherwise), and "at rest"
never waits for that delay to pass, for any controller.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from tests.support import argo_rollouts
from tests.support.apps import GROUP as BG_GROUP
from tests.support.apps import PLURAL as BG_PLURAL
from tests.support.apps import VERSION as BG_VERSION
from tests.support.operator import OperatorProcess

RELEASE_ENV = "BENCH_RELEASE"
APP_LABEL = "bench.bluegreen.dev/app"
IMAGE = "registry.example/peer:v1"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REPLICAS = 2


def api_client_for(kubeconfig: Path, pool: int = 32) -> client.ApiClient:
    """An API client with a connection pool large enough for the harness's threads."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


def pod_template(app: str, release: int) -> dict[str, Any]:
    return {
        "metadata": {"labels": {APP_LABEL: app}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "env": [{"name": RELEASE_ENV, "value": str(release)}],
                    "ports": [{"name": "http", "containerPort": 3000}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                }
            ]
        },
    }


def service(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app},
        "spec": {
            "selector": {APP_LABEL: app},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def release_of_pod(pod: dict[str, Any]) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == RELEASE_ENV:
                with suppress(TypeError, ValueError):
                    return int(env.get("value"))
    return None


def sum_series(metrics_text: str, name: str) -> float:
    """The sum of every series of one counter in a Prometheus text page."""
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)", metrics_text, re.M):
        total += float(m.group(1))
    return total


# ---------------------------------------------------------------------------- peers


class Controller(Protocol):
    """A running controller process the harness can measure."""

    @property
    def pid(self) -> int: ...

    def own_requests(self) -> float | None:
        """API requests the controller counted itself, if it exports such a counter."""

    def stop(self) -> None: ...

    @property
    def log_path(self) -> Path: ...


@dataclass(frozen=True)
class AppState:
    """What the harness reads from an app object."""

    at_rest: bool
    stable: str | None  # the controller's name for the serving revision
    phase: str | None = None
    switch_latency: float | None = None  # the controller's own figure, if it reports one


class Peer(Protocol):
    """How one kind of controller is driven and read. Everything goes through the API."""

    name: str
    settings: dict[str, Any]

    def start(self, kubeconfig: Path, namespace: str, log_dir: Path) -> Controller | None: ...

    def list_apps(self, api: client.ApiClient) -> Callable[..., Any]:
        """The list function a watch of the namespace's app objects uses."""

    def create(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None: ...

    def patch(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None: ...

    def state(self, obj: dict[str, Any], old_stable: str | None) -> AppState: ...

    def delete_all(self, api: client.ApiClient, namespace: str) -> None: ...


def _strategy_delay(settings: dict[str, Any]) -> int:
    return int(settings.get("scaleDownDelaySeconds", 30))


@dataclass
class _OperatorController:
    op: OperatorProcess

    @property
    def pid(self) -> int:
        assert self.op.proc is not None
        return self.op.proc.pid

    @property
    def log_path(self) -> Path:
        return self.op.log_path

    def own_requests(self) -> float | None:
        url = f"http://127.0.0.1:{self.op.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                text = r.read().decode()
        except OSError:
            return None
        return sum_series(text, "bluegreen_kube_api_requests_total")

    def stop(self) -> None:
        self.op.stop()


@dataclass
class BlueGreenPeer:
    """This project's operator, started exactly as the tests start it (`kopf run`)."""

    name: str = "bluegreen"
    settings: dict[str, Any] = field(
        default_factory=lambda: {"scaleDownDelaySeconds": 30, "abortScaleDownDelaySeconds": 30}
    )

    def start(self, kubeconfig: Path, namespace: str, log_dir: Path) -> Controller:
        op = OperatorProcess(kubeconfig, log_dir, namespaces=namespace)
        op.start(timeout=60)
        return _OperatorController(op)

    def list_apps(self, api: client.ApiClient) -> Callable[..., Any]:
        objs = client.CustomObjectsApi(api)

        def lister(namespace: str, **kwargs: Any) -> Any:
            return objs.list_namespaced_custom_object(
                BG_GROUP, BG_VERSION, namespace, BG_PLURAL, **kwargs
            )

        return lister

    def body(self, app: str, release: int) -> dict[str, Any]:
        delay = _strategy_delay(self.settings)
        return {
            "apiVersion": f"{BG_GROUP}/{BG_VERSION}",
            "kind": "BlueGreenApp",
            "metadata": {"name": app},
            "spec": {
                "replicas": REPLICAS,
                "strategy": {
                    "autoPromotion": True,
                    "scaleDownDelaySeconds": delay,
                    "abortScaleDownDelaySeconds": int(
                        self.settings.get("abortScaleDownDelaySeconds", delay)
                    ),
                },
                "template": pod_template(app, release),
            },
        }

    def create(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            BG_GROUP, BG_VERSION, namespace, BG_PLURAL, self.body(app, release)
        )

    def patch(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            BG_GROUP,
            BG_VERSION,
            namespace,
            BG_PLURAL,
            app,
            {"spec": {"template": pod_template(app, release)}},
        )

    def state(self, obj: dict[str, Any], old_stable: str | None) -> AppState:
        """At rest: phase Healthy on a new stableRevision, generation observed. The warm
        old colour (status.scaleDown) is not waited for: the scale-down delay is a wait
        the user asked for, and Argo's Healthy does not wait for its own either."""
        st = obj.get("status") or {}
        stable = st.get("stableRevision")
        gen = int(obj["metadata"].get("generation") or 0)
        observed = int(st.get("observedGeneration") or 0)
        at_rest = (
            st.get("phase") == "Healthy" and observed >= gen and stable not in (None, old_stable)
        )
        switch = (st.get("release") or {}).get("switchLatencySeconds")
        return AppState(
            at_rest=at_rest,
            stable=stable,
            phase=st.get("phase"),
            switch_latency=float(switch) if switch is not None else None,
        )

    def delete_all(self, api: client.ApiClient, namespace: str) -> None:
        with suppress(ApiException, OSError, HTTPError):
            client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
                BG_GROUP, BG_VERSION, namespace, BG_PLURAL, _request_timeout=20
            )


@dataclass
class _ArgoController:
    proc: argo_rollouts.ArgoRolloutsProcess

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.proc.log_path

    def own_requests(self) -> float | None:
        try:
            text = self.proc.metrics()
        except OSError:
            return None
        return sum_series(text, "controller_clientset_k8s_request_total")

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class ArgoPeer:
    """Argo Rollouts' controller with a blue-green strategy: the user creates the active
    Service; the Rollout points at it (`activeService`) and auto-promotes."""

    name: str = "argo"
    extra_args: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=lambda: {"scaleDownDelaySeconds": 30})

    def start(self, kubeconfig: Path, namespace: str, log_dir: Path) -> Controller:
        proc = argo_rollouts.ArgoRolloutsProcess(
            kubeconfig, log_dir, namespace, extra_args=self.extra_args
        )
        proc.start()
        return _ArgoController(proc)

    def list_apps(self, api: client.ApiClient) -> Callable[..., Any]:
        objs = client.CustomObjectsApi(api)

        def lister(namespace: str, **kwargs: Any) -> Any:
            return objs.list_namespaced_custom_object(
                argo_rollouts.GROUP,
                argo_rollouts.VERSION,
                namespace,
                argo_rollouts.PLURAL,
                **kwargs,
            )

        return lister

    def body(self, app: str, release: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{argo_rollouts.GROUP}/{argo_rollouts.VERSION}",
            "kind": "Rollout",
            "metadata": {"name": app},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {APP_LABEL: app}},
                "template": pod_template(app, release),
                "strategy": {
                    "blueGreen": {
                        "activeService": app,
                        "autoPromotionEnabled": True,
                        "scaleDownDelaySeconds": _strategy_delay(self.settings),
                    }
                },
            },
        }

    def create(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.CoreV1Api(api).create_namespaced_service(namespace, service(app))
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            argo_rollouts.GROUP,
            argo_rollouts.VERSION,
            namespace,
            argo_rollouts.PLURAL,
            self.body(app, release),
        )

    def patch(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            argo_rollouts.GROUP,
            argo_rollouts.VERSION,
            namespace,
            argo_rollouts.PLURAL,
            app,
            {"spec": {"template": pod_template(app, release)}},
        )

    def state(self, obj: dict[str, Any], old_stable: str | None) -> AppState:
        """At rest: what `kubectl argo rollouts status` calls Healthy. status.phase Healthy
        with the generation observed (status.observedGeneration is a string), and fully
        promoted: the stable ReplicaSet's hash is the current pod template's, and new."""
        st = obj.get("status") or {}
        gen = int(obj["metadata"].get("generation") or 0)
        try:
            observed = int(st.get("observedGeneration") or 0)
        except (TypeError, ValueError):
            observed = 0
        stable = st.get("stableRS")
        at_rest = (
            st.get("phase") == "Healthy"
            and observed == gen
            and stable is not None
            and stable == st.get("currentPodHash")
            and stable != old_stable
        )
        return AppState(at_rest=at_rest, stable=stable, phase=st.get("phase"))

    def delete_all(self, api: client.ApiClient, namespace: str) -> None:
        with suppress(ApiException, OSError, HTTPError):
            client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
                argo_rollouts.GROUP,
                argo_rollouts.VERSION,
                namespace,
                argo_rollouts.PLURAL,
                _request_timeout=20,
            )


@dataclass
class BarePeer:
    """No release controller: a plain Deployment and Service per app. It sets the floor
    (what the control plane itself needs); a release is the Deployment's rolling update."""

    name: str = "bare"
    settings: dict[str, Any] = field(default_factory=lambda: {"strategy": "RollingUpdate"})

    def start(self, kubeconfig: Path, namespace: str, log_dir: Path) -> Controller | None:
        return None

    def list_apps(self, api: client.ApiClient) -> Callable[..., Any]:
        return client.AppsV1Api(api).list_namespaced_deployment

    def create(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.CoreV1Api(api).create_namespaced_service(namespace, service(app))
        client.AppsV1Api(api).create_namespaced_deployment(
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": app},
                "spec": {
                    "replicas": REPLICAS,
                    "selector": {"matchLabels": {APP_LABEL: app}},
                    "template": pod_template(app, release),
                },
            },
        )

    def patch(self, api: client.ApiClient, namespace: str, app: str, release: int) -> None:
        client.AppsV1Api(api).patch_namespaced_deployment(
            app, namespace, {"spec": {"template": pod_template(app, release)}}
        )

    def state(self, obj: dict[str, Any], old_stable: str | None) -> AppState:
        """At rest: Available, the generation observed, every replica updated and available
        and no old one left (what `kubectl rollout status` waits for)."""
        st = obj.get("status") or {}
        gen = int(obj["metadata"].get("generation") or 0)
        want = int((obj.get("spec") or {}).get("replicas") or 0)
        available = any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in st.get("conditions") or []
        )
        at_rest = (
            available
            and int(st.get("observedGeneration") or 0) >= gen
            and int(st.get("updatedReplicas") or 0) == want
            and int(st.get("availableReplicas") or 0) == want
            and int(st.get("replicas") or 0) == want
            and str(gen) != old_stable  # a template patched since the release began
        )
        return AppState(at_rest=at_rest, stable=str(gen), phase="Available" if available else None)

    def delete_all(self, api: client.ApiClient, namespace: str) -> None:
        with suppress(ApiException, OSError, HTTPError):
            client.AppsV1Api(api).delete_collection_namespaced_deployment(
                namespace, _request_timeout=20
            )


# ---------------------------------------------------------------------------- tracking


@dataclass
class Release:
    """One app's release (or creation, release 0) as the harness saw it."""

    app: str
    release: int
    patched_at: float
    old_stable: str | None
    selector_before: str | None = None
    sent_seconds: float | None = None  # how long the create/patch request itself took
    traffic_at: float | None = None
    rest_at: float | None = None
    flip_at: float | None = None
    rest_before_traffic: bool = False
    switch_latency: float | None = None  # the controller's own figure, when at rest

    @property
    def done(self) -> bool:
        return self.traffic_at is not None and self.rest_at is not None

    def record(self) -> dict[str, Any]:
        def since(t: float | None, origin: float | None) -> float | None:
            return None if t is None or origin is None else round(t - origin, 4)

        return {
            "app": self.app,
            "release": self.release,
            "patch_to_traffic": since(self.traffic_at, self.patched_at),
            "patch_to_rest": since(self.rest_at, self.patched_at),
            "patch_to_flip": since(self.flip_at, self.patched_at),
            "flip_to_traffic": since(self.traffic_at, self.flip_at),
            "rest_before_traffic": self.rest_before_traffic,
            "controller_switch_latency": self.switch_latency,
            "request_seconds": None if self.sent_seconds is None else round(self.sent_seconds, 4),
        }


class Tracker:
    """The namespace as the watches last showed it, and the releases being timed."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.cond = threading.Condition()
        self.pods: dict[str, int | None] = {}  # pod name -> release
        self.slices: dict[str, dict[str, frozenset[str]]] = {}  # service -> slice -> pods
        self.selectors: dict[str, str] = {}  # service -> its selector, as JSON
        self.apps: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, Release] = {}
        self.events = 0

    # -- what the watches feed

    def on_pod(self, kind: str, obj: dict[str, Any], at: float) -> None:
        meta = obj["metadata"]
        with self.cond:
            self.events += 1
            if kind != "DELETED":  # names are never reused; keep a deleted pod's release
                self.pods[meta["name"]] = release_of_pod(obj)
            app = (meta.get("labels") or {}).get(APP_LABEL)
            if app:
                self._judge(app, at)

    def on_slice(self, kind: str, obj: dict[str, Any], at: float) -> None:
        meta = obj["metadata"]
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            return
        with self.cond:
            self.events += 1
            slices = self.slices.setdefault(svc, {})
            if kind == "DELETED":
                slices.pop(meta["name"], None)
            else:
                slices[meta["name"]] = frozenset(
                    (ep.get("targetRef") or {}).get("name", "?")
                    for ep in obj.get("endpoints") or []
                    if (ep.get("conditions") or {}).get("ready") is not False
                )
            self._judge(svc, at)

    def on_service(self, kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            return
        selector = json.dumps((obj.get("spec") or {}).get("selector") or {}, sort_keys=True)
        with self.cond:
            self.events += 1
            if self.selectors.get(name) != selector:
                self.selectors[name] = selector
                rel = self.pending.get(name)
                if rel is not None and rel.flip_at is None and rel.selector_before is not None:
                    rel.flip_at = at
            self._judge(name, at)

    def on_app(self, kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        with self.cond:
            self.events += 1
            if kind == "DELETED":
                self.apps.pop(name, None)
            else:
                self.apps[name] = obj
                self._judge(name, at)

    # -- judging

    def ready_pods(self, service_name: str) -> frozenset[str]:
        slices = self.slices.get(service_name) or {}
        return frozenset().union(*slices.values()) if slices else frozenset()

    def _judge(self, app: str, at: float) -> None:
        rel = self.pending.get(app)
        if rel is None:
            return
        if rel.traffic_at is None:
            ready = self.ready_pods(app)
            if ready and all(self.pods.get(p) == rel.release for p in ready):
                rel.traffic_at = at
        if rel.rest_at is None and app in self.apps:
            state = self.peer.state(self.apps[app], rel.old_stable)
            if state.at_rest:
                rel.rest_at = at
                rel.switch_latency = state.switch_latency
                rel.rest_before_traffic = rel.traffic_at is None
        if rel.done:
            self.cond.notify_all()

    def stable(self, app: str) -> str | None:
        with self.cond:
            obj = self.apps.get(app)
            return None if obj is None else self.peer.state(obj, None).stable

    def expect(self, app: str, release: int) -> Release:
        """Register a release about to be sent; its clock starts now."""
        with self.cond:
            obj = self.apps.get(app)
            old = None if obj is None else self.peer.state(obj, None).stable
            rel = Release(
                app=app,
                release=release,
                patched_at=time.monotonic(),
                old_stable=old,
                selector_before=self.selectors.get(app),
            )
            self.pending[app] = rel
            return rel

    def recheck(self, app: str) -> None:
        with self.cond:
            self._judge(app, time.monotonic())

    def wait(self, releases: Sequence[Release], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(r.done for r in releases):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(timeout=min(left, 1.0))
        return True

    def progress(self, releases: Sequence[Release]) -> tuple[int, int]:
        with self.cond:
            return (
                sum(r.traffic_at is not None for r in releases),
                sum(r.rest_at is not None for r in releases),
            )


class NamespaceWatch:
    """A list + watch of one kind in one namespace, raw JSON, stamped on receipt."""

    def __init__(
        self,
        name: str,
        lister: Callable[..., Any],
        namespace: str,
        handler: Callable[[str, dict[str, Any], float], None],
    ) -> None:
        self.name = name
        self.lister = lister
        self.namespace = namespace
        self.handler = handler
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=10)

    def _list(self) -> str:
        resp = self.lister(self.namespace, _preload_content=False)
        body = json.loads(resp.data) if hasattr(resp, "data") else resp
        at = time.monotonic()
        for obj in body.get("items") or []:
            self.handler("ADDED", obj, at)
        return str(body["metadata"]["resourceVersion"])

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                self._watch = w = watch.Watch()
                for event in w.stream(
                    self.lister,
                    self.namespace,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=120,
                    deserialize=False,
                ):
                    at = time.monotonic()
                    obj = event.get("object") or {}
                    kind = event.get("type")
                    if kind == "ERROR":
                        rv = None
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self.handler(str(kind), obj, at)
                    if self._stop.is_set():
                        break
            except Exception as err:  # noqa: BLE001 - kept, then list again
                if self._stop.is_set():
                    break  # the connection was closed to stop
                self.errors.append(repr(err)[:300])
                rv = None
                self._stop.wait(0.2)


# ---------------------------------------------------------------------------- a session


@dataclass(frozen=True)
class ProcMark:
    cpu_seconds: float
    hwm_kb: int
    rss_kb: int


def read_proc(pid: int) -> ProcMark | None:
    """utime + stime, VmHWM and VmRSS of one process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    after = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcMark(
        cpu_seconds=(int(after[11]) + int(after[12])) / ticks,
        hwm_kb=int(fields["VmHWM"].split()[0]),
        rss_kb=int(fields["VmRSS"].split()[0]),
    )


class Session:
    """One peer in one fresh namespace: its controller, the watches and the tracker."""

    def __init__(
        self,
        peer: Peer,
        api: client.ApiClient,
        *,
        kubeconfig: Path,
        controller_kubeconfig: Path,
        namespace: str,
        log_dir: Path,
        counters: Callable[[], dict[str, float]] | None = None,
        flow_schema: str | None = None,
    ) -> None:
        self.peer = peer
        self.api = api
        self.namespace = namespace
        self.log_dir = log_dir
        self.kubeconfig = kubeconfig
        self.controller_kubeconfig = controller_kubeconfig
        self.counters = counters
        self.flow_schema = flow_schema
        self.tracker = Tracker(peer)
        self.controller: Controller | None = None
        self.watches: list[NamespaceWatch] = []
        self.releases: dict[str, int] = {}

    def start(self) -> None:
        client.CoreV1Api(self.api).create_namespace({"metadata": {"name": self.namespace}})
        t = self.tracker
        # One client per watch: each holds its own connection.
        core = client.CoreV1Api(api_client_for(self.kubeconfig, pool=2))
        services = client.CoreV1Api(api_client_for(self.kubeconfig, pool=2))
        discovery = client.DiscoveryV1Api(api_client_for(self.kubeconfig, pool=2))
        apps = self.peer.list_apps(api_client_for(self.kubeconfig, pool=2))
        ns = self.namespace
        self.watches = [
            NamespaceWatch("pods", core.list_namespaced_pod, ns, t.on_pod),
            NamespaceWatch("slices", discovery.list_namespaced_endpoint_slice, ns, t.on_slice),
            NamespaceWatch("services", services.list_namespaced_service, ns, t.on_service),
            NamespaceWatch("apps", apps, ns, t.on_app),
        ]
        for w in self.watches:
            w.start()
        self.controller = self.peer.start(self.controller_kubeconfig, self.namespace, self.log_dir)

    # -- measuring

    def mark(self) -> dict[str, Any]:
        m: dict[str, Any] = {"at": time.monotonic()}
        if self.controller is not None:
            p = read_proc(self.controller.pid)
            if p is not None:
                m["cpu"] = p.cpu_seconds
                m["hwm_kb"] = p.hwm_kb
                m["rss_kb"] = p.rss_kb
            m["own_requests"] = self.controller.own_requests()
            with suppress(OSError):
                m["log_lines"] = sum(1 for _ in self.controller.log_path.open("rb"))
        if self.counters is not None:
            m["counters"] = self.counters()
        return m

    def cost(self, a: dict[str, Any], b: dict[str, Any], n: int) -> dict[str, Any]:
        """What the controller spent between two marks, in total and per app/release."""
        out: dict[str, Any] = {"wall_seconds": round(b["at"] - a["at"], 2)}
        if "cpu" in a and "cpu" in b:
            cpu = b["cpu"] - a["cpu"]
            out["cpu_seconds"] = round(cpu, 3)
            out["cpu_seconds_per_app"] = round(cpu / n, 4)
            out["peak_rss_mb"] = round(b["hwm_kb"] / 1024, 1)
            out["rss_mb_at_end"] = round(b["rss_kb"] / 1024, 1)
        if a.get("own_requests") is not None and b.get("own_requests") is not None:
            own = b["own_requests"] - a["own_requests"]
            out["own_counter_requests"] = int(own)
            out["own_counter_requests_per_app"] = round(own / n, 2)
        if "log_lines" in a and "log_lines" in b:
            out["log_lines"] = b["log_lines"] - a["log_lines"]
        ca, cb = a.get("counters") or {}, b.get("counters") or {}
        if self.flow_schema and self.flow_schema in cb:
            req = cb[self.flow_schema] - ca.get(self.flow_schema, 0.0)
            out["apiserver_requests"] = int(req)
            out["apiserver_requests_per_app"] = round(req / n, 2)
        cp = {
            k.removeprefix("cp:"): round(v - ca.get(k, 0.0), 1)
            for k, v in cb.items()
            if k.startswith("cp:")
        }
        if cp:
            out["control_plane_cpu_seconds"] = cp
        return out

    # -- driving

    def _send(self, apps: Sequence[str], workers: int, create: bool) -> list[Release]:
        out: list[Release] = []
        lock = threading.Lock()

        def one(app: str) -> None:
            release = self.releases.get(app, -1) + 1
            self.releases[app] = release
            rel = self.tracker.expect(app, release)
            if create:
                self.peer.create(self.api, self.namespace, app, release)
            else:
                self.peer.patch(self.api, self.namespace, app, release)
            rel.sent_seconds = time.monotonic() - rel.patched_at
            self.tracker.recheck(app)
            with lock:
                out.append(rel)

        if len(apps) == 1:
            one(apps[0])
            return out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for f in [pool.submit(one, a) for a in apps]:
                f.result()
        return out

    def create(self, apps: Sequence[str], workers: int = 8) -> list[Release]:
        return self._send(apps, workers, create=True)

    def release(self, apps: Sequence[str], workers: int = 8) -> list[Release]:
        return self._send(apps, workers, create=False)

    def wait(
        self, releases: Sequence[Release], timeout: float, label: str = "", every: float = 15.0
    ) -> bool:
        """Wait for every release to reach traffic and rest, printing progress."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.tracker.wait(releases, min(every, left)):
                return True
            if label:
                traffic, rest = self.tracker.progress(releases)
                print(
                    f"  [{self.peer.name} {label}] +{time.monotonic() - started:5.0f}s"
                    f" traffic {traffic}/{len(releases)}, at rest {rest}/{len(releases)}",
                    flush=True,
                )

    # -- the end

    def cleanup(self, timeout: float = 600, wait_namespace: bool = True) -> dict[str, Any]:
        """Delete the apps while the controller runs (finalizers), then the namespace."""
        started = time.monotonic()
        report: dict[str, Any] = {}
        asked = 0.0
        while time.monotonic() - started < timeout:
            with self.tracker.cond:
                left = len(self.tracker.apps)
            if left == 0:
                break
            if time.monotonic() - asked > 30:
                # A deletecollection of many objects can end early (a timeout): ask again.
                self.peer.delete_all(self.api, self.namespace)
                asked = time.monotonic()
            time.sleep(1)
        report["apps_deleted_seconds"] = round(time.monotonic() - started, 1)
        if self.controller is not None:
            self.controller.stop()
        for w in self.watches:
            w.stop()
        report["watch_errors"] = [e for w in self.watches for e in w.errors][:10]
        core = client.CoreV1Api(self.api)
        ns_started = time.monotonic()
        with suppress(ApiException):
            core.delete_namespace(self.namespace)
        self._strip_finalizers()
        if not wait_namespace:
            return report
        while time.monotonic() - ns_started < timeout:
            try:
                core.read_namespace(self.namespace)
            except ApiException as err:
                if err.status == 404:
                    break
                raise
            time.sleep(2)
        else:
            report["namespace_still_terminating"] = True
        report["namespace_deleted_seconds"] = round(time.monotonic() - ns_started, 1)
        return report

    def _strip_finalizers(self) -> None:
        """Apps the controller did not release in time would hold the namespace forever."""
        if not isinstance(self.peer, BlueGreenPeer):
            return
        objs = client.CustomObjectsApi(self.api)
        with suppress(ApiException):
            items = objs.list_namespaced_custom_object(
                BG_GROUP, BG_VERSION, self.namespace, BG_PLURAL
            ).get("items", [])
            for obj in items:
                with suppress(ApiException):
                    objs.patch_namespaced_custom_object(
                        BG_GROUP,
                        BG_VERSION,
                        self.namespace,
                        BG_PLURAL,
                        obj["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                    )


def app_names(n: int, prefix: str = "app") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]
