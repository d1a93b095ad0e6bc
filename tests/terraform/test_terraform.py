"""Offline checks of terraform/: the AWS platform (VPC, EKS, ECR, IRSA, add-ons).

Nothing here talks to AWS or downloads providers. The files are parsed with python-hcl2 and
the resource graph is asserted on the parsed structure. Where a value has to be *computed*
(variable validations, the subnet plan, the ECR lifecycle policy) the locally built OpenTofu
evaluates the expressions: a configuration made of `variables.tf` alone needs no provider.
checkov runs through tests/terraform/run_checkov.sh.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
HERE = Path(__file__).resolve().parent
TOFU = REPO / ".cache" / "bin" / "tofu" / "tofu"

# A reference to a managed resource inside an expression, e.g. `aws_subnet.public[*].id`.
# Data sources (`data.x.y`) are excluded by the look-behind.
RESOURCE_REF = re.compile(r"(?<![\w.])((?:aws|helm|kubernetes)_[a-z0-9_]+)\.([a-z0-9_]+)\b")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([a-z0-9_]+)\b")

NETWORK_TYPES = {
    "aws_vpc",
    "aws_subnet",
    "aws_internet_gateway",
    "aws_eip",
    "aws_nat_gateway",
    "aws_route_table",
    "aws_route",
    "aws_route_table_association",
}
# Network resources a load balancer sits in or routes through; the ingress controller's
# release must name every one of them in depends_on. (The VPC follows from the subnets.)
LB_NETWORK_TYPES = NETWORK_TYPES - {"aws_vpc"}


# --- Parsing ------------------------------------------------------------------------------


def _parse(path: Path) -> dict[str, Any]:
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh, serialization_options=options)


def _expr(value: Any) -> str:
    """An attribute as expression text: `${aws_vpc.this.id}` -> `aws_vpc.this.id`."""
    text = value if isinstance(value, str) else json.dumps(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@dataclass
class Config:
    files: dict[str, dict[str, Any]]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    modules: list[Any] = field(default_factory=list)

    def resource(self, address: str) -> dict[str, Any]:
        assert address in self.resources, f"{address} is not in terraform/"
        return self.resources[address]

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {a: b for a, b in self.resources.items() if a.split(".")[0] == rtype}

    def references(self, address: str) -> set[str]:
        """Resources one resource refers to directly: expressions, locals, depends_on, and
        (for Helm and Kubernetes resources) its provider's configuration."""
        body = self.resources[address]
        text = list(_strings(body))
        seen_locals: set[str] = set()
        pending = [m for s in text for m in LOCAL_REF.findall(s)]
        while pending:
            name = pending.pop()
            if name in seen_locals or name not in self.locals:
                continue
            seen_locals.add(name)
            local_text = list(_strings(self.locals[name]))
            text += local_text
            pending += [m for s in local_text for m in LOCAL_REF.findall(s)]
        rtype = address.split(".", maxsplit=1)[0]
        provider = rtype.split("_")[0]
        if provider in {"helm", "kubernetes"} and provider in self.providers:
            text += list(_strings(self.providers[provider]))
        refs = {f"{t}.{n}" for s in text for t, n in RESOURCE_REF.findall(s)}
        return {r for r in refs if r in self.resources and r != address}

    def dependencies(self, address: str) -> set[str]:
        """Everything a resource depends on, transitively: what destroy removes after it."""
        result: set[str] = set()
        stack = [address]
        while stack:
            for ref in self.references(stack.pop()):
                if ref not in result:
                    result.add(ref)
                    stack.append(ref)
        return result


@cache
def load_config() -> Config:
    tf_files = sorted(TF_DIR.glob("*.tf"))
    assert tf_files, f"no .tf files in {TF_DIR}"
    config = Config(files={p.name: _parse(p) for p in tf_files})
    for name, doc in config.files.items():
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for rname, body in named.items():
                    address = f"{rtype}.{rname}"
                    assert address not in config.resources, f"{address} twice ({name})"
                    config.resources[address] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for dname, body in named.items():
                    config.data[f"{dtype}.{dname}"] = body
        for block in doc.get("variable", []):
            config.variables.update(block)
        for block in doc.get("output", []):
            config.outputs.update(block)
        for block in doc.get("provider", []):
            config.providers.update(block)
        for block in doc.get("locals", []):
            for key in block:
                assert key not in config.locals, f"local.{key} twice"
            config.locals.update(block)
        config.terraform += doc.get("terraform", [])
        config.modules += doc.get("module", [])
    return config


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config()


def _depends_on(body: dict[str, Any]) -> set[str]:
    return {_expr(d) for d in body.get("depends_on", [])}


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements = doc.get("statement", [])
    return statements if isinstance(statements, list) else [statements]


