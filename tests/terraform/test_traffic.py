"""Offline checks of how traffic reaches the apps (terraform/traffic.tf): the AWS Load Balancer
Controller (IRSA, least privilege), the Gateway API CRDs, the platform Gateway, the optional
ingress-nginx, and the destroy ordering that removes every AWS load balancer before the
network it sits in.

The Helm charts that live in terraform/charts are rendered with `helm template` using the
values Terraform computes (OpenTofu evaluates them), and the Gateway API objects are checked
against the OpenAPI schemas of the Gateway API CRDs. Those are not in the repository: Terraform
downloads them and checks their sha256; the tests read the same files from the Go module
sigs.k8s.io/gateway-api (the module cache, or GOPROXY) and compare.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import jsonschema
import pytest
import yaml

from tests.terraform.tfconfig import (
    CHARTS,
    HELM,
    LB_NETWORK_TYPES,
    LOCAL_REF,
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
    statements,
    strings,
    tofu_env,
    tofu_eval,
    trust_statement,
)

LBC = "helm_release.aws_load_balancer_controller"
LBC_ATTACHMENT = "aws_iam_role_policy_attachment.aws_load_balancer_controller"
GATEWAY = "helm_release.gateway"
INGRESS_NGINX = "helm_release.ingress_nginx"
CRDS = "helm_release.gateway_api_crds"
DOWNLOAD = "http.gateway_api_standard"  # the data source that downloads the CRD files
CRD_CHART = CHARTS / "gateway-api-crds"
GATEWAY_CHART = CHARTS / "platform-gateway"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config()


@cache
def _gateway_api_module(version: str) -> Path | None:
    """The module's files in the Go module cache (downloaded through GOPROXY if need be)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off", "GOTOOLCHAIN": "local"}
    try:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{version}"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
    except FileNotFoundError:
        return None
    if result.returncode != 0:
        return None
    return Path(json.loads(result.stdout)["Dir"])


@pytest.fixture(scope="module")
def upstream(cfg: Config) -> Path:
    """config/crd/standard/ of the Gateway API release Terraform installs, from the Go module
    at the same version: the files Terraform downloads from the release's tag."""
    version = cfg.locals["gateway_api_version"]
    module = _gateway_api_module(version)
    if module is None:
        pytest.fail(f"sigs.k8s.io/gateway-api@{version} could not be downloaded (Go module proxy)")
    return module / "config" / "crd" / "standard"


def _lbc_policy(cfg: Config) -> list[dict[str, Any]]:
    return statements(cfg.data["aws_iam_policy_document.aws_load_balancer_controller"])


def _expand(cfg: Config, text: str) -> str:
    """A template string with the string locals it interpolates spelled out."""
    for match in LOCAL_REF.findall(text):
        value = cfg.locals[match]
        if isinstance(value, str) and "${local." + match + "}" in text:
            text = text.replace("${local." + match + "}", _expand(cfg, value))
    return text


def _resources(cfg: Config, statement: dict[str, Any]) -> list[str]:
    """A statement's resources with the ARN locals spelled out."""
    result: list[str] = []
    items = statement["resources"]
    for item in [items] if isinstance(items, str) else items:
        text = expr(item)
        if text.startswith("concat("):
            for name in text.removeprefix("concat(").removesuffix(")").split(", "):
                result += _resources(cfg, {"resources": [cfg.locals[name.removeprefix("local.")]]})
        elif text.startswith("local."):
            result += _resources(cfg, {"resources": cfg.locals[text.removeprefix("local.")]})
        elif isinstance(item, list):
            result += _resources(cfg, {"resources": item})
        else:
            result.append(_expand(cfg, item))
    return result


def _conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {c["variable"]: (c["test"], c["values"]) for c in statement.get("condition", [])}


# --- The controller's IAM role ------------------------------------------------------------


def test_controller_role_trusts_only_its_service_account(cfg: Config) -> None:
    statement = trust_statement(cfg, "aws_iam_role.aws_load_balancer_controller")
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    (principal,) = statement["principals"]
    assert (principal["type"], principal["identifiers"]) == (
        "Federated",
        ["${aws_iam_openid_connect_provider.eks.arn}"],
    )
    conditions = _conditions(statement)
    assert set(conditions) == {"${local.oidc_issuer}:sub", "${local.oidc_issuer}:aud"}
    assert conditions["${local.oidc_issuer}:aud"] == ("StringEquals", ["sts.amazonaws.com"])
    test, (subject,) = conditions["${local.oidc_issuer}:sub"]
    assert test == "StringEquals"  # no wildcards
    assert subject == (
        "system:serviceaccount:${local.aws_load_balancer_controller_namespace}"
        ":${local.aws_load_balancer_controller_service_account}"
    )
    # ...which is the ServiceAccount the chart creates, in the release's namespace.
    values = cfg.locals["aws_load_balancer_controller_values"]
    assert values["serviceAccount"]["name"] == (
        "${local.aws_load_balancer_controller_service_account}"
    )
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "${aws_iam_role.aws_load_balancer_controller.arn}"
    )
    assert expr(cfg.resource(LBC)["namespace"]) == "local.aws_load_balancer_controller_namespace"
    # One policy, attached once; nothing inline.
    attachments = [
        b
        for b in cfg.of_type("aws_iam_role_policy_attachment").values()
        if expr(b["role"]).startswith("aws_iam_role.aws_load_balancer_controller.")
    ]
    assert [expr(a["policy_arn"]) for a in attachments] == [
        "aws_iam_policy.aws_load_balancer_controller.arn"
    ]
    for body in cfg.of_type("aws_iam_role_policy").values():
        assert "aws_load_balancer_controller" not in expr(body["role"])


