"""This operator side by side with Argo Rollouts and a bare baseline, on one control plane.

    .venv/bin/python -m tests.bench.peer                  # 10 + 10 releases, 1000 apps
    .venv/bin/python -m tests.bench.peer --short          # 5 + 5 releases, 50 apps

One run, one local control plane, one external watch harness (tests/bench/harness.py)
timing every controller the same way, from the client side. Both controllers run out of
cluster against the same API server: this operator as the tests start it (`kopf run`),
Argo Rollouts' controller built from its Go module (`make setup`), each watching only
its own namespace. Every app has 2 replicas, no analysis, auto-promotion and
`scaleDownDelaySeconds: 30`; kwok makes pods ready at once.

Workloads:

1. spaced: one app per controller, `--spaced` releases each, `--spacing` seconds apart
   (past the 30 s warm window), the two controllers' releases interleaved (one, then
   the other half a spacing later);
2. back to back: `--back-to-back` releases per controller, each sent as soon as the
   previous one is at rest (so inside the warm window), one controller's block after
   the other's;
3. scale: `--apps` apps created at once -> all at rest, then all released at once -> all
   at rest; for this operator, Argo at its defaults, Argo with `--qps 200 --burst 400`,
   and a bare baseline of plain Deployments and Services (no controller: the floor the
   control plane itself sets), one after the other, each in a fresh namespace.

Cost per controller process: CPU seconds (utime + stime from /proc/<pid>/stat), peak RSS
(VmHWM) and API requests. Requests are counted at the API server: each controller runs
as a user of its own (a client certificate from the local CA) that a FlowSchema of its
own matches, so `apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}` counts
exactly its requests, watches included (tests/support/identity.py). Each controller's own
counter is recorded beside it (`bluegreen_kube_api_requests_total`: the operator's
gateway, without kopf's watches and patches; `controller_clientset_k8s_request_total`:
every request of Argo's clients).

Prints a side-by-side table with the ratios (ours / Argo, ours / baseline) and writes
tests/bench/results/peer-<apps>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.bench.harness import (
    ArgoPeer,
    BarePeer,
    BlueGreenPeer,
    Peer,
    Release,
    Session,
    api_client_for,
    app_names,
)
from tests.bench.release_latency import RESULTS
from tests.bench.scale import control_plane_cpu, loadavg, machine, operator_code
from tests.support import argo_rollouts, identity
from tests.support.apps import install_crd
from tests.support.cluster import REPO, cluster_session

LOG_DIR = REPO / ".cache" / "bench-logs"
ARGO_FAST = ("--qps", "200", "--burst", "400")


@dataclass(frozen=True)
class Options:
    spaced: int = 10
    spacing: float = 33.0
    back_to_back: int = 10
    apps: int = 1000
    workers: int = 8
    scale_timeout: float = 1200.0
    latency: bool = True
    scale: bool = True
    scale_peers: tuple[str, ...] = ("bluegreen", "argo", "argo-qps200", "bare")
    out: Path | None = None


# ---------------------------------------------------------------------------- numbers


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def stats(values: Sequence[float | None]) -> dict[str, Any] | None:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {
        "n": len(vals),
        "p50": round(statistics.median(vals), 4),
        "p95": round(percentile(vals, 0.95), 4),
        "max": round(max(vals), 4),
        "min": round(min(vals), 4),
    }


def release_stats(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(recs)}
    for key in (
        "patch_to_traffic",
        "patch_to_rest",
        "patch_to_flip",
        "flip_to_traffic",
        "controller_switch_latency",
    ):
        out[key] = stats([r[key] for r in recs])
    done = [r for r in recs if r["patch_to_rest"] is not None]
    early = sum(r["rest_before_traffic"] for r in done)
    out["rest_before_traffic"] = early
    out["rest_before_traffic_percent"] = round(100 * early / len(done), 1) if done else None
    out["not_done"] = sum(r["patch_to_rest"] is None or r["patch_to_traffic"] is None for r in recs)
    return out


# ---------------------------------------------------------------------------- the run


@dataclass
class Run:
    opts: Options
    kubeconfig: Path
    api: client.ApiClient
    identities: dict[str, tuple[Path, str | None]] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)

    def identity_for(self, peer: Peer) -> tuple[Path, str | None]:
        """The kubeconfig the peer's controller runs with, and its FlowSchema (or None)."""
        user = {"bluegreen": "bench-bluegreen", "bare": ""}.get(peer.name, "bench-argo")
        if not user:
            return self.kubeconfig, None
        if user not in self.identities:
            kc = identity.client_kubeconfig(self.kubeconfig, user, LOG_DIR / "identities")
            if kc is None:
                self.identities[user] = (self.kubeconfig, None)
            else:
                self.identities[user] = (kc, identity.grant(self.api, user))
        return self.identities[user]

    def counters(self) -> dict[str, float]:
        """Requests per FlowSchema at the API server, and the control plane's CPU."""
        out: dict[str, float] = {}
        try:
            out.update(identity.dispatched_by_flow_schema(identity.apiserver_metrics(self.api)))
        except (OSError, client.ApiException) as err:
            print(f"  (API server metrics not read: {err!r:.200})")
        out.update({f"cp:{k}": v for k, v in control_plane_cpu().items()})
        return out

    def session(self, peer: Peer, prefix: str) -> Session:
        kc, flow = self.identity_for(peer)
        ns = f"peer-{prefix}-{peer.name}-{uuid.uuid4().hex[:5]}"
        s = Session(
            peer,
            self.api,
            kubeconfig=self.kubeconfig,
            controller_kubeconfig=kc,
            namespace=ns,
            log_dir=LOG_DIR,
            counters=self.counters,
            flow_schema=flow,
        )
        s.start()
        if s.controller is not None:
            cmdline = Path(f"/proc/{s.controller.pid}/cmdline").read_bytes().split(b"\0")
            self.result.setdefault("commands", {})[peer.name] = [
                a.decode() for a in cmdline if a and not a.startswith(b"--kubeconfig")
            ]
        print(f"[{peer.name}] namespace {ns}", flush=True)
        return s

    # ------------------------------------------------------------ latency workloads

    def latency(self) -> dict[str, Any]:
        opts = self.opts
        peers: list[Peer] = [BlueGreenPeer(), ArgoPeer()]
        sessions = [self.session(p, "lat") for p in peers]
        out: dict[str, Any] = {
            "spaced": {},
            "back_to_back": {},
            "conditions": {
                "spaced_releases": opts.spaced,
                "spacing_seconds": opts.spacing,
                "back_to_back_releases": opts.back_to_back,
            },
        }
        if opts.spacing <= 30:
            print(f"note: a spacing of {opts.spacing:g}s is inside the 30 s warm window")
        try:
            for s in sessions:
                rel = s.create(["lat"])
                if not s.wait(rel, 120):
                    raise RuntimeError(f"{s.peer.name}: the first app never came to rest")
            # 1. spaced, interleaved: A, B half a spacing later, A a spacing later, ...
            half = opts.spacing / len(sessions)
            spaced: dict[str, list[Release]] = {s.peer.name: [] for s in sessions}
            before = {s.peer.name: s.mark() for s in sessions}
            t0 = time.monotonic() + 1
            for i in range(opts.spaced):
                for j, s in enumerate(sessions):
                    slot = t0 + (i * len(sessions) + j) * half
                    time.sleep(max(0.0, slot - time.monotonic()))
                    rel = s.release(["lat"])
                    s.wait(rel, timeout=120)
                    spaced[s.peer.name] += rel
                    r = rel[0].record()
                    print(
                        f"  [{s.peer.name} spaced {i + 1}/{opts.spaced}] traffic"
                        f" {r['patch_to_traffic']}s, at rest {r['patch_to_rest']}s",
                        flush=True,
                    )
            for s in sessions:
                name = s.peer.name
                recs = [r.record() for r in spaced[name]]
                out["spaced"][name] = {
                    **release_stats(recs),
                    "cost": s.cost(before[name], s.mark(), max(1, len(recs))),
                    "releases": recs,
                }
            # 2. back to back, one controller's block after the other's; each block
            # starts past the warm window of the last spaced release.
            time.sleep(max(0.0, t0 + opts.spaced * opts.spacing - time.monotonic()))
            for s in sessions:
                name = s.peer.name
                time.sleep(max(0.0, _last_patch(spaced[name]) + opts.spacing - time.monotonic()))
                b2b: list[Release] = []
                m0 = s.mark()
                for i in range(opts.back_to_back):
                    rel = s.release(["lat"])
                    s.wait(rel, timeout=120)
                    b2b += rel
                    r = rel[0].record()
                    print(
                        f"  [{name} back-to-back {i + 1}/{opts.back_to_back}] traffic"
                        f" {r['patch_to_traffic']}s, at rest {r['patch_to_rest']}s",
                        flush=True,
                    )
                recs = [r.record() for r in b2b]
                out["back_to_back"][name] = {
                    **release_stats(recs),
                    "cost": s.cost(m0, s.mark(), max(1, len(recs))),
                    "releases": recs,
                }
        finally:
            out["cleanup"] = {s.peer.name: s.cleanup() for s in sessions}
        return out

    # ------------------------------------------------------------ scale workload

    def scale(self, peer: Peer) -> dict[str, Any]:
        opts = self.opts
        n = opts.apps
        names = app_names(n)
        s = self.session(peer, "scale")
        out: dict[str, Any] = {"apps": n, "settings": peer.settings}
        try:
            out["create"], ok = self._bulk(s, names, create=True)
            if ok:
                out["release"], _ = self._bulk(s, names, create=False)
            m = s.mark()
            if "hwm_kb" in m:
                out["peak_rss_mb"] = round(m["hwm_kb"] / 1024, 1)
        finally:
            out["cleanup"] = s.cleanup(timeout=max(600.0, n * 0.9))
        return out

    def _bulk(self, s: Session, names: list[str], create: bool) -> tuple[dict[str, Any], bool]:
        label = "create" if create else "release"
        m0 = s.mark()
        load0 = loadavg()
        t0 = time.monotonic()
        print(f"[{s.peer.name}] {label} {len(names)} apps at once ...", flush=True)
        rels = (s.create if create else s.release)(names, self.opts.workers)
        submit = time.monotonic() - t0
        done = s.wait(rels, self.opts.scale_timeout - submit, label)
        m1 = s.mark()
        recs = [r.record() for r in rels]
        traffic = [r.traffic_at for r in rels if r.traffic_at is not None]
        rest = [r.rest_at for r in rels if r.rest_at is not None]
        report = {
            "completed": done,
            "submit_seconds": round(submit, 2),
            "all_traffic_seconds": round(max(traffic) - t0, 2) if done and traffic else None,
            "all_at_rest_seconds": round(max(rest) - t0, 2) if done and rest else None,
            "traffic_reached": len(traffic),
            "rest_reached": len(rest),
            "per_app": release_stats(recs),
            "loadavg_1m_at_start": load0,
            "loadavg_1m_at_end": loadavg(),
            **s.cost(m0, m1, len(names)),
        }
        print(
            f"[{s.peer.name}] {label}: all traffic {report['all_traffic_seconds']}s, all at rest"
            f" {report['all_at_rest_seconds']}s, cpu {report.get('cpu_seconds')}s,"
            f" requests/app {report.get('apiserver_requests_per_app')}",
            flush=True,
        )
        return report, done


