"""Config tracking: what watching every ConfigMap costs the operator.

    .venv/bin/python -m tests.bench.config_watch --configmaps 2000 --size-kb 4

The operator watches every ConfigMap of the namespaces it serves (and keeps a digest of
each, never the data), whether an app references it or not. In a fresh namespace with its
own operator (`kopf run`, watching only that namespace) and one app that tracks the
ConfigMap `settings`:

1. **baseline**: the operator's RSS (VmRSS) and CPU seconds (utime + stime, /proc) once
   the app is Healthy and the operator is idle; then `--releases` times: patch `settings`
   and time until the app's status shows a release of a new revision (a watch on the app,
   from the moment the patch is sent), then wait for Healthy;
2. **create**: N ConfigMaps of `--size-kb` each that no app references, created by
   `--workers` threads; the CPU the operator spent from the first until it is idle again
   (under 2% of a CPU for 3 s, at most `--settle-seconds`), and its RSS then;
3. **update**: every one of them changed once: the CPU that costs (a digest each, no pass),
   counted the same way;
4. **idle**: `--idle-seconds` with nothing happening: the operator's CPU per second, next
   to the same measure at baseline;
5. **with N**: the release start latency again, with the N ConfigMaps in the cache.

Every loop is bounded in count and time. Prints a summary and writes
tests/bench/results/config-watch-<N>.json; the numbers are for reading, nothing asserts on
them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.bench.release_latency import (
    RESULTS,
    summary,
    wait_healthy_on_new_revision,
    wait_status,
)
from tests.bench.scale import ProcSample, ProcSampler, loadavg, machine, operator_code
from tests.support.apps import Apps, app_manifest, install_crd
from tests.support.cluster import REPO, cluster_session
from tests.support.operator import OperatorProcess

APP = "tracked"
TRACKED = "settings"
START_TIMEOUT = 60.0  # seconds a release may take to start before the run gives up


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def _filler(size_kb: int, i: int, round_: int) -> dict[str, str]:
    """About `size_kb` KB of data, different for every ConfigMap and every round."""
    line = f"{i:06d}-{round_:02d}-" + "x" * 54 + "\n"  # 64 bytes
    return {"data.txt": line * (size_kb * 1024 // len(line))}


def _parallel(fn: Callable[[int], None], n: int, workers: int) -> float:
    """Run fn(0..n-1) on `workers` threads; the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, range(n)):
            pass
    return round(time.monotonic() - started, 2)


def _settle(sampler: ProcSampler, seconds: float) -> ProcSample:
    """Wait until the operator has used under 2% of a CPU for 3 s (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    last = sampler.now()
    while time.monotonic() < deadline:
        time.sleep(3)
        now = sampler.now()
        if (now.cpu_seconds - last.cpu_seconds) / (now.at - last.at) < 0.02:
            return now
        last = now
    return sampler.now()


def _cpu_rate(sampler: ProcSampler, seconds: float) -> float:
    """The operator's CPU seconds per second over `seconds` of nothing happening."""
    a = sampler.now()
    time.sleep(seconds)
    b = sampler.now()
    return round((b.cpu_seconds - a.cpu_seconds) / (b.at - a.at), 4)


def _release_starts(
    api_client: client.ApiClient, ns: str, releases: int, round_: int
) -> list[float]:
    """Patch the tracked ConfigMap `releases` times; the seconds from each patch to the
    app's status naming a release of a new revision (then Healthy is awaited)."""
    core = client.CoreV1Api(api_client)
    apps = Apps(api_client, ns)
    out = []
    for r in range(releases):
        old = apps.status(APP).get("stableRevision")
        sent = time.monotonic()
        core.patch_namespaced_config_map(TRACKED, ns, {"data": {"LEVEL": f"{round_}-{r}"}})
        started = lambda st, old=old: _revision(st.get("release")) != old  # noqa: E731
        wait_status(api_client, ns, APP, started, START_TIMEOUT)
        out.append(round(time.monotonic() - sent, 4))
        wait_healthy_on_new_revision(api_client, ns, APP, str(old), START_TIMEOUT)
    return out


def _revision(release: dict[str, Any] | None) -> str | None:
    return (release or {}).get("revision")


