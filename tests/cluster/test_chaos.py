"""Chaos and bad input: an API server restart in the middle of a release, and a template
the CRD accepts but the Deployment API rejects."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.cluster import LOCALCLUSTER, Cluster
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for
from tests.support.watchers import SelectorRecorder

pytestmark = pytest.mark.cluster


def api_requests(op: OperatorProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("bluegreen_kube_api_requests_total "):
                return float(line.split()[1])
    return 0.0


@pytest.mark.local_only
def test_api_server_restart_in_the_middle_of_a_release(
    cluster: Cluster, api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    # Marked local_only: `make test` with KUBECONFIG deselects it (another cluster's API
    # server is not ours to restart); here it must be the local control plane.
    assert cluster.local, "restarts the API server: run it on the local control plane only"
    op, ns = own_operator
    apps = Apps(api_client, ns)
    selectors = SelectorRecorder(api_client, ns, "shop")
    selectors.start()
    try:
        apps.create(app_manifest("shop", autoPromotionSeconds=4))
        apps.wait_phase("shop", "Healthy")
        apps.set_image("shop", "registry.example/shop:v2")
        analyzing = apps.wait_phase("shop", "Analyzing")
        restarted = subprocess.run(
            [sys.executable, str(LOCALCLUSTER), "restart", "kube-apiserver"],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        done = apps.wait_phase(
            "shop", "Healthy", timeout=90, revision=analyzing["candidateRevision"]
        )
    finally:
        selectors.stop()
    assert done["activeColor"] == "green"
    assert op.proc is not None and op.proc.poll() is None, "the operator died with the API server"
    flips = [s.get("bluegreen.dev/color") for s in selectors.selectors]
    assert flips == ["blue", "green"], flips


def test_template_rejected_by_the_deployment_api_is_a_condition_not_a_retry_storm(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    body: dict[str, Any] = app_manifest("bad")
    # Valid for the CRD (it only checks the template's outline), invalid for a Deployment.
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "Not_A_Port_Name", "containerPort": 3000}
    ]
    created = apps.create(body)

    def rejected() -> dict[str, Any] | None:
        for c in apps.status("bad").get("conditions", []):
            if c["type"] == "Degraded" and c["reason"] == "ObjectRejected":
                return dict(c)
        return None

    cond = wait_for("the ObjectRejected condition", rejected, timeout=30)
    assert cond["status"] == "True"
    assert "Deployment bad-blue was rejected by the API server" in cond["message"]
    assert "ports[0].name" in cond["message"] and "Not_A_Port_Name" in cond["message"], cond[
        "message"
    ]
    assert cond["observedGeneration"] == created["metadata"]["generation"]
    assert not client.AppsV1Api(api_client).list_namespaced_deployment(ns).items
    before = api_requests(op)
    time.sleep(10)
    spent = api_requests(op) - before
    assert spent < 40, f"{spent} API requests in 10 s for one rejected app: a retry storm"
    # Fixing the spec clears it.
    fixed = apps.get("bad")["spec"]["template"]
    fixed["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 3000}]
    apps.patch_spec("bad", {"template": fixed})
    st = apps.wait_phase("bad", "Healthy", timeout=60)
    assert {c["type"]: c["status"] for c in st["conditions"]}["Degraded"] == "False"