def _last_patch(releases: list[Release]) -> float:
    return max((r.patched_at for r in releases), default=0.0)


# ---------------------------------------------------------------------------- the table


def _get(d: Any, *path: str) -> float | None:
    for key in path:
        if not isinstance(d, dict) or d.get(key) is None:
            return None
        d = d[key]
    return float(d) if isinstance(d, int | float) else None


Reader = Callable[[dict[str, Any], str], float | None]


def _lat(workload: str, *path: str) -> Reader:
    return lambda r, who: _get(r.get("latency") or {}, workload, who, *path)


def _scale(*path: str) -> Reader:
    return lambda r, who: _get(r.get("scale") or {}, who, *path)


COLUMNS = ("bluegreen", "argo", "argo-qps200", "bare")
ROWS: list[tuple[str, str, Reader]] = [
    ("spaced: patch -> traffic p50", "s", _lat("spaced", "patch_to_traffic", "p50")),
    ("spaced: patch -> traffic p95", "s", _lat("spaced", "patch_to_traffic", "p95")),
    ("spaced: patch -> at rest p50", "s", _lat("spaced", "patch_to_rest", "p50")),
    ("spaced: patch -> at rest p95", "s", _lat("spaced", "patch_to_rest", "p95")),
    ("spaced: patch -> selector flip p50", "s", _lat("spaced", "patch_to_flip", "p50")),
    ("spaced: flip -> endpoints converged p50", "s", _lat("spaced", "flip_to_traffic", "p50")),
    ("spaced: at rest before traffic moved", "%", _lat("spaced", "rest_before_traffic_percent")),
    ("spaced: CPU per release (incl. idle)", "s", _lat("spaced", "cost", "cpu_seconds_per_app")),
    (
        "spaced: API requests per release",
        "",
        _lat("spaced", "cost", "apiserver_requests_per_app"),
    ),
    ("back to back: patch -> traffic p50", "s", _lat("back_to_back", "patch_to_traffic", "p50")),
    ("back to back: patch -> traffic p95", "s", _lat("back_to_back", "patch_to_traffic", "p95")),
    ("back to back: patch -> at rest p50", "s", _lat("back_to_back", "patch_to_rest", "p50")),
    ("back to back: patch -> at rest p95", "s", _lat("back_to_back", "patch_to_rest", "p95")),
    (
        "back to back: at rest before traffic",
        "%",
        _lat("back_to_back", "rest_before_traffic_percent"),
    ),
    (
        "back to back: CPU per release",
        "s",
        _lat("back_to_back", "cost", "cpu_seconds_per_app"),
    ),
    (
        "back to back: API requests per release",
        "",
        _lat("back_to_back", "cost", "apiserver_requests_per_app"),
    ),
    (
        "back to back: own counter per release",
        "",
        _lat("back_to_back", "cost", "own_counter_requests_per_app"),
    ),
    ("scale: create, all traffic", "s", _scale("create", "all_traffic_seconds")),
    ("scale: create, all at rest", "s", _scale("create", "all_at_rest_seconds")),
    ("scale: release, all traffic", "s", _scale("release", "all_traffic_seconds")),
    ("scale: release, all at rest", "s", _scale("release", "all_at_rest_seconds")),
    (
        "scale: release, patch -> traffic p50",
        "s",
        _scale("release", "per_app", "patch_to_traffic", "p50"),
    ),
    (
        "scale: release, patch -> traffic p95",
        "s",
        _scale("release", "per_app", "patch_to_traffic", "p95"),
    ),
    (
        "scale: release, patch -> at rest p50",
        "s",
        _scale("release", "per_app", "patch_to_rest", "p50"),
    ),
    (
        "scale: release, switch latency p95 (own)",
        "s",
        _scale("release", "per_app", "controller_switch_latency", "p95"),
    ),
    (
        "scale: release, at rest before traffic",
        "%",
        _scale("release", "per_app", "rest_before_traffic_percent"),
    ),
    ("scale: CPU to create all", "s", _scale("create", "cpu_seconds")),
    ("scale: CPU to release all", "s", _scale("release", "cpu_seconds")),
    ("scale: API requests per app, create", "", _scale("create", "apiserver_requests_per_app")),
    ("scale: API requests per release", "", _scale("release", "apiserver_requests_per_app")),
    ("scale: peak RSS", "MB", _scale("peak_rss_mb")),
]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric, unit, read in ROWS:
        values = {c: read(result, c) for c in COLUMNS}
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                **values,
                "ours/argo": ratio(values["bluegreen"], values["argo"]),
                "ours/argo-qps200": ratio(values["bluegreen"], values["argo-qps200"]),
                "ours/bare": ratio(values["bluegreen"], values["bare"]),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    header = ("metric", *COLUMNS, "ours/argo", "ours/argo-qps200", "ours/bare")

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:g}"

    lines = [
        (
            f"{r['metric']} ({r['unit']})" if r["unit"] else r["metric"],
            *(cell(r[c]) for c in header[1:]),
        )
        for r in rows
        if any(r[c] is not None for c in COLUMNS)
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=False)]
    print(f"\n{title}")
    for line in (header, tuple("-" * w for w in widths), *lines):
        print("  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------------- main


def run(opts: Options) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "peer",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "machine": {**machine(), "loadavg_1m_at_start": loadavg()},
        "operator_code": operator_code(),
        "peer": {
            "name": "Argo Rollouts controller",
            "module": "github.com/argoproj/argo-rollouts/cmd/rollouts-controller",
            "version": argo_rollouts.version(),
            "flags": {
                "argo": ["--namespaced", "--leader-elect=false", "(defaults: --qps 40 --burst 80)"],
                "argo-qps200": ["--namespaced", "--leader-elect=false", *ARGO_FAST],
            },
            "settings": ArgoPeer().settings,
        },
        "bluegreen": {"settings": BlueGreenPeer().settings},
        "conditions": {
            "replicas": 2,
            "analysis": "none",
            "readiness": "kwok, instant",
            "scale_down_delay_seconds": 30,
            "at_rest": {
                "bluegreen": "phase Healthy, new stableRevision, observedGeneration caught up;"
                " the warm old colour (status.scaleDown) is not waited for",
                "argo": "phase Healthy, observedGeneration caught up, stableRS =="
                " currentPodHash and new; its scale-down delay is not waited for",
                "bare": "Deployment Available, observedGeneration caught up,"
                " updated == available == replicas, no old pods",
            },
            "traffic": "every ready endpoint of the active Service's EndpointSlices is a pod"
            " of the new release (its BENCH_RELEASE variable), at least one",
            "api_requests": "apiserver_flowcontrol_dispatched_requests_total of the"
            " controller's own FlowSchema (its own user), watches included",
        },
    }
    with cluster_session() as cluster:
        api = api_client_for(cluster.kubeconfig)
        install_crd(api)
        result["peer"]["crds"] = argo_rollouts.install_crds(api)
        result["machine"]["cluster"] = (
            "local control plane (kube-apiserver v1.37.2 from source, kwok)"
            if cluster.local
            else "KUBECONFIG"
        )
        r = Run(opts, cluster.kubeconfig, api, result=result)
        try:
            if opts.latency:
                result["latency"] = r.latency()
                _write(result, opts.out)
            if opts.scale:
                result["scale"] = {}
                peers: list[Peer] = [
                    BlueGreenPeer(),
                    ArgoPeer(),
                    ArgoPeer(name="argo-qps200", extra_args=ARGO_FAST),
                    BarePeer(),
                ]
                for peer in peers:
                    if peer.name not in opts.scale_peers:
                        continue
                    result["scale"][peer.name] = r.scale(peer)
                    _write(result, opts.out)
        finally:
            for user in r.identities:
                identity.revoke(api, user)
    result["rows"] = table(result)
    result["ratios"] = {
        row["metric"]: {k: row[k] for k in ("ours/argo", "ours/argo-qps200", "ours/bare")}
        for row in result["rows"]
    }
    print_table(result["rows"], f"bluegreen vs Argo Rollouts {result['peer']['version']}")
    _write(result, opts.out)
    return result


