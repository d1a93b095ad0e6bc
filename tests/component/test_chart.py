"""The Helm chart, statically: lint, render, least-privilege RBAC, security scan.

`tests/cluster/test_chart_install.py` installs it into a real API server and proves the
RBAC is sufficient; this module proves it is also nothing more.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.adapters import cache, k8s
from bluegreen.adapters.endpoints import DEFAULT_RULES
from bluegreen.runtime.settings import Settings
from tests.support.cluster import REPO
from tests.support.tools import helm, helm_template

CHART = REPO / "charts" / "bluegreen-operator"
CHECKOV_SCRIPT = REPO / "tests" / "terraform" / "run_checkov.sh"
CHECKOV = REPO / ".cache" / "checkov-venv" / "bin" / "checkov"
NAMESPACE = "bluegreen-system"

# Every rule of the ClusterRole, as (apiGroup, resource) -> verbs. A new permission is a
# deliberate change of this table, with the call in k8s.py or kopf that needs it.
EXPECTED_RULES: dict[tuple[str, str], set[str]] = {
    ("bluegreen.dev", "bluegreenapps"): {"list", "watch", "patch"},
    ("bluegreen.dev", "bluegreenapps/status"): {"patch"},
    ("bluegreen.dev", "analysistemplates"): {"list", "watch"},
    ("bluegreen.dev", "clusteranalysistemplates"): {"list", "watch"},
    # delete: a Deployment of an earlier operator version is replaced when its colour is
    # released next (its selector cannot change), and <app>-legacy goes once none is left.
    ("apps", "deployments"): {"list", "watch", "get", "create", "patch", "delete"},
    ("", "services"): {"list", "watch", "get", "create", "patch", "delete"},
    # patch: the role metadata (strategy.activeMetadata/previewMetadata) on the pods.
    ("", "pods"): {"list", "watch", "patch"},
    ("policy", "poddisruptionbudgets"): {"list", "watch", "get", "create", "patch", "delete"},
    ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
    ("events.k8s.io", "events"): {"create"},
    ("", "events"): {"create"},
    ("monitoring.coreos.com", "servicemonitors"): {"list", "watch", "get", "create", "patch"},
    ("networking.k8s.io", "ingresses"): {"list", "watch", "get", "create", "patch", "delete"},
    ("gateway.networking.k8s.io", "httproutes"): {"list", "watch", "patch"},
    ("batch", "jobs"): {"list", "watch", "get", "create", "patch", "delete"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"list", "watch"},
    ("kopf.dev", "clusterkopfpeerings"): {"list", "watch", "patch"},
    # Config tracking: ConfigMaps watched, read, copied (immutable: never updated), deleted.
    ("", "configmaps"): {"list", "watch", "get", "create", "delete"},
}
SECRET_RULE = {("", "secrets"): {"list", "watch", "get", "create", "delete"}}
"""configTracking.secrets: the same rights on Secrets, and nothing else more."""
COPIED = {"ConfigMap", "Secret"}
"""Kinds the gateway copies (create) and deletes, never applies (no patch)."""
# A namespaced install (watchNamespaces): the same rules in a Role per namespace, without the
# cluster-scoped reads kopf makes only cluster-wide (CRDs, namespaces: its scanning is off),
# and with kopf's namespaced peering instead of the cluster-wide one.
_CLUSTER_ONLY = {
    ("bluegreen.dev", "clusteranalysistemplates"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("", "namespaces"),
    ("kopf.dev", "clusterkopfpeerings"),
}
EXPECTED_ROLE_RULES: dict[tuple[str, str], set[str]] = {
    **{k: v for k, v in EXPECTED_RULES.items() if k not in _CLUSTER_ONLY},
    ("kopf.dev", "kopfpeerings"): {"list", "watch", "patch"},
}
NAMESPACED = ("watchNamespaces={shop,blog}",)
# Verbs no rule may carry: wildcards, privilege escalation, and writes the operator never makes
# (it applies with patch; it replaces and mass-deletes nothing).
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection", "update"}


def render(*sets: str, json_sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The chart rendered with these --set values (and --set-json ones, for empty lists)."""
    if not json_sets:
        return helm_template(CHART, *sets, namespace=NAMESPACE)
    args = ["template", "bg", str(CHART), "--namespace", NAMESPACE]
    for value in sets:
        args += ["--set", value]
    for value in json_sets:
        args += ["--set-json", value]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = by_kind(docs, kind)
    return doc