# --- Files, versions, backend -------------------------------------------------------------


def test_every_file_parses_and_the_layout_is_complete(cfg: Config) -> None:
    expected = {
        "versions.tf",
        "providers.tf",
        "variables.tf",
        "main.tf",
        "network.tf",
        "iam.tf",
        "eks.tf",
        "irsa.tf",
        "ecr.tf",
        "addons.tf",
        "outputs.tf",
    }
    assert expected <= set(cfg.files), f"missing: {expected - set(cfg.files)}"
    for example in ("backend.tf.example", "backend.hcl.example", "terraform.tfvars.example"):
        assert _parse(TF_DIR / example), f"{example} is empty"
    assert len(cfg.resources) >= 40


def test_versions_pin_terraform_and_the_three_hashicorp_providers(cfg: Config) -> None:
    (terraform,) = cfg.terraform
    assert terraform["required_version"].replace(" ", "") in {">=1.10", ">=1.10.0"}
    (required,) = terraform["required_providers"]
    assert set(required) == {"aws", "helm", "kubernetes"}
    for name, spec in required.items():
        assert spec["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r"~>\s*\d+\.\d+", spec["version"]), f"{name}: {spec['version']}"
    assert set(cfg.providers) == {"aws", "helm", "kubernetes"}


def test_no_modules_and_no_backend_in_the_configuration(cfg: Config) -> None:
    # Community modules cannot be fetched here; a backend in a .tf file would make every
    # offline `init` need AWS.
    assert cfg.modules == []
    for terraform in cfg.terraform:
        assert "backend" not in terraform


def test_backend_example_is_s3_with_native_locking() -> None:
    (terraform,) = _parse(TF_DIR / "backend.tf.example")["terraform"]
    (backend,) = terraform["backend"]
    s3 = backend["s3"]
    assert s3["use_lockfile"] is True
    assert s3["encrypt"] is True
    assert "dynamodb_table" not in s3  # the lock file replaces the DynamoDB table
    partial = _parse(TF_DIR / "backend.hcl.example")
    assert {"bucket", "key", "region"} <= set(partial)
    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    assert "terraform init -backend-config=backend.hcl" in readme
    assert "use_lockfile = true" in readme or "`use_lockfile = true`" in readme


# --- Tags ---------------------------------------------------------------------------------


def test_default_tags_on_the_aws_provider(cfg: Config) -> None:
    (default_tags,) = cfg.providers["aws"]["default_tags"]
    assert _expr(default_tags["tags"]) == "local.tags"
    tags = _expr(cfg.locals["tags"])
    assert tags.startswith("merge(var.tags,")
    for key in ("Project", "ManagedBy", "Cluster"):
        assert re.search(rf"\b{key}\s*=", tags), f"{key} is not a default tag"
    # What the node group launches is not reached by default_tags: the launch template tags it.
    specs = cfg.resource("aws_launch_template.node")["tag_specifications"]
    assert {s["resource_type"] for s in specs} == {"instance", "volume"}
    assert all("local.tags" in _expr(s["tags"]) for s in specs)
    # Nor is the load balancer created by ingress-nginx: it gets the tags as an annotation.
    values = " ".join(cfg.resource("helm_release.ingress_nginx")["values"])
    assert "aws-load-balancer-additional-resource-tags" in values
    assert "local.load_balancer_tags" in values
    assert "local.tags" in _expr(cfg.locals["load_balancer_tags"])


# --- The seed's resources, or better ------------------------------------------------------


def test_every_resource_of_the_seed_has_an_equivalent(cfg: Config) -> None:
    # `terraform state list` of the hand-built platform, 17 resources, mapped to ours.
    seed = {
        "aws_vpc.main": "aws_vpc.this",
        "aws_subnet.public": "aws_subnet.public",
        "aws_internet_gateway.main": "aws_internet_gateway.this",
        "aws_route_table.public": "aws_route_table.public",
        "aws_route_table_association.public": "aws_route_table_association.public",
        "aws_eks_cluster.main": "aws_eks_cluster.this",
        "aws_eks_node_group.main": "aws_eks_node_group.this",
        "aws_iam_role.eks_cluster": "aws_iam_role.cluster",
        "aws_iam_role.eks_nodes": "aws_iam_role.node",
        "aws_ecr_repository.app": "aws_ecr_repository.this",
        "aws_ecr_lifecycle_policy.app": "aws_ecr_lifecycle_policy.this",
    }
    for theirs, ours in seed.items():
        assert ours in cfg.resources, f"seed {theirs} has no equivalent ({ours})"

    # The seed's four policy attachments; ECR read-only became the narrower pull-only.
    attached = {
        (_expr(b["role"]), _expr(b["policy_arn"]).rsplit("/", 1)[-1])
        for b in cfg.of_type("aws_iam_role_policy_attachment").values()
    }
    for role, policy in [
        ("aws_iam_role.cluster.name", "AmazonEKSClusterPolicy"),
        ("aws_iam_role.node.name", "AmazonEKSWorkerNodePolicy"),
        ("aws_iam_role.node.name", "AmazonEKS_CNI_Policy"),
        ("aws_iam_role.node.name", "AmazonEC2ContainerRegistryPullOnly"),
    ]:
        assert (role, policy) in attached, f"{policy} is not attached to {role}"

    # And what the seed lacked: private subnets behind NAT, IRSA.
    for address in (
        "aws_subnet.private",
        "aws_nat_gateway.this",
        "aws_eip.nat",
        "aws_route_table.private",
        "aws_route.private_nat",
        "aws_route_table_association.private",
        "aws_iam_openid_connect_provider.eks",
        "aws_iam_role.operator",
    ):
        assert address in cfg.resources, address


# --- Network ------------------------------------------------------------------------------


def test_subnets_one_per_zone_in_at_least_two_zones(cfg: Config) -> None:
    for kind in ("public", "private"):
        subnet = cfg.resource(f"aws_subnet.{kind}")
        assert _expr(subnet["count"]) == "length(local.azs)"
        assert _expr(subnet["availability_zone"]) == "local.azs[count.index]"
        assert _expr(subnet["vpc_id"]) == "aws_vpc.this.id"
        assert _expr(subnet["cidr_block"]) == f"local.{kind}_subnet_cidrs[count.index]"
    assert _expr(cfg.locals["azs"]) == "var.availability_zones"
    zones = cfg.variables["availability_zones"]
    assert len(set(zones["default"])) >= 2
    conditions = [v["condition"] for v in zones["validation"]]
    assert any("length(var.availability_zones) >= 2" in c for c in conditions)


def test_subnet_tags_for_load_balancer_discovery(cfg: Config) -> None:
    public = cfg.resource("aws_subnet.public")
    private = cfg.resource("aws_subnet.private")
    assert public["tags"]["kubernetes.io/role/elb"] == "1"
    assert "kubernetes.io/role/internal-elb" not in public["tags"]
    assert private["tags"]["kubernetes.io/role/internal-elb"] == "1"
    assert "kubernetes.io/role/elb" not in private["tags"]
    assert public["map_public_ip_on_launch"] is False


def test_routes_internet_gateway_and_nat(cfg: Config) -> None:
    assert _expr(cfg.resource("aws_internet_gateway.this")["vpc_id"]) == "aws_vpc.this.id"

    public_route = cfg.resource("aws_route.public_internet")
    assert public_route["destination_cidr_block"] == "0.0.0.0/0"
    assert _expr(public_route["gateway_id"]) == "aws_internet_gateway.this.id"
    assert _expr(public_route["route_table_id"]) == "aws_route_table.public.id"

    nat = cfg.resource("aws_nat_gateway.this")
    assert "aws_subnet.public[" in _expr(nat["subnet_id"])  # NAT lives in a public subnet
    assert "aws_eip.nat[" in _expr(nat["allocation_id"])
    assert cfg.resource("aws_eip.nat")["domain"] == "vpc"

    private_route = cfg.resource("aws_route.private_nat")
    assert private_route["destination_cidr_block"] == "0.0.0.0/0"
    assert "aws_nat_gateway.this[" in _expr(private_route["nat_gateway_id"])
    assert "gateway_id" not in private_route  # private subnets never route to the IGW

    for kind in ("public", "private"):
        assoc = cfg.resource(f"aws_route_table_association.{kind}")
        assert f"aws_subnet.{kind}[" in _expr(assoc["subnet_id"])
        assert f"aws_route_table.{kind}" in _expr(assoc["route_table_id"])


def test_vpc_hardening(cfg: Config) -> None:
    vpc = cfg.resource("aws_vpc.this")
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True
    default_sg = cfg.resource("aws_default_security_group.this")
    assert "ingress" not in default_sg
    assert "egress" not in default_sg
    flow = cfg.resource("aws_flow_log.this")
    assert flow["traffic_type"] == "ALL"
    assert _expr(flow["vpc_id"]) == "aws_vpc.this.id"


# --- EKS ----------------------------------------------------------------------------------


def test_eks_cluster(cfg: Config) -> None:
    cluster = cfg.resource("aws_eks_cluster.this")
    assert _expr(cluster["version"]) == "var.cluster_version"
    assert _expr(cluster["role_arn"]) == "aws_iam_role.cluster.arn"
    assert set(cluster["enabled_cluster_log_types"]) == {
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    }
    (vpc_config,) = cluster["vpc_config"]
    assert _expr(vpc_config["subnet_ids"]) == "aws_subnet.private[*].id"
    assert vpc_config["endpoint_private_access"] is True
    assert _expr(vpc_config["public_access_cidrs"]) == "var.cluster_endpoint_public_access_cidrs"
    (encryption,) = cluster["encryption_config"]
    assert encryption["resources"] == ["secrets"]
    assert _depends_on(cluster) >= {
        "aws_iam_role_policy_attachment.cluster_policy",
        "aws_cloudwatch_log_group.cluster",
    }


def test_node_group_sizes_and_types_come_from_variables(cfg: Config) -> None:
    group = cfg.resource("aws_eks_node_group.this")
    assert _expr(group["cluster_name"]) == "aws_eks_cluster.this.name"
    assert _expr(group["node_role_arn"]) == "aws_iam_role.node.arn"
    assert _expr(group["subnet_ids"]) == "aws_subnet.private[*].id"
    assert _expr(group["instance_types"]) == "var.node_instance_types"
    (scaling,) = group["scaling_config"]
    assert {k: _expr(v) for k, v in scaling.items()} == {
        "min_size": "var.node_min_size",
        "max_size": "var.node_max_size",
        "desired_size": "var.node_desired_size",
    }
    # Nodes start only once their policies are attached.
    assert _depends_on(group) >= {
        "aws_iam_role_policy_attachment.node_worker_policy",
        "aws_iam_role_policy_attachment.node_cni_policy",
        "aws_iam_role_policy_attachment.node_ecr_pull",
    }
    (metadata,) = cfg.resource("aws_launch_template.node")["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1


def test_iam_roles_trust_the_right_services(cfg: Config) -> None:
    def trusted(document: str) -> set[str]:
        (statement,) = _statements(cfg.data[document])
        assert statement["actions"] == ["sts:AssumeRole"]
        return {i for p in statement["principals"] for i in p["identifiers"]}

    cluster_role = cfg.resource("aws_iam_role.cluster")
    node_role = cfg.resource("aws_iam_role.node")
    assert (
        _expr(cluster_role["assume_role_policy"])
        == "data.aws_iam_policy_document.cluster_assume.json"
    )
    assert _expr(node_role["assume_role_policy"]) == "data.aws_iam_policy_document.node_assume.json"
    assert trusted("aws_iam_policy_document.cluster_assume") == {"eks.amazonaws.com"}
    assert trusted("aws_iam_policy_document.node_assume") == {"ec2.amazonaws.com"}


def test_oidc_provider_for_irsa(cfg: Config) -> None:
    oidc = cfg.resource("aws_iam_openid_connect_provider.eks")
    assert _expr(oidc["url"]) == "aws_eks_cluster.this.identity[0].oidc[0].issuer"
    assert oidc["client_id_list"] == ["sts.amazonaws.com"]


# --- ECR ----------------------------------------------------------------------------------


def test_ecr_repositories_immutable_scanned_encrypted(cfg: Config) -> None:
    repos = cfg.of_type("aws_ecr_repository")
    assert repos, "no ECR repository"
    for address, repo in repos.items():
        assert repo["image_tag_mutability"] == "IMMUTABLE", address
        (scanning,) = repo["image_scanning_configuration"]
        assert scanning["scan_on_push"] is True, address
        (encryption,) = repo["encryption_configuration"]
        assert encryption["encryption_type"] == "KMS", address
    # One repository for the operator image, one for the demo app.
    repo = cfg.resource("aws_ecr_repository.this")
    assert _expr(repo["for_each"]) == "local.ecr_repositories"
    assert set(cfg.locals["ecr_repositories"]) == {"operator", "app"}


def test_every_ecr_repository_has_a_lifecycle_policy(cfg: Config) -> None:
    policies = cfg.of_type("aws_ecr_lifecycle_policy")
    covered = {_expr(p.get("for_each", "")) for p in policies.values()}
    covered |= {_expr(p["repository"]).rsplit(".", 1)[0] for p in policies.values()}
    for address in cfg.of_type("aws_ecr_repository"):
        assert address in covered, f"{address} has no lifecycle policy"
    policy = _expr(cfg.resource("aws_ecr_lifecycle_policy.this")["policy"])
    assert policy.startswith("jsonencode(")
    assert '"untagged"' in policy
    assert '"imageCountMoreThan"' in policy


# --- The operator's IAM role (IRSA) -------------------------------------------------------


def test_operator_role_trusts_only_the_operator_service_account(cfg: Config) -> None:
    role = cfg.resource("aws_iam_role.operator")
    assert _expr(role["assume_role_policy"]) == "data.aws_iam_policy_document.operator_assume.json"
    (statement,) = _statements(cfg.data["aws_iam_policy_document.operator_assume"])
    assert statement.get("effect", "Allow") == "Allow"
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    (principal,) = statement["principals"]
    assert principal["type"] == "Federated"
    assert principal["identifiers"] == ["${aws_iam_openid_connect_provider.eks.arn}"]
    conditions = {c["variable"]: c for c in statement["condition"]}
    assert set(conditions) == {"${local.oidc_issuer}:sub", "${local.oidc_issuer}:aud"}
    sub = conditions["${local.oidc_issuer}:sub"]
    assert sub["test"] == "StringEquals"  # not StringLike: no wildcards
    assert sub["values"] == [
        "system:serviceaccount:${var.operator_namespace}:${var.operator_service_account}"
    ]
    aud = conditions["${local.oidc_issuer}:aud"]
    assert (aud["test"], aud["values"]) == ("StringEquals", ["sts.amazonaws.com"])
    assert "aws_eks_cluster.this.identity[0].oidc[0].issuer" in cfg.locals["oidc_issuer"]


def test_operator_policy_is_exactly_read_only_ecr_on_our_repositories(cfg: Config) -> None:
    (statement,) = _statements(cfg.data["aws_iam_policy_document.operator_ecr_read"])
    assert statement.get("effect", "Allow") == "Allow"
    assert sorted(statement["actions"]) == [
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:DescribeRepositories",
    ]
    assert "not_actions" not in statement
    resources = _expr(statement["resources"])
    assert "*" not in resources
    assert "aws_ecr_repository.this" in resources

    # Nothing else reaches the operator role: one attachment, of that policy, no inline ones.
    attachments = [
        b
        for b in cfg.of_type("aws_iam_role_policy_attachment").values()
        if _expr(b["role"]).startswith("aws_iam_role.operator.")
    ]
    assert [_expr(a["policy_arn"]) for a in attachments] == ["aws_iam_policy.operator_ecr_read.arn"]
    assert _expr(cfg.resource("aws_iam_policy.operator_ecr_read")["policy"]) == (
        "data.aws_iam_policy_document.operator_ecr_read.json"
    )
    for body in cfg.of_type("aws_iam_role_policy").values():
        assert not _expr(body["role"]).startswith("aws_iam_role.operator.")
    assert cfg.resource("aws_iam_role.operator").get("managed_policy_arns") is None


# --- Helm releases and the destroy ordering -----------------------------------------------


def test_helm_releases(cfg: Config) -> None:
    releases = cfg.of_type("helm_release")
    assert set(releases) == {
        "helm_release.ingress_nginx",
        "helm_release.kube_prometheus_stack",
        "helm_release.operator",
    }
    ingress = releases["helm_release.ingress_nginx"]
    assert (ingress["repository"], ingress["chart"]) == (
        "https://kubernetes.github.io/ingress-nginx",
        "ingress-nginx",
    )
    assert "aws-load-balancer-type" in " ".join(ingress["values"])
    stack = releases["helm_release.kube_prometheus_stack"]
    assert (stack["repository"], stack["chart"]) == (
        "https://prometheus-community.github.io/helm-charts",
        "kube-prometheus-stack",
    )
    # The operator's defaults: Prometheus at prometheus-operated.monitoring.svc, and
    # ServiceMonitors labelled release=monitoring.
    assert stack["name"] == "monitoring"
    assert _expr(cfg.variables["monitoring_namespace"]["default"]) == "monitoring"
    for release in (ingress, stack):
        assert _expr(release["version"]).startswith("var."), "remote charts are pinned"


def test_operator_release_gets_the_irsa_role_on_its_service_account(cfg: Config) -> None:
    operator = cfg.resource("helm_release.operator")
    assert operator["chart"].endswith("../charts/bluegreen-operator")
    assert "repository" not in operator  # a local chart, by path
    settings = {s["name"]: _expr(s["value"]) for s in operator["set"]}
    assert settings[r"serviceAccount.annotations.eks\.amazonaws\.com/role-arn"] == (
        "aws_iam_role.operator.arn"
    )
    # The ServiceAccount the chart creates is the one the role trusts.
    assert settings["serviceAccount.name"] == "var.operator_service_account"
    assert _expr(operator["namespace"]) == "kubernetes_namespace_v1.operator.metadata[0].name"
    (namespace,) = cfg.resource("kubernetes_namespace_v1.operator")["metadata"]
    assert _expr(namespace["name"]) == "var.operator_namespace"
    assert settings["image.repository"] == 'aws_ecr_repository.this["operator"].repository_url'


def test_ingress_release_is_destroyed_before_the_nodes_and_the_network(cfg: Config) -> None:
    ingress = cfg.resource("helm_release.ingress_nginx")
    depends = _depends_on(ingress)
    assert "aws_eks_node_group.this" in depends
    network = {a for a in cfg.resources if a.split(".")[0] in LB_NETWORK_TYPES}
    assert {a.split(".")[0] for a in network} == LB_NETWORK_TYPES
    missing = network - depends
    assert not missing, f"helm_release.ingress_nginx must depend_on {sorted(missing)}"
    # The uninstall waits for the Service, whose finalizer waits for the AWS load balancer.
    assert ingress["wait"] is True


def test_other_releases_depend_on_the_node_group(cfg: Config) -> None:
    for address in ("helm_release.kube_prometheus_stack", "helm_release.operator"):
        assert "aws_eks_node_group.this" in _depends_on(cfg.resource(address)), address
    # The operator goes first on destroy, while Prometheus and the ingress class still exist.
    assert _depends_on(cfg.resource("helm_release.operator")) >= {
        "helm_release.kube_prometheus_stack",
        "helm_release.ingress_nginx",
    }


def test_reference_graph_orders_every_kubernetes_object_before_cluster_and_network(
    cfg: Config,
) -> None:
    # Whatever lives in the cluster must (transitively) depend on the cluster, the nodes and
    # the whole network, so destroy removes it first. This follows references, depends_on,
    # locals and the providers' configuration, the way Terraform builds its graph.
    network = {a for a in cfg.resources if a.split(".")[0] in NETWORK_TYPES}
    in_cluster = [a for a in cfg.resources if a.split(".")[0].startswith(("helm_", "kubernetes_"))]
    assert len(in_cluster) >= 6
    for address in in_cluster:
        deps = cfg.dependencies(address)
        assert {"aws_eks_cluster.this", "aws_eks_node_group.this"} <= deps, address
        assert network <= deps, f"{address} misses {sorted(network - deps)}"
    # And the graph has no cycle through the ingress release.
    assert "helm_release.ingress_nginx" not in cfg.dependencies("helm_release.ingress_nginx")


# --- Variables ----------------------------------------------------------------------------


def test_every_variable_is_typed_documented_and_validated(cfg: Config) -> None:
    # Booleans cannot hold a wrong value; everything else must be validated.
    for name, var in cfg.variables.items():
        assert var.get("description"), f"var.{name} has no description"
        assert "type" in var, f"var.{name} has no type"
        if _expr(var["type"]) == "bool":
            continue
        assert var.get("validation"), f"var.{name} has no validation block"
        for rule in var["validation"]:
            assert f"var.{name}" in rule["condition"], f"var.{name}: rule ignores the value"
            assert rule["error_message"].strip()


def test_the_important_validations_say_what_they_should(cfg: Config) -> None:
    def conditions(name: str) -> str:
        return " ".join(rule["condition"] for rule in cfg.variables[name]["validation"])

    assert "regex(" in conditions("region")
    assert r"^1\\.3[0-9]$" in conditions("cluster_version") or r"^1\.3[0-9]$" in conditions(
        "cluster_version"
    )
    assert "cidrhost(var.vpc_cidr" in conditions("vpc_cidr")
    assert "length(var.availability_zones) >= 2" in conditions("availability_zones")
    desired = conditions("node_desired_size")
    assert "var.node_desired_size >= var.node_min_size" in desired
    assert "var.node_desired_size <= var.node_max_size" in desired
    assert "var.node_max_size >= var.node_min_size" in conditions("node_max_size")
    assert '"0.0.0.0/0"' in conditions("cluster_endpoint_public_access_cidrs")
    assert "default" not in cfg.variables["cluster_endpoint_public_access_cidrs"]
    assert cfg.variables["grafana_admin_password"]["sensitive"] is True


# --- Outputs and README -------------------------------------------------------------------


def test_outputs(cfg: Config) -> None:
    outputs = {name: _expr(body["value"]) for name, body in cfg.outputs.items()}
    assert outputs["cluster_name"] == "aws_eks_cluster.this.name"
    assert outputs["cluster_endpoint"] == "aws_eks_cluster.this.endpoint"
    assert outputs["operator_role_arn"] == "aws_iam_role.operator.arn"
    kubeconfig = outputs["kubeconfig_command"]
    assert kubeconfig.startswith("aws eks update-kubeconfig --region ${var.region} --name ")
    assert "aws_eks_cluster.this.name" in kubeconfig
    assert "aws_ecr_repository.this" in outputs["ecr_repository_urls"]
    assert "repository_url" in outputs["ecr_repository_urls"]
    for body in cfg.outputs.values():
        assert body.get("description")


def test_readme_explains_apply_destroy_backend_files_and_ordering() -> None:
    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    for needle in (
        "terraform apply",
        "terraform destroy",
        "backend.tf.example",
        "-backend-config",
        "Destroy ordering",
        "depends_on",
        "GetAuthorizationToken",
    ):
        assert needle in readme, needle
    for tf_file in sorted(TF_DIR.glob("*.tf")):
        assert f"`{tf_file.name}`" in readme, f"README does not describe {tf_file.name}"


# --- Formatting ---------------------------------------------------------------------------


def _hcl_files() -> list[Path]:
    return sorted([*TF_DIR.glob("*.tf"), *TF_DIR.glob("*.example")])


def test_basic_hcl_style() -> None:
    # Runs everywhere, with or without tofu: what `fmt` would never leave behind.
    for path in _hcl_files():
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path.name}: end of file"
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path.name}:{number}"
            assert "\t" not in line, f"{where}: tab"
            assert line == line.rstrip(), f"{where}: trailing whitespace"
            indent = len(line) - len(line.lstrip(" "))
            assert indent % 2 == 0, f"{where}: odd indentation"


