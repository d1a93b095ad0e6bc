"""A namespaced install in the real API server: the chart with `watchNamespaces: [a, b]`.

- `helm install` puts a Role, a RoleBinding and a KopfPeering into each listed namespace
  and nothing cluster-scoped of the release: no ClusterRole, no ClusterRoleBinding.
- With a token of the chart's ServiceAccount (the TokenRequest API), `kubectl auth can-i`
  says no to Deployments in a namespace that is not listed (the release's own included) and
  to every cluster-wide list, and a real attempt to create a Deployment there gets a 403.
- The operator runs as a process with the chart Deployment's own arguments and environment
  (kopf's `--namespace` for each listed namespace, BLUEGREEN_WATCH_NAMESPACES, the peering,
  the metrics bound to localhost) and that token. It releases an app v1 -> v2 in a listed
  namespace: Healthy, the active Service on the new colour, whose EndpointSlices hold only
  the new revision's ready pods. An app in an unlisted namespace is never touched, the
  operator's log has no 403, and /metrics answers on loopback only.
- Config tracking with the chart's Role: a ConfigMap change releases an app in a listed
  namespace; with `configTracking.secrets=true` (a second install) the Role lets the
  operator read, copy and delete Secrets in the listed namespaces only, a tracked Secret is
  copied and its change released too. No 403 in either operator's log.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.support.apps import Apps, app_manifest
from tests.support.chart import assert_placed, placed, track_config
from tests.support.cluster import REPO, Cluster
from tests.support.operator import OperatorProcess
from tests.support.process import LOOPBACK, connects, other_address
from tests.support.rbac import can_i, denials, token_kubeconfig
from tests.support.tools import helm
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

CHART = REPO / "charts" / "bluegreen-operator"
LOGS = REPO / ".cache" / "test-logs"
NAME = "bluegreen-operator"


@dataclass(frozen=True)
class Install:
    namespace: str  # the release's own, not served
    listed: tuple[str, str]
    unlisted: str
    docs: list[dict[str, Any]]
    kubeconfig: Path  # the chart's ServiceAccount


def _create_namespace(api_client: client.ApiClient, prefix: str) -> str:
    # Not the session's prefix: the session's operator must never act in these namespaces.
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


@contextmanager
def _installed(
    cluster: Cluster, api_client: client.ApiClient, tmp: Path, *values: str
) -> Iterator[Install]:
    """The chart, namespaced (two listed namespaces), with `values` (`--set` pairs)."""
    release_ns = _create_namespace(api_client, "nsop")
    listed = (_create_namespace(api_client, "nsa"), _create_namespace(api_client, "nsb"))
    unlisted = _create_namespace(api_client, "nsc")
    helm(
        *("install", NAME, str(CHART), "--namespace", release_ns),
        *("--set", f"watchNamespaces={{{listed[0]},{listed[1]}}}"),
        *("--set", "metrics.exposure=localhost"),
        *("--set", "image.repository=registry.example/bluegreen-operator"),
        *(arg for value in values for arg in ("--set", value)),
        *("--set", "image.tag=test", "--wait", "--timeout", "3m"),
        kubeconfig=cluster.kubeconfig,
    )
    manifest = helm(
        "get", "manifest", NAME, "--namespace", release_ns, kubeconfig=cluster.kubeconfig
    ).stdout
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    kubeconfig = token_kubeconfig(cluster.kubeconfig, api_client, release_ns, sa, tmp)
    try:
        yield Install(release_ns, listed, unlisted, docs, kubeconfig)
    finally:
        helm("uninstall", NAME, "--namespace", release_ns, "--wait", kubeconfig=cluster.kubeconfig)
        for ns in (release_ns, *listed, unlisted):
            client.CoreV1Api(api_client).delete_namespace(ns, propagation_policy="Background")


@pytest.fixture(scope="module")
def install(
    cluster: Cluster, api_client: client.ApiClient, crd: None, tmp_path_factory: Any
) -> Iterator[Install]:
    with _installed(cluster, api_client, Path(tmp_path_factory.mktemp("ns-sa"))) as installed:
        yield installed


@pytest.fixture(scope="module")
def secrets_install(
    cluster: Cluster, api_client: client.ApiClient, crd: None, tmp_path_factory: Any
) -> Iterator[Install]:
    """A second namespaced install, whose administrator allows tracking Secrets."""
    tmp = Path(tmp_path_factory.mktemp("ns-sa-secrets"))
    with _installed(cluster, api_client, tmp, "configTracking.secrets=true") as installed:
        yield installed


def test_the_release_holds_roles_in_the_listed_namespaces_only(
    install: Install, api_client: client.ApiClient
) -> None:
    kinds = sorted(d["kind"] for d in install.docs)
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds, kinds
    assert "ClusterKopfPeering" not in kinds, kinds
    rbac = client.RbacAuthorizationV1Api(api_client)
    instance = f"app.kubernetes.io/instance={NAME}"
    # The API server holds them: each listed namespace has its Role, binding and peering.
    for ns in install.listed:
        (role,) = rbac.list_namespaced_role(ns, label_selector=instance).items
        (binding,) = rbac.list_namespaced_role_binding(ns, label_selector=instance).items
        assert binding.role_ref.name == role.metadata.name
        assert [(s.kind, s.namespace) for s in binding.subjects] == [
            ("ServiceAccount", install.namespace)
        ]
        client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "kopf.dev", "v1", ns, "kopfpeerings", "bluegreen"
        )
        # The chart's error-ratio check, as an AnalysisTemplate where the apps are.
        client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "bluegreen.dev", "v1alpha1", ns, "analysistemplates", "error-ratio"
        )
    for ns in (install.unlisted, install.namespace):
        assert rbac.list_namespaced_role(ns, label_selector=instance).items == []
    ours = f"{install.namespace}-{NAME}"
    assert not [r for r in rbac.list_cluster_role().items if r.metadata.name == ours]
    assert not [b for b in rbac.list_cluster_role_binding().items if b.metadata.name == ours]


def test_the_service_account_cannot_touch_an_unlisted_namespace(
    install: Install, api_client: client.ApiClient
) -> None:
    sa = install.kubeconfig
    a, b = install.listed
    denied = [
        ("create", "deployments.apps", "-n", install.unlisted),
        ("patch", "deployments.apps", "-n", install.unlisted),
        ("patch", "services", "-n", install.unlisted),
        ("list", "bluegreenapps.bluegreen.dev", "-n", install.unlisted),
        ("create", "deployments.apps", "-n", install.namespace),
        ("list", "deployments.apps", "--all-namespaces"),
        ("watch", "pods", "--all-namespaces"),
        ("list", "bluegreenapps.bluegreen.dev", "--all-namespaces"),
        ("list", "namespaces"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
        ("list", "clusteranalysistemplates.bluegreen.dev"),
        ("list", "analysistemplates.bluegreen.dev", "-n", install.unlisted),
        ("get", "secrets", "-n", a),
        ("create", "pods", "--subresource=exec", "-n", a),
        ("delete", "deployments.apps", "-n", install.unlisted),
    ]
    allowed = [
        ("create", "deployments.apps", "-n", a),
        ("patch", "deployments.apps", "-n", b),
        ("watch", "pods", "-n", b),
        ("patch", "bluegreenapps.bluegreen.dev", "--subresource=status", "-n", a),
        ("list", "endpointslices.discovery.k8s.io", "-n", b),
        ("patch", "kopfpeerings.kopf.dev", "-n", a),
        ("watch", "analysistemplates.bluegreen.dev", "-n", b),
        # An upgrade replaces a Deployment whose selector predates bluegreen.dev/app.
        ("delete", "deployments.apps", "-n", a),
    ]
    for args in denied:
        assert not can_i(sa, *args), f"the operator can {' '.join(args)}"
    for args in allowed:
        assert can_i(sa, *args), f"the operator cannot {' '.join(args)}"

    # A real attempt, as the ServiceAccount: the API server refuses it.
    as_operator = config.new_client_from_config(config_file=str(sa))
    deployment = {
        "metadata": {"name": "intruder"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "intruder"}},
            "template": {
                "metadata": {"labels": {"app": "intruder"}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
            },
        },
    }
    with pytest.raises(ApiException) as refused:
        client.AppsV1Api(as_operator).create_namespaced_deployment(install.unlisted, deployment)
    assert refused.value.status == 403, refused.value
    assert client.AppsV1Api(api_client).list_namespaced_deployment(install.unlisted).items == []


def _degraded(apps: Apps, name: str) -> dict[str, Any] | None:
    conditions = apps.status(name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Degraded" and c["status"] == "True"), None)


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return dict(container)


@contextmanager
def _run_as_chart(install: Install) -> Iterator[OperatorProcess]:
    """The operator as the chart's Deployment runs it: its arguments and environment, the
    ServiceAccount's token. Only the ports change (tests share the machine) and POD_ID (the
    downward API's pod name) is set by hand."""
    container = _container(install.docs)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    del env["BLUEGREEN_METRICS_PORT"]  # a free port instead
    env["POD_ID"] = f"nsop-{uuid.uuid4().hex[:6]}"
    op = OperatorProcess(
        install.kubeconfig,
        LOGS,
        namespaces="",  # the chart's own --namespace flags
        env=env,
        kopf_args=tuple(container["args"]),
        log_name=f"operator-{install.namespace}.log",
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def operator_as_chart(install: Install) -> Iterator[OperatorProcess]:
    with _run_as_chart(install) as op:
        yield op


def test_the_operator_releases_in_a_listed_namespace_only(
    install: Install, operator_as_chart: OperatorProcess, api_client: client.ApiClient
) -> None:
    op = operator_as_chart
    args = _container(install.docs)["args"]
    assert "--all-namespaces" not in args
    assert {f"--namespace={ns}" for ns in install.listed} <= set(args)

    # An app in the unlisted namespace: a cluster-wide operator would deploy it.
    outside = Apps(api_client, install.unlisted)
    outside.create(app_manifest("shop"))
    apps = Apps(api_client, install.listed[0])
    apps.create(placed(app_manifest("shop")))
    other = Apps(api_client, install.listed[1])
    other.create(app_manifest("blog", replicas=1))
    # A Service of the name an app would own, made by hand: left alone, and the app says
    # whose it is (the operator reads it to know: its Role lets it read what it applies).
    client.CoreV1Api(api_client).create_namespaced_service(
        install.listed[1],
        {
            "metadata": {"name": "taken", "labels": {"team": "web"}},
            "spec": {"selector": {"app": "taken"}, "ports": [{"port": 80}]},
        },
    )
    other.create(app_manifest("taken", replicas=1))
    first = apps.wait_phase("shop", "Healthy")
    other.wait_phase("blog", "Healthy")
    conflict = wait_for("the app to name the Service's owner", lambda: _degraded(other, "taken"))
    assert conflict["reason"] == "ObjectConflict", conflict
    assert "Service taken exists and is not this app's" in conflict["message"], conflict
    apps.set_image("shop", "registry.example/shop:v2")
    done = apps.wait_release_done("shop", 2)
    assert done["phase"] == "Healthy"
    assert done["activeColor"] == "green"
    assert done["stableRevision"] != first["stableRevision"]

    # The new revision serves: the active Service selects green, and its EndpointSlices hold
    # the ready pods of green, every one of them running v2.
    ns = install.listed[0]
    core, discovery = client.CoreV1Api(api_client), client.DiscoveryV1Api(api_client)
    active = core.read_namespaced_service("shop", ns)
    assert active.spec.selector["bluegreen.dev/color"] == "green"

    def serving() -> set[str] | None:
        slices = discovery.list_namespaced_endpoint_slice(
            ns, label_selector="kubernetes.io/service-name=shop"
        ).items
        ready = {
            e.target_ref.name
            for s in slices
            for e in s.endpoints or []
            if e.conditions and e.conditions.ready
        }
        return ready if ready and all(p.startswith("shop-green-") for p in ready) else None

    pods = wait_for("the active Service to route to green only", serving)
    for name in pods:
        pod = core.read_namespaced_pod(name, ns)
        assert pod.spec.containers[0].image == "registry.example/shop:v2"
        assert pod.metadata.labels["bluegreen.dev/revision"] == done["stableRevision"]

    # Nothing happened outside (the app there was created before the others): no status,
    # no Deployment, no Service.
    assert outside.status("shop") == {}
    assert client.AppsV1Api(api_client).list_namespaced_deployment(install.unlisted).items == []
    assert core.list_namespaced_service(install.unlisted).items == []

    assert_placed(api_client, ns, "green")

    log = op.log_path.read_text(errors="replace")
    assert denials(log) == [], f"refused by RBAC, in the operator's log:\n{op.tail()}"

    # metrics.exposure=localhost: /metrics answers on loopback, not on the pod's address.
    url = f"http://{LOOPBACK}:{op.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert f'namespace="{ns}"' in resp.read().decode()
    other_ip = other_address()
    print(f"\n/metrics on {LOOPBACK}:{op.metrics_port}; another address: {other_ip}")
    if other_ip is not None:
        assert not connects(other_ip, op.metrics_port)


def _config_release(api_client: client.ApiClient, ns: str, *, secrets: bool) -> dict[str, Any]:
    """An app that tracks a ConfigMap (and a Secret) is released, then released again by a
    change of the ConfigMap (and then of the Secret): each revision's pods reference that
    revision's copies. Returns the last status."""
    core = client.CoreV1Api(api_client)
    apps = Apps(api_client, ns)
    body = app_manifest("conf", replicas=1)
    track_config(core, ns, body, secrets)
    apps.create(body)
    rev = apps.wait_phase("conf", "Healthy")["stableRevision"]
    changes = [lambda: core.patch_namespaced_config_map("settings", ns, {"data": {"a": "2"}})]
    if secrets:
        changes.append(lambda: core.patch_namespaced_secret("creds", ns, {"data": {"b": "Mw=="}}))
    done: dict[str, Any] = {}
    for n, change in enumerate(changes, start=2):
        change()
        done = apps.wait_release_done("conf", n)
        assert done["phase"] == "Healthy" and done["stableRevision"] != rev, done
        rev = done["stableRevision"]
        dep = api_client.sanitize_for_serialization(
            client.AppsV1Api(api_client).read_namespaced_deployment(
                f"conf-{done['activeColor']}", ns
            )
        )
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        refs = [next(iter(e.values()))["name"] for e in container["envFrom"]]
        assert refs == [f"settings-{rev}", *([f"creds-{rev}"] if secrets else [])], refs
        copy = core.read_namespaced_config_map(f"settings-{rev}", ns)
        assert copy.immutable is True and copy.data == {"a": "2"}
        if secrets:
            secret = core.read_namespaced_secret(f"creds-{rev}", ns)
            assert secret.immutable is True
            assert secret.data == core.read_namespaced_secret("creds", ns).data
    return done


def test_a_configmap_change_releases_with_the_chart_role(
    install: Install, operator_as_chart: OperatorProcess, api_client: client.ApiClient
) -> None:
    done = _config_release(api_client, install.listed[1], secrets=False)
    tracked = next(c for c in done["conditions"] if c["type"] == "ConfigTracked")
    assert tracked["status"] == "True", tracked
    log = operator_as_chart.log_path.read_text(errors="replace")
    assert denials(log) == [], (
        f"refused by RBAC, in the operator's log:\n{operator_as_chart.tail()}"
    )


def test_with_secret_tracking_the_role_copies_secrets_in_the_listed_namespaces_only(
    secrets_install: Install, api_client: client.ApiClient
) -> None:
    env = _container(secrets_install.docs)["env"]
    assert {"name": "BLUEGREEN_TRACK_SECRETS", "value": "true"} in env
    sa = secrets_install.kubeconfig
    a, b = secrets_install.listed
    for ns in (a, b):
        for verb in ("get", "list", "watch", "create", "delete"):
            assert can_i(sa, verb, "secrets", "-n", ns), f"{verb} secrets -n {ns}"
        for verb in ("update", "patch"):
            assert not can_i(sa, verb, "secrets", "-n", ns), f"{verb} secrets -n {ns}"
    for ns in (secrets_install.unlisted, secrets_install.namespace):
        assert not can_i(sa, "get", "secrets", "-n", ns), f"get secrets -n {ns}"
    assert not can_i(sa, "list", "secrets", "--all-namespaces")

    with _run_as_chart(secrets_install) as op:
        done = _config_release(api_client, a, secrets=True)
        tracked = next(c for c in done["conditions"] if c["type"] == "ConfigTracked")
        assert tracked["status"] == "True", tracked
        log = op.log_path.read_text(errors="replace")
        assert denials(log) == [], f"refused by RBAC, in the operator's log:\n{op.tail()}"