def image_entrypoint() -> list[str]:
    (line,) = [
        ln for ln in (REPO / "Dockerfile").read_text().splitlines() if ln.startswith("ENTRYPOINT")
    ]
    argv: list[str] = json.loads(line.removeprefix("ENTRYPOINT"))
    return argv


# --------------------------------------------------------------------------- lint, render


def test_helm_lint_is_clean() -> None:
    out = helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "bluegreen-operator"
    pyproject = (REPO / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version is not None and chart["appVersion"] == version.group(1)


def test_default_render_has_every_object() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterKopfPeering",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ClusterAnalysisTemplate",
        ]
    )
    cluster_scoped = ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering")
    for doc in docs:
        if doc["kind"] not in (*cluster_scoped, "ClusterAnalysisTemplate"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_service_monitor_is_optional() -> None:
    sm = one(
        render(
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=monitoring",
        ),
        "ServiceMonitor",
    )
    assert sm["metadata"]["labels"]["release"] == "monitoring"
    assert sm["spec"]["endpoints"][0]["port"] == "http-metrics"
    svc = one(render(), "Service")
    assert svc["spec"]["ports"][0]["name"] == "http-metrics"
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


def test_deployment_runs_the_image_entrypoint_with_peering() -> None:
    docs = render()
    deploy = one(docs, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert "command" not in container, "the image's ENTRYPOINT runs, the chart adds arguments"
    assert container["args"][:2] == ["--all-namespaces", "--peering=bluegreen"]
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "bluegreen"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["BLUEGREEN_METRICS_PORT"]["value"] == str(ports["http-metrics"])
    assert env["BLUEGREEN_METRICS_BIND"]["value"] == "0.0.0.0"  # noqa: S104 - every address
    assert "BLUEGREEN_WATCH_NAMESPACES" not in env
    # The probes hit kopf's liveness endpoint where the image's ENTRYPOINT serves it.
    liveness = next(a for a in image_entrypoint() if a.startswith("--liveness="))
    assert liveness == f"--liveness=http://0.0.0.0:{ports['healthz']}/healthz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    # The image the release workflow publishes, at the chart's appVersion.
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container["image"] == f"ghcr.io/bluegreen-dev/bluegreen-operator:{chart['appVersion']}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"] == spec["selector"]


def test_pods_are_locked_down() -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The user is the image's own numeric user.
    (user,) = [
        ln.split()[1]
        for ln in (REPO / "Dockerfile").read_text().splitlines()
        if ln.startswith("USER ")
    ]
    assert f"{sc['runAsUser']}:{sc['runAsGroup']}" == user


def test_the_ingress_guard_allows_nothing_by_default_and_takes_lists() -> None:
    def env(*sets: str) -> dict[str, str]:
        (container,) = one(render(*sets), "Deployment")["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value") for e in container["env"]}

    default = env()
    assert default["BLUEGREEN_INGRESS_ALLOWED_CLASSES"] == ""
    assert default["BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS"] == ""
    assert default["BLUEGREEN_INGRESS_ALLOWED_HOSTS"] == "*"
    given = env(
        "ingressGuard.allowedClasses={nginx,internal}",
        "ingressGuard.allowedAnnotations={nginx.ingress.kubernetes.io/proxy-*}",
        "ingressGuard.allowedHosts={*.apps.example.com,shop.example.com}",
    )
    assert given["BLUEGREEN_INGRESS_ALLOWED_CLASSES"] == "nginx,internal"
    assert given["BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS"] == "nginx.ingress.kubernetes.io/proxy-*"
    assert given["BLUEGREEN_INGRESS_ALLOWED_HOSTS"] == "*.apps.example.com,shop.example.com"


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    deploy = one(render(f"image.digest={digest}", "image.repository=r.example/op"), "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == f"r.example/op@{digest}"
    assert not any(v.startswith("CKV_K8S_43") for v in deploy["metadata"]["annotations"].values())


def test_every_apps_service_monitor_labels_reach_the_operator() -> None:
    deploy = one(
        render("apps.serviceMonitorLabels.release=monitoring", "apps.serviceMonitorLabels.b=two"),
        "Deployment",
    )
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BLUEGREEN_SERVICE_MONITOR_LABELS"]["value"] == "b=two,release=monitoring"
    plain = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "BLUEGREEN_SERVICE_MONITOR_LABELS" not in {e["name"] for e in plain}


@pytest.mark.parametrize(
    "bad",
    [
        "apps.serviceMonitorLabels.bad key=x",
        "replicaCount=two",
        "image.pullPolicy=Sometimes",
        "image.digest=latest",
        "peering.name=Not_A_Name",
        "extraArgs={--standalone}",
        "extraArgs={--namespace=shop}",
        "unknownKey=1",
        "ingressGuard.allowedClasses={nginx\\,public}",  # one class per item
        "ingressGuard.allowedSnippets=true",
        "watchNamespaces={Shop}",
        "watchNamespaces={shop-*}",
        "watchNamespaces={shop,shop}",
        "metrics.exposure=public",
        "networkPolicy.egress.apiServer.cidrs={10.0.0.1}",
        "networkPolicy.egress.apiServer.ports=[]",
        "networkPolicy.egress.dns.to=null",
        "networkPolicy.egress.prometheus.ports={70000}",
        "networkPolicy.egress.unknown=1",
        "analysis.webAllowed[0]=a b",
        "analysis.webAllowed[0]=*.svc,*.local",
    ],
)
def test_values_schema_rejects(bad: str) -> None:
    flag = "--set-json" if bad.endswith(("]", "null")) else "--set"
    result = helm("template", "bg", str(CHART), flag, bad, check=False)
    assert result.returncode != 0, f"{bad} was accepted"


def test_terraform_values_are_accepted() -> None:
    """The values terraform/addons.tf passes to this chart."""
    docs = render(
        "serviceAccount.create=true",
        "serviceAccount.name=bluegreen-operator",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/op",
        "image.repository=1.dkr.ecr.eu-west-1.amazonaws.com/bluegreen-operator",
        "image.tag=v1",
    )
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["name"] == "bluegreen-operator"
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/op"}
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "bluegreen-operator"


# --------------------------------------------------------------------------- RBAC


def rules(docs: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    return rules_of(one(docs, "ClusterRole"))


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_rbac_has_no_secrets_no_exec_no_wildcards() -> None:
    got = rules(render())
    for (group, resource), verbs in got.items():
        assert "*" not in (group, resource) and not verbs & FORBIDDEN_VERBS, (group, resource)
        assert resource != "secrets" and not resource.startswith("secrets/")
        assert not resource.startswith("pods/"), f"{resource}: no exec, attach, log or proxy"
        assert resource not in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
        assert resource not in ("serviceaccounts", "serviceaccounts/token", "nodes")
    assert got == EXPECTED_RULES


def test_rbac_covers_every_kind_of_the_gateway_and_the_watches() -> None:
    """Each kind k8s.KubernetesGateway applies is appliable (create + patch), and each kind
    the operator watches can be listed and watched."""
    got = rules(render())

    def group_resource(path: str) -> tuple[str, str]:
        parts = path.strip("/").split("/")
        return ("" if parts[0] == "api" else parts[1]), parts[-1]

    for kind, path in k8s._PATHS.items():
        verbs = got.get(group_resource(path), set())
        # Applied objects are created first; a 409 is read to say whose the object is.
        needed = (
            {"patch"}
            if kind in ("BlueGreenApp", "HTTPRoute", "Pod")
            else {"get", "create", "patch"}
        )
        if kind in COPIED:
            needed = {"get", "create", "delete"}
            if kind == "Secret":
                continue  # only with configTracking.secrets (below)
        assert needed <= verbs, f"{kind} {group_resource(path)}: {verbs}"
    for watched in (*cache.WATCHED, cache.CLUSTER_PEERINGS):
        verbs = got.get(group_resource(watched.path()), set())
        assert {"list", "watch"} <= verbs, f"{watched.name}: {verbs}"


def test_secret_tracking_adds_the_secret_rule_and_sets_the_operator_setting() -> None:
    """configTracking.secrets: exactly the Secret rule more, cluster-wide, or in each Role
    of a namespaced install (and no ClusterRole); and BLUEGREEN_TRACK_SECRETS."""
    docs = render("configTracking.secrets=true")
    assert rules(docs) == {**EXPECTED_RULES, **SECRET_RULE}
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"name": "BLUEGREEN_TRACK_SECRETS", "value": "true"} in container["env"]
    (default,) = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert all(e["name"] != "BLUEGREEN_TRACK_SECRETS" for e in default["env"])
    namespaced = render("configTracking.secrets=true", *NAMESPACED)
    assert by_kind(namespaced, "ClusterRole") == []
    roles = by_kind(namespaced, "Role")
    assert len(roles) == 2
    for role in roles:
        assert rules_of(role) == {**EXPECTED_ROLE_RULES, **SECRET_RULE}


def test_role_binding_binds_the_role_to_the_service_account() -> None:
    docs = render()
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(docs, "ServiceAccount")["metadata"]["name"],
            "namespace": NAMESPACE,
        }
    ]