# Exactly the calls the controller makes (its EC2 and ELBv2 clients, v3.5), minus the
# features this platform turns off. A change here is a change of the controller's powers.
READ_ACTIONS = {
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeCapacityReservation",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTrustStores",
}
WRITE_ACTIONS = {
    "iam:CreateServiceLinkedRole",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DeleteSecurityGroup",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:RemoveTags",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
}


def test_controller_policy_grants_exactly_the_calls_it_makes(cfg: Config) -> None:
    policy = _lbc_policy(cfg)
    granted = {a for s in policy for a in s["actions"]}
    assert granted == READ_ACTIONS | WRITE_ACTIONS, (
        f"extra: {sorted(granted - READ_ACTIONS - WRITE_ACTIONS)}, "
        f"missing: {sorted(READ_ACTIONS | WRITE_ACTIONS - granted)}"
    )
    for statement in policy:
        assert statement.get("effect", "Allow") == "Allow"
        assert "not_actions" not in statement and "not_resources" not in statement
        assert all("*" not in a for a in statement["actions"]), statement["sid"]
    # Read-only calls are the only ones on "*" (they take no resource ARN).
    (describe,) = [s for s in policy if s["resources"] == ["*"]]
    assert set(describe["actions"]) == READ_ACTIONS
    assert all(":Describe" in a for a in READ_ACTIONS)


def test_every_granted_action_is_an_operation_of_the_aws_api(cfg: Config) -> None:
    """IAM accepts a misspelt action silently (it then grants nothing): each one must name
    an operation of the EC2, ELBv2 or IAM API, as botocore's service models list them."""
    session = botocore.session.get_session()
    operations = set()
    for service in ("ec2", "elbv2", "iam"):
        model = session.get_service_model(service)
        prefix = model.metadata["endpointPrefix"]
        operations |= {f"{prefix}:{name}" for name in model.operation_names}
    granted = {a for s in _lbc_policy(cfg) for a in s["actions"]}
    assert granted - operations == set()


def test_controller_policy_leaves_out_the_features_this_platform_turns_off(cfg: Config) -> None:
    granted = {a for s in _lbc_policy(cfg) for a in s["actions"]}
    for service in ("waf-regional:", "wafv2:", "shield:", "cognito-idp:", "acm:"):
        assert not any(a.startswith(service) for a in granted), service
    assert (
        not {
            "iam:ListServerCertificates",
            "iam:GetServerCertificate",
            "elasticloadbalancing:SetWebAcl",
            "elasticloadbalancing:ModifyCapacityReservation",
            "elasticloadbalancing:ModifyIpPools",
            "ec2:GetCoipPoolUsage",
            "ec2:DescribeCoipPools",
            "ec2:DescribeIpamPools",
        }
        & granted
    )
    # ...because the controller is told not to use them.
    values = cfg.locals["aws_load_balancer_controller_values"]
    assert (values["enableWaf"], values["enableWafv2"], values["enableShield"]) == (
        False,
        False,
        False,
    )
    # The Gateway's certificate is given by ARN, so the controller never searches ACM.
    assert cfg.locals["gateway_values"]["gateway"]["certificateArn"] == (
        '${var.gateway_certificate_arn == null ? "" : var.gateway_certificate_arn}'
    )


