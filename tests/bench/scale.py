"""Scale: N BlueGreenApps under one operator process, created, released and left idle.

    .venv/bin/python -m tests.bench.scale --apps 1000 --idle-seconds 300

In a fresh namespace with its own operator (`kopf run`, watching only that namespace):

1. create N apps (2 replicas, scaleDownDelaySeconds 0) and time until every one is
   Healthy, from a watch on the app list (no per-app polling);
2. patch every app's image at once and time until every one is Healthy on the new
   revision;
3. leave the N settled apps alone for `--idle-seconds` and measure what that costs.

Throughout, the operator process's RSS (VmRSS, VmHWM) and CPU seconds (utime + stime)
are read from /proc every second, and the control plane's processes' CPU seconds at
every phase boundary. API cost is the number of requests the operator's gateway sent
(`KubernetesGateway.requests`, read exactly through the operator's liveness probe, which
reports it; kopf's own watch and patches are not in it), next to what the exported
`bluegreen_kube_api_requests_total` says (each pass adds the growth of that shared
counter while it ran, so passes running at the same time count each other's requests
too: under load it over-counts), and, for context, the API server's
`apiserver_request_total` (every client of the cluster, this benchmark's included).

`--py-spy BIN` records a py-spy profile (raw collapsed stacks, text) of the operator
during each phase into the results directory; the run is then marked "profiled" since
sampling costs the operator a little.

Prints a summary table and writes tests/bench/results/scale-<N>.json. The apps are
deleted while the operator still runs (it removes its finalizers), then the namespace.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.bench.release_latency import RESULTS, summary
from tests.support.apps import GROUP, PLURAL, VERSION, app_manifest, install_crd
from tests.support.cluster import REPO, cluster_session
from tests.support.operator import OperatorProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")
CLUSTER_PIDS = Path(os.environ.get("BLUEGREEN_CLUSTER_DIR", REPO / ".cache" / "cluster"))
IMAGE_V1 = "registry.example/scale:v1"
IMAGE_V2 = "registry.example/scale:v2"
PROBE_CACHE_SECONDS = 10.0  # kopf's liveness endpoint recollects probes at most this often

# ---------------------------------------------------------------------------- /proc


@dataclass(frozen=True)
class ProcSample:
    at: float  # monotonic
    rss_kb: int
    hwm_kb: int
    cpu_seconds: float
    threads: int


def read_proc(pid: int) -> ProcSample | None:
    """VmRSS, VmHWM and utime+stime of one process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(
        line.split(":", 1) for line in status.splitlines() if ":" in line
    )  # "VmRSS:\t  123 kB"
    # /proc/<pid>/stat: the command name (field 2) may hold spaces; count after its ")".
    after = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after[11]), int(after[12])  # fields 14 and 15 of the whole line
    return ProcSample(
        at=time.monotonic(),
        rss_kb=int(fields["VmRSS"].split()[0]),
        hwm_kb=int(fields["VmHWM"].split()[0]),
        cpu_seconds=(utime + stime) / CLK_TCK,
        threads=int(fields["Threads"].split()[0]),
    )


