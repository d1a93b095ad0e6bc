#!/usr/bin/env python3
"""A kubelet stand-in for the data path: pods that opt in run as real processes.

kwok plays the kubelet of the local control plane, but it runs nothing. A pod labelled
`kwok.bluegreen.dev/run: demo` is run here instead, as the demo app (`python -m
bluegreen_demo`), listening on the pod's IP and its first container's first port, with the
container's environment. Its lifecycle follows a kubelet's:

- start: once kwok has given the pod an IP. A second pod on the same ip:port is refused
  loudly (an Event, the annotation `kwok.bluegreen.dev/error` and this log), because
  kwok can hand out an address still in use after it restarts.
- readiness: the container's readinessProbe (httpGet or tcpSocket; without one, a TCP
  connect to the port) is tried every 100 ms until it first answers, then every
  periodSeconds. The result goes into the annotation `kwok.bluegreen.dev/probe`
  (`ready` or `failing`), and kwok's `pod-run-*` Stages (tools/kwok-stages.yaml) turn
  it into the pod's Ready condition. So a pod is Ready only once its process answers.
- stop: when the pod is deleted, the preStop hook runs if it is a sleep (`sleep N` in
  an exec hook, or the `sleep` action), then SIGTERM, then SIGKILL once the grace period
  (`terminationGracePeriodSeconds`) is over; then the pod object is removed, as a kubelet
  does. A process that exits on its own is started again, with a backoff.

    podrunner.py --kubeconfig FILE --log-dir DIR [--ready-file FILE]

Pod processes stay in this process's group, so stopping the group stops them all.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parent.parent
RUN_LABEL = "kwok.bluegreen.dev/run"
PROBE_ANNOTATION = "kwok.bluegreen.dev/probe"
ERROR_ANNOTATION = "kwok.bluegreen.dev/error"
PROGRAMS = {"demo": [sys.executable, "-m", "bluegreen_demo"]}
"""What a pod's `kwok.bluegreen.dev/run` label value runs."""
PROGRAM_PATH = {"demo": str(REPO / "app")}

STARTUP_PROBE_INTERVAL = 0.1
DEFAULT_GRACE_SECONDS = 30.0
MIN_TERM_WAIT_SECONDS = 1.0
MAX_RESTART_BACKOFF = 10.0
FIELD_REFS = {
    "metadata.name": lambda pod: pod["metadata"]["name"],
    "metadata.namespace": lambda pod: pod["metadata"]["namespace"],
    "status.podIP": lambda pod: pod["status"]["podIP"],
    "spec.nodeName": lambda pod: pod["spec"].get("nodeName", ""),
}

log = logging.getLogger("podrunner")


class RefusedError(Exception):
    """The pod cannot run here; the message says why, for the person reading the pod."""


# --------------------------------------------------------------------------- pod specs


@dataclass(frozen=True)
class Probe:
    kind: str  # "http" or "tcp"
    port: int
    path: str = "/"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class PodRun:
    """What the stand-in needs to know to run one pod."""

    uid: str
    namespace: str
    name: str
    ip: str
    port: int
    program: str
    env: dict[str, str]
    probe: Probe
    pre_stop_seconds: float
    grace_seconds: float

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)


def _resolve_port(value: object, ports: list[dict[str, Any]]) -> int:
    if isinstance(value, int):
        return value
    for port in ports:
        if port.get("name") == value:
            return int(port["containerPort"])
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise RefusedError(f"probe port {value!r} is not a port of the container")


