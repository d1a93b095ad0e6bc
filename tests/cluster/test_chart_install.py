"""The chart in the real API server.

- `helm install` succeeds and the API server accepts every object (kwok runs the pods:
  they become Running and Ready, no container runs).
- The operator, run out of the cluster with a token minted for the chart's ServiceAccount,
  completes a release v1 -> v2: the ClusterRole is sufficient. `kubectl auth can-i` with
  that token shows it is not more than that: no Secrets, no pods/exec.
- High availability: two peered operator processes on one namespace, exactly one acts;
  the active one is SIGKILLed in the middle of a release and the standby finishes it, with
  exactly one selector flip. The failover time is measured and printed.

The HA processes are namespaced (`--namespace=...`), so kopf uses a namespaced KopfPeering
object in that namespace; the chart's cluster-wide replicas use a ClusterKopfPeering. Both
are the same kopf peering protocol, with the CRDs the chart ships.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.apps import Apps, app_manifest, crd_may_be_replaced, install_crd
from tests.support.chart import (
    CHART,
    Release,
    delete_namespace,
    install_chart,
    new_namespace,
    release_as_service_account,
    service_account_kubeconfig,
    uninstall_chart,
)
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess
from tests.support.rbac import KUBECTL, can_i
from tests.support.waiting import wait_for
from tests.support.watchers import SelectorRecorder

pytestmark = pytest.mark.cluster

LOGS = REPO / ".cache" / "test-logs"
REPLICAS = 2
REQUEST = "bluegreen.dev/request"


# --------------------------------------------------------------------------- install


@pytest.fixture(scope="module")
def release(cluster: Cluster, api_client: client.ApiClient, crd: None) -> Iterator[Release]:
    ns = new_namespace(api_client, "helm")
    installed = install_chart(
        cluster,
        str(CHART),
        ns,
        peering=f"bluegreen-{ns}",
        replicas=REPLICAS,
        options=[
            *("--set", "image.repository=registry.example/bluegreen-operator"),
            *("--set", "image.tag=test"),
        ],
    )
    yield installed
    uninstall_chart(cluster, api_client, installed)


def test_helm_install_is_accepted_and_ready(
    release: Release, cluster: Cluster, api_client: client.ApiClient, tmp_path: Path
) -> None:
    docs = [d for d in yaml.safe_load_all(release.manifest) if d]
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(release.manifest)
    out = subprocess.run(
        [
            *(str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig)),
            *("get", "-f", str(manifest), "-o", "json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    live = json.loads(out)["items"]
    assert sorted(d["kind"] for d in docs) == sorted(o["kind"] for o in live)
    for obj in live:
        assert obj["metadata"]["uid"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"

    apps_v1 = client.AppsV1Api(api_client)
    deploy = next(d for d in docs if d["kind"] == "Deployment")["metadata"]["name"]
    wait_for(
        "the operator's replicas to be ready (kwok plays the kubelet)",
        lambda: (
            apps_v1.read_namespaced_deployment(deploy, release.namespace).status.ready_replicas
            == REPLICAS
        ),
    )
    pods = client.CoreV1Api(api_client).list_namespaced_pod(release.namespace).items
    assert len(pods) == REPLICAS
    assert all(p.status.phase == "Running" for p in pods)
    print("operator pods on nodes:", sorted(p.spec.node_name for p in pods))
    policy = client.PolicyV1Api(api_client)
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")["metadata"]["name"]
    wait_for(
        "the PodDisruptionBudget to allow one disruption",
        lambda: (
            policy.read_namespaced_pod_disruption_budget(
                pdb, release.namespace
            ).status.disruptions_allowed
            == 1
        ),
    )
    peering = client.CustomObjectsApi(api_client).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", release.peering
    )
    assert peering["metadata"]["name"] == release.peering
    # The chart's error-ratio ClusterAnalysisTemplate, stored under the CRD's schema.
    template = client.CustomObjectsApi(api_client).get_cluster_custom_object(
        "bluegreen.dev", "v1alpha1", "clusteranalysistemplates", f"error-ratio-{release.namespace}"
    )
    assert template["spec"]["metrics"][0]["thresholdRange"] == {"max": "{{args.threshold}}"}


# --------------------------------------------------------------------------- RBAC


@pytest.fixture(scope="module")
def sa_kubeconfig(
    release: Release, cluster: Cluster, api_client: client.ApiClient, tmp_path_factory: Any
) -> Path:
    """A kubeconfig that is the chart's ServiceAccount: a token from the TokenRequest API."""
    path = Path(tmp_path_factory.mktemp("sa")) / "kubeconfig"
    return service_account_kubeconfig(api_client, cluster, release, path)


def test_the_service_account_runs_a_full_release(
    sa_kubeconfig: Path, api_client: client.ApiClient
) -> None:
    release_as_service_account(sa_kubeconfig, api_client, LOGS)