def test_controller_policy_is_scoped_to_this_cluster_vpc_region_and_account(
    cfg: Config,
) -> None:
    cluster_tag = ("StringEquals", ["${var.cluster_name}"])
    this_vpc = ("ArnEquals", ["${aws_vpc.this.arn}"])
    for statement in _lbc_policy(cfg):
        sid, actions = statement["sid"], set(statement["actions"])
        if actions <= READ_ACTIONS:
            continue
        resources = _resources(cfg, statement)
        assert resources and "*" not in resources, sid
        for arn in resources:
            # This account, and for EC2 and ELB this region: never another's resources.
            assert (
                "${data.aws_caller_identity.current.account_id}" in arn
                or arn == "${aws_vpc.this.arn}"
            ), f"{sid}: {arn}"
            if ":ec2:" in arn or ":elasticloadbalancing:" in arn:
                assert "${var.region}" in arn, f"{sid}: {arn}"
        conditions = _conditions(statement)
        # No condition merely asks that a tag exist (any cluster's tag): values are pinned.
        assert all(test != "Null" or values == ["true"] for test, values in conditions.values())
        if sid == "ElbServiceLinkedRole":
            assert resources[0].endswith(
                ":role/aws-service-role/elasticloadbalancing.amazonaws.com/"
                "AWSServiceRoleForElasticLoadBalancing"
            )
            assert conditions == {
                "iam:AWSServiceName": ("StringEquals", ["elasticloadbalancing.amazonaws.com"])
            }
        elif sid == "CreateSecurityGroupInThisVpc":
            assert resources == ["${aws_vpc.this.arn}"]
        elif sid == "OpenNodeSecurityGroupsToLoadBalancers":
            # The nodes' security groups, which EKS tags for this cluster, in this VPC.
            assert actions == {
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
            }
            assert conditions == {
                "aws:ResourceTag/kubernetes.io/cluster/${var.cluster_name}": (
                    "StringEquals",
                    ["owned", "shared"],
                ),
                "ec2:Vpc": this_vpc,
            }
        else:
            # Everything else: only what is (to be) tagged elbv2.k8s.aws/cluster = this
            # cluster's name.
            pinned = [
                conditions.get("aws:RequestTag/elbv2.k8s.aws/cluster"),
                conditions.get("aws:ResourceTag/elbv2.k8s.aws/cluster"),
            ]
            assert cluster_tag in pinned, sid
        # Security groups only in this VPC (changed ones) or created in it.
        if actions & {"ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup"}:
            assert conditions.get("ec2:Vpc") == this_vpc, sid
        # Whoever may retag may not touch the cluster tag itself (no adopting by retagging).
        if actions & {"ec2:DeleteTags", "elasticloadbalancing:RemoveTags"}:
            assert conditions["aws:RequestTag/elbv2.k8s.aws/cluster"] == ("Null", ["true"]), sid
        # Tags at creation only for the creating call.
        if "ec2:CreateTags" in actions and "ec2:DeleteTags" not in actions:
            assert conditions["ec2:CreateAction"] == ("StringEquals", ["CreateSecurityGroup"])
        if actions == {"elasticloadbalancing:AddTags"}:
            assert conditions["elasticloadbalancing:CreateAction"][1] == [
                "CreateLoadBalancer",
                "CreateTargetGroup",
                "CreateListener",
                "CreateRule",
            ]
    # Listeners and rules are tag-scoped only if the controller tags them: it must be told.
    gates = cfg.locals["aws_load_balancer_controller_values"]["controllerConfig"]["featureGates"]
    assert gates["ListenerRulesTagging"] is True
    # The policy is what the role gets.
    assert expr(cfg.resource("aws_iam_policy.aws_load_balancer_controller")["policy"]) == (
        "data.aws_iam_policy_document.aws_load_balancer_controller.json"
    )


# --- The controller's release -------------------------------------------------------------


def test_controller_values(cfg: Config) -> None:
    values = cfg.locals["aws_load_balancer_controller_values"]
    assert values["clusterName"] == "${aws_eks_cluster.this.name}"
    # IMDS is one hop away from the nodes only: the pods cannot discover region and VPC.
    assert values["region"] == "${var.region}"
    assert values["vpcId"] == "${aws_vpc.this.id}"
    (metadata,) = cfg.resource("aws_launch_template.node")["metadata_options"]
    assert metadata["http_put_response_hop_limit"] == 1
    assert values["serviceAccount"]["create"] is True
    # Pods have VPC addresses: target groups of pod IPs, ClusterIP Services as backends.
    assert values["defaultTargetType"] == "ip"
    # No webhook between every Service write in the cluster and this controller.
    assert values["enableServiceMutatorWebhook"] is False
    assert values["webhookConfig"] == {"ingressValdationFailurePolicy": "Ignore"}
    assert values["keepTLSSecret"] is True
    assert values["replicaCount"] >= 2
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    gates = values["controllerConfig"]["featureGates"]
    assert gates == {
        "ALBGatewayAPI": True,
        "NLBGatewayAPI": False,
        "GatewayListenerSet": False,
        "ListenerRulesTagging": True,
    }
    release = cfg.resource(LBC)
    assert release["values"] == ["${yamlencode(local.aws_load_balancer_controller_values)}"]
    version = cfg.variables["aws_load_balancer_controller_chart_version"]["default"]
    assert version.split(".")[0] == "3", "Gateway API support is GA from chart 3.0"