def probe_of(container: dict[str, Any], default_port: int) -> Probe:
    """The container's readinessProbe; without one, a TCP connect to its port."""
    spec = container.get("readinessProbe") or {}
    ports = container.get("ports") or []
    if "httpGet" in spec:
        get = spec["httpGet"]
        if get.get("scheme", "HTTP").upper() != "HTTP":
            raise RefusedError("only plain HTTP readiness probes are supported")
        kind, port, path = "http", _resolve_port(get.get("port"), ports), get.get("path") or "/"
    elif "tcpSocket" in spec:
        kind, port, path = "tcp", _resolve_port(spec["tcpSocket"].get("port"), ports), "/"
    elif spec:
        raise RefusedError("only httpGet and tcpSocket readiness probes are supported")
    else:
        kind, port, path = "tcp", default_port, "/"
    return Probe(
        kind,
        port,
        path,
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


_SLEEP = re.compile(r"^\s*(?:exec\s+)?(?:/bin/|/usr/bin/)?sleep\s+(\d+(?:\.\d+)?)\s*$")


def pre_stop_seconds(container: dict[str, Any]) -> float:
    """How long the preStop hook sleeps: `sleep N` (exec, or `sh -c "sleep N"`) or the
    `sleep` action. Any other hook is refused: nothing can be run inside the pod here."""
    hook = (container.get("lifecycle") or {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" in hook:
        return float(hook["sleep"].get("seconds", 0))
    command = (hook.get("exec") or {}).get("command") or []
    if command and Path(command[0]).name in ("sh", "bash") and "-c" in command:
        command = [command[-1]]
    match = _SLEEP.match(" ".join(command))
    if match is None:
        raise RefusedError(f"preStop hook {hook!r} is not a sleep; only sleeps are supported")
    return float(match.group(1))


def container_env(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref not in FIELD_REFS:
            raise RefusedError(
                f"env {item['name']}: only values and the fieldRefs {sorted(FIELD_REFS)} are supported"
            )
        env[item["name"]] = str(FIELD_REFS[ref](pod))
    return env


def pod_run(pod: dict[str, Any]) -> PodRun:
    """Read a pod that opted in; RefusedError if it cannot run here."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    program = (meta.get("labels") or {}).get(RUN_LABEL, "")
    if program not in PROGRAMS:
        raise RefusedError(f"{RUN_LABEL}={program!r}: this stand-in runs only {sorted(PROGRAMS)}")
    container = spec["containers"][0]
    ports = container.get("ports") or []
    if not ports:
        raise RefusedError(f"container {container['name']!r} declares no port to listen on")
    port = int(ports[0]["containerPort"])
    ip = status["podIP"]
    env = {**container_env(pod, container), "HOST": ip, "PORT": str(port)}
    grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
    return PodRun(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        ip=ip,
        port=port,
        program=program,
        env=env,
        probe=probe_of(container, port),
        pre_stop_seconds=pre_stop_seconds(container),
        grace_seconds=float(DEFAULT_GRACE_SECONDS if grace is None else grace),
    )


# --------------------------------------------------------------------------- addresses


class Addresses:
    """ip:port of every running pod, so two pods never share one."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def claim(self, run: PodRun) -> None:
        with self._lock:
            owner = self._owners.get(run.address)
            if owner is not None and owner != run.uid:
                raise RefusedError(
                    f"{run.ip}:{run.port} is already served by another running pod (uid {owner});"
                    " kwok handed out an address that is still in use"
                )
            self._owners[run.address] = run.uid

    def release(self, run: PodRun) -> None:
        with self._lock:
            if self._owners.get(run.address) == run.uid:
                del self._owners[run.address]


# --------------------------------------------------------------------------- probes


def probe_once(ip: str, probe: Probe) -> bool:
    try:
        if probe.kind == "tcp":
            with socket.create_connection((ip, probe.port), timeout=probe.timeout):
                return True
        connection = http.client.HTTPConnection(ip, probe.port, timeout=probe.timeout)
        try:
            connection.request("GET", probe.path, headers={"User-Agent": "kube-probe/podrunner"})
            status = connection.getresponse().status
        finally:
            connection.close()
    except OSError:
        return False
    return 200 <= status < 400


# --------------------------------------------------------------------------- one pod


class Cluster:
    """The few API calls the stand-in makes."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api_client)
        self.events = client.EventsV1Api(api_client)

    def annotate(self, run: PodRun, annotations: dict[str, str | None]) -> None:
        body = {"metadata": {"annotations": annotations}}
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod(run.name, run.namespace, body)

    def remove(self, namespace: str, name: str, uid: str) -> None:
        """Delete the pod object at once, as a kubelet does once the containers stopped."""
        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            self.core.delete_namespaced_pod(name, namespace, body=options)
        except ApiException as err:
            if err.status not in (404, 409):
                log.warning("%s/%s: removing the pod failed: %s", namespace, name, err.reason)

    def refuse(self, namespace: str, name: str, uid: str, reason: str, note: str) -> None:
        """Say loudly why a pod does not run: this log, an Event and an annotation."""
        log.error("%s/%s: %s: %s", namespace, name, reason, note)
        body = {"metadata": {"annotations": {ERROR_ANNOTATION: note}}}
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod(name, namespace, body)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        event: dict[str, Any] = {
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "eventTime": now,
            "reportingController": "bluegreen.dev/podrunner",
            "reportingInstance": socket.gethostname(),
            "action": "Run",
            "reason": reason,
            "note": note[:1024],
            "type": "Warning",
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": name,
                "namespace": namespace,
                "uid": uid,
            },
        }
        with contextlib.suppress(ApiException):
            self.events.create_namespaced_event(namespace, event)


@dataclass
class Stop:
    """A request to stop the pod's process."""

    pre_stop_seconds: float
    grace_seconds: float
    requested_at: float = field(default_factory=time.monotonic)
    remove_pod: bool = True


class PodProcess(threading.Thread):
    """Runs one pod's process from start to stop, in its own thread."""

    def __init__(self, run: PodRun, cluster: Cluster, addresses: Addresses, log_dir: Path) -> None:
        super().__init__(name=run.key, daemon=True)
        self.run_spec = run
        self.cluster = cluster
        self.addresses = addresses
        self.log_path = log_dir / f"{run.namespace}_{run.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_request: Stop | None = None
        self._wake = threading.Event()
        self._ready: bool | None = None
        self._told_address_in_use = False

    def request_stop(self, stop: Stop) -> None:
        if self.stop_request is None:
            self.stop_request = stop
            self._wake.set()

    # The thread: start, probe, restart on exit, until asked to stop.
    def run(self) -> None:
        run = self.run_spec
        backoff = 1.0
        try:
            while self.stop_request is None:
                self._start()
                self._supervise()
                if self.stop_request is None:
                    self._report_exit()
                    self._set_ready(ready=False)
                    self._wake.wait(backoff)
                    backoff = min(backoff * 2, MAX_RESTART_BACKOFF)
            self._terminate(self.stop_request)
        finally:
            self.addresses.release(run)

    def _start(self) -> None:
        run = self.run_spec
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)},
            "PYTHONPATH": PROGRAM_PATH[run.program],
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **run.env,
        }
        with self.log_path.open("ab") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} start {run.ip}:{run.port}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                PROGRAMS[run.program],
                cwd=PROGRAM_PATH[run.program],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        log.info("%s: started pid %d on %s:%d", run.key, self.process.pid, run.ip, run.port)

    def _report_exit(self) -> None:
        run = self.run_spec
        code = self.process.returncode if self.process else None
        log.warning("%s: process exited with %s; starting it again", run.key, code)
        tail = self.log_path.read_bytes()[-4000:].decode(errors="replace")
        if "Address already in use" in tail and not self._told_address_in_use:
            self._told_address_in_use = True
            note = f"{run.ip}:{run.port} is already in use by a process that is not this pod's"
            self.cluster.refuse(run.namespace, run.name, run.uid, "AddressInUse", note)

    def _supervise(self) -> None:
        """Probe until the process exits or a stop is requested."""
        run, process = self.run_spec, self.process
        assert process is not None
        if run.probe.initial_delay:
            self._wake.wait(run.probe.initial_delay)
        failures = 0
        while self.stop_request is None and process.poll() is None:
            ok = probe_once(run.ip, run.probe)
            if ok:
                failures = 0
                self._set_ready(ready=True)
            else:
                failures += 1
                if self._ready and failures >= run.probe.failure_threshold:
                    self._set_ready(ready=False)
            interval = run.probe.period if self._ready else STARTUP_PROBE_INTERVAL
            self._wake.wait(interval)

    def _set_ready(self, *, ready: bool) -> None:
        if self._ready == ready:
            return
        if self._ready is None and not ready:
            return  # never was ready: kwok's start stage already says not Ready
        self._ready = ready
        self.cluster.annotate(self.run_spec, {PROBE_ANNOTATION: "ready" if ready else "failing"})
        log.info("%s: readiness probe %s", self.run_spec.key, "passed" if ready else "failing")

    def _terminate(self, stop: Stop) -> None:
        run, process = self.run_spec, self.process
        deadline = stop.requested_at + stop.grace_seconds
        if process is not None and process.poll() is None:
            pre_stop = min(stop.pre_stop_seconds, stop.grace_seconds)
            if pre_stop > 0:
                log.info("%s: preStop sleep %.1fs", run.key, pre_stop)
                time.sleep(max(0.0, stop.requested_at + pre_stop - time.monotonic()))
            process.send_signal(signal.SIGTERM)
            wait = max(deadline - time.monotonic(), MIN_TERM_WAIT_SECONDS)
            try:
                code = process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
                log.warning("%s: killed after the %.0fs grace period", run.key, stop.grace_seconds)
            log.info("%s: stopped with %s", run.key, code)
        if stop.remove_pod:
            self.cluster.remove(run.namespace, run.name, run.uid)