# --------------------------------------------------------------------------- namespaced


def test_namespaced_install_has_roles_and_nothing_cluster_scoped() -> None:
    docs = render(*NAMESPACED)
    kinds = sorted(d["kind"] for d in docs)
    assert not {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"} & set(kinds), kinds
    assert kinds.count("Role") == kinds.count("RoleBinding") == kinds.count("KopfPeering") == 2
    assert kinds.count("AnalysisTemplate") == 2 and "ClusterAnalysisTemplate" not in kinds
    # Everything is namespaced: nothing of the release reaches beyond the listed namespaces.
    assert all(d["metadata"].get("namespace") for d in docs), [d["kind"] for d in docs]
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    for ns in ("shop", "blog"):
        (role,) = [d for d in by_kind(docs, "Role") if d["metadata"]["namespace"] == ns]
        (binding,) = [d for d in by_kind(docs, "RoleBinding") if d["metadata"]["namespace"] == ns]
        (peering,) = [d for d in by_kind(docs, "KopfPeering") if d["metadata"]["namespace"] == ns]
        got = rules_of(role)
        assert got == EXPECTED_ROLE_RULES
        for (group, resource), verbs in got.items():
            assert "*" not in (group, resource) and not verbs & FORBIDDEN_VERBS, resource
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}
        ]
        assert peering["metadata"]["name"] == "bluegreen"
    # Role names carry the release's namespace: two releases may serve one namespace.
    assert role["metadata"]["name"] == f"{NAMESPACE}-bg-bluegreen-operator"