class ProcSampler:
    """Samples one process every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[ProcSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proc-sampler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            s = read_proc(self.pid)
            if s is not None:
                self.samples.append(s)
            self._stop.wait(self.interval)

    def now(self) -> ProcSample:
        s = read_proc(self.pid)
        if s is None:
            raise RuntimeError(f"the operator process {self.pid} is gone")
        self.samples.append(s)
        return s

    def peak_rss_mb(self, since: float, until: float) -> float:
        window = [s.rss_kb for s in self.samples if since <= s.at <= until]
        return round(max(window, default=0) / 1024, 1)


def control_plane_cpu() -> dict[str, float]:
    """CPU seconds so far of each local control-plane process (empty on another cluster)."""
    try:
        pids = json.loads((CLUSTER_PIDS / "pids.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for name, pid in pids.items():
        s = read_proc(int(pid))
        if s is not None:
            out[name] = s.cpu_seconds
    return out


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    model = ""
    with suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = m.group(1).strip() if m else ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def operator_code() -> dict[str, Any]:
    """The commit the operator runs from, and whether operator/ has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "operator_dir_modified": bool(git("status", "--porcelain", "--", "operator")),
    }


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ---------------------------------------------------------------------------- metrics


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_prometheus(text: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Series whose name starts with one of `prefixes`, keyed by `name{labels}`."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(prefixes):
            continue
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def scrape_operator(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    series = parse_prometheus(
        text,
        (
            "bluegreen_kube_api_requests_total",
            "bluegreen_reconcile_duration_seconds_sum",
            "bluegreen_reconcile_duration_seconds_count",
            "bluegreen_reconcile_errors_total",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ),
    )
    series["_scrape_bytes"] = len(text)
    return series


def scrape_apiserver(api_client: client.ApiClient) -> dict[str, float]:
    """apiserver_request_total by verb/resource/subresource (codes summed)."""
    method, url, headers, _, _ = api_client.param_serialize(
        method="GET",
        resource_path="/metrics",
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    try:
        resp = api_client.call_api(method, url, header_params=headers, _request_timeout=60)
        text = resp.read().decode()
    except (ApiException, OSError) as err:
        return {"_error": 1.0, "_message_len": float(len(str(err)))}
    out: dict[str, float] = collections.defaultdict(float)
    for key, value in parse_prometheus(text, ("apiserver_request_total{",)).items():
        labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
        name = f"{labels.get('verb')} {labels.get('resource')}"
        if labels.get("subresource"):
            name += f"/{labels['subresource']}"
        out[name] += value
    return dict(out)


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def apiserver_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    diffs = {k: after[k] - before.get(k, 0.0) for k in after if not k.startswith("_")}
    diffs = {k: v for k, v in diffs.items() if v > 0}
    top = sorted(diffs.items(), key=lambda kv: -kv[1])[:12]
    return {"total": int(sum(diffs.values())), "top": {k: int(v) for k, v in top}}


# ---------------------------------------------------------------------------- the app list


@dataclass
class AppView:
    phase: str | None = None
    stable_revision: str | None = None
    observed_generation: int = 0
    generation: int = 0
    scale_down: bool = False
    replicas: int | None = None
    switch_latency: float | None = None
    release_duration: float | None = None
    release_started: str | None = None
    finalizers: tuple[str, ...] = ()


def view(obj: dict[str, Any]) -> AppView:
    st = obj.get("status") or {}
    release = st.get("release") or {}
    return AppView(
        phase=st.get("phase"),
        stable_revision=st.get("stableRevision"),
        observed_generation=int(st.get("observedGeneration") or 0),
        generation=int(obj["metadata"].get("generation") or 0),
        scale_down=st.get("scaleDown") is not None,
        replicas=st.get("replicas"),
        switch_latency=release.get("switchLatencySeconds"),
        release_duration=release.get("durationSeconds"),
        release_started=release.get("startedAt"),
        finalizers=tuple(obj["metadata"].get("finalizers") or ()),
    )


Goal = Callable[[str, AppView], bool]


@dataclass
class AppList:
    """The namespace's BlueGreenApps, kept current by one list + watch."""

    api_client: client.ApiClient
    namespace: str
    apps: dict[str, AppView] = field(default_factory=dict)
    reached: dict[str, float] = field(default_factory=dict)
    events: int = 0
    errors: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    _goal: Goal | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="app-list")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def set_goal(self, goal: Goal) -> None:
        """From now on, remember when each app first meets `goal`."""
        with self.cond:
            self._goal = goal
            self.reached = {}
            now = time.monotonic()
            for name, v in self.apps.items():
                if goal(name, v):
                    self.reached[name] = now
            self.cond.notify_all()

    def recheck(self, name: str) -> None:
        with self.cond:
            v = self.apps.get(name)
            goal = self._goal
            if v is not None and goal is not None and name not in self.reached and goal(name, v):
                self.reached[name] = time.monotonic()
                self.cond.notify_all()

    def _update(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self.cond:
            self.events += 1
            if kind == "DELETED":
                self.apps.pop(name, None)
            else:
                v = view(obj)
                self.apps[name] = v
                if self._goal is not None and name not in self.reached and self._goal(name, v):
                    self.reached[name] = time.monotonic()
            self.cond.notify_all()

    def _run(self) -> None:
        objs = client.CustomObjectsApi(self.api_client)
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listed = objs.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL
                    )
                    with self.cond:
                        self.apps = {}
                    for obj in listed.get("items", []):
                        self._update("ADDED", obj)
                    rv = listed["metadata"]["resourceVersion"]
                w = watch.Watch()
                for event in w.stream(
                    objs.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=60,
                ):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        rv = None  # 410 Gone and friends: list again
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._update(event["type"], obj)
                    if self._stop.is_set():
                        break
                w.stop()
            except Exception as err:  # noqa: BLE001 - kept and reported, then list again
                self.errors.append(repr(err)[:300])
                rv = None
                time.sleep(0.5)

    def snapshot(self) -> tuple[int, dict[str, int], int]:
        with self.cond:
            phases = collections.Counter(v.phase or "-" for v in self.apps.values())
            return len(self.reached), dict(phases), len(self.apps)


def wait_goal(
    apps: AppList, n: int, timeout: float, label: str, every: float = 2.0
) -> tuple[float | None, list[list[Any]]]:
    """Wait until `n` apps met the goal; return (seconds or None on timeout, timeline)."""
    started = time.monotonic()
    timeline: list[list[Any]] = []
    next_tick = started
    last_print = started
    while True:
        now = time.monotonic()
        reached, phases, _total = apps.snapshot()
        if now >= next_tick or reached >= n:
            timeline.append([round(now - started, 1), reached, phases])
            next_tick = now + every
        if now - last_print >= 15 or reached >= n:
            print(f"  [{label}] +{now - started:6.1f}s {reached}/{n} done; phases {phases}")
            last_print = now
        if reached >= n:
            with apps.cond:
                last = max(apps.reached.values(), default=now)
            return max(0.0, last - started), timeline
        if now - started > timeout:
            return None, timeline
        time.sleep(0.25)  # the watch thread keeps each app's own time; this only reports


# ---------------------------------------------------------------------------- py-spy


class Profiler:
    """py-spy of the operator per phase, as raw collapsed stacks (text), two views:
    `-cpu` (threads that run: where its CPU goes) and `-wall` (`--idle`: every thread,
    waiting included: where a pass spends its time). Stopped with SIGINT at phase end."""

    def __init__(self, binary: str | None, pid: int, out_dir: Path, tag: str) -> None:
        self.binary = binary
        self.pid = pid
        self.out_dir = out_dir
        self.tag = tag
        self.files: dict[str, str] = {}
        self.dump_tallies: dict[str, list[list[Any]]] = {}

    def _record(self, out: Path, *extra: str) -> subprocess.Popen[bytes]:
        assert self.binary is not None
        return subprocess.Popen(
            [
                self.binary,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
                "--duration",
                "7200",
                "-o",
                str(out),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )

    def dump(self) -> str:
        assert self.binary is not None
        return subprocess.run(
            [self.binary, "dump", "--nonblocking", "--pid", str(self.pid)],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=60,
        ).stdout

    def _dumps(self, name: str, stop: threading.Event, every: float) -> None:
        """A `py-spy dump` every `every` seconds: what each thread is doing, over time."""
        started = time.monotonic()
        tallies: list[list[Any]] = []
        dumps: list[str] = []
        while not stop.wait(every):
            with suppress(OSError, subprocess.SubprocessError):
                dumps.append(self.dump())
                tallies.append([round(time.monotonic() - started, 1), thread_states(dumps[-1])])
        self.dump_tallies[name] = tallies
        if dumps:  # the one from the middle of the phase, as text
            middle = len(dumps) // 2
            (self.out_dir / f"pyspy-dump-{self.tag}-{name}.txt").write_text(
                f"# py-spy dump --nonblocking, {tallies[middle][0]} s into the {name} phase\n"
                + dumps[middle]
            )

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.binary:
            yield
            return
        outs = {
            "cpu": self.out_dir / f"profile-{self.tag}-{name}-cpu.txt",
            "wall": self.out_dir / f"profile-{self.tag}-{name}-wall.txt",
        }
        procs = {"cpu": self._record(outs["cpu"]), "wall": self._record(outs["wall"], "--idle")}
        stop = threading.Event()
        dumper = threading.Thread(target=self._dumps, args=(name, stop, 5.0), daemon=True)
        dumper.start()
        try:
            yield
        finally:
            stop.set()
            dumper.join(timeout=90)
            for view_, proc in procs.items():
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                self.files[f"{name}-{view_}"] = _shown(outs[view_])


def thread_states(dump: str) -> dict[str, int]:
    """Classify the threads of one `py-spy dump` by what they are doing."""
    states: collections.Counter[str] = collections.Counter()
    for block in dump.split("\nThread ")[1:]:
        frames = [ln.strip() for ln in block.splitlines()[1:] if ln.strip()]
        head = block.splitlines()[0]
        leaf = frames[0] if frames else ""
        if "_locked_pass" in leaf:
            states["pass: waiting for the app's lock"] += 1
        elif any("KubernetesGateway." in f for f in frames):
            call = next(f.split()[0] for f in frames if f.startswith("KubernetesGateway.")
                        and not f.startswith("KubernetesGateway._"))  # fmt: skip
            states[f"pass: API call {call.removeprefix('KubernetesGateway.')}"] += 1
        elif any("_locked_pass" in f for f in frames):
            states["pass: computing"] += 1
        elif leaf.startswith("_worker (concurrent/futures/thread.py"):
            states["worker: idle, no pass queued"] += 1
        elif '"MainThread"' in head:
            states["main: event loop " + ("idle" if "select" in leaf else "busy")] += 1
        else:
            states["other"] += 1
    return dict(states)


# ---------------------------------------------------------------------------- the run


@dataclass
class Mark:
    at: float
    proc: ProcSample
    operator: dict[str, float]
    apiserver: dict[str, float]
    control_plane: dict[str, float]
    load: float
    gateway_requests: int


def liveness_url(pid: int) -> str:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return next(a.split("=", 1)[1] for a in args if a.startswith("--liveness="))


def gateway_requests(url: str) -> int:
    """The operator gateway's own request count (`KubernetesGateway.requests`), exact.

    The operator reports it through its kopf liveness probe, whose answer kopf caches for
    10 s: ask, wait until that cache is stale, ask again for a fresh count."""
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    time.sleep(PROBE_CACHE_SECONDS + 0.5)
    with urllib.request.urlopen(url, timeout=10) as r:
        return int(json.loads(r.read())["api"])


def mark(
    sampler: ProcSampler, op: OperatorProcess, api_client: client.ApiClient, *, start: bool
) -> Mark:
    """The state at a phase boundary. At the start of a phase the slow, exact request
    count is read first (the operator is at rest then); at its end, last."""
    url = liveness_url(sampler.pid)
    requests = gateway_requests(url) if start else 0
    at = time.monotonic()
    proc = sampler.now()
    m = Mark(
        at=at,
        proc=proc,
        operator=scrape_operator(op.metrics_port),
        apiserver=scrape_apiserver(api_client),
        control_plane=control_plane_cpu(),
        load=loadavg(),
        gateway_requests=requests if start else gateway_requests(url),
    )
    return m


def phase_report(a: Mark, b: Mark, sampler: ProcSampler, n: int) -> dict[str, Any]:
    wall = b.at - a.at
    cpu = b.proc.cpu_seconds - a.proc.cpu_seconds
    requests = b.gateway_requests - a.gateway_requests
    exported = delta(b.operator, a.operator, "bluegreen_kube_api_requests_total")
    passes = delta(b.operator, a.operator, "bluegreen_reconcile_duration_seconds_count")
    pass_seconds = delta(b.operator, a.operator, "bluegreen_reconcile_duration_seconds_sum")
    return {
        "wall_seconds": round(wall, 2),
        "operator_cpu_seconds": round(cpu, 2),
        "operator_cpu_percent_of_core": round(100 * cpu / wall, 2) if wall > 0 else None,
        "operator_peak_rss_mb": sampler.peak_rss_mb(a.at, b.at),
        "operator_rss_mb_at_end": round(b.proc.rss_kb / 1024, 1),
        "operator_threads_at_end": b.proc.threads,
        # what the operator's gateway sent (its own counter, exact)
        "operator_api_requests": int(requests),
        "operator_api_requests_per_app": round(requests / n, 2),
        # what bluegreen_kube_api_requests_total says (see README of the benchmark)
        "operator_metric_api_requests": int(exported),
        "operator_metric_api_requests_per_app": round(exported / n, 2),
        "reconcile_passes": int(passes),
        "reconcile_passes_per_app": round(passes / n, 2),
        "reconcile_mean_seconds": round(pass_seconds / passes, 4) if passes else None,
        "reconcile_errors": {
            k.split("{", 1)[1].rstrip("}"): int(b.operator[k] - a.operator.get(k, 0))
            for k in b.operator
            if k.startswith("bluegreen_reconcile_errors_total{")
            and b.operator[k] - a.operator.get(k, 0)
        },
        "control_plane_cpu_seconds": {
            k: round(v - a.control_plane.get(k, 0.0), 1) for k, v in b.control_plane.items()
        },
        "apiserver_requests": apiserver_delta(b.apiserver, a.apiserver),
        "loadavg_1m_at_end": b.load,
    }


def run_parallel(fn: Callable[[int], None], n: int, workers: int) -> float:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(fn, i) for i in range(n)]:
            f.result()
    return time.monotonic() - started


def name_of(i: int) -> str:
    return f"app-{i:05d}"


def cleanup(
    api_client: client.ApiClient,
    ns: str,
    apps: AppList | None,
    op: OperatorProcess,
    timeout: float,
) -> dict[str, Any]:
    """Delete the apps while the operator runs, then the operator, then the namespace."""
    objs = client.CustomObjectsApi(api_client)
    started = time.monotonic()
    report: dict[str, Any] = {}
    try:
        objs.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
    except ApiException as err:
        report["delete_collection_error"] = err.status
    left = -1
    while time.monotonic() - started < timeout:
        items = objs.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, limit=500)
        left = len(items.get("items", []))
        if left == 0:
            break
        print(f"  [cleanup] {left} apps still there after {time.monotonic() - started:.0f}s")
        time.sleep(5)
    report["apps_deleted_seconds"] = round(time.monotonic() - started, 1)
    if left:
        # The operator did not take its finalizers off in time: take them off, or the
        # namespace would never go.
        report["finalizers_removed_by_benchmark"] = left
        for obj in objs.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL).get("items", []):
            with suppress(ApiException):
                objs.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    PLURAL,
                    obj["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
    if apps is not None:
        apps.stop()
    op.stop()
    core = client.CoreV1Api(api_client)
    with suppress(ApiException):
        core.delete_namespace(ns)
    ns_started = time.monotonic()
    while time.monotonic() - ns_started < timeout:
        try:
            core.read_namespace(ns)
        except ApiException as err:
            if err.status == 404:
                break
            raise
        time.sleep(5)
    else:
        report["namespace_still_terminating"] = True
    report["namespace_deleted_seconds"] = round(time.monotonic() - ns_started, 1)
    return report


@dataclass(frozen=True)
class Options:
    apps: int
    idle_seconds: float
    out: Path | None
    create_timeout: float = 900
    release_timeout: float = 900
    workers: int = 8
    py_spy: str | None = None
    operator_env: tuple[tuple[str, str], ...] = ()


class ScaleRun:
    """One run: the namespace, its operator, the samplers and the result being built."""

    def __init__(self, opts: Options, kubeconfig: Path, local: bool) -> None:
        self.opts = opts
        self.n = opts.apps
        self.result: dict[str, Any] = {
            "benchmark": "scale",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                **machine(),
                "cluster": "local control plane (kube-apiserver v1.37.2 from source, kwok,"
                " 2 fake nodes)"
                if local
                else "KUBECONFIG",
                "loadavg_1m_at_start": loadavg(),
                "other_kopf_processes_at_start": _other_kopf_processes(),
            },
            "apps": self.n,
            "replicas_per_app": 2,
            "idle_window_seconds": opts.idle_seconds,
            "profiled": bool(opts.py_spy),
            "operator_code": operator_code(),
            "operator_env": dict(opts.operator_env),
        }
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        install_crd(self.api_client)
        self.objs = client.CustomObjectsApi(self.api_client)
        self.ns = f"scale-{uuid.uuid4().hex[:6]}"
        client.CoreV1Api(self.api_client).create_namespace({"metadata": {"name": self.ns}})
        self.result["namespace"] = self.ns
        self.op = OperatorProcess(
            kubeconfig,
            REPO / ".cache" / "bench-logs",
            namespaces=self.ns,
            env=dict(opts.operator_env),
        )
        self.op.start()
        assert self.op.proc is not None
        self.pid = self.op.proc.pid
        print(f"namespace {self.ns}; operator pid {self.pid}, metrics on :{self.op.metrics_port}")
        self.sampler = ProcSampler(self.pid)
        self.sampler.start()
        out_dir = (opts.out or RESULTS / "x").parent
        self.profiler = Profiler(opts.py_spy, self.pid, out_dir, f"scale-{self.n}")
        self.apps = AppList(config.new_client_from_config(config_file=str(kubeconfig)), self.ns)
        self.apps.start()
        self.marks: dict[str, Mark] = {}

    def mark(self, name: str, *, start: bool) -> Mark:
        self.marks[name] = m = mark(self.sampler, self.op, self.api_client, start=start)
        return m

    # ---------------------------------------------------------------- phases

    def create(self) -> bool:
        n, ns = self.n, self.ns
        created_at: dict[str, float] = {}

        def create_one(i: int) -> None:
            body = app_manifest(
                name_of(i),
                image=IMAGE_V1,
                replicas=2,
                scaleDownDelaySeconds=0,
                abortScaleDownDelaySeconds=0,
            )
            self.objs.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
            created_at[name_of(i)] = time.monotonic()

        start = self.mark("start", start=True)
        self.result["operator_rss_mb_at_start"] = round(start.proc.rss_kb / 1024, 1)
        print(f"creating {n} apps ...")
        self.apps.set_goal(lambda _name, v: v.phase == "Healthy")
        with self.profiler.phase("create"):
            t0 = time.monotonic()
            submit = run_parallel(create_one, n, self.opts.workers)
            print(f"  all {n} created in {submit:.1f}s")
            remaining = max(1.0, self.opts.create_timeout - (time.monotonic() - t0))
            done, timeline = wait_goal(self.apps, n, remaining, "create")
        end = self.mark("created", start=False)
        with self.apps.cond:
            reached = dict(self.apps.reached)
            finalizers = collections.Counter(
                f for v in self.apps.apps.values() for f in v.finalizers
            )
        per_app = [reached[k] - created_at[k] for k in reached if k in created_at]
        self.result["create"] = {
            "completed": done is not None,
            "submit_seconds": round(submit, 2),
            "all_healthy_seconds": round(max(reached.values()) - t0, 2) if done else None,
            "healthy_at_end": len(reached),
            "per_app_create_to_healthy_seconds": summary(per_app) if per_app else None,
            "timeline": _thin(timeline),
            "finalizers_on_apps": dict(finalizers),
            **phase_report(start, end, self.sampler, n),
        }
        _print_phase("create", self.result["create"])
        if done is None:
            print(f"not all {n} apps became Healthy in {self.opts.create_timeout:.0f}s: stopping")
        return done is not None

    def release(self) -> bool:
        n, ns = self.n, self.ns
        with self.apps.cond:
            old = {k: v.stable_revision for k, v in self.apps.apps.items()}
        new_gen: dict[str, int] = {}
        patched_at: dict[str, float] = {}

        def goal(name: str, v: AppView) -> bool:
            gen = new_gen.get(name)
            return (
                gen is not None
                and v.phase == "Healthy"
                and v.observed_generation >= gen
                and v.stable_revision not in (None, old.get(name))
            )

        def release_one(i: int) -> None:
            name = name_of(i)
            template = app_manifest(name, image=IMAGE_V2)["spec"]["template"]
            body = self.objs.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name, {"spec": {"template": template}}
            )
            patched_at[name] = time.monotonic()
            new_gen[name] = int(body["metadata"]["generation"])
            self.apps.recheck(name)

        start = self.mark("before_release", start=True)
        print(f"releasing {n} apps at once ...")
        self.apps.set_goal(goal)
        with self.profiler.phase("release"):
            t1 = time.monotonic()
            submit = run_parallel(release_one, n, self.opts.workers)
            print(f"  all {n} patched in {submit:.1f}s")
            remaining = max(1.0, self.opts.release_timeout - (time.monotonic() - t1))
            done, timeline = wait_goal(self.apps, n, remaining, "release")
        end = self.mark("released", start=False)
        with self.apps.cond:
            reached = dict(self.apps.reached)
            views = {k: self.apps.apps[k] for k in reached if k in self.apps.apps}
        per_app = [reached[k] - patched_at[k] for k in reached if k in patched_at]
        switch = [float(v.switch_latency) for v in views.values() if v.switch_latency is not None]
        duration = [
            float(v.release_duration) for v in views.values() if v.release_duration is not None
        ]
        report = phase_report(start, end, self.sampler, n)
        self.result["release"] = {
            "completed": done is not None,
            "submit_seconds": round(submit, 2),
            "all_healthy_seconds": round(max(reached.values()) - t1, 2) if done else None,
            "healthy_at_end": len(reached),
            "per_app_patch_to_healthy_seconds": summary(per_app) if per_app else None,
            "switch_latency_seconds": summary(switch) if switch else None,
            "operator_release_duration_seconds": summary(duration) if duration else None,
            "timeline": _thin(timeline),
            "operator_api_requests_per_release": report["operator_api_requests_per_app"],
            **report,
        }
        _print_phase("release", self.result["release"])
        if done is None:
            print(f"not all {n} releases ended in {self.opts.release_timeout:.0f}s: stopping")
        return done is not None

    def idle(self) -> None:
        n = self.n
        settle_started = time.monotonic()
        self.apps.set_goal(
            lambda _name, v: v.phase == "Healthy" and not v.scale_down and v.replicas == 2
        )
        settled, _ = wait_goal(self.apps, n, 120, "settle")
        time.sleep(5)  # the last passes' requests end and the daemons stop
        self.result["settle_seconds"] = round(time.monotonic() - settle_started, 2)
        self.result["settled"] = settled is not None
        if self.opts.idle_seconds <= 0:
            return
        start = self.mark("idle_start", start=True)
        events_before = self.apps.events
        print(f"idle window: {self.opts.idle_seconds:.0f}s with {n} settled apps ...")
        with self.profiler.phase("idle"):
            time.sleep(self.opts.idle_seconds)
        end = self.mark("idle_end", start=False)
        idle = phase_report(start, end, self.sampler, n)
        minutes = idle["wall_seconds"] / 60
        idle["operator_api_requests_per_app_per_minute"] = round(
            idle["operator_api_requests"] / n / minutes, 4
        )
        idle["operator_metric_api_requests_per_app_per_minute"] = round(
            idle["operator_metric_api_requests"] / n / minutes, 4
        )
        idle["apiserver_requests_per_minute"] = round(
            idle["apiserver_requests"]["total"] / minutes, 1
        )
        idle["app_watch_events"] = self.apps.events - events_before
        self.result["idle"] = idle
        _print_phase("idle", idle)

    # ---------------------------------------------------------------- end

    def finish(self) -> None:
        samples = self.sampler.samples
        last = read_proc(self.pid) or samples[-1]
        last_mark = self.marks[list(self.marks)[-1]] if self.marks else None
        self.result["operator"] = {
            "peak_rss_mb_vmhwm": round(last.hwm_kb / 1024, 1),
            "peak_rss_mb_sampled": round(max(s.rss_kb for s in samples) / 1024, 1),
            "rss_mb_at_end": round(last.rss_kb / 1024, 1),
            "cpu_seconds_total": round(last.cpu_seconds - samples[0].cpu_seconds, 2),
            "metrics_scrape_bytes": int(last_mark.operator.get("_scrape_bytes", 0))
            if last_mark
            else 0,
            # [seconds since start, RSS MB, CPU seconds], one a second (thinned)
            "samples": _thin(
                [
                    [
                        round(s.at - samples[0].at, 1),
                        round(s.rss_kb / 1024, 1),
                        round(s.cpu_seconds - samples[0].cpu_seconds, 2),
                    ]
                    for s in samples
                ],
                keep=600,
            ),
        }
        self.result["app_list_watch_errors"] = self.apps.errors[:10]
        times = os.times()
        self.result["benchmark_client_cpu_seconds"] = round(times.user + times.system, 1)
        self.result["profiles"] = self.profiler.files
        if self.profiler.dump_tallies:
            # [seconds into the phase, {what a thread does: how many threads}], every 5 s
            self.result["thread_states"] = self.profiler.dump_tallies
        print_summary(self.result)
        self.write()

    def write(self) -> None:
        if self.opts.out is not None:
            _write(self.result, self.opts.out)

    def cleanup(self) -> None:
        self.sampler.stop()
        print("cleaning up ...")
        self.result["cleanup"] = cleanup(
            self.api_client, self.ns, self.apps, self.op, timeout=max(300.0, self.n * 0.6)
        )
        print(json.dumps(self.result["cleanup"]))
        self.write()