@pytest.fixture(scope="module")
def secrets_release(cluster: Cluster, api_client: client.ApiClient, crd: None) -> Iterator[Release]:
    """The chart with configTracking.secrets: true (one replica: only its RBAC matters)."""
    ns = new_namespace(api_client, "helmsec")
    installed = install_chart(
        cluster,
        str(CHART),
        ns,
        peering=f"bluegreen-{ns}",
        replicas=1,
        options=[
            *("--set", "image.repository=registry.example/bluegreen-operator"),
            *("--set", "image.tag=test"),
            *("--set", "configTracking.secrets=true"),
        ],
    )
    yield installed
    uninstall_chart(cluster, api_client, installed)


def test_with_secret_tracking_the_service_account_tracks_secrets_and_no_more(
    secrets_release: Release,
    cluster: Cluster,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    """configTracking.secrets grants what copying Secrets needs, and sets the operator's
    BLUEGREEN_TRACK_SECRETS; a release with a tracked Secret runs without a 403."""
    deployment = next(
        d for d in yaml.safe_load_all(secrets_release.manifest) if d and d["kind"] == "Deployment"
    )
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "BLUEGREEN_TRACK_SECRETS", "value": "true"} in env
    kubeconfig = service_account_kubeconfig(
        api_client, cluster, secrets_release, tmp_path / "kubeconfig"
    )
    for verb in ("get", "list", "watch", "create", "delete"):
        assert can_i(kubeconfig, verb, "secrets", "--all-namespaces"), verb
    for verb in ("update", "patch"):
        assert not can_i(kubeconfig, verb, "secrets", "--all-namespaces"), verb
    release_as_service_account(kubeconfig, api_client, LOGS, "rbacsec", track_secrets=True)


def test_the_service_account_cannot_read_secrets_nor_exec(
    sa_kubeconfig: Path, release: Release
) -> None:
    ns = release.namespace
    denied = [
        ("get", "secrets", "-n", ns),
        ("get", "secrets", "-n", "default"),
        ("list", "secrets", "--all-namespaces"),
        ("watch", "secrets", "--all-namespaces"),
        ("create", "pods", "--subresource=exec", "-n", ns),
        ("get", "pods", "--subresource=exec", "-n", ns),
        ("create", "pods/exec", "--all-namespaces"),
        ("create", "pods", "-n", ns),
        ("delete", "pods", "-n", ns),
        ("create", "serviceaccounts", "--subresource=token", "-n", ns),
        ("create", "analysistemplates.bluegreen.dev", "-n", ns),
        ("patch", "clusteranalysistemplates.bluegreen.dev"),
        ("escalate", "clusterroles"),
        ("*", "*"),
    ]
    allowed = [
        ("patch", "bluegreenapps.bluegreen.dev", "--subresource=status", "-n", ns),
        ("create", "deployments.apps", "-n", ns),
        ("patch", "deployments.apps", "-n", ns),
        ("delete", "deployments.apps", "-n", ns),  # a legacy Deployment, replaced when idle
        ("watch", "pods", "--all-namespaces"),
        ("list", "endpointslices.discovery.k8s.io", "--all-namespaces"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
        ("watch", "analysistemplates.bluegreen.dev", "--all-namespaces"),
        ("list", "clusteranalysistemplates.bluegreen.dev"),
        ("watch", "configmaps", "--all-namespaces"),  # config tracking
        ("create", "configmaps", "-n", ns),
        ("delete", "configmaps", "-n", ns),
    ]
    for args in denied:
        assert not can_i(sa_kubeconfig, *args), f"the operator can {' '.join(args)}"
    for args in allowed:
        assert can_i(sa_kubeconfig, *args), f"the operator cannot {' '.join(args)}"


# --------------------------------------------------------------------------- HA


class PeeredOperator(OperatorProcess):
    """`kopf run --peering=...` with JSON logs, as a replica of the chart's Deployment runs."""

    stop_timeout = 20.0

    def __init__(self, identity: str, kubeconfig: Path, namespace: str, peering: str) -> None:
        super().__init__(
            kubeconfig,
            LOGS,
            namespaces=namespace,
            env={"POD_ID": identity},  # kopf's peering identity, as the chart sets it
            kopf_args=("--log-format=json", f"--peering={peering}"),
            log_name=f"operator-{namespace}-{identity}.log",
        )
        self.identity = identity
        self.peering = peering

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "timestamp" in record:
                record["at"] = datetime.fromisoformat(record["timestamp"]).timestamp()
                out.append(record)
        return out

    def object_records(self) -> list[dict[str, Any]]:
        """What the operator logged about the apps it moved (a line per transition, with
        the app, its revision and phase): the operator acted."""
        return [r for r in self.records() if "app" in r]

    def resumed_at(self) -> float | None:
        return next(
            (r["at"] for r in self.records() if r["message"].startswith("Resuming operations")),
            None,
        )


@pytest.fixture
def ha(
    cluster: Cluster, api_client: client.ApiClient, crd: None
) -> Iterator[tuple[str, str, list[PeeredOperator]]]:
    install_crd(
        api_client,
        CHART / "crds" / "kopf.dev_kopfpeerings.yaml",
        replace=crd_may_be_replaced(cluster.local),
    )
    ns = new_namespace(api_client, "ha")
    peering = "ha-peering"
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        ns,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": peering}},
    )
    operators = [
        PeeredOperator(f"op-{c}-{ns}", cluster.kubeconfig, ns, peering) for c in ("a", "b")
    ]
    yield ns, peering, operators
    delete_namespace(api_client, ns)  # the live operator (if any) removes its finalizer
    for op in operators:
        op.stop()