def test_controller_is_removed_after_its_load_balancers_and_before_the_network(
    cfg: Config,
) -> None:
    release = cfg.resource(LBC)
    assert release["wait"] is True
    direct = depends_on(release)
    network = {a for a in cfg.resources if a.split(".")[0] in LB_NETWORK_TYPES}
    assert {a.split(".")[0] for a in network} == LB_NETWORK_TYPES
    assert not network - direct, f"{LBC} must depend_on {sorted(network - direct)}"
    # It keeps nodes to run on, DNS to find AWS, its CRDs and its permissions until it is gone.
    assert direct >= {
        "aws_eks_node_group.this",
        "aws_eks_addon.coredns",
        CRDS,
        LBC_ATTACHMENT,
    }
    deps = cfg.dependencies(LBC)
    assert deps >= {
        "aws_vpc.this",
        "aws_iam_role.aws_load_balancer_controller",
        "aws_iam_policy.aws_load_balancer_controller",
        "aws_iam_openid_connect_provider.eks",
        "aws_eks_cluster.this",
    }


@pytest.mark.parametrize("load_balancers", [GATEWAY, INGRESS_NGINX])
def test_every_load_balancer_goes_while_the_controller_still_runs(
    cfg: Config, load_balancers: str
) -> None:
    # The Gateway (an ALB) and ingress-nginx's Service (an NLB) depend on the controller:
    # destroy uninstalls them first, and their uninstall waits (wait = true) until the
    # controller has deleted the load balancer and released the object's finalizer.
    release = cfg.resource(load_balancers)
    assert release["wait"] is True
    assert LBC in depends_on(release)
    deps = cfg.dependencies(load_balancers)
    assert {LBC, LBC_ATTACHMENT} <= deps
    network = {a for a in cfg.resources if a.split(".")[0] in LB_NETWORK_TYPES}
    assert network <= deps
    # Never the other way round (that would be a cycle, or the controller first).
    assert load_balancers not in cfg.dependencies(LBC)
    # And no other load balancer maker: every Helm release whose values ask AWS for a load
    # balancer is one of these two.
    makers = {
        address
        for address, body in cfg.of_type("helm_release").items()
        if "loadBalancerClass" in json.dumps(body) or "platform-gateway" in json.dumps(body)
    }
    assert makers == {GATEWAY, INGRESS_NGINX}


def test_the_operator_goes_before_the_gateway_and_the_gateway_before_its_crds(
    cfg: Config,
) -> None:
    assert GATEWAY in depends_on(cfg.resource("helm_release.operator"))
    assert CRDS in depends_on(cfg.resource(GATEWAY))
    assert "helm_release.operator" not in cfg.dependencies(GATEWAY)
    assert GATEWAY not in cfg.dependencies(CRDS)
    assert LBC not in cfg.dependencies(CRDS)


# --- The Gateway --------------------------------------------------------------------------


@cache
def _crd_schemas(standard: Path) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(standard.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] == "CustomResourceDefinition":
                for version in doc["spec"]["versions"]:
                    key = (
                        f"{doc['spec']['group']}/{version['name']}",
                        doc["spec"]["names"]["kind"],
                    )
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _render_gateway(
    tmp_path: Path, overrides: dict[str, str], standard: Path
) -> dict[str, list[dict[str, Any]]]:
    values = tofu_eval(tmp_path, "local.gateway_values", overrides, ["gateway_values"])
    values_file = tmp_path / "gateway-values.json"
    values_file.write_text(json.dumps(values), encoding="utf-8")
    namespace = overrides.get("gateway_namespace", "gateway")
    docs = helm_template(GATEWAY_CHART, "platform-gateway", namespace, ["-f", str(values_file)])
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    # Every Gateway API object is valid against its CRD's schema (the CEL rules aside).
    schemas = _crd_schemas(standard)
    for doc in docs:
        if doc["apiVersion"].startswith("gateway.networking.k8s.io/"):
            jsonschema.validate(doc, schemas[(doc["apiVersion"], doc["kind"])])
    return kinds


