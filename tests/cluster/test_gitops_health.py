"""What GitOps tools make of a BlueGreenApp in every phase, with their real code.

A real app goes through a release held at a manual gate (Paused), promoted (Observing,
Healthy), then a release whose candidate never becomes ready (RollingBack, Degraded), with
the real operator. Every version of the object the API server sent on a watch is then
judged by

- kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, tools/kstatus): what Flux's
  Kustomization `healthChecks` / `wait` and cli-utils' appliers decide from;
- Argo CD's health check, docs/argocd/health.lua, under gopher-lua (tools/gopherlua).

- the `healthCheckExprs` of docs/flux/README.md, taken from the page, by Flux's own
  evaluator (github.com/fluxcd/pkg/runtime/cel, tools/fluxcel).

Each must agree with its phase table in docs/flux/README.md and docs/argocd/README.md: a
spec the operator has not seen yet is in progress whatever the phase says; then Current /
Healthy only when Healthy, Failed / Degraded when Degraded, and everything else in
progress, Paused included (Argo CD: Suspended; the documented CEL expressions: Current).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.apps import NOT_READY, Apps, app_manifest
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess
from tests.support.tools import go_tool
from tests.support.watchers import ObjectRecorder

pytestmark = pytest.mark.cluster

KUBECTL = Path(sys.executable).parent / "kubectl"
HEALTH_LUA = REPO / "docs" / "argocd" / "health.lua"
FLUX_GUIDE = REPO / "docs" / "flux" / "README.md"

# phase -> (kstatus, Argo CD), once the operator has seen the current generation.
TABLE = {
    "Pending": ("InProgress", "Progressing"),
    "Healthy": ("Current", "Healthy"),
    "Deploying": ("InProgress", "Progressing"),
    "Analyzing": ("InProgress", "Progressing"),
    "Paused": ("InProgress", "Suspended"),
    "Observing": ("InProgress", "Progressing"),
    "RollingBack": ("InProgress", "Progressing"),
    "Degraded": ("Failed", "Degraded"),
}


# phase -> Flux with the healthCheckExprs of docs/flux/README.md (Paused counts as done).
FLUX_EXPRS = {phase: "InProgress" for phase in TABLE} | {
    "Healthy": "Current",
    "Paused": "Current",
    "Degraded": "Failed",
}


def _verdicts(argv: list[str], objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A program's verdict on each object, from one run on a List."""
    body = {"apiVersion": "v1", "kind": "List", "items": objects}
    out = subprocess.run(
        argv, input=json.dumps(body), capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def kstatus(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _verdicts([str(go_tool("kstatus"))], objects)


def flux_exprs(objects: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    """Flux's evaluator with the Kustomization of the guide that has healthCheckExprs."""
    blocks = re.findall(r"```yaml\n(.*?)```", FLUX_GUIDE.read_text(), re.S)
    (kustomization,) = [b for b in blocks if "healthCheckExprs" in b]
    assert yaml.safe_load(kustomization)["kind"] == "Kustomization"
    path = tmp_path / "kustomization.yaml"
    path.write_text(kustomization)
    return _verdicts([str(go_tool("flux-health")), str(path)], objects)


def argocd(obj: dict[str, Any]) -> str:
    out = subprocess.run(
        [str(go_tool("argocd-lua")), str(HEALTH_LUA)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.splitlines()[0].removeprefix("status: ")


def expected(obj: dict[str, Any]) -> tuple[str, str] | None:
    status = obj.get("status") or {}
    phase = status.get("phase")
    if phase is None:
        return None
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return ("InProgress", "Progressing")
    return TABLE[phase]


def live_kstatus(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    """`kubectl get bga NAME -o json | kstatus`, as docs/flux/README.md shows it."""
    obj = subprocess.run(
        [
            *(str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", namespace),
            *("get", "bga", name, "-o", "json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = subprocess.run(
        [str(go_tool("kstatus"))], input=obj, capture_output=True, text=True, check=True
    ).stdout
    line: dict[str, Any] = json.loads(result)
    return line


@pytest.fixture
def recorded(
    own_operator: tuple[OperatorProcess, str], api_client: client.ApiClient
) -> Iterator[tuple[str, ObjectRecorder]]:
    _, ns = own_operator
    recorder = ObjectRecorder(api_client, ns, "BlueGreenApp")
    recorder.start()
    yield ns, recorder
    recorder.stop()


def test_kstatus_flux_and_argo_cd_follow_the_phases_of_a_real_app(
    recorded: tuple[str, ObjectRecorder],
    api_client: client.ApiClient,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    ns, recorder = recorded
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop", autoPromotion=False, progressDeadlineSeconds=5))
    apps.wait_phase("shop", "Healthy")
    healthy = live_kstatus(cluster.kubeconfig, ns, "shop")
    assert healthy["status"] == "Current", healthy

    apps.set_image("shop", "registry.example/shop:v2")
    apps.wait_phase("shop", "Paused")
    paused = live_kstatus(cluster.kubeconfig, ns, "shop")
    # A paused release is still in progress to kstatus (Reconciling is True): a Flux
    # Kustomization that waits on the app waits for the promotion, up to its timeout.
    assert paused["status"] == "InProgress", paused
    apps.request("shop", "promote")
    apps.wait_release_done("shop", 2)

    apps.set_image("shop", "registry.example/shop:broken", labels=NOT_READY)
    apps.wait_phase("shop", "Degraded", timeout=60)
    degraded = live_kstatus(cluster.kubeconfig, ns, "shop")
    assert degraded["status"] == "Failed", degraded
    # The message Flux reports is the operator's, from the Stalled condition.
    stalled = {c["type"]: c for c in apps.status("shop")["conditions"]}["Stalled"]
    assert degraded["message"] == stalled["message"] != "", degraded
    recorder.stop()
    assert not recorder.errors, recorder.errors

    objects = [e.obj for e in recorder.history("shop")]
    verdicts = kstatus(objects)
    by_flux = flux_exprs(objects, tmp_path)
    assert len(verdicts) == len(by_flux) == len(objects)
    seen: dict[str, set[tuple[str, str, str]]] = {}
    stale = 0
    for obj, verdict, flux in zip(objects, verdicts, by_flux, strict=True):
        want = expected(obj)
        got = (verdict["status"], argocd(obj))
        if want is None:  # no status yet: kstatus finds no condition, the CEL no field
            assert got == ("Current", "Progressing"), (obj.get("status"), verdict)
            assert flux["status"] == "Unknown" and "no such attribute" in flux["error"], flux
            continue
        status = obj["status"]
        assert got == want, (status.get("phase"), status.get("conditions"), verdict)
        if status["observedGeneration"] != obj["metadata"]["generation"]:
            stale += 1
            assert verdict["message"].startswith("BlueGreenApp generation is "), verdict
            assert flux["status"] == "InProgress", flux
        else:
            assert flux["status"] == FLUX_EXPRS[status["phase"]], (status["phase"], flux)
            seen.setdefault(status["phase"], set()).add((*got, flux["status"]))
    print("\nphases seen on the watch, with (kstatus, Argo CD, Flux's CEL of the guide):")
    for phase, verdict_set in seen.items():
        print(f"  {phase:12} {sorted(verdict_set)}")
    print(f"  ({stale} versions with a spec the operator had not seen yet: InProgress)")
    # Every rest point and the in-flight phases of both releases were judged.
    assert {"Healthy", "Deploying", "Paused", "Observing", "RollingBack", "Degraded"} <= set(
        seen
    ), sorted(seen)
    assert stale >= 2, "each of the two spec changes is seen before the operator acts on it"
