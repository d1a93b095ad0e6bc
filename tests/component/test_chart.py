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
    ("apps", "deployments"): {"list", "watch", "create", "patch"},
    ("", "services"): {"list", "watch", "create", "patch"},
    ("", "pods"): {"list", "watch"},
    ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
    ("events.k8s.io", "events"): {"create"},
    ("", "events"): {"create"},
    ("monitoring.coreos.com", "servicemonitors"): {"list", "watch", "create", "patch"},
    ("networking.k8s.io", "ingresses"): {"list", "watch", "create", "patch", "delete"},
    ("gateway.networking.k8s.io", "httproutes"): {"list", "watch", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"list", "watch"},
    ("kopf.dev", "clusterkopfpeerings"): {"list", "watch", "patch"},
}
# Verbs no rule may carry: wildcards, privilege escalation, and writes the operator never makes
# (it applies with patch; it replaces and mass-deletes nothing).
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection", "update"}


def render(*sets: str) -> list[dict[str, Any]]:
    return helm_template(CHART, *sets, namespace=NAMESPACE)


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
        ]
    )
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"):
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
    assert container["args"][0] == "--peering=bluegreen"
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "bluegreen"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["BLUEGREEN_METRICS_PORT"]["value"] == str(ports["http-metrics"])
    # The probes hit kopf's liveness endpoint where the image's ENTRYPOINT serves it.
    liveness = next(a for a in image_entrypoint() if a.startswith("--liveness="))
    assert liveness == f"--liveness=http://0.0.0.0:{ports['healthz']}/healthz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["image"] == "bluegreen-operator:0.1.0"
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


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=two",
        "image.pullPolicy=Sometimes",
        "image.digest=latest",
        "peering.name=Not_A_Name",
        "extraArgs={--standalone}",
        "unknownKey=1",
        "ingressGuard.allowedClasses={nginx\\,public}",  # one class per item
        "ingressGuard.allowedSnippets=true",
    ],
)
def test_values_schema_rejects(bad: str) -> None:
    result = helm("template", "bg", str(CHART), "--set", bad, check=False)
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
    out: dict[tuple[str, str], set[str]] = {}
    for rule in one(docs, "ClusterRole")["rules"]:
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
        needed = {"patch"} if kind in ("BlueGreenApp", "HTTPRoute") else {"create", "patch"}
        assert needed <= verbs, f"{kind} {group_resource(path)}: {verbs}"
    for watched in (*cache.WATCHED, cache.CLUSTER_PEERINGS):
        verbs = got.get(group_resource(watched.path()), set())
        assert {"list", "watch"} <= verbs, f"{watched.name}: {verbs}"


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
    # Only the two documented skips, and the digest one only while no digest is set.
    assert {c for c, _ in skipped} == {"CKV_K8S_38", "CKV_K8S_43"}
    assert sum(1 for c in results["skipped_checks"] if c["check_id"] == "CKV_K8S_43") == 1
    assert report["summary"]["passed"] > 150