def run(opts: Options) -> dict[str, Any]:
    with cluster_session() as cluster:
        bench = ScaleRun(opts, cluster.kubeconfig, cluster.local)
        try:
            if bench.create() and bench.release():
                bench.idle()
            bench.finish()
        finally:
            bench.cleanup()
        return bench.result


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _other_kopf_processes() -> int:
    count = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with suppress(OSError):
                if b"kopf" in (d / "cmdline").read_bytes():
                    count += 1
    return count


def _thin(timeline: list[list[Any]], keep: int = 300) -> list[list[Any]]:
    """At most `keep` entries, the last one always kept."""
    if len(timeline) <= keep:
        return timeline
    step = len(timeline) / keep
    out = [timeline[int(i * step)] for i in range(keep)]
    if out[-1] is not timeline[-1]:
        out.append(timeline[-1])
    return out


def _write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def _print_phase(name: str, p: dict[str, Any]) -> None:
    keys = (
        "all_healthy_seconds",
        "wall_seconds",
        "operator_cpu_seconds",
        "operator_cpu_percent_of_core",
        "operator_peak_rss_mb",
        "operator_api_requests_per_app",
        "reconcile_passes_per_app",
        "reconcile_mean_seconds",
    )
    print(f"  {name}: " + ", ".join(f"{k}={p.get(k)}" for k in keys if k in p))