# --------------------------------------------------------------------------- the watch


class PodRunner:
    """Follows every opted-in pod and keeps one PodProcess per running pod."""

    def __init__(self, api_client: client.ApiClient, log_dir: Path) -> None:
        self.cluster = Cluster(api_client)
        self.core = self.cluster.core
        self.addresses = Addresses()
        self.log_dir = log_dir
        self.processes: dict[str, PodProcess] = {}
        self.refused: set[str] = set()
        self.stopping = threading.Event()

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        current = self.processes.get(uid)
        if kind == "DELETED":
            if current is not None:
                current.request_stop(Stop(0.0, MIN_TERM_WAIT_SECONDS, remove_pod=False))
                del self.processes[uid]
            self.refused.discard(uid)
            return
        if pod["metadata"].get("deletionTimestamp"):
            if current is not None:
                spec = current.run_spec
                grace = pod["metadata"].get("deletionGracePeriodSeconds", spec.grace_seconds)
                current.request_stop(Stop(spec.pre_stop_seconds, float(grace)))
            else:
                # Nothing runs for it (no IP yet, or refused): nothing to wait for.
                meta = pod["metadata"]
                self.cluster.remove(meta["namespace"], meta["name"], uid)
            return
        if current is None and uid not in self.refused and (pod.get("status") or {}).get("podIP"):
            self._start(pod)

    def _start(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            run = pod_run(pod)
            self.addresses.claim(run)
        except RefusedError as err:
            self.refused.add(meta["uid"])
            self.cluster.refuse(meta["namespace"], meta["name"], meta["uid"], "Refused", str(err))
            return
        if (meta.get("annotations") or {}).get(PROBE_ANNOTATION) == "ready":
            # Ready from an earlier run of this stand-in, whose process is gone: not until
            # the new process answers.
            self.cluster.annotate(run, {PROBE_ANNOTATION: "failing"})
        process = PodProcess(run, self.cluster, self.addresses, self.log_dir)
        self.processes[run.uid] = process
        process.start()

    def watch_forever(self, ready_file: Path | None) -> None:
        while not self.stopping.is_set():
            listed = self.core.list_pod_for_all_namespaces(
                label_selector=RUN_LABEL, _preload_content=False
            )
            body = _json(listed)
            for pod in body["items"]:
                self.handle("ADDED", pod)
            self._forget_missing({pod["metadata"]["uid"] for pod in body["items"]})
            if ready_file is not None:
                ready_file.write_text(str(os.getpid()))
                ready_file = None
            self._watch_from(body["metadata"]["resourceVersion"])

    def _forget_missing(self, listed: set[str]) -> None:
        """Pods deleted while the watch was down: stop their processes."""
        for uid in set(self.processes) - listed:
            self.processes.pop(uid).request_stop(Stop(0.0, MIN_TERM_WAIT_SECONDS, remove_pod=False))

    def _watch_from(self, resource_version: str) -> None:
        """Follow changes until the watch expires (then the caller lists again)."""
        while not self.stopping.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_pod_for_all_namespaces,
                    label_selector=RUN_LABEL,
                    resource_version=resource_version,
                    timeout_seconds=30,
                    allow_watch_bookmarks=True,
                ):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        return  # expired: list again
                    resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.handle(event["type"], obj)
                    if self.stopping.is_set():
                        return
            except ApiException as err:
                log.warning("watch failed (%s); listing again", err.reason)
                return
            except Exception as err:  # noqa: BLE001 - the watch must survive API restarts
                log.warning("watch interrupted (%r); resuming", err)
                time.sleep(0.5)
            finally:
                stream.stop()

    def stop_all(self) -> None:
        self.stopping.set()
        for process in list(self.processes.values()):
            process.request_stop(Stop(0.0, 3.0, remove_pod=False))
        for process in list(self.processes.values()):
            process.join(timeout=5)


def _json(response: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response.data)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    args.log_dir.mkdir(parents=True, exist_ok=True)
    runner = PodRunner(config.new_client_from_config(config_file=args.kubeconfig), args.log_dir)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        runner.stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("watching pods labelled %s", RUN_LABEL)
    runner.watch_forever(args.ready_file)


if __name__ == "__main__":
    main()