@needs_tofu
@needs_helm
def test_gateway_by_default_one_http_listener_for_labelled_namespaces(
    cfg: Config, tmp_path: Path, upstream: Path
) -> None:
    kinds = _render_gateway(tmp_path, {}, upstream)
    (gateway_class,) = kinds["GatewayClass"]
    assert gateway_class["metadata"]["name"] == "alb"
    assert gateway_class["spec"]["controllerName"] == "gateway.k8s.aws/alb"
    (gateway,) = kinds["Gateway"]
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"]) == (
        "gateway",
        "platform",
    )
    assert gateway["spec"]["gatewayClassName"] == "alb"
    assert gateway["spec"]["infrastructure"]["parametersRef"] == {
        "group": "gateway.k8s.aws",
        "kind": "LoadBalancerConfiguration",
        "name": "platform",
    }
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["name"], listener["protocol"], listener["port"]) == ("http", "HTTP", 80)
    assert listener["allowedRoutes"]["namespaces"] == {
        "from": "Selector",
        "selector": {"matchLabels": {"bluegreen.dev/gateway-routes": "true"}},
    }
    assert listener["allowedRoutes"]["kinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}
    ]
    (config,) = kinds["LoadBalancerConfiguration"]
    assert config["apiVersion"] == "gateway.k8s.aws/v1"
    assert config["metadata"]["namespace"] == "gateway"  # the Gateway's namespace
    assert config["spec"]["scheme"] == "internet-facing"
    attributes = {a["key"]: a["value"] for a in config["spec"]["loadBalancerAttributes"]}
    assert attributes == {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "false",  # terraform destroy can delete it
    }
    assert "listenerConfigurations" not in config["spec"]
    assert "HTTPRoute" not in kinds
    # The outputs tell apps what to put in parentRefs.
    assert tofu_eval(tmp_path, "local.gateway_app_listener", {}, ["gateway_app_listener"]) == (
        "http"
    )


@needs_tofu
@needs_helm
def test_gateway_with_a_certificate_serves_https_and_redirects_http(
    tmp_path: Path, upstream: Path
) -> None:
    overrides = {
        "gateway_certificate_arn": CERTIFICATE,
        "gateway_routes_from": "All",
        "gateway_scheme": "internal",
        "gateway_namespace": "edge",
    }
    kinds = _render_gateway(tmp_path, overrides, upstream)
    (gateway,) = kinds["Gateway"]
    assert gateway["metadata"]["namespace"] == "edge"
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    assert set(listeners) == {"http", "https"}
    assert (listeners["https"]["protocol"], listeners["https"]["port"]) == ("HTTPS", 443)
    assert "tls" not in listeners["https"]  # the controller takes the certificate by ARN
    assert listeners["https"]["allowedRoutes"]["namespaces"] == {"from": "All"}
    # Port 80 admits only this release's redirect route.
    assert listeners["http"]["allowedRoutes"]["namespaces"] == {"from": "Same"}
    (redirect,) = kinds["HTTPRoute"]
    assert redirect["metadata"]["namespace"] == "edge"
    (parent,) = redirect["spec"]["parentRefs"]
    assert (parent["name"], parent["sectionName"]) == ("platform", "http")
    (rule,) = redirect["spec"]["rules"]
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
    ]
    (config,) = kinds["LoadBalancerConfiguration"]
    assert config["spec"]["scheme"] == "internal"
    assert config["spec"]["listenerConfigurations"] == [
        {
            "protocolPort": "HTTPS:443",
            "defaultCertificate": CERTIFICATE,
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        }
    ]
    listener = tofu_eval(
        tmp_path, "local.gateway_app_listener", overrides, ["gateway_app_listener"]
    )
    assert listener == "https"


def test_gateway_release_and_outputs(cfg: Config) -> None:
    release = cfg.resource(GATEWAY)
    assert expr(release["namespace"]) == "kubernetes_namespace_v1.gateway.metadata[0].name"
    assert release["values"] == ["${yamlencode(local.gateway_values)}"]
    (namespace,) = cfg.resource("kubernetes_namespace_v1.gateway")["metadata"]
    assert expr(namespace["name"]) == "var.gateway_namespace"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    gateway = cfg.outputs["gateway"]["value"]
    assert set(gateway) == {
        "namespace",
        "name",
        "sectionName",
        "gatewayClassName",
        "route_namespace_label",
    }
    assert expr(gateway["sectionName"]) == "local.gateway_app_listener"
    hostname = expr(cfg.outputs["gateway_hostname"]["value"])
    assert hostname.startswith("try(data.kubernetes_resource.gateway.object.status.addresses[0]")
    (metadata,) = cfg.data["kubernetes_resource.gateway"]["metadata"]
    assert expr(metadata["name"]) == "local.gateway_name"
    assert expr(metadata["namespace"]) == "helm_release.gateway.namespace"


# --- The Gateway API CRDs -----------------------------------------------------------------

RELEASES = "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api"
# The standard channel: what the controller's ALB Gateway support needs, and the rest.
STANDARD_KINDS = [
    "BackendTLSPolicy",
    "GRPCRoute",
    "Gateway",
    "GatewayClass",
    "HTTPRoute",
    "ListenerSet",
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
]


def _sha256_block(hashes: dict[str, str]) -> str:
    """gateway_api_standard_sha256 as it is written in traffic.tf (tofu fmt's alignment)."""
    width = max(len(json.dumps(name)) for name in hashes)
    lines = [f'    {json.dumps(name):<{width}} = "{h}"' for name, h in sorted(hashes.items())]
    return "  gateway_api_standard_sha256 = {\n" + "\n".join(lines) + "\n  }"