def _tofu_env(tmp: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    if tmp is not None:
        env["TF_DATA_DIR"] = str(tmp / ".tofu-data")
    return env


needs_tofu = pytest.mark.skipif(
    not TOFU.is_file(),
    reason=f"{TOFU} not built; run tests/terraform/build_tofu.sh",
)


@needs_tofu
def test_tofu_fmt_check() -> None:
    result = subprocess.run(
        [str(TOFU), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TF_DIR)],
        capture_output=True,
        text=True,
        env=_tofu_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # fmt skips *.example; feed them through stdin.
    for path in sorted(TF_DIR.glob("*.example")):
        result = subprocess.run(
            [str(TOFU), "fmt", "-check", "-"],
            input=path.read_text(encoding="utf-8"),
            capture_output=True,
            text=True,
            env=_tofu_env(),
            check=False,
        )
        assert result.returncode == 0, f"{path.name} is not formatted"


# --- Evaluating variables and expressions with tofu (no providers needed) -----------------

REQUIRED_VARS = {
    "cluster_endpoint_public_access_cidrs": '["203.0.113.7/32"]',
    "grafana_admin_password": "a-long-enough-test-password",
}


def _variables_only_module(tmp: Path) -> Path:
    module = tmp / "module"
    module.mkdir()
    shutil.copy(TF_DIR / "variables.tf", module / "variables.tf")
    return module


def _var_args(overrides: dict[str, str]) -> list[str]:
    values = {**REQUIRED_VARS, **overrides}
    return [arg for k, v in values.items() for arg in ("-var", f"{k}={v}")]


def _tofu_plan(tmp: Path, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    module = _variables_only_module(tmp)
    return subprocess.run(
        [str(TOFU), "plan", "-input=false", "-no-color", "-lock=false", *_var_args(overrides)],
        cwd=module,
        capture_output=True,
        text=True,
        env=_tofu_env(tmp),
        check=False,
        timeout=120,
    )


def _tofu_eval(tmp: Path, expression: str, overrides: dict[str, str]) -> Any:
    module = _variables_only_module(tmp)
    result = subprocess.run(
        [str(TOFU), "console", *_var_args(overrides)],
        cwd=module,
        input=f"jsonencode({expression})\n",
        capture_output=True,
        text=True,
        env=_tofu_env(tmp),
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stderr, result.stderr
    # The console prints the JSON text as an HCL string literal (JSON-compatible quoting).
    return json.loads(json.loads(result.stdout.strip()))


@needs_tofu
def test_defaults_pass_every_validation(tmp_path: Path) -> None:
    result = _tofu_plan(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr


@needs_tofu
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "useast1"}, "AWS region name"),
        ({"region": "US-EAST-1"}, "AWS region name"),
        ({"cluster_version": "1.29"}, "1.3x"),
        ({"cluster_version": "1.35.2"}, "1.3x"),
        ({"cluster_version": "latest"}, "1.3x"),
        ({"vpc_cidr": "10.0.0.0/33"}, "valid IPv4 CIDR"),
        ({"vpc_cidr": "not-a-cidr"}, "valid IPv4 CIDR"),
        ({"vpc_cidr": "10.0.0.0/8"}, "between /16 and /19"),
        ({"vpc_cidr": "10.0.0.0/24"}, "between /16 and /19"),
        ({"vpc_cidr": "10.40.1.0/16"}, "no host bits"),
        ({"availability_zones": '["us-east-1a"]'}, "between 2 and 6"),
        ({"availability_zones": '["us-east-1a","us-east-1a"]'}, "must not repeat"),
        ({"availability_zones": '["us-east-1a","eu-west-1b"]'}, "in var.region"),
        ({"node_min_size": "3", "node_desired_size": "2"}, "node_min_size <= node_desired_size"),
        ({"node_max_size": "3", "node_desired_size": "4"}, "node_min_size <= node_desired_size"),
        (
            {"node_min_size": "5", "node_max_size": "4", "node_desired_size": "4"},
            "at least node_min_size",
        ),
        ({"node_min_size": "0"}, "node_min_size must be"),
        ({"node_desired_size": "2.5", "node_max_size": "4"}, "whole number"),
        ({"node_instance_types": "[]"}, "between 1 and 20"),
        ({"node_instance_types": '["large"]'}, "t3.large"),
        ({"cluster_endpoint_public_access_cidrs": '["0.0.0.0/0"]'}, "0.0.0.0/0 would open"),
        ({"cluster_endpoint_public_access_cidrs": "[]"}, "at least one CIDR"),
        ({"cluster_name": "Blue_Green"}, "cluster name"),
        ({"grafana_admin_password": "short"}, "at least 16 characters"),
        ({"operator_namespace": "Bad_NS"}, "DNS-1123"),
        ({"operator_repository_name": "Bad Repo"}, "ECR repository names"),
        ({"ingress_nginx_chart_version": "latest"}, "exact chart version"),
        ({"flow_log_retention_days": "30"}, "at least a year"),
    ],
)
def test_validations_reject_bad_values(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    result = _tofu_plan(tmp_path, overrides)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, f"{overrides} was accepted"
    assert "Invalid value for variable" in output
    assert message in output, output


@needs_tofu
@pytest.mark.parametrize("vpc_cidr", ["10.40.0.0/16", "172.20.0.0/17", "192.168.0.0/19"])
@pytest.mark.parametrize("zones", [2, 3, 6])
def test_subnet_plan_fits_the_vpc_without_overlap(
    cfg: Config, tmp_path: Path, vpc_cidr: str, zones: int
) -> None:
    # The real expressions of main.tf, evaluated by tofu.
    az_list = [f"us-east-1{letter}" for letter in "abcdef"[:zones]]
    exprs = {
        kind: _expr(cfg.locals[f"{kind}_subnet_cidrs"]).replace(
            "local.azs", "var.availability_zones"
        )
        for kind in ("public", "private")
    }
    plan = _tofu_eval(
        tmp_path,
        "{" + ", ".join(f"{k} = {v}" for k, v in exprs.items()) + "}",
        {"vpc_cidr": vpc_cidr, "availability_zones": json.dumps(az_list)},
    )
    vpc = ipaddress.IPv4Network(vpc_cidr)
    subnets = [ipaddress.IPv4Network(c) for kind in ("public", "private") for c in plan[kind]]
    assert len(plan["public"]) == len(plan["private"]) == zones
    for i, a in enumerate(subnets):
        assert a.subnet_of(vpc), f"{a} outside {vpc}"
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b), f"{a} overlaps {b}"
    # Pods take VPC addresses: private subnets are the big ones. A public subnet still has
    # room for a load balancer's and a NAT gateway's interfaces (/27 at least).
    assert all(ipaddress.ip_network(c).num_addresses >= 1024 for c in plan["private"])
    assert all(ipaddress.ip_network(c).prefixlen <= 27 for c in plan["public"])


