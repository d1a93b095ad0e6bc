"""The operator's Helm chart in a real API server: install it, then act as its
ServiceAccount.

    release = install_chart(cluster, api_client, str(CHART), ns, peering="bg-" + ns)
    kubeconfig = service_account_kubeconfig(api_client, cluster, release, tmp / "kubeconfig")
    done = release_as_service_account(kubeconfig, api_client, log_dir)   # v1 -> v2 (-> v3)
    uninstall_chart(cluster, api_client, release)

kwok plays the kubelet, so the chart's pods become Ready but no container runs: the
operator runs out of the cluster with a token of the chart's ServiceAccount, which proves
the chart's RBAC is enough for a whole release.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.support.apps import GROUP, PLURAL, VERSION, Apps, app_manifest, job_check
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess
from tests.support.rbac import denials, token_kubeconfig
from tests.support.tools import helm
from tests.support.waiting import wait_for

CHART = REPO / "charts" / "bluegreen-operator"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str
    peering: str
    manifest: str


def new_namespace(api_client: client.ApiClient, prefix: str) -> str:
    """A namespace of its own (not the session's prefix: the session's operator must never
    act in it)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


def delete_namespace(api_client: client.ApiClient, name: str) -> None:
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


def track_config(core: client.CoreV1Api, ns: str, body: dict[str, Any], secrets: bool) -> None:
    """The app references a ConfigMap (and a Secret) and tracks it (them)."""
    core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    env_from: list[dict[str, Any]] = [{"configMapRef": {"name": "settings"}}]
    if secrets:
        core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "data": {"b": "Mg=="}})
        env_from.append({"secretRef": {"name": "creds"}})
    body["spec"]["configTracking"] = {"enabled": True, "secrets": secrets}
    body["spec"]["template"]["spec"]["containers"][0]["envFrom"] = env_from


def _check_copies(core: client.CoreV1Api, ns: str, app: dict[str, Any], secrets: bool) -> None:
    """Every revision's copies exist; a copy of a revision nothing keeps is deleted."""
    st = app["status"]
    rev = st["stableRevision"]
    assert core.read_namespaced_config_map(f"settings-{rev}", ns).immutable is True
    if secrets:
        assert core.read_namespaced_secret(f"creds-{rev}", ns).immutable is True
    owner = {"apiVersion": app["apiVersion"], "kind": "BlueGreenApp", "name": "shop"}
    labels = {"bluegreen.dev/app": "shop", "bluegreen.dev/config-copy": "true"}
    stale = "settings-0000000000"
    core.create_namespaced_config_map(
        ns,
        {
            "metadata": {
                "name": stale,
                "labels": {**labels, "bluegreen.dev/revision": "0000000000"},
                "ownerReferences": [{**owner, "uid": app["metadata"]["uid"]}],
            },
            "immutable": True,
        },
    )
    wait_for(
        f"the operator to delete {stale}",
        lambda: stale not in {c.metadata.name for c in core.list_namespaced_config_map(ns).items},
    )


def install_chart(
    cluster: Cluster,
    chart: str,
    namespace: str,
    *,
    peering: str,
    replicas: int = 2,
    options: Sequence[str] = (),
    name: str = "bluegreen-operator",
) -> Release:
    """`helm install` of `chart` (a folder, a .tgz or an oci:// reference) with --wait; the
    ClusterKopfPeering is named `peering`, the error-ratio ClusterAnalysisTemplate
    `error-ratio-<namespace>` (cluster-scoped: one per test, never the default's name).
    `options` are more helm arguments (--set ..., --version ..., --plain-http)."""
    helm(
        *("install", name, chart, "--namespace", namespace),
        *("--set", f"replicaCount={replicas}", "--set", f"peering.name={peering}"),
        *("--set", f"analysisTemplates.errorRatio.name=error-ratio-{namespace}"),
        *options,
        *("--wait", "--timeout", "3m"),
        kubeconfig=cluster.kubeconfig,
    )
    manifest = helm(
        "get", "manifest", name, "--namespace", namespace, kubeconfig=cluster.kubeconfig
    ).stdout
    sa = next(
        d["metadata"]["name"]
        for d in yaml.safe_load_all(manifest)
        if d and d["kind"] == "ServiceAccount"
    )
    return Release(name, namespace, sa, peering, manifest)


