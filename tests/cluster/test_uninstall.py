"""docs/uninstall.md, "keep the workloads": steps 1 to 3 on a real app.

With the operator stopped, `kubectl delete ... --cascade=orphan` deletes the app and leaves
what it owned: the Deployments and Services remain, with no ownerReferences, the Service's
selector unchanged and its endpoints still ready. The check of step 3 (kubectl and jq, as
the page writes it) then finds nothing owned by an app. Narrowed to the test's namespace:
the page's commands act on every namespace.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.cluster

KUBECTL = Path(sys.executable).parent / "kubectl"
GUIDE = REPO / "docs" / "uninstall.md"


def _guide_commands() -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S))


def _ready_endpoints(api_client: client.ApiClient, ns: str, service: str) -> set[str]:
    slices = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        ns, label_selector=f"kubernetes.io/service-name={service}"
    )
    return {
        e.target_ref.name
        for s in slices.items
        for e in s.endpoints or []
        if e.conditions and e.conditions.ready
    }


def _owners(obj: Any) -> list[str]:
    return [o.kind for o in obj.metadata.owner_references or []]


def test_orphaning_keeps_the_workloads_serving(
    own_operator: tuple[OperatorProcess, str], api_client: client.ApiClient, cluster: Cluster
) -> None:
    op, ns = own_operator
    commands = _guide_commands()
    delete = (
        "kubectl delete bluegreenapps.bluegreen.dev --all --all-namespaces --cascade=orphan --wait"
    )
    assert delete in commands
    assert "kubectl delete crd bluegreenapps.bluegreen.dev" in commands
    # The CRD goes last, after the orphaning and the check.
    assert commands.index(delete) < commands.index("kubectl delete crd bluegreenapps")

    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop"))
    healthy = apps.wait_phase("shop", "Healthy")
    core, apps_v1 = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    before = _ready_endpoints(api_client, ns, "shop")
    selector = core.read_namespaced_service("shop", ns).spec.selector
    assert len(before) == 2
    assert _owners(apps_v1.read_namespaced_deployment("shop-blue", ns)) == ["BlueGreenApp"]

    op.stop()  # step 1: the operator is gone
    kubectl = [str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig)]
    subprocess.run(  # step 2, in this namespace only
        [
            *(*kubectl, "delete", "bluegreenapps.bluegreen.dev", "--all", "-n", ns),
            *("--cascade=orphan", "--wait", "--timeout=60s"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (
        apps.api.list_namespaced_custom_object("bluegreen.dev", "v1alpha1", ns, "bluegreenapps")[
            "items"
        ]
        == []
    )
    time.sleep(3)  # the garbage collector would have acted by now

    for name in ("shop-blue",):
        deployment = apps_v1.read_namespaced_deployment(name, ns)
        assert _owners(deployment) == []
        assert deployment.status.ready_replicas == 2
    for name in ("shop", "shop-preview", "shop-metrics"):
        assert _owners(core.read_namespaced_service(name, ns)) == [], name
    assert core.read_namespaced_service("shop", ns).spec.selector == selector
    assert _ready_endpoints(api_client, ns, "shop") == before
    assert healthy["activeColor"] == selector["bluegreen.dev/color"]

    # Step 3 as the page writes it, in this namespace: nothing is owned by an app any more.
    jq = shutil.which("jq")
    assert jq, "jq is not installed (Debian package jq)"
    listed = subprocess.run(
        [*kubectl, "get", "deployments,services,ingresses", "-n", ns, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    query = re.search(r"jq -r '(.*?)'", commands, re.S)
    assert query
    owned = subprocess.run(
        [jq, "-r", query.group(1)], input=listed, check=True, capture_output=True, text=True
    ).stdout
    assert owned == ""