def _lifecycle_text(address: str, kind: str) -> str:
    """The text of the lifecycle block of a resource or data source in traffic.tf."""
    text = (TF_DIR / "traffic.tf").read_text(encoding="utf-8")
    rtype, name = address.split(".")
    start = text.index(f'{kind} "{rtype}" "{name}" {{')
    start = text.index("  lifecycle {", start)
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "}":
            return text[start : end + 1]
    raise AssertionError(f"no end of the lifecycle block of {address}")


def test_crds_are_downloaded_from_the_release_tag_and_checked_against_pinned_hashes(
    cfg: Config,
) -> None:
    version = cfg.locals["gateway_api_version"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", version), "a release tag, never a branch"
    hashes = cfg.locals["gateway_api_standard_sha256"]
    assert hashes
    for name, sha256 in hashes.items():
        assert re.fullmatch(r"gateway\.networking\.k8s\.io_[a-z0-9_]+\.yaml", name), name
        assert re.fullmatch(r"[0-9a-f]{64}", sha256), name
    assert cfg.locals["gateway_api_standard_url"] == (
        RELEASES + "/${local.gateway_api_version}/config/crd/standard"
    )
    # One download per pinned file, while planning: no depends_on or unknown value defers it
    # to apply time.
    download = cfg.data[DOWNLOAD]
    assert expr(download["for_each"]) == "local.gateway_api_standard_sha256"
    assert download["url"] == "${local.gateway_api_standard_url}/${each.key}"
    assert set(download) == {"for_each", "url", "lifecycle"}
    ((postcondition,),) = [block["postcondition"] for block in download["lifecycle"]]
    assert expr(postcondition["condition"]) == "self.status_code == 200"
    # What was downloaded must hash to the pinned values before the release is planned.
    assert expr(cfg.locals["gateway_api_standard_downloaded_sha256"]) == (
        "{for name, file in data.http.gateway_api_standard : name => sha256(file.response_body)}"
    )
    release = cfg.resource(CRDS)
    ((precondition,),) = [block["precondition"] for block in release["lifecycle"]]
    assert expr(precondition["condition"]) == (
        "local.gateway_api_standard_downloaded_sha256 == local.gateway_api_standard_sha256"
    )
    # The release gets the files as they were downloaded, and nothing else uses them.
    assert release["values"] == [
        "${yamlencode({bundleVersion = local.gateway_api_version, files = {for name, file in "
        "data.http.gateway_api_standard : name => file.response_body}})}"
    ]
    named = {
        **cfg.resources,
        **{f"data.{a}": b for a, b in cfg.data.items()},
        **{f"local.{a}": b for a, b in cfg.locals.items()},
        **{f"output.{a}": b for a, b in cfg.outputs.items()},
    }
    users = {
        address
        for address, body in named.items()
        if any("data.http.gateway_api_standard" in s for s in strings(body))
    }
    assert users == {"local.gateway_api_standard_downloaded_sha256", CRDS}
    # The provider that downloads them is pinned like the others.
    (terraform,) = cfg.terraform
    (required,) = terraform["required_providers"]
    assert required["http"] == {"source": "hashicorp/http", "version": "~> 3.0"}


def test_the_pinned_hashes_are_those_of_the_release(cfg: Config, upstream: Path) -> None:
    """Tells the hashes to pin after changing gateway_api_version."""
    version = cfg.locals["gateway_api_version"]
    actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in upstream.glob("*.yaml")}
    pinned = cfg.locals["gateway_api_standard_sha256"]
    advice = (
        f"the files of config/crd/standard/ of Gateway API {version} are these, with these "
        f"sha256; put them in terraform/traffic.tf:\n{_sha256_block(actual)}"
    )
    assert sorted(pinned) == sorted(actual), advice
    assert pinned == actual, advice
    for path in upstream.glob("*.yaml"):
        # Terraform hashes response_body, a string it keeps in Unicode normal form C: the
        # same bytes only if the file is UTF-8 in that form.
        text = path.read_bytes().decode("utf-8")
        assert unicodedata.is_normalized("NFC", text), path.name