@needs_tofu
def test_ecr_lifecycle_policy_evaluates_to_valid_rules(cfg: Config, tmp_path: Path) -> None:
    policy_expr = _expr(cfg.resource("aws_ecr_lifecycle_policy.this")["policy"])
    policy = json.loads(_tofu_eval(tmp_path, policy_expr, {}))
    rules = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    assert [r["rulePriority"] for r in rules] == list(range(1, len(rules) + 1))
    by_status = {r["selection"]["tagStatus"]: r for r in rules}
    assert by_status["untagged"]["selection"]["countType"] == "sinceImagePushed"
    assert by_status["untagged"]["selection"]["countNumber"] == 14
    assert by_status["any"]["selection"]["countType"] == "imageCountMoreThan"
    assert by_status["any"]["selection"]["countNumber"] == 100
    # ECR requires the tagStatus "any" rule to have the lowest priority (highest number).
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert all(r["action"] == {"type": "expire"} for r in rules)


# --- checkov ------------------------------------------------------------------------------


def test_checkov_skips_are_inline_and_explained() -> None:
    skip = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    found = 0
    for path in sorted(TF_DIR.glob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = skip.search(line)
            if match is None:
                continue
            found += 1
            check, reason = match.group(1), (match.group(2) or "").strip()
            assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{path.name}:{number}: {check}"
            assert len(reason) >= 40, f"{path.name}:{number}: skip of {check} needs a real reason"
    assert found <= 6, "more skipped checks than reviewed; fix the configuration instead"


def test_checkov_reports_no_failed_check() -> None:
    result = subprocess.run(
        [str(HERE / "run_checkov.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = re.search(
        r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output
    )
    assert summary, output
    passed, failed, _skipped = map(int, summary.groups())
    assert failed == 0, output
    assert passed >= 100, output  # the scan really looked at the configuration
