"""Measure switch latency and release latency over N releases on a cluster.

    .venv/bin/python -m tests.bench.release_latency --releases 20

Switch latency: the operator's own measurement, selector flip -> every ready endpoint
behind the active Service is the new colour (status.release.switchLatencySeconds).
Release latency: from the client's spec patch to the client seeing phase Healthy on the
new revision (a watch, so no polling delay is added), with zero scale-down delay and
no analysis.

Prints a summary and writes a JSON results file with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from tests.support.apps import GROUP, PLURAL, VERSION, Apps, app_manifest, install_crd
from tests.support.cluster import REPO, cluster_session
from tests.support.operator import OperatorProcess

RESULTS = REPO / "tests" / "bench" / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 4),
        "p95": round(percentile(values, 0.95), 4),
        "max": round(max(values), 4),
        "min": round(min(values), 4),
    }


def wait_status(
    api_client: client.ApiClient,
    ns: str,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> dict[str, Any]:
    """The app's status once `done` says so, from a watch (no polling delay added)."""
    objs = client.CustomObjectsApi(api_client)
    w = watch.Watch()
    deadline = time.monotonic() + timeout
    try:
        for event in w.stream(
            objs.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=int(timeout),
        ):
            st = dict(event["raw_object"].get("status") or {})
            if done(st):
                return st
            if time.monotonic() > deadline:
                break
    finally:
        w.stop()
    raise TimeoutError(f"{name}: not the status waited for within {timeout}s")


def wait_healthy_on_new_revision(
    api_client: client.ApiClient, ns: str, name: str, old_revision: str, timeout: float
) -> dict[str, Any]:
    return wait_status(
        api_client,
        ns,
        name,
        lambda st: (
            st.get("phase") == "Healthy" and st.get("stableRevision") not in (None, old_revision)
        ),
        timeout,
    )


def run(releases: int, out: Path | None) -> dict[str, Any]:
    with cluster_session() as cluster:
        api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        install_crd(api_client)
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
        op = OperatorProcess(cluster.kubeconfig, REPO / ".cache" / "bench-logs", namespaces=ns)
        op.start()
        try:
            apps = Apps(api_client, ns)
            apps.create(
                app_manifest(
                    "bench", replicas=2, scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0
                )
            )
            apps.wait_phase("bench", "Healthy")
            switch: list[float] = []
            release: list[float] = []
            operator_release: list[float] = []
            for i in range(releases):
                old = apps.status("bench")["stableRevision"]
                started = time.monotonic()
                apps.set_image("bench", f"registry.example/bench:r{i}")
                st = wait_healthy_on_new_revision(api_client, ns, "bench", old, timeout=60)
                release.append(time.monotonic() - started)
                switch.append(float(st["release"]["switchLatencySeconds"]))
                operator_release.append(float(st["release"]["durationSeconds"]))
        finally:
            op.stop()
            client.CoreV1Api(api_client).delete_namespace(ns)
    result = {
        "benchmark": "release_latency",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cluster": "local control plane (kube-apiserver v1.37.2 from source, kwok)"
            if cluster.local
            else "KUBECONFIG",
        },
        "releases": releases,
        "switch_latency_seconds": summary(switch),
        "release_latency_seconds": summary(release),
        "operator_release_duration_seconds": summary(operator_release),
    }
    print(json.dumps(result, indent=2))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "release_latency.json")
    args = parser.parse_args()
    run(args.releases, args.out)


if __name__ == "__main__":
    main()