def test_the_release_is_the_standard_channel_the_platform_needs(
    cfg: Config, upstream: Path
) -> None:
    version = cfg.locals["gateway_api_version"]
    kinds: list[str] = []
    for path in sorted(upstream.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc:
                continue
            annotations = doc["metadata"]["annotations"]
            assert annotations["gateway.networking.k8s.io/bundle-version"] == version
            assert annotations["gateway.networking.k8s.io/channel"] == "standard"
            kinds.append(
                doc["spec"]["names"]["kind"] if "names" in doc.get("spec", {}) else doc["kind"]
            )
    assert sorted(kinds) == STANDARD_KINDS


def _plan_module(cfg: Config, tmp_path: Path) -> Path:
    """A module that plans the download checks of traffic.tf with no provider: the files come
    from var.files (answered with var.status_code) instead of data.http, and terraform_data
    resources carry the data source's postcondition and the release's precondition, copied
    from traffic.tf."""
    stand_in = "local.downloaded"

    def without_download(text: str) -> str:
        return text.replace("data.http.gateway_api_standard", stand_in)

    names = [
        "gateway_api_version",
        "gateway_api_standard_sha256",
        "gateway_api_standard_url",
        "gateway_api_standard_downloaded_sha256",
    ]
    body = "\n".join(f"  {n} = {without_download(hcl(cfg.locals[n]))}" for n in names)
    download = cfg.data[DOWNLOAD]
    (values,) = cfg.resource(CRDS)["values"]
    postcondition = _lifecycle_text("http.gateway_api_standard", "data")
    precondition = _lifecycle_text(CRDS, "resource")
    module = tmp_path / "plan"
    module.mkdir()
    (module / "main.tf").write_text(
        f"""
variable "files" {{
  type = string
}}

variable "status_code" {{
  type    = number
  default = 200
}}

locals {{
{body}

  downloaded = {{
    for name, hash in local.gateway_api_standard_sha256 : name => {{
      url           = "${{local.gateway_api_standard_url}}/${{name}}"
      status_code   = var.status_code
      response_body = file("${{var.files}}/${{name}}")
    }}
  }}
}}

resource "terraform_data" "gateway_api_standard" {{
  for_each = {hcl(download["for_each"])}

  input = {{
    url         = local.downloaded[each.key].url
    status_code = local.downloaded[each.key].status_code
  }}

{postcondition.replace("self.", "self.input.")}
}}

resource "terraform_data" "gateway_api_crds" {{
  input = sha256(jsonencode({without_download(hcl(values))}))

{without_download(precondition)}
}}
""",
        encoding="utf-8",
    )
    return module


def _plan(module: Path, files: Path, status_code: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(TOFU),
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-var",
            f"files={files}",
            "-var",
            f"status_code={status_code}",
        ],
        cwd=module,
        capture_output=True,
        text=True,
        env=tofu_env(module),
        check=False,
        timeout=120,
    )


@needs_tofu
def test_a_changed_or_missing_release_file_fails_the_plan(
    cfg: Config, upstream: Path, tmp_path: Path
) -> None:
    module = _plan_module(cfg, tmp_path)
    pinned = cfg.locals["gateway_api_standard_sha256"]
    # The release's files pass (tofu's sha256 of the body is the file's sha256).
    result = _plan(module, upstream)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Plan: {len(pinned) + 1} to add" in result.stdout
    # One file changed upstream: the plan fails and names it, with what it hashes to now.
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in upstream.glob("*.yaml"):
        shutil.copyfile(path, changed / path.name)  # without the module cache's read-only mode
    target = changed / "gateway.networking.k8s.io_httproutes.yaml"
    target.write_text(target.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    new_hash = hashlib.sha256(target.read_bytes()).hexdigest()
    result = _plan(module, changed)
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())
    assert "Resource precondition failed" in output
    assert f"gateway.networking.k8s.io_httproutes.yaml is {new_hash}" in output
    assert "gateway.networking.k8s.io_gateways.yaml is" not in output
    assert "Do not apply them" in output
    # A file that is not there (another version, a typo): the download's postcondition.
    result = _plan(module, upstream, status_code=404)
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())
    assert "Resource postcondition failed" in output
    version = cfg.locals["gateway_api_version"]
    assert (
        f"{RELEASES}/{version}/config/crd/standard/gateway.networking.k8s.io_gateways.yaml "
        f"answered 404"
    ) in output


@needs_tofu
@needs_helm
def test_the_release_renders_the_downloaded_files_unchanged(
    cfg: Config, upstream: Path, tmp_path: Path
) -> None:
    # The release's values as Terraform computes them from the downloaded files...
    (values,) = cfg.resource(CRDS)["values"]
    downloaded = (
        "{for name, hash in local.gateway_api_standard_sha256 : "
        f'name => {{response_body = file("{upstream}/${{name}}")}}}}'
    )
    expression = hcl(values).replace("data.http.gateway_api_standard", downloaded)
    text = tofu_eval(
        tmp_path, expression, {}, ["gateway_api_version", "gateway_api_standard_sha256"]
    )
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(upstream.glob("*.yaml"))}
    assert yaml.safe_load(text) == {
        "bundleVersion": cfg.locals["gateway_api_version"],
        "files": files,
    }
    values_file = tmp_path / "crd-values.yaml"
    values_file.write_text(text, encoding="utf-8")
    # ...render every object of every file, unchanged, in file-name order.
    rendered = helm_template(CRD_CHART, "gateway-api-crds", "kube-system", ["-f", str(values_file)])
    expected = [doc for body in files.values() for doc in yaml.safe_load_all(body) if doc]
    assert rendered == expected