def _peers(api_client: client.ApiClient, ns: str, peering: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "kopf.dev", "v1", ns, "kopfpeerings", peering
    )
    return dict(obj.get("status") or {})


def test_one_of_two_peered_operators_acts_and_the_standby_takes_over(
    ha: tuple[str, str, list[PeeredOperator]], api_client: client.ApiClient
) -> None:
    ns, peering, (first, second) = ha
    first.start()
    wait_for("the first operator to be active", first.resumed_at, timeout=30)
    second.start()
    peers = wait_for(
        "both operators in the peering object",
        lambda: (p := _peers(api_client, ns, peering)) and len(p) == 2 and p,
        timeout=30,
    )
    # The operator started first ranks higher; the later one waits as a standby.
    assert peers[first.identity]["priority"] > peers[second.identity]["priority"]
    # How long a silent peer counts as alive (handlers.PEERING_LIFETIME_SECONDS): the bound
    # of the failover after a SIGKILL, short instead of kopf's default of 60 s.
    lifetime = peers[first.identity]["lifetime"]
    assert lifetime == peers[second.identity]["lifetime"] <= 20

    selectors = SelectorRecorder(api_client, ns, "shop")
    selectors.start()
    try:
        apps = Apps(api_client, ns)
        apps.create(app_manifest("shop", autoPromotion=False))
        apps.wait_phase("shop", "Healthy")
        apps.set_image("shop", "registry.example/shop:v2")
        paused = apps.wait_phase("shop", "Paused")

        # Exactly one acts: every transition came from the first process, none from the
        # standby.
        assert first.object_records(), first.tail()
        assert second.object_records() == [], second.tail()
        assert second.resumed_at() is None, second.tail()

        killed_at = time.time()
        first.kill()
        apps.request("shop", "promote")
        wait_for(
            "the standby to handle the promote request",
            lambda: REQUEST not in (apps.get("shop")["metadata"].get("annotations") or {}),
            timeout=lifetime + 30,
            interval=0.1,
        )
        acted_at = time.time()
        done = apps.wait_phase("shop", "Healthy", revision=paused["candidateRevision"])
    finally:
        selectors.stop()

    assert done["activeColor"] == "green"
    assert [s.get("bluegreen.dev/color") for s in selectors.selectors] == ["blue", "green"]
    resumed_at = second.resumed_at()
    assert resumed_at is not None, second.tail()
    handled = [r["at"] for r in second.object_records()]
    assert handled and min(handled) >= resumed_at
    takeover, failover = resumed_at - killed_at, acted_at - killed_at
    print(
        f"\nfailover after SIGKILL of the active operator (peering lifetime {lifetime}s): "
        f"standby resumed after {takeover:.1f}s, "
        f"first handler finished after {min(handled) - killed_at:.1f}s, "
        f"promote request handled after {failover:.1f}s"
    )
    assert 0 < takeover <= lifetime + 5
    assert failover <= lifetime + 10


def test_a_graceful_stop_hands_over_at_once(
    ha: tuple[str, str, list[PeeredOperator]], api_client: client.ApiClient
) -> None:
    """SIGTERM (a rolling update, a node drain): kopf removes the active operator's record
    as it exits, so the standby resumes at once instead of after the lifetime."""
    ns, peering, (first, second) = ha
    first.start()
    wait_for("the first operator to be active", first.resumed_at, timeout=30)
    second.start()
    wait_for(
        "both operators in the peering object", lambda: len(_peers(api_client, ns, peering)) == 2
    )
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop"))
    apps.wait_phase("shop", "Healthy")
    assert second.object_records() == [], second.tail()

    stopped_at = time.time()
    first.stop()
    resumed_at = wait_for("the standby to resume", second.resumed_at, timeout=30)
    assert first.identity not in _peers(api_client, ns, peering)
    apps.set_image("shop", "registry.example/shop:v2")
    done = apps.wait_release_done("shop", 2)
    assert done["activeColor"] == "green"
    print(f"\nhandover after SIGTERM of the active operator: {resumed_at - stopped_at:.1f}s")
    assert resumed_at - stopped_at < 5