def uninstall_chart(cluster: Cluster, api_client: client.ApiClient, release: Release) -> None:
    helm(
        *("uninstall", release.name, "--namespace", release.namespace, "--wait"),
        kubeconfig=cluster.kubeconfig,
    )
    delete_namespace(api_client, release.namespace)


def service_account_kubeconfig(
    api_client: client.ApiClient, cluster: Cluster, release: Release, path: Path
) -> Path:
    """A kubeconfig that is the chart's ServiceAccount: a token from the TokenRequest API."""
    made = token_kubeconfig(
        cluster.kubeconfig, api_client, release.namespace, release.service_account, path.parent
    )
    if made != path:
        made.replace(path)
    return path


def placed(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with role metadata, a budget per colour and Service labels: what the chart's
    rights must let the operator do (patch pods, write PodDisruptionBudgets)."""
    body["spec"]["strategy"]["activeMetadata"] = {"labels": {"stage": "live"}}
    body["spec"]["strategy"]["previewMetadata"] = {"annotations": {"example.com/preview": "1"}}
    body["spec"]["podDisruptionBudget"] = {"maxUnavailable": 1}
    body["spec"]["service"] = {"port": 80, "labels": {"team": "shop"}}
    return body


def assert_placed(api_client: client.ApiClient, ns: str, active: str) -> None:
    """The `active` colour's pods are marked and it has its budget, once the operator got
    to it."""

    def marked() -> bool:
        pods = (
            client.CoreV1Api(api_client)
            .list_namespaced_pod(
                ns, label_selector=f"bluegreen.dev/app=shop,bluegreen.dev/color={active}"
            )
            .items
        )
        return bool(pods) and all((p.metadata.labels or {}).get("stage") == "live" for p in pods)

    def budget() -> bool:
        names = {
            b.metadata.name
            for b in client.PolicyV1Api(api_client).list_namespaced_pod_disruption_budget(ns).items
        }
        return f"shop-{active}" in names

    wait_for(f"{active} pods marked active", marked)
    wait_for(f"the budget of {active}", budget)
    svc = client.CoreV1Api(api_client).read_namespaced_service("shop", ns)
    assert (svc.metadata.labels or {}).get("team") == "shop"


def release_as_service_account(
    sa_kubeconfig: Path,
    api_client: client.ApiClient,
    log_dir: Path,
    prefix: str = "rbac",
    *,
    track_secrets: bool = False,
) -> dict[str, Any]:
    """An operator process with the ServiceAccount's token runs a release v1 -> v2 of an
    app in a namespace of its own, whose analysis runs a Job, and returns the app's status
    once Healthy on green; then a release v3, whose analysis window deletes v2's Job. The
    app tracks a ConfigMap (and a Secret, with `track_secrets`: the operator is run as the
    chart's configTracking.secrets runs it): each revision's copies are made, and a copy no
    revision keeps is deleted. Fails if the operator's log shows a 403, or if it posted no
    Event of its own."""
    ns = new_namespace(api_client, prefix)
    env = {"BLUEGREEN_TRACK_SECRETS": "true"} if track_secrets else {}
    op = OperatorProcess(sa_kubeconfig, log_dir, namespaces=ns, env=env)
    core = client.CoreV1Api(api_client)
    try:
        op.start()
        apps = Apps(api_client, ns)
        body = placed(app_manifest("shop"))
        body["spec"]["analysis"] = {"prePromotion": [job_check(0)]}
        track_config(core, ns, body, track_secrets)
        apps.create(body)
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
        # Pods patched (role metadata), budgets applied and deleted, Services labelled.
        assert_placed(api_client, ns, "green")
        # Jobs: applied (create, patch), watched (their end), deleted (the next window).
        (job,) = done["analysis"]["jobs"]
        batch = client.BatchV1Api(api_client)
        assert batch.read_namespaced_job(job, ns).status.succeeded == 1
        apps.set_image("shop", "registry.example/shop:v3")
        assert apps.wait_release_done("shop", 3)["phase"] == "Healthy"
        wait_for(
            f"Job {job} to be deleted",
            lambda: job not in {j.metadata.name for j in batch.list_namespaced_job(ns).items},
        )
        _check_copies(core, ns, apps.get("shop"), track_secrets)
    finally:
        delete_namespace(api_client, ns)  # while the operator runs: it removes its finalizer
        op.stop()
    log = op.log_path.read_text(errors="replace")
    assert denials(log) == [], f"refused by RBAC, in the operator's log:\n{op.tail()}"
    return done