def _render_crd_chart(values: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values), encoding="utf-8")
    return subprocess.run(
        [str(HELM), "template", "gateway-api-crds", str(CRD_CHART), "-f", str(values_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@needs_helm
def test_crd_chart_refuses_files_of_another_version_and_empty_values(tmp_path: Path) -> None:
    doc = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: example\n  annotations:\n"
        "    gateway.networking.k8s.io/bundle-version: v1.2.3\n"
    )
    name = "gateway.networking.k8s.io_example.yaml"
    ok = _render_crd_chart({"bundleVersion": "v1.2.3", "files": {name: doc}}, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert [d for d in yaml.safe_load_all(ok.stdout) if d] == [yaml.safe_load(doc)]
    # A template directive in a file is output as it is, never executed.
    directive = doc + "data:\n  text: '{{ .Release.Name }}'\n"
    ok = _render_crd_chart({"bundleVersion": "v1.2.3", "files": {name: directive}}, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "text: '{{ .Release.Name }}'" in ok.stdout
    other = _render_crd_chart({"bundleVersion": "v1.2.4", "files": {name: doc}}, tmp_path)
    assert other.returncode != 0
    assert f"files.{name} is not a file of Gateway API v1.2.4" in other.stderr
    empty = _render_crd_chart({}, tmp_path)
    assert empty.returncode != 0


def test_no_gateway_api_file_is_in_the_repository() -> None:
    # The CRDs are downloaded when Terraform runs: none of them (nor any other CRD) is kept
    # in terraform/.
    for path in TF_DIR.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "kind: CustomResourceDefinition" not in text, path
            assert "apiextensions.k8s.io" not in text, path
    chart_files = [p for p in CRD_CHART.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in chart_files) < 16_000


# --- ingress-nginx, optional --------------------------------------------------------------


@needs_tofu
def test_ingress_nginx_is_optional_and_off_by_default(cfg: Config, tmp_path: Path) -> None:
    assert cfg.variables["ingress_nginx_enabled"]["default"] is False
    parts = {
        "kubernetes_namespace_v1.ingress_nginx": cfg.resource(
            "kubernetes_namespace_v1.ingress_nginx"
        ),
        INGRESS_NGINX: cfg.resource(INGRESS_NGINX),
        "data.kubernetes_service_v1.ingress_nginx_controller": cfg.data[
            "kubernetes_service_v1.ingress_nginx_controller"
        ],
    }
    counts = "{" + ", ".join(f'"{a}" = {expr(b["count"])}' for a, b in parts.items()) + "}"
    assert set(tofu_eval(tmp_path, counts, {}).values()) == {0}
    assert set(tofu_eval(tmp_path, counts, {"ingress_nginx_enabled": "true"}).values()) == {1}
    # With it off, its output is null rather than an error.
    assert expr(cfg.outputs["ingress_hostname"]["value"]).startswith(
        "try(data.kubernetes_service_v1.ingress_nginx_controller[0]."
    )
    # With it on, its NLB comes from the AWS Load Balancer Controller (loadBalancerClass),
    # which tags it and deletes it on destroy, not from the legacy in-tree provider.
    values = cfg.resource(INGRESS_NGINX)["values"][0]
    assert 'loadBalancerClass = "service.k8s.aws/nlb"' in values
    assert '"service.beta.kubernetes.io/aws-load-balancer-nlb-target-type" = "ip"' in values
    assert "aws-load-balancer-type" not in values  # the legacy provider's annotation
    # A platform that had it before keeps its state: the unindexed address moves to [0].
    moved = {
        (expr(block["from"]), expr(block["to"]))
        for doc in cfg.files.values()
        for block in doc.get("moved", [])
    }
    assert moved >= {
        ("helm_release.ingress_nginx", "helm_release.ingress_nginx[0]"),
        ("kubernetes_namespace_v1.ingress_nginx", "kubernetes_namespace_v1.ingress_nginx[0]"),
    }
    # Still the "nginx" class BlueGreenApp.spec.ingress.className names, and the operator's
    # Ingress guard lets apps name it when ingress-nginx is on.
    assert 'name    = "nginx"' in values or 'name = "nginx"' in values
    operator_values = expr(cfg.resource("helm_release.operator")["values"])
    guard = '[yamlencode({ingressGuard = {allowedClasses = ["nginx"]}})]'
    assert f"var.ingress_nginx_enabled ? {guard} : []" in operator_values, operator_values