def print_summary(result: dict[str, Any]) -> None:
    n = result["apps"]
    rows: list[tuple[str, Any]] = []
    c = result.get("create") or {}
    r = result.get("release") or {}
    i = result.get("idle") or {}
    o = result.get("operator") or {}
    rows += [
        (
            f"create: all {n} Healthy (s)",
            c.get("all_healthy_seconds") or f"not done: {c.get('healthy_at_end')}/{n}",
        ),
        (
            "create: per app, create -> Healthy p50 / p95 (s)",
            _p(c.get("per_app_create_to_healthy_seconds")),
        ),
        ("create: operator CPU (s)", c.get("operator_cpu_seconds")),
        ("create: operator API requests per app", c.get("operator_api_requests_per_app")),
    ]
    if r:
        rows += [
            (
                f"release: all {n} Healthy on the new revision (s)",
                r.get("all_healthy_seconds") or f"not done: {r.get('healthy_at_end')}/{n}",
            ),
            (
                "release: per app, patch -> Healthy p50 / p95 (s)",
                _p(r.get("per_app_patch_to_healthy_seconds")),
            ),
            ("release: switch latency p50 / p95 (s)", _p(r.get("switch_latency_seconds"))),
            ("release: operator CPU (s)", r.get("operator_cpu_seconds")),
            ("release: operator API requests per release", r.get("operator_api_requests_per_app")),
            (
                "release: ... as bluegreen_kube_api_requests_total says",
                r.get("operator_metric_api_requests_per_app"),
            ),
        ]
    if i:
        rows += [
            (
                f"idle: operator CPU, % of one core ({i.get('wall_seconds')} s)",
                i.get("operator_cpu_percent_of_core"),
            ),
            (
                "idle: operator API requests per app per minute",
                i.get("operator_api_requests_per_app_per_minute"),
            ),
            (
                "idle: API server requests per minute (all clients)",
                i.get("apiserver_requests_per_minute"),
            ),
        ]
    rows += [
        ("operator peak RSS, VmHWM (MB)", o.get("peak_rss_mb_vmhwm")),
        ("operator RSS at end (MB)", o.get("rss_mb_at_end")),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nscale, {n} apps ({result['machine']['cpus']} CPUs)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def _p(s: dict[str, float] | None) -> str:
    return f"{s['median']} / {s['p95']}" if s else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--create-timeout", type=float, default=900)
    parser.add_argument("--release-timeout", type=float, default=900)
    parser.add_argument("--workers", type=int, default=8, help="client threads for create/patch")
    parser.add_argument("--py-spy", default=None, help="py-spy binary: profile every phase")
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the operator process, e.g. BLUEGREEN_WORKERS=6",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    run(
        Options(
            apps=args.apps,
            idle_seconds=args.idle_seconds,
            out=(args.out or RESULTS / f"scale-{args.apps}.json").resolve(),
            create_timeout=args.create_timeout,
            release_timeout=args.release_timeout,
            workers=args.workers,
            py_spy=args.py_spy,
            operator_env=tuple((k, v) for k, _, v in (e.partition("=") for e in args.operator_env)),
        )
    )


if __name__ == "__main__":
    main()