def test_namespaced_install_runs_kopf_and_the_operator_on_the_same_namespaces() -> None:
    (container,) = one(render(*NAMESPACED), "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=shop",
        "--namespace=blog",
    ]
    assert "--peering=bluegreen" in args
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BLUEGREEN_WATCH_NAMESPACES"] == "shop,blog"
    # The value is what the operator's settings read.
    settings = Settings(watch_namespaces=env["BLUEGREEN_WATCH_NAMESPACES"])
    assert settings.watch_namespaces == ("shop", "blog")


def test_roles_cover_every_kind_of_the_gateway_and_the_watches() -> None:
    """In a namespaced install each Role alone lets the operator apply every kind it applies
    and list and watch every kind it watches, kopf's namespaced peering included."""
    (role, _) = by_kind(render(*NAMESPACED), "Role")
    got = rules_of(role)
    for kind, path in k8s._PATHS.items():
        verbs = got.get(_group_resource(path), set())
        # Applied objects are created first; a 409 is read to say whose the object is.
        needed = (
            {"patch"}
            if kind in ("BlueGreenApp", "HTTPRoute", "Pod")
            else {"get", "create", "patch"}
        )
        if kind in COPIED:
            needed = {"get", "create", "delete"}
            if kind == "Secret":
                continue  # only with configTracking.secrets (below)
        assert needed <= verbs, f"{kind}: {verbs}"
    for watched in (*cache.WATCHED, cache.PEERINGS):
        if watched.cluster_scoped:
            # A Role cannot grant a cluster-scoped kind: the operator takes it as absent.
            assert watched.forbidden_is_absent, watched.name
            continue
        verbs = got.get(_group_resource(watched.path("shop")), set())
        assert {"list", "watch"} <= verbs, f"{watched.name}: {verbs}"


