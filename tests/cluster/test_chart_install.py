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

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.support.apps import GROUP, PLURAL, VERSION, Apps, app_manifest, install_crd
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess
from tests.support.tools import helm
from tests.support.waiting import wait_for
from tests.support.watchers import SelectorRecorder

pytestmark = pytest.mark.cluster

CHART = REPO / "charts" / "bluegreen-operator"
KUBECTL = Path(sys.executable).parent / "kubectl"
LOGS = REPO / ".cache" / "test-logs"
REPLICAS = 2
REQUEST = "bluegreen.dev/request"


def _namespace(api_client: client.ApiClient, prefix: str) -> str:
    # Not the session's prefix: the session's operator must never act in these namespaces.
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


def _delete_namespace(api_client: client.ApiClient, name: str) -> None:
    """Delete the apps first (call it while an operator still runs, so their finalizer is
    handled); an app no operator finalized loses its finalizer, or the namespace would stay
    Terminating for ever."""
    api = client.CustomObjectsApi(api_client)

    def apps() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = api.list_namespaced_custom_object(
            GROUP, VERSION, name, PLURAL
        )["items"]
        return items

    for app in apps():
        api.delete_namespaced_custom_object(GROUP, VERSION, name, PLURAL, app["metadata"]["name"])
    deadline = time.monotonic() + 20
    while apps() and time.monotonic() < deadline:
        time.sleep(0.2)
    for app in apps():
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            name,
            PLURAL,
            app["metadata"]["name"],
            {"metadata": {"finalizers": None}},
        )
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


# --------------------------------------------------------------------------- install


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str
    peering: str
    manifest: str


@pytest.fixture(scope="module")
def release(cluster: Cluster, api_client: client.ApiClient, crd: None) -> Iterator[Release]:
    ns = _namespace(api_client, "helm")
    name = "bluegreen-operator"
    peering = f"bluegreen-{ns}"  # cluster-scoped: one per test run, never the default's name
    helm(
        *("install", name, str(CHART), "--namespace", ns),
        *("--set", f"replicaCount={REPLICAS}", "--set", f"peering.name={peering}"),
        *("--set", f"analysisTemplates.errorRatio.name=error-ratio-{ns}"),
        *("--set", "image.repository=registry.example/bluegreen-operator"),
        *("--set", "image.tag=test", "--wait", "--timeout", "3m"),
        kubeconfig=cluster.kubeconfig,
    )
    manifest = helm(
        "get", "manifest", name, "--namespace", ns, kubeconfig=cluster.kubeconfig
    ).stdout
    sa = next(
        d["metadata"]["name"]
        for d in yaml.safe_load_all(manifest)
        if d and d["kind"] == "ServiceAccount"
    )
    yield Release(name, ns, sa, peering, manifest)
    helm("uninstall", name, "--namespace", ns, "--wait", kubeconfig=cluster.kubeconfig)
    _delete_namespace(api_client, ns)


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
    token = (
        client.CoreV1Api(api_client)
        .create_namespaced_service_account_token(
            release.service_account, release.namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    admin = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=admin)
    entry: dict[str, Any] = {"server": admin.host}
    if admin.ssl_ca_cert:
        entry["certificate-authority-data"] = base64.b64encode(
            Path(admin.ssl_ca_cert).read_bytes()
        ).decode()
    elif not admin.verify_ssl:
        entry["insecure-skip-tls-verify"] = True
    user = f"system:serviceaccount:{release.namespace}:{release.service_account}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": user}}],
        "current-context": "sa",
    }
    path = Path(tmp_path_factory.mktemp("sa")) / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def test_the_service_account_runs_a_full_release(
    sa_kubeconfig: Path, api_client: client.ApiClient
) -> None:
    ns = _namespace(api_client, "rbac")
    op = OperatorProcess(sa_kubeconfig, LOGS, namespaces=ns)
    try:
        op.start()
        apps = Apps(api_client, ns)
        apps.create(app_manifest("shop"))
        first = apps.wait_phase("shop", "Healthy")
        apps.set_image("shop", "registry.example/shop:v2")
        done = apps.wait_release_done("shop", 2)
        assert done["phase"] == "Healthy"
        assert done["activeColor"] == "green"
        assert done["stableRevision"] != first["stableRevision"]
        # The operator's own events (events.k8s.io): 403s on them would be silently dropped.
        # (Read as plain dicts: the typed client rejects events without an eventTime.)
        events = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            "events.k8s.io", "v1", ns, "events"
        )["items"]
        assert any(e.get("reportingController") == "bluegreen.dev/operator" for e in events)
    finally:
        _delete_namespace(api_client, ns)  # while the operator runs: it removes its finalizer
        op.stop()
    log = op.log_path.read_text(errors="replace")
    for sign in ("403", "Forbidden", "forbidden", "Not enough permissions"):
        assert sign not in log, f"{sign!r} in the operator's log:\n{op.tail()}"


def can_i(kubeconfig: Path, *args: str) -> bool:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


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
        ("delete", "deployments.apps", "-n", ns),
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
        ("watch", "pods", "--all-namespaces"),
        ("list", "endpointslices.discovery.k8s.io", "--all-namespaces"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
        ("watch", "analysistemplates.bluegreen.dev", "--all-namespaces"),
        ("list", "clusteranalysistemplates.bluegreen.dev"),
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
    install_crd(api_client, CHART / "crds" / "kopf.dev_kopfpeerings.yaml")
    ns = _namespace(api_client, "ha")
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
    _delete_namespace(api_client, ns)  # the live operator (if any) removes its finalizer
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
