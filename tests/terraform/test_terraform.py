"""Offline checks of terraform/: the AWS platform (VPC, EKS, ECR, IRSA, add-ons).

Nothing here talks to AWS or downloads providers: see tfconfig.py for how the configuration is
parsed and how OpenTofu evaluates what needs computing. The traffic layer (AWS Load Balancer
Controller, Gateway API, ingress-nginx) has its own file, test_traffic.py. checkov runs
through tests/terraform/run_checkov.sh.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.promauth import amp_region, select
from bluegreen.runtime.operator import prometheus_profiles
from bluegreen.runtime.settings import Settings
from tests.terraform.tfconfig import (
    HERE,
    NETWORK_TYPES,
    OPERATOR_CHART,
    REPO,
    TF_DIR,
    TOFU,
    Config,
    depends_on,
    expr,
    hcl,
    helm_template,
    load_config,
    needs_helm,
    needs_tofu,
    parse,
    statements,
    tofu_env,
    tofu_eval,
    tofu_plan,
    trust_statement,
)


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config()


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
        "traffic.tf",
        "outputs.tf",
    }
    assert expected <= set(cfg.files), f"missing: {expected - set(cfg.files)}"
    for example in ("backend.tf.example", "backend.hcl.example", "terraform.tfvars.example"):
        assert parse(TF_DIR / example), f"{example} is empty"
    assert len(cfg.resources) >= 40


def test_versions_pin_terraform_and_the_hashicorp_providers(cfg: Config) -> None:
    (terraform,) = cfg.terraform
    assert terraform["required_version"].replace(" ", "") in {">=1.10", ">=1.10.0"}
    (required,) = terraform["required_providers"]
    # http downloads the Gateway API CRDs (traffic.tf); it needs no provider block.
    assert set(required) == {"aws", "helm", "kubernetes", "http"}
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
    (terraform,) = parse(TF_DIR / "backend.tf.example")["terraform"]
    (backend,) = terraform["backend"]
    s3 = backend["s3"]
    assert s3["use_lockfile"] is True
    assert s3["encrypt"] is True
    assert "dynamodb_table" not in s3  # the lock file replaces the DynamoDB table
    partial = parse(TF_DIR / "backend.hcl.example")
    assert {"bucket", "key", "region"} <= set(partial)
    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    assert "terraform init -backend-config=backend.hcl" in readme
    assert "use_lockfile = true" in readme or "`use_lockfile = true`" in readme


# --- Tags ---------------------------------------------------------------------------------


def test_default_tags_on_the_aws_provider(cfg: Config) -> None:
    (default_tags,) = cfg.providers["aws"]["default_tags"]
    assert expr(default_tags["tags"]) == "local.tags"
    tags = expr(cfg.locals["tags"])
    assert tags.startswith("merge(var.tags,")
    for key in ("Project", "ManagedBy", "Cluster"):
        assert re.search(rf"\b{key}\s*=", tags), f"{key} is not a default tag"
    # What the node group launches is not reached by default_tags: the launch template tags it.
    specs = cfg.resource("aws_launch_template.node")["tag_specifications"]
    assert {s["resource_type"] for s in specs} == {"instance", "volume"}
    assert all("local.tags" in expr(s["tags"]) for s in specs)
    # Nor are the load balancers, target groups and security groups the AWS Load Balancer
    # Controller creates: it puts the same tags on them (its defaultTags).
    lbc_values = cfg.locals["aws_load_balancer_controller_values"]
    assert expr(lbc_values["defaultTags"]) == "local.tags"
    assert "local.aws_load_balancer_controller_values" in " ".join(
        cfg.resource("helm_release.aws_load_balancer_controller")["values"]
    )


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
        (expr(b["role"]), expr(b["policy_arn"]).rsplit("/", 1)[-1])
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
        assert expr(subnet["count"]) == "length(local.azs)"
        assert expr(subnet["availability_zone"]) == "local.azs[count.index]"
        assert expr(subnet["vpc_id"]) == "aws_vpc.this.id"
        assert expr(subnet["cidr_block"]) == f"local.{kind}_subnet_cidrs[count.index]"
    assert expr(cfg.locals["azs"]) == "var.availability_zones"
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
    assert expr(cfg.resource("aws_internet_gateway.this")["vpc_id"]) == "aws_vpc.this.id"

    public_route = cfg.resource("aws_route.public_internet")
    assert public_route["destination_cidr_block"] == "0.0.0.0/0"
    assert expr(public_route["gateway_id"]) == "aws_internet_gateway.this.id"
    assert expr(public_route["route_table_id"]) == "aws_route_table.public.id"

    nat = cfg.resource("aws_nat_gateway.this")
    assert "aws_subnet.public[" in expr(nat["subnet_id"])  # NAT lives in a public subnet
    assert "aws_eip.nat[" in expr(nat["allocation_id"])
    assert cfg.resource("aws_eip.nat")["domain"] == "vpc"

    private_route = cfg.resource("aws_route.private_nat")
    assert private_route["destination_cidr_block"] == "0.0.0.0/0"
    assert "aws_nat_gateway.this[" in expr(private_route["nat_gateway_id"])
    assert "gateway_id" not in private_route  # private subnets never route to the IGW

    for kind in ("public", "private"):
        assoc = cfg.resource(f"aws_route_table_association.{kind}")
        assert f"aws_subnet.{kind}[" in expr(assoc["subnet_id"])
        assert f"aws_route_table.{kind}" in expr(assoc["route_table_id"])


def test_vpc_hardening(cfg: Config) -> None:
    vpc = cfg.resource("aws_vpc.this")
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True
    default_sg = cfg.resource("aws_default_security_group.this")
    assert "ingress" not in default_sg
    assert "egress" not in default_sg
    flow = cfg.resource("aws_flow_log.this")
    assert flow["traffic_type"] == "ALL"
    assert expr(flow["vpc_id"]) == "aws_vpc.this.id"


# --- EKS ----------------------------------------------------------------------------------


def test_eks_cluster(cfg: Config) -> None:
    cluster = cfg.resource("aws_eks_cluster.this")
    assert expr(cluster["version"]) == "var.cluster_version"
    assert expr(cluster["role_arn"]) == "aws_iam_role.cluster.arn"
    assert set(cluster["enabled_cluster_log_types"]) == {
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    }
    (vpc_config,) = cluster["vpc_config"]
    assert expr(vpc_config["subnet_ids"]) == "aws_subnet.private[*].id"
    assert vpc_config["endpoint_private_access"] is True
    assert expr(vpc_config["public_access_cidrs"]) == "var.cluster_endpoint_public_access_cidrs"
    (encryption,) = cluster["encryption_config"]
    assert encryption["resources"] == ["secrets"]
    assert depends_on(cluster) >= {
        "aws_iam_role_policy_attachment.cluster_policy",
        "aws_cloudwatch_log_group.cluster",
    }


def test_node_group_sizes_and_types_come_from_variables(cfg: Config) -> None:
    group = cfg.resource("aws_eks_node_group.this")
    assert expr(group["cluster_name"]) == "aws_eks_cluster.this.name"
    assert expr(group["node_role_arn"]) == "aws_iam_role.node.arn"
    assert expr(group["subnet_ids"]) == "aws_subnet.private[*].id"
    assert expr(group["instance_types"]) == "var.node_instance_types"
    (scaling,) = group["scaling_config"]
    assert {k: expr(v) for k, v in scaling.items()} == {
        "min_size": "var.node_min_size",
        "max_size": "var.node_max_size",
        "desired_size": "var.node_desired_size",
    }
    # Nodes start only once their policies are attached.
    assert depends_on(group) >= {
        "aws_iam_role_policy_attachment.node_worker_policy",
        "aws_iam_role_policy_attachment.node_cni_policy",
        "aws_iam_role_policy_attachment.node_ecr_pull",
    }
    (metadata,) = cfg.resource("aws_launch_template.node")["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1


@needs_tofu
def test_vpc_cni_add_on_enforces_network_policies(cfg: Config, tmp_path: Path) -> None:
    # Without it the operator chart's NetworkPolicy is accepted and ignored on EKS.
    cni = cfg.resource("aws_eks_addon.vpc_cni")
    assert cni["addon_name"] == "vpc-cni"
    # configuration_values is JSON text; tofu evaluates the jsonencode() to it.
    configuration = json.loads(tofu_eval(tmp_path, expr(cni["configuration_values"]), {}))
    # A string: the add-on's configuration schema takes "true"/"false", not a JSON boolean.
    assert configuration == {"enableNetworkPolicy": "true"}
    # Nodes (and so every pod) start only once the add-on, with the setting, is there.
    assert "aws_eks_addon.vpc_cni" in depends_on(cfg.resource("aws_eks_node_group.this"))


def test_iam_roles_trust_the_right_services(cfg: Config) -> None:
    def trusted(document: str) -> set[str]:
        (statement,) = statements(cfg.data[document])
        assert statement["actions"] == ["sts:AssumeRole"]
        return {i for p in statement["principals"] for i in p["identifiers"]}

    cluster_role = cfg.resource("aws_iam_role.cluster")
    node_role = cfg.resource("aws_iam_role.node")
    assert (
        expr(cluster_role["assume_role_policy"])
        == "data.aws_iam_policy_document.cluster_assume.json"
    )
    assert expr(node_role["assume_role_policy"]) == "data.aws_iam_policy_document.node_assume.json"
    assert trusted("aws_iam_policy_document.cluster_assume") == {"eks.amazonaws.com"}
    assert trusted("aws_iam_policy_document.node_assume") == {"ec2.amazonaws.com"}


def test_oidc_provider_for_irsa(cfg: Config) -> None:
    oidc = cfg.resource("aws_iam_openid_connect_provider.eks")
    assert expr(oidc["url"]) == "aws_eks_cluster.this.identity[0].oidc[0].issuer"
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
    assert expr(repo["for_each"]) == "local.ecr_repositories"
    assert set(cfg.locals["ecr_repositories"]) == {"operator", "app"}


def test_every_ecr_repository_has_a_lifecycle_policy(cfg: Config) -> None:
    policies = cfg.of_type("aws_ecr_lifecycle_policy")
    covered = {expr(p.get("for_each", "")) for p in policies.values()}
    covered |= {expr(p["repository"]).rsplit(".", 1)[0] for p in policies.values()}
    for address in cfg.of_type("aws_ecr_repository"):
        assert address in covered, f"{address} has no lifecycle policy"
    policy = expr(cfg.resource("aws_ecr_lifecycle_policy.this")["policy"])
    assert policy.startswith("jsonencode(")
    assert '"untagged"' in policy
    assert '"imageCountMoreThan"' in policy


# --- The operator's IAM role (IRSA) -------------------------------------------------------


def test_operator_role_trusts_only_the_operator_service_account(cfg: Config) -> None:
    statement = trust_statement(cfg, "aws_iam_role.operator")
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
    (statement,) = statements(cfg.data["aws_iam_policy_document.operator_ecr_read"])
    assert statement.get("effect", "Allow") == "Allow"
    assert sorted(statement["actions"]) == [
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:DescribeRepositories",
    ]
    assert "not_actions" not in statement
    resources = expr(statement["resources"])
    assert "*" not in resources
    assert "aws_ecr_repository.this" in resources

    # Nothing else reaches the operator role: the ECR policy always, the Amazon Managed
    # Prometheus query and CloudWatch read policies only when asked for (count), no inline
    # policies.
    attachments = {
        expr(b["policy_arn"]): b
        for b in cfg.of_type("aws_iam_role_policy_attachment").values()
        if expr(b["role"]).startswith("aws_iam_role.operator.")
    }
    assert set(attachments) == {
        "aws_iam_policy.operator_ecr_read.arn",
        "aws_iam_policy.operator_amp_query[0].arn",
        "aws_iam_policy.operator_cloudwatch_read[0].arn",
    }
    assert "count" not in attachments["aws_iam_policy.operator_ecr_read.arn"]
    assert expr(cfg.resource("aws_iam_policy.operator_ecr_read")["policy"]) == (
        "data.aws_iam_policy_document.operator_ecr_read.json"
    )
    for body in cfg.of_type("aws_iam_role_policy").values():
        assert not expr(body["role"]).startswith("aws_iam_role.operator.")
    assert cfg.resource("aws_iam_role.operator").get("managed_policy_arns") is None


AMP_WORKSPACE = (
    "arn:aws:aps:us-east-1:123456789012:workspace/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)


@needs_tofu
def test_operator_amp_query_is_off_by_default_and_one_workspace_when_set(
    cfg: Config, tmp_path: Path
) -> None:
    # SigV4 queries to Amazon Managed Prometheus: aps:QueryMetrics on exactly the workspace
    # the variable names, and nothing at all without it.
    assert cfg.variables["operator_amp_workspace_arn"]["default"] is None
    document = cfg.data["aws_iam_policy_document.operator_amp_query"]
    (statement,) = statements(document)
    assert statement.get("effect", "Allow") == "Allow"
    assert statement["actions"] == ["aps:QueryMetrics"]
    assert statement["resources"] == ["${var.operator_amp_workspace_arn}"]
    assert "not_actions" not in statement and "not_resources" not in statement

    conditional = {
        "data.aws_iam_policy_document.operator_amp_query": document,
        "aws_iam_policy.operator_amp_query": cfg.resource("aws_iam_policy.operator_amp_query"),
        "aws_iam_role_policy_attachment.operator_amp_query": cfg.resource(
            "aws_iam_role_policy_attachment.operator_amp_query"
        ),
    }
    counts = "{" + ", ".join(f'"{a}" = {expr(b["count"])}' for a, b in conditional.items()) + "}"
    assert set(tofu_eval(tmp_path, counts, {}).values()) == {0}
    enabled = tofu_eval(tmp_path, counts, {"operator_amp_workspace_arn": AMP_WORKSPACE})
    assert set(enabled.values()) == {1}
    attachment = conditional["aws_iam_role_policy_attachment.operator_amp_query"]
    assert expr(attachment["role"]) == "aws_iam_role.operator.name"

    # The workspace's query endpoint, for spec.analysis.prometheus.address.
    assert expr(cfg.outputs["amp_prometheus_address"]["value"]) == "local.operator_amp_address"
    address = expr(cfg.locals["operator_amp_address"]).replace(
        "data.aws_partition.current.dns_suffix", '"amazonaws.com"'
    )
    assert tofu_eval(tmp_path, address, {}) is None
    assert tofu_eval(tmp_path, address, {"operator_amp_workspace_arn": AMP_WORKSPACE}) == (
        "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/"
        "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    )


# --- Helm releases ------------------------------------------------------------------------


def test_helm_releases(cfg: Config) -> None:
    releases = cfg.of_type("helm_release")
    assert set(releases) == {
        "helm_release.gateway_api_crds",
        "helm_release.aws_load_balancer_controller",
        "helm_release.gateway",
        "helm_release.ingress_nginx",
        "helm_release.kube_prometheus_stack",
        "helm_release.operator",
    }
    remote = {
        "helm_release.aws_load_balancer_controller": (
            "https://aws.github.io/eks-charts",
            "aws-load-balancer-controller",
        ),
        "helm_release.ingress_nginx": (
            "https://kubernetes.github.io/ingress-nginx",
            "ingress-nginx",
        ),
        "helm_release.kube_prometheus_stack": (
            "https://prometheus-community.github.io/helm-charts",
            "kube-prometheus-stack",
        ),
    }
    for address, (repository, chart) in remote.items():
        release = releases[address]
        assert (release["repository"], release["chart"]) == (repository, chart)
        assert expr(release["version"]).startswith("var."), f"{address}: pin the chart"
    local = {
        "helm_release.gateway_api_crds": "/charts/gateway-api-crds",
        "helm_release.gateway": "/charts/platform-gateway",
        "helm_release.operator": "/../charts/bluegreen-operator",
    }
    for address, path in local.items():
        assert releases[address]["chart"] == "${path.module}" + path
        assert "repository" not in releases[address]
    # Its Prometheus selects ServiceMonitors and PrometheusRules labelled release=monitoring.
    assert releases["helm_release.kube_prometheus_stack"]["name"] == "monitoring"
    assert expr(cfg.variables["monitoring_namespace"]["default"]) == "monitoring"
    # Every release waits: for readiness on install, and on destroy until its objects are
    # gone (a load balancer's finalizer keeps its object until AWS has deleted it).
    for address, release in releases.items():
        assert release["wait"] is True, address


def test_operator_release_gets_the_irsa_role_on_its_service_account(cfg: Config) -> None:
    operator = cfg.resource("helm_release.operator")
    assert operator["chart"].endswith("../charts/bluegreen-operator")
    assert "repository" not in operator  # a local chart, by path
    settings = {s["name"]: expr(s["value"]) for s in operator["set"]}
    assert settings[r"serviceAccount.annotations.eks\.amazonaws\.com/role-arn"] == (
        "aws_iam_role.operator.arn"
    )
    # The ServiceAccount the chart creates is the one the role trusts.
    assert settings["serviceAccount.name"] == "var.operator_service_account"
    assert expr(operator["namespace"]) == "kubernetes_namespace_v1.operator.metadata[0].name"
    (namespace,) = cfg.resource("kubernetes_namespace_v1.operator")["metadata"]
    assert expr(namespace["name"]) == "var.operator_namespace"
    assert settings["image.repository"] == 'aws_ecr_repository.this["operator"].repository_url'


def _operator_values(cfg: Config, tmp_path: Path) -> dict[str, Any]:
    """The operator release's values as Terraform computes them: the values documents, then
    `set` on top (Helm's order), with the AWS-computed ones as placeholders."""
    operator = cfg.resource("helm_release.operator")
    documents = expr(operator["values"])
    assert documents.startswith("concat([yamlencode(local.operator_chart_values)],")
    assert "var.operator_image_tag == null ? [] :" in documents
    # The references to resources, as the values they take.
    known = {
        "helm_release.kube_prometheus_stack.name": json.dumps(
            cfg.resource("helm_release.kube_prometheus_stack")["name"]
        ),
        "kubernetes_namespace_v1.monitoring.metadata[0].name": "var.monitoring_namespace",
    }
    text = hcl(cfg.locals["operator_chart_values"])
    for ref, value in known.items():
        text = text.replace(ref, value)
    values: dict[str, Any] = tofu_eval(tmp_path, text, {})
    placeholders = {
        "aws_iam_role.operator.arn": "arn:aws:iam::123456789012:role/bluegreen-operator",
        'aws_ecr_repository.this["operator"].repository_url': (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/bluegreen-operator"
        ),
        "var.operator_service_account": "bluegreen-operator",
    }
    sets = [
        f"{s['name']}={placeholders.get(expr(s['value']), s['value'])}" for s in operator["set"]
    ]
    return {"values": values, "sets": sets}


@needs_tofu
@needs_helm
def test_operator_release_turns_on_its_service_monitor_alerts_and_dashboards(
    cfg: Config, tmp_path: Path
) -> None:
    # The chart renders with exactly the values Terraform passes (its schema accepts them),
    # and the objects land where kube-prometheus-stack looks for them.
    computed = _operator_values(cfg, tmp_path)
    values = computed["values"]
    assert values["metrics"]["serviceMonitor"]["enabled"] is True
    assert values["prometheusRule"]["enabled"] is True
    assert values["dashboards"]["enabled"] is True
    values_file = tmp_path / "operator-values.yaml"
    values_file.write_text(json.dumps(values), encoding="utf-8")
    docs = helm_template(
        OPERATOR_CHART,
        "bluegreen-operator",
        "bluegreen-system",
        ["-f", str(values_file), *(arg for s in computed["sets"] for arg in ("--set", s))],
    )
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    (monitor,) = kinds["ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "monitoring"
    # The apps' ServiceMonitors get the same label (terraform/README.md says they are
    # scraped by this Prometheus).
    (deployment,) = kinds["Deployment"]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BLUEGREEN_SERVICE_MONITOR_LABELS"] == "release=monitoring"
    (rule,) = kinds["PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    assert rule["spec"]["groups"], "the PrometheusRule carries no alerts"
    dashboards = [
        cm for cm in kinds["ConfigMap"] if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert dashboards, "no dashboard ConfigMap"
    assert {cm["metadata"]["namespace"] for cm in dashboards} == {"monitoring"}
    (account,) = kinds["ServiceAccount"]
    assert account["metadata"]["name"] == "bluegreen-operator"
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        ":role/bluegreen-operator"
    )


@needs_tofu
def test_operator_cloudwatch_read_is_off_by_default_and_only_get_metric_data(
    cfg: Config, tmp_path: Path
) -> None:
    # CloudWatch metrics in analysis: GetMetricData (which takes no resource ARNs) and no
    # other CloudWatch action, only when the variable asks for it.
    variable = cfg.variables["operator_cloudwatch_metrics"]
    assert (expr(variable["type"]), variable["default"]) == ("bool", False)
    document = cfg.data["aws_iam_policy_document.operator_cloudwatch_read"]
    (statement,) = statements(document)
    assert statement.get("effect", "Allow") == "Allow"
    assert statement["actions"] == ["cloudwatch:GetMetricData"]
    assert statement["resources"] == ["*"]
    assert "not_actions" not in statement and "not_resources" not in statement

    conditional = {
        "data.aws_iam_policy_document.operator_cloudwatch_read": document,
        "aws_iam_policy.operator_cloudwatch_read": cfg.resource(
            "aws_iam_policy.operator_cloudwatch_read"
        ),
        "aws_iam_role_policy_attachment.operator_cloudwatch_read": cfg.resource(
            "aws_iam_role_policy_attachment.operator_cloudwatch_read"
        ),
    }
    counts = "{" + ", ".join(f'"{a}" = {expr(b["count"])}' for a, b in conditional.items()) + "}"
    assert set(tofu_eval(tmp_path, counts, {}).values()) == {0}
    assert set(tofu_eval(tmp_path, counts, {"operator_cloudwatch_metrics": "true"}).values()) == {1}
    attachment = conditional["aws_iam_role_policy_attachment.operator_cloudwatch_read"]
    assert expr(attachment["role"]) == "aws_iam_role.operator.name"
    assert expr(attachment["policy_arn"]) == "aws_iam_policy.operator_cloudwatch_read[0].arn"


@needs_tofu
@needs_helm
def test_operator_egress_reaches_the_platform_prometheus_only(cfg: Config, tmp_path: Path) -> None:
    # Analysis queries the kube-prometheus-stack Prometheus in the monitoring namespace;
    # the operator's NetworkPolicy lets it reach that namespace on Prometheus's port and no
    # other pods (the chart's default is every namespace).
    computed = _operator_values(cfg, tmp_path)
    values_file = tmp_path / "operator-values.yaml"
    values_file.write_text(json.dumps(computed["values"]), encoding="utf-8")
    docs = helm_template(
        OPERATOR_CHART,
        "bluegreen-operator",
        "bluegreen-system",
        ["-f", str(values_file), *(arg for s in computed["sets"] for arg in ("--set", s))],
    )
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    to_pods = [r for r in policy["spec"]["egress"] if any("ipBlock" not in p for p in r["to"])]
    dns, prometheus = to_pods
    assert [p["port"] for p in dns["ports"]] == [53, 53]
    assert prometheus["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert [(p["port"], p["protocol"]) for p in prometheus["ports"]] == [(9090, "TCP")]


def test_with_an_amp_workspace_the_operator_signs_its_queries_to_it(
    cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With operator_amp_workspace_arn, Terraform adds a values document: the chart renders
    # with it, and the operator built from the rendered settings lets apps name the
    # workspace, signs queries to it with SigV4 (the region from its address) and sends
    # nothing to any other address. Without the variable there is no such document.
    documents = expr(cfg.resource("helm_release.operator")["values"])
    assert (
        "local.operator_amp_chart_values == null ? [] : "
        "[yamlencode(local.operator_amp_chart_values)]"
    ) in documents
    address = expr(cfg.locals["operator_amp_address"]).replace(
        "data.aws_partition.current.dns_suffix", '"amazonaws.com"'
    )
    text = expr(cfg.locals["operator_amp_chart_values"]).replace(
        "local.operator_amp_address", f"({address})"
    )
    assert tofu_eval(tmp_path, text, {}) is None
    amp_values = tofu_eval(tmp_path, text, {"operator_amp_workspace_arn": AMP_WORKSPACE})

    computed = _operator_values(cfg, tmp_path)
    files = []
    for name, values in (("operator", computed["values"]), ("amp", amp_values)):
        files += ["-f", str(tmp_path / f"{name}-values.yaml")]
        (tmp_path / f"{name}-values.yaml").write_text(json.dumps(values), encoding="utf-8")
    docs = helm_template(
        OPERATOR_CHART,
        "bluegreen-operator",
        "bluegreen-system",
        [*files, *(arg for s in computed["sets"] for arg in ("--set", s))],
    )
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for variable in container["env"]:
        if variable["name"].startswith("BLUEGREEN_"):
            monkeypatch.setenv(variable["name"], variable["value"])
    settings = Settings()

    workspace = (
        "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/"
        "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    )
    in_cluster = "http://prometheus-operated.monitoring.svc:9090"
    policy = EndpointPolicy(prometheus=settings.analysis_prometheus_allowed)
    assert policy.check_prometheus(workspace) is None
    assert policy.check_prometheus(in_cluster) is None
    assert policy.check_prometheus("https://aps-workspaces.us-east-1.amazonaws.com") is not None
    (profile,) = prometheus_profiles(settings)
    assert select([profile], f"{workspace}/api/v1/query?query=up") is profile
    assert profile.sigv4 and profile.sigv4_region is None
    assert amp_region(workspace) == "us-east-1"
    assert select([profile], f"{in_cluster}/api/v1/query?query=up") is None
    assert (
        select([profile], "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-other")
        is None
    )


def test_other_releases_depend_on_the_node_group(cfg: Config) -> None:
    for address in ("helm_release.kube_prometheus_stack", "helm_release.operator"):
        assert "aws_eks_node_group.this" in depends_on(cfg.resource(address)), address
    # The operator goes first on destroy, while Prometheus, the Gateway its apps' routes
    # attach to and the ingress class still exist, and while its IAM permissions do.
    assert depends_on(cfg.resource("helm_release.operator")) >= {
        "helm_release.kube_prometheus_stack",
        "helm_release.gateway",
        "helm_release.ingress_nginx",
        "aws_iam_role_policy_attachment.operator_ecr_read",
        "aws_iam_role_policy_attachment.operator_amp_query",
        "aws_iam_role_policy_attachment.operator_cloudwatch_read",
    }


def test_reference_graph_orders_every_kubernetes_object_before_cluster_and_network(
    cfg: Config,
) -> None:
    # Whatever lives in the cluster must (transitively) depend on the cluster, the nodes and
    # the whole network, so destroy removes it first. This follows references, depends_on,
    # locals and the providers' configuration, the way Terraform builds its graph.
    network = {a for a in cfg.resources if a.split(".")[0] in NETWORK_TYPES}
    in_cluster = [a for a in cfg.resources if a.split(".")[0].startswith(("helm_", "kubernetes_"))]
    assert len(in_cluster) >= 10
    for address in in_cluster:
        deps = cfg.dependencies(address)
        assert {"aws_eks_cluster.this", "aws_eks_node_group.this"} <= deps, address
        assert network <= deps, f"{address} misses {sorted(network - deps)}"
        # And the graph has no cycle through it.
        assert address not in deps, f"{address} depends on itself"


# --- Variables ----------------------------------------------------------------------------


def test_every_variable_is_typed_documented_and_validated(cfg: Config) -> None:
    # Booleans cannot hold a wrong value; everything else must be validated.
    for name, var in cfg.variables.items():
        assert var.get("description"), f"var.{name} has no description"
        assert "type" in var, f"var.{name} has no type"
        if expr(var["type"]) == "bool":
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
    outputs = {name: expr(body["value"]) for name, body in cfg.outputs.items()}
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
        # How traffic reaches the apps.
        "AWS Load Balancer Controller",
        "Gateway API",
        "HTTPRoute",
        "parentRefs",
        "ingress_nginx_enabled",
        "enableNetworkPolicy",
        "operator_amp_workspace_arn",
        "aps:QueryMetrics",
    ):
        assert needle in readme, needle
    for tf_file in sorted(TF_DIR.glob("*.tf")):
        assert f"`{tf_file.name}`" in readme, f"README does not describe {tf_file.name}"
    for chart in ("charts/gateway-api-crds", "charts/platform-gateway"):
        assert f"`{chart}`" in readme, f"README does not describe {chart}"


def test_no_default_prometheus_address_is_promised(cfg: Config) -> None:
    # spec.analysis.prometheus.address is required by the CRD whenever an app analyses
    # metrics: the docs must say where this platform's Prometheus is, not that the operator
    # would find it by itself.
    readme = " ".join((TF_DIR / "README.md").read_text(encoding="utf-8").split())
    texts = [readme, *(p.read_text(encoding="utf-8") for p in sorted(TF_DIR.glob("*.tf")))]
    for text in texts:
        flat = " ".join(text.split()).lower()
        assert "default prometheus address" not in flat
        assert "default address" not in flat
        assert "operator reads at its default" not in flat
    assert "spec.analysis.prometheus.address" in readme
    assert "http://prometheus-operated.monitoring.svc:9090" in readme
    assert (
        "spec.analysis.prometheus.address" in cfg.variables["monitoring_namespace"]["description"]
    )


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


@needs_tofu
def test_tofu_fmt_check() -> None:
    result = subprocess.run(
        [str(TOFU), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TF_DIR)],
        capture_output=True,
        text=True,
        env=tofu_env(),
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
            env=tofu_env(),
            check=False,
        )
        assert result.returncode == 0, f"{path.name} is not formatted"


@needs_tofu
def test_defaults_pass_every_validation(tmp_path: Path) -> None:
    result = tofu_plan(tmp_path, {})
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
        ({"tags": '{Team = "a,b"}'}, "must not contain"),
        ({"tags": '{"a=b" = "c"}'}, "must not contain"),
        ({"aws_load_balancer_controller_chart_version": "2.17.1"}, "exact 3.x chart version"),
        ({"aws_load_balancer_controller_chart_version": "latest"}, "exact 3.x chart version"),
        ({"gateway_namespace": "Gateway"}, "DNS-1123"),
        ({"gateway_scheme": "public"}, "internet-facing or internal"),
        ({"gateway_certificate_arn": "my-cert"}, "ACM certificate ARN"),
        (
            {"gateway_certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"},
            "ACM certificate ARN",
        ),
        ({"gateway_routes_from": "Same"}, "Selector or All"),
        ({"operator_amp_workspace_arn": "ws-0a1b2c3d"}, "one workspace's ARN"),
        (
            {"operator_amp_workspace_arn": "arn:aws:aps:us-east-1:123456789012:workspace/*"},
            "one workspace's ARN",
        ),
    ],
)
def test_validations_reject_bad_values(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    result = tofu_plan(tmp_path, overrides)
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
        kind: expr(cfg.locals[f"{kind}_subnet_cidrs"]).replace(
            "local.azs", "var.availability_zones"
        )
        for kind in ("public", "private")
    }
    plan = tofu_eval(
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
    policy_expr = expr(cfg.resource("aws_ecr_lifecycle_policy.this")["policy"])
    policy = json.loads(tofu_eval(tmp_path, policy_expr, {}))
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