def _write(result: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="5 + 5 releases and 50 apps")
    parser.add_argument("--spaced", type=int, default=None, help="spaced releases (10)")
    parser.add_argument("--spacing", type=float, default=33.0, help="seconds between them")
    parser.add_argument("--back-to-back", type=int, default=None, help="releases (10)")
    parser.add_argument("--apps", type=int, default=None, help="apps at once (1000)")
    parser.add_argument("--workers", type=int, default=8, help="client threads for create/patch")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument(
        "--scale-peers",
        default="bluegreen,argo,argo-qps200,bare",
        help="which of bluegreen,argo,argo-qps200,bare run the scale workload",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    short = args.short
    apps = args.apps if args.apps is not None else (50 if short else 1000)
    opts = Options(
        spaced=args.spaced if args.spaced is not None else (5 if short else 10),
        spacing=args.spacing,
        back_to_back=args.back_to_back if args.back_to_back is not None else (5 if short else 10),
        apps=apps,
        workers=args.workers,
        latency=not args.no_latency,
        scale=not args.no_scale,
        scale_peers=tuple(p.strip() for p in args.scale_peers.split(",") if p.strip()),
        out=(args.out or RESULTS / f"peer-{apps}.json").resolve(),
    )
    result = run(opts)
    incomplete = [
        f"{who} {phase}"
        for who, s in (result.get("scale") or {}).items()
        for phase in ("create", "release")
        if not (s.get(phase) or {}).get("completed")
    ]
    if incomplete:
        print("not completed: " + ", ".join(incomplete))
        sys.exit(1)


if __name__ == "__main__":
    main()
