"""Every benchmark, then one table of each number against its target (`make bench`).

    .venv/bin/python -m tests.bench.run_all                  # 100 releases, 1000 apps, 300 s idle
    .venv/bin/python -m tests.bench.run_all --short          # a smoke run, a few minutes
    .venv/bin/python -m tests.bench.run_all --summary-only   # only the table, from the results

Runs `tests.bench.release_latency --releases 100`, `tests.bench.scale --apps 1000
--idle-seconds 300`, `tests.bench.peer --apps 1000` (side by side with Argo Rollouts
and a bare baseline) and 200 hostile specs (tests/cluster/test_hostile_specs.py with
BLUEGREEN_HOSTILE_EXAMPLES=200) and `tests.bench.config_watch --configmaps 2000` one after the other, each as its own process, on one cluster (the
local control plane is started once if it is not running, and stopped at the end only if
this run started it). Then reads their results files, prints the table and writes
tests/bench/results/summary.json. A benchmark that fails or stops early leaves its
numbers "not measured" or "not met"; the others are still reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.release_latency import RESULTS
from tests.support.cluster import REPO, cluster_session

HOSTILE_TEST = REPO / "tests" / "cluster" / "test_hostile_specs.py"
CONFIGMAPS = 2000
"""ConfigMaps in the namespace for tests.bench.config_watch (what config tracking's watch costs)."""


@dataclass(frozen=True)
class Target:
    metric: str
    source: str  # which results file
    read: Callable[[dict[str, Any]], float | None]
    limit: float | None  # None: reported for context, no target
    unit: str
    strict: bool = False  # "under" (<) instead of "at most" (<=)

    def judge(self, value: float | None) -> str:
        if self.limit is None:
            return ""
        if value is None:
            return "not met (not measured)"
        ok = value < self.limit if self.strict else value <= self.limit
        return "met" if ok else "not met"

    def target_text(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'<' if self.strict else '<='} {self.limit:g} {self.unit}"


def _get(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def read(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value)

    return read


def _ratio(row: str, column: str) -> Callable[[dict[str, Any]], float | None]:
    """A ratio from tests.bench.peer's table (ours / Argo, ours / baseline)."""

    def read(result: dict[str, Any]) -> float | None:
        value = (result.get("ratios") or {}).get(row, {}).get(column)
        return None if value is None else float(value)

    return read


def _cell(row: str, column: str) -> Callable[[dict[str, Any]], float | None]:
    """One value of tests.bench.peer's table."""

    def read(result: dict[str, Any]) -> float | None:
        for r in result.get("rows") or []:
            if r["metric"] == row and r.get(column) is not None:
                return float(r[column])
        return None

    return read


def peer_targets(apps: int) -> list[Target]:
    """Issue 12's targets: both controllers timed by one external watch harness."""
    pe = "peer"
    return [
        Target("ours/Argo: spaced, patch -> traffic p50", pe,
               _ratio("spaced: patch -> traffic p50", "ours/argo"), 1.0, ""),
        Target("ours/Argo: spaced, patch -> traffic p95", pe,
               _ratio("spaced: patch -> traffic p95", "ours/argo"), 1.0, ""),
        Target("ours/Argo: back to back, patch -> traffic p50", pe,
               _ratio("back to back: patch -> traffic p50", "ours/argo"), 1.0, ""),
        Target("ours/Argo: back to back, patch -> traffic p95", pe,
               _ratio("back to back: patch -> traffic p95", "ours/argo"), 1.0, ""),
        Target("ours/Argo: spaced, patch -> at rest p50", pe,
               _ratio("spaced: patch -> at rest p50", "ours/argo"), 1.5, ""),
        Target("ours/Argo: back to back, patch -> at rest p50", pe,
               _ratio("back to back: patch -> at rest p50", "ours/argo"), 1.5, ""),
        Target(f"ours/Argo: {apps} apps created, all at rest", pe,
               _ratio("scale: create, all at rest", "ours/argo"), 1.0, ""),
        Target(f"ours/Argo: {apps} apps released, all at rest", pe,
               _ratio("scale: release, all at rest", "ours/argo"), 1.0, ""),
        Target(f"ours/Argo --qps 200: {apps} apps created", pe,
               _ratio("scale: create, all at rest", "ours/argo-qps200"), 1.0, ""),
        Target(f"ours/Argo --qps 200: {apps} apps released", pe,
               _ratio("scale: release, all at rest", "ours/argo-qps200"), 1.0, ""),
        Target(f"ours/bare: {apps} apps created", pe,
               _ratio("scale: create, all at rest", "ours/bare"), 1.25, ""),
        Target(f"ours/bare: {apps} apps released", pe,
               _ratio("scale: release, all at rest", "ours/bare"), 1.25, ""),
        Target(f"switch latency p95 while {apps} release (own)", pe,
               _cell("scale: release, switch latency p95 (own)", "bluegreen"), 2.0, "s"),
        Target("API requests per release (at the API server)", pe,
               _cell("back to back: API requests per release", "bluegreen"), 15.0, ""),
        Target("ours/Argo: CPU per release (back to back)", pe,
               _ratio("back to back: CPU per release", "ours/argo"), 1.0, ""),
        Target(f"peak RSS at {apps} apps (peer run)", pe,
               _cell("scale: peak RSS", "bluegreen"), 250.0 if apps == 1000 else None, "MB"),
    ]  # fmt: skip


def targets(apps: int) -> list[Target]:
    rl, sc = "release_latency", "scale"
    return [
        Target("switch latency p50", rl, _get("switch_latency_seconds", "median"), 0.25, "s"),
        Target("switch latency p95", rl, _get("switch_latency_seconds", "p95"), 1.0, "s"),
        Target("release latency p50", rl, _get("release_latency_seconds", "median"), 3.0, "s"),
        Target("release latency p95", rl, _get("release_latency_seconds", "p95"), None, "s"),
        Target(
            f"{apps} apps created -> all Healthy",
            sc,
            _get("create", "all_healthy_seconds"),
            120.0 if apps == 1000 else None,
            "s",
        ),
        Target(
            f"operator peak RSS at {apps} apps (VmHWM)",
            sc,
            _get("operator", "peak_rss_mb_vmhwm"),
            400.0 if apps == 1000 else None,
            "MB",
        ),
        Target(
            f"operator idle CPU, {apps} settled apps",
            sc,
            _get("idle", "operator_cpu_percent_of_core"),
            2.0,
            "% of a core",
            strict=True,
        ),
        Target(
            f"{apps} apps released at once -> all Healthy",
            sc,
            _get("release", "all_healthy_seconds"),
            None,
            "s",
        ),
        Target(
            f"release at {apps} apps, per app p50",
            sc,
            _get("release", "per_app_patch_to_healthy_seconds", "median"),
            None,
            "s",
        ),
        Target(
            f"switch latency at {apps} apps p50",
            sc,
            _get("release", "switch_latency_seconds", "median"),
            None,
            "s",
        ),
        Target(
            f"switch latency at {apps} apps p95",
            sc,
            _get("release", "switch_latency_seconds", "p95"),
            None,
            "s",
        ),
        Target(
            "operator API requests per release (gateway count)",
            sc,
            _get("release", "operator_api_requests_per_app"),
            None,
            "",
        ),
        Target(
            "... per release, as bluegreen_kube_api_requests_total says",
            sc,
            _get("release", "operator_metric_api_requests_per_app"),
            None,
            "",
        ),
        Target(
            "operator API requests per idle app per minute",
            sc,
            _get("idle", "operator_api_requests_per_app_per_minute"),
            None,
            "",
        ),
        Target(
            "operator CPU to create all apps",
            sc,
            _get("create", "operator_cpu_seconds"),
            None,
            "s",
        ),
        Target(
            "operator CPU to release all apps",
            sc,
            _get("release", "operator_cpu_seconds"),
            None,
            "s",
        ),
        *peer_targets(apps),
        Target("hostile specs tried", "hostile", _get("examples"), None, ""),
        Target(
            "hostile specs: most operator API requests for one create",
            "hostile",
            _get("worst", "create_requests"),
            40.0,
            "",
        ),
        Target(
            "hostile specs: most operator API requests for one release (and abort)",
            "hostile",
            _get("worst", "release_requests"),
            40.0,
            "",
        ),
        Target(
            f"operator RSS growth watching {CONFIGMAPS} ConfigMaps of 4 KB",
            "config_watch",
            _get("create", "rss_growth_mb"),
            None,
            "MB",
        ),
        Target(
            f"tracked ConfigMap change -> release starts, p50, {CONFIGMAPS} ConfigMaps",
            "config_watch",
            _get("with_configmaps", "release_start_seconds", "median"),
            None,
            "s",
        ),
        Target(
            "hostile specs: longest create until at rest",
            "hostile",
            _get("worst", "create_seconds"),
            None,
            "s",
        ),
    ]


def run_benchmarks(
    releases: int, apps: int, idle_seconds: float, peer_args: list[str], hostile: int
) -> dict[str, int]:
    """Each benchmark in its own process; their exit codes."""
    env = {
        **os.environ,
        "BLUEGREEN_HOSTILE_EXAMPLES": str(hostile),
        "BLUEGREEN_HOSTILE_RESULTS": str(RESULTS / "hostile.json"),
    }
    commands = {
        "release_latency": ["-m", "tests.bench.release_latency", "--releases", str(releases)],
        "scale": [
            "-m",
            "tests.bench.scale",
            "--apps",
            str(apps),
            "--idle-seconds",
            f"{idle_seconds:g}",
        ],
        "peer": ["-m", "tests.bench.peer", "--apps", str(apps), *peer_args],
        "hostile": ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(HOSTILE_TEST)],
        "config_watch": ["-m", "tests.bench.config_watch", "--configmaps", str(CONFIGMAPS)],
    }
    codes = {}
    with cluster_session():
        for name, args in commands.items():
            print(f"\n=== {name}: {' '.join(args[1:])}", flush=True)
            codes[name] = subprocess.run(
                [sys.executable, *args], cwd=REPO, env=env, check=False, stdin=subprocess.DEVNULL
            ).returncode
    return codes


def summarize(apps: int, codes: dict[str, int] | None = None) -> dict[str, Any]:
    files = {
        "release_latency": RESULTS / "release_latency.json",
        "scale": RESULTS / f"scale-{apps}.json",
        "peer": RESULTS / f"peer-{apps}.json",
        "hostile": RESULTS / "hostile.json",
        "config_watch": RESULTS / f"config-watch-{CONFIGMAPS}.json",
    }
    results: dict[str, dict[str, Any]] = {}
    for name, path in files.items():
        if path.exists():
            results[name] = json.loads(path.read_text())
    rows = []
    for t in targets(apps):
        value = t.read(results.get(t.source, {}))
        rows.append(
            {
                "metric": t.metric,
                "value": value,
                "unit": t.unit,
                "target": t.target_text(),
                "verdict": t.judge(value),
                "source": str(files[t.source].relative_to(REPO)),
            }
        )
    summary = {
        "benchmark": "summary",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "exit_codes": codes,
        "runs": {
            name: {
                "when": r.get("when"),
                "machine": r.get("machine"),
                "profiled": r.get("profiled", False),
                "operator_code": r.get("operator_code"),
            }
            for name, r in results.items()
        },
        "releases": results.get("release_latency", {}).get("releases"),
        "apps": apps,
        "rows": rows,
        "targets_met": sum(r["verdict"] == "met" for r in rows),
        "targets_total": sum(bool(r["verdict"]) for r in rows),
    }
    print_table(summary)
    return summary


def print_table(summary: dict[str, Any]) -> None:
    header = ("metric", "value", "target", "met?")
    lines = [
        (
            r["metric"],
            "-" if r["value"] is None else f"{r['value']:g} {r['unit']}".strip(),
            r["target"],
            r["verdict"],
        )
        for r in summary["rows"]
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    print()
    for line in (header, tuple("-" * w for w in widths), *lines):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    print(f"\n{summary['targets_met']} of {summary['targets_total']} targets met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--short",
        action="store_true",
        help="a smoke run: 20 releases, 50 apps, 30 s idle, 40 hostile specs",
    )
    parser.add_argument("--releases", type=int, default=None, help="100 (short: 20)")
    parser.add_argument("--apps", type=int, default=None, help="1000 (short: 50)")
    parser.add_argument("--idle-seconds", type=float, default=None, help="300 (short: 30)")
    parser.add_argument(
        "--peer-releases",
        type=int,
        default=None,
        help="spaced and back-to-back releases per controller side by side with Argo"
        " Rollouts (10; short: 5)",
    )
    parser.add_argument(
        "--peer-spacing", type=float, default=33.0, help="seconds between spaced releases"
    )
    parser.add_argument(
        "--hostile-examples", type=int, default=None, help="hostile specs tried (200; short: 40)"
    )
    parser.add_argument(
        "--summary-only", action="store_true", help="do not run; summarize the results files"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "summary.json")
    args = parser.parse_args()
    short = args.short
    releases = args.releases if args.releases is not None else (20 if short else 100)
    apps = args.apps if args.apps is not None else (50 if short else 1000)
    idle = args.idle_seconds if args.idle_seconds is not None else (30.0 if short else 300.0)
    peer_releases = args.peer_releases if args.peer_releases is not None else (5 if short else 10)
    peer_args = [
        "--spaced",
        str(peer_releases),
        "--back-to-back",
        str(peer_releases),
        "--spacing",
        f"{args.peer_spacing:g}",
    ]
    hostile = args.hostile_examples if args.hostile_examples is not None else (40 if short else 200)
    codes = None
    if not args.summary_only:
        codes = run_benchmarks(releases, apps, idle, peer_args, hostile)
    summary = summarize(apps, codes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if codes and any(codes.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