def _group_resource(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    return ("" if parts[0] == "api" else parts[1]), parts[-1]


# --------------------------------------------------------------------------- metrics


def test_metrics_on_localhost_are_not_exposed() -> None:
    docs = render("metrics.exposure=localhost")
    assert by_kind(docs, "Service") == []
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == ["healthz"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BLUEGREEN_METRICS_BIND"] == "127.0.0.1"
    assert Settings(metrics_bind=env["BLUEGREEN_METRICS_BIND"]).metrics_bind == "127.0.0.1"
    ingress = one(docs, "NetworkPolicy")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == ["healthz"]
    failed = helm(
        *("template", "bg", str(CHART)),
        *("--set", "metrics.exposure=localhost", "--set", "metrics.serviceMonitor.enabled=true"),
        check=False,
    )
    assert failed.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.exposure cluster" in failed.stderr


def notes(*sets: str) -> str:
    """The NOTES Helm prints after an install with these --set values (a client-side dry
    run: no cluster)."""
    args = ["install", "bg", str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    for value in sets:
        args += ["--set", value]
    out = helm(*args).stdout
    return out[out.index("NOTES:") :]


def test_notes_name_only_what_the_install_has() -> None:
    """Every command NOTES suggests works against what was installed: no port-forward to a
    metrics Service that localhost exposure leaves out, the namespaced peering of a
    namespaced install."""
    default = notes()
    assert "every namespace" in default
    assert "kubectl get clusterkopfpeering bluegreen" in default
    assert "port-forward svc/bg-bluegreen-operator-metrics 8080" in default

    assert "port-forward" not in notes("metrics.exposure=localhost")

    namespaced = notes(*NAMESPACED)
    assert "serves the namespaces shop, blog only" in namespaced
    assert "kubectl -n shop get kopfpeering bluegreen" in namespaced
    assert "clusterkopfpeering" not in namespaced


# --------------------------------------------------------------------------- network policy


def egress_rules(*sets: str, json_sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    policy = one(render(*sets, json_sets=json_sets), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    rules: list[dict[str, Any]] = policy["egress"]
    for rule in rules:
        # An empty peer list would allow every destination.
        assert rule.get("to"), rule
        assert rule.get("ports"), rule
    return rules


def _ports(rule: dict[str, Any]) -> list[tuple[int, str]]:
    return [(p["port"], p["protocol"]) for p in rule["ports"]]


def test_egress_defaults_dns_api_server_prometheus() -> None:
    dns, api, prometheus = egress_rules()
    assert _ports(dns) == [(53, "UDP"), (53, "TCP")]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert api["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert _ports(api) == [(443, "TCP"), (6443, "TCP")]
    assert prometheus["to"] == [{"namespaceSelector": {}}]
    assert _ports(prometheus) == [(9090, "TCP")]


def test_egress_from_values() -> None:
    extra = "networkPolicy.egress.extra[0]"
    _dns, api, prometheus, registry, web = egress_rules(
        "networkPolicy.egress.apiServer.cidrs={10.0.0.0/16,172.20.0.10/32}",
        "networkPolicy.egress.apiServer.ports={443}",
        "networkPolicy.egress.prometheus.to[0].namespaceSelector.matchLabels.name=monitoring",
        "networkPolicy.egress.prometheus.ports={9090,8080}",
        "networkPolicy.egress.registry.cidrs={52.94.0.0/22}",
        f"{extra}.to[0].namespaceSelector.matchLabels.team=shop",
        f"{extra}.ports[0].port=3000",
    )
    assert api["to"] == [
        {"ipBlock": {"cidr": "10.0.0.0/16"}},
        {"ipBlock": {"cidr": "172.20.0.10/32"}},
    ]
    assert _ports(api) == [(443, "TCP")]
    assert prometheus["to"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    assert _ports(prometheus) == [(9090, "TCP"), (8080, "TCP")]
    assert registry["to"] == [{"ipBlock": {"cidr": "52.94.0.0/22"}}]
    assert _ports(registry) == [(443, "TCP")]
    assert web == {
        "to": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}],
        "ports": [{"port": 3000}],
    }


def test_an_empty_peer_list_leaves_its_rule_out() -> None:
    """NetworkPolicy reads `to: []` as every destination: the chart never renders one."""
    (api,) = egress_rules(
        json_sets=("networkPolicy.egress.dns.to=[]", "networkPolicy.egress.prometheus.to=[]")
    )
    assert api["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


def test_egress_can_stay_open() -> None:
    policy = one(render("networkPolicy.egress.enabled=false"), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert "egress" not in policy


# --------------------------------------------------------------------------- analysis


def test_analysis_allow_lists_reach_the_operator() -> None:
    prometheus = "http://prometheus-operated.monitoring.svc:9090"
    (container,) = one(
        render(
            f"analysis.prometheusAllowed={{{prometheus}}}",
            "analysis.webAllowed={*.svc.cluster.local,shop.example}",
        ),
        "Deployment",
    )["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    settings = Settings(
        analysis_prometheus_allowed=env["BLUEGREEN_ANALYSIS_PROMETHEUS_ALLOWED"],
        analysis_web_allowed=env["BLUEGREEN_ANALYSIS_WEB_ALLOWED"],
    )
    assert settings.analysis_prometheus_allowed == (prometheus,)
    assert settings.analysis_web_allowed == ("*.svc.cluster.local", "shop.example")
    # The defaults are the operator's own.
    (default,) = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in default["env"]}
    assert env["BLUEGREEN_ANALYSIS_PROMETHEUS_ALLOWED"] == ",".join(DEFAULT_RULES)
    assert env["BLUEGREEN_ANALYSIS_WEB_ALLOWED"] == ",".join(DEFAULT_RULES)
    # An empty list allows nothing.
    (none,) = one(render(json_sets=("analysis.webAllowed=[]",)), "Deployment")["spec"]["template"][
        "spec"
    ]["containers"]
    env = {e["name"]: e.get("value") for e in none["env"]}
    assert (
        Settings(analysis_web_allowed=env["BLUEGREEN_ANALYSIS_WEB_ALLOWED"]).analysis_web_allowed
        == ()
    )


def test_every_setting_the_chart_renders_is_one_the_operator_reads() -> None:
    for sets in ((), NAMESPACED, ("metrics.exposure=localhost",)):
        (container,) = one(render(*sets), "Deployment")["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in container["env"] if e["name"].startswith("BLUEGREEN_")}
        fields = {f"BLUEGREEN_{f.upper()}" for f in Settings.model_fields}
        assert names <= fields, names - fields


# --------------------------------------------------------------------------- values


def _undocumented(values: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Keys of values.yaml without a schema entry (where the schema lists properties)."""
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    missing = []
    for key, value in values.items():
        if key not in schema["properties"]:
            missing.append(f"{path}{key}")
        else:
            missing += _undocumented(value, schema["properties"][key], f"{path}{key}.")
    return missing


def test_every_value_has_a_schema_entry_and_a_comment() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert _undocumented(values, schema, "") == []
    # The keys of the namespaced install, the metrics exposure, the egress rules and the
    # analysis allow-lists carry a comment right above them (a generated values table
    # reads them from there).
    lines = text.splitlines()
    keys = (
        "watchNamespaces", "exposure", "egress", "dns", "apiServer", "cidrs", "ports",
        "prometheus", "registry", "extra", "analysis", "prometheusAllowed", "webAllowed",
    )  # fmt: skip
    for key in keys:
        found = [i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:")]
        assert found, key
        for i in found:
            assert lines[i - 1].strip().startswith("#"), f"{key} (line {i + 1}) has no comment"


# Repository paths the chart's files name for their readers (values.yaml comments, NOTES,
# templates, README.md): relative to the repository or to the chart.
_NAMED_PATH = re.compile(r"\b(?:docs|terraform|charts|tests|crds|templates)/[\w./-]*")


def test_every_file_the_chart_points_to_exists() -> None:
    named = set()
    for path in CHART.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".tpl", ".txt", ".md", ".json"}:
            if path.parent.name in ("crds", "dashboards"):
                continue  # generated
            for found in _NAMED_PATH.findall(path.read_text()):
                named.add((path.relative_to(CHART).as_posix(), found.rstrip(".")))
    assert ("values.yaml", "templates/rbac.yaml") in named  # the scan sees the comments
    missing = sorted(
        (where, target)
        for where, target in named
        if not (REPO / target).exists() and not (CHART / target).exists()
    )
    assert missing == [], missing


# --------------------------------------------------------------------------- CRDs


@pytest.mark.parametrize(
    ("file", "kind", "scope"),
    [
        ("kopf.dev_clusterkopfpeerings.yaml", "ClusterKopfPeering", "Cluster"),
        ("kopf.dev_kopfpeerings.yaml", "KopfPeering", "Namespaced"),
    ],
)
def test_kopf_peering_crds(file: str, kind: str, scope: str) -> None:
    crd = yaml.safe_load((CHART / "crds" / file).read_text())
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.kopf.dev"
    assert (spec["group"], spec["names"]["kind"], spec["scope"]) == ("kopf.dev", kind, scope)
    (version,) = spec["versions"]
    assert version["name"] == "v1" and version["served"] and version["storage"]
    # kopf patches each peer's keep-alive into .status of the object itself (no subresource).
    assert "subresources" not in version
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    peer = status["additionalProperties"]
    assert peer["properties"]["priority"]["type"] == "integer"
    assert peer["x-kubernetes-preserve-unknown-fields"] is True


# --------------------------------------------------------------------------- checkov


def _checkov() -> Path:
    """checkov in its own virtualenv, as tests/terraform/run_checkov.sh keeps it."""
    if not CHECKOV.exists():
        subprocess.run(["bash", str(CHECKOV_SCRIPT), "--version"], check=True)
    return CHECKOV


def test_checkov_finds_nothing_in_the_rendered_chart(tmp_path: Path) -> None:
    """Rendered into a real namespace (checkov's own helm runner renders into `default`
    and then flags CKV_K8S_21 for it), with the optional parts switched on too."""
    variants = {
        "defaults": [],
        "everything": [
            "metrics.serviceMonitor.enabled=true",
            "image.digest=sha256:" + "b" * 64,
            "priorityClassName=system-cluster-critical",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
            "networkPolicy.egress.registry.cidrs={52.94.0.0/22}",
        ],
        "namespaced": [*NAMESPACED, "metrics.exposure=localhost"],
        "prometheus-credentials": [
            "image.digest=sha256:" + "c" * 64,
            "prometheusAuth.addresses[0]=https://prometheus.monitoring.svc:9090",
            "prometheusAuth.bearerToken.source=serviceAccountToken",
            "prometheusAuth.bearerToken.audience=prometheus",
            "prometheusAuth.caConfigMap.name=prometheus-ca",
            "prometheusAuth.profiles[0].addresses[0]=https://mimir.monitoring.svc:8080",
            "prometheusAuth.profiles[0].headers.X-Scope-OrgID=shop",
        ],
    }
    for name, sets in variants.items():
        out = tmp_path / name
        out.mkdir()
        args = ["template", "bg", str(CHART), "--namespace", NAMESPACE, "--output-dir", str(out)]
        for s in sets:
            args += ["--set", s]
        helm(*args)
    result = subprocess.run(
        [
            str(_checkov()),
            *("-d", str(tmp_path), "--framework", "kubernetes"),
            *("--skip-download", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=600,
    )
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert failed == [], failed
    assert result.returncode == 0
    skipped = {
        (c["check_id"], c["check_result"].get("suppress_comment", ""))
        for c in results["skipped_checks"]
    }
    for check_id, reason in sorted(skipped):
        assert len(reason) > 20, f"{check_id} is skipped without a reason"
        print(f"checkov skip {check_id}: {reason}")
    # Only the documented skips, and the digest and pull-policy ones only while no digest
    # is set (the published chart sets it).
    assert {c for c, _ in skipped} == {"CKV_K8S_38", "CKV_K8S_43", "CKV_K8S_15"}
    undigested = [n for n, sets in variants.items() if not any("digest" in s for s in sets)]
    for digest_only in ("CKV_K8S_43", "CKV_K8S_15"):
        counted = sum(1 for c in results["skipped_checks"] if c["check_id"] == digest_only)
        assert counted == len(undigested), digest_only
    assert report["summary"]["passed"] > 150