def _tracking_app() -> dict[str, Any]:
    body = app_manifest(APP, replicas=2, scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    body["spec"]["configTracking"] = {"enabled": True}
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": TRACKED}}]
    return body


def _point(s: ProcSample) -> dict[str, float]:
    return {"rss_mb": _mb(s.rss_kb), "cpu_seconds": round(s.cpu_seconds, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    n, size_kb = args.configmaps, args.size_kb
    with cluster_session() as cluster:
        api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        api_client.configuration.connection_pool_maxsize = args.workers * 2
        install_crd(api_client)
        core = client.CoreV1Api(api_client)
        ns = f"cfgbench-{uuid.uuid4().hex[:6]}"
        core.create_namespace({"metadata": {"name": ns}})
        op = OperatorProcess(cluster.kubeconfig, REPO / ".cache" / "bench-logs", namespaces=ns)
        try:
            core.create_namespaced_config_map(
                ns, {"metadata": {"name": TRACKED}, "data": {"LEVEL": "info"}}
            )
            op.start()
            assert op.proc is not None
            sampler = ProcSampler(op.proc.pid)
            sampler.start()
            Apps(api_client, ns).create(_tracking_app())
            Apps(api_client, ns).wait_phase(APP, "Healthy", timeout=120)
            base = _settle(sampler, args.settle_seconds)
            base_idle = _cpu_rate(sampler, args.idle_seconds)
            base_starts = _release_starts(api_client, ns, args.releases, 0)
            before = _settle(sampler, args.settle_seconds)

            def create(i: int) -> None:
                body = {"metadata": {"name": f"filler-{i:05d}"}, "data": _filler(size_kb, i, 0)}
                core.create_namespaced_config_map(ns, body)

            create_s = _parallel(create, n, args.workers)
            created = _settle(sampler, args.settle_seconds)

            def update(i: int) -> None:
                data = {"data": _filler(size_kb, i, 1)}
                core.patch_namespaced_config_map(f"filler-{i:05d}", ns, data)

            update_s = _parallel(update, n, args.workers)
            updated = _settle(sampler, args.settle_seconds)
            idle = _cpu_rate(sampler, args.idle_seconds)
            starts = _release_starts(api_client, ns, args.releases, 1)
            end = sampler.now()
            sampler.stop()
            peak = max(s.rss_kb for s in sampler.samples)
        finally:
            op.stop()
            core.delete_namespace(ns, propagation_policy="Background")
    result = {
        "benchmark": "config_watch",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "cluster": "local control plane (kwok)" if cluster.local else "KUBECONFIG",
            "load_average_at_end": loadavg(),
        },
        "operator_code": operator_code(),
        "configmaps": n,
        "size_kb": size_kb,
        "workers": args.workers,
        "baseline": {
            **_point(base),
            "idle_cpu_per_second": base_idle,
            "release_start_seconds": summary(base_starts),
        },
        "create": {
            "seconds": create_s,
            "operator_cpu_seconds": round(created.cpu_seconds - before.cpu_seconds, 2),
            "after_settle": _point(created),
            "rss_growth_mb": _mb(created.rss_kb - before.rss_kb),
            "rss_growth_kb_per_configmap": round((created.rss_kb - before.rss_kb) / n, 2),
        },
        "update": {
            "seconds": update_s,
            "operator_cpu_seconds": round(updated.cpu_seconds - created.cpu_seconds, 2),
            "after_settle": _point(updated),
        },
        "with_configmaps": {
            **_point(end),
            "idle_cpu_per_second": idle,
            "release_start_seconds": summary(starts),
        },
        "peak_rss_mb": _mb(peak),
    }
    print_summary(result)
    out = args.out or RESULTS / f"config-watch-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return result


def print_summary(r: dict[str, Any]) -> None:
    b, c, u, w = r["baseline"], r["create"], r["update"], r["with_configmaps"]
    m = r["machine"]
    print(f"\nconfig_watch: {r['configmaps']} ConfigMaps of {r['size_kb']} KB")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB, {m['cluster']}")
    print(f"{'':34}{'RSS MB':>10}{'CPU s':>10}")
    print(f"{'baseline (1 app, idle)':34}{b['rss_mb']:>10}{b['cpu_seconds']:>10}")
    print(f"{'after creating them, settled':34}{c['after_settle']['rss_mb']:>10}"
          f"{c['after_settle']['cpu_seconds']:>10}")  # fmt: skip
    print(f"{'after updating each once':34}{u['after_settle']['rss_mb']:>10}"
          f"{u['after_settle']['cpu_seconds']:>10}")  # fmt: skip
    print(f"{'at the end':34}{w['rss_mb']:>10}{w['cpu_seconds']:>10}")
    print(
        f"create: {c['seconds']} s, operator CPU {c['operator_cpu_seconds']} s, RSS "
        f"+{c['rss_growth_mb']} MB ({c['rss_growth_kb_per_configmap']} KB each)"
    )
    print(f"update: {u['seconds']} s, operator CPU {u['operator_cpu_seconds']} s")
    print(
        f"idle CPU per second: {b['idle_cpu_per_second']} before, "
        f"{w['idle_cpu_per_second']} with them; peak RSS {r['peak_rss_mb']} MB"
    )
    for name, s in (("before", b), ("with them", w)):
        st = s["release_start_seconds"]
        print(
            f"ConfigMap change -> release started ({name}): median {st['median']} s, "
            f"max {st['max']} s (n={st['n']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--configmaps", type=int, default=2000)
    parser.add_argument("--size-kb", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--releases", type=int, default=5)
    parser.add_argument("--settle-seconds", type=float, default=60.0)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None)
    run(parser.parse_args())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
