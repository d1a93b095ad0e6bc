# How traffic reaches the applications: the AWS Load Balancer Controller, the Gateway API,
# and one Gateway (one Application Load Balancer) that the apps' HTTPRoutes attach to.
# ingress-nginx is optional (var.ingress_nginx_enabled, off by default).
#
# Install order (and, reversed, destroy order):
#
#   network, nodes, CoreDNS, the controller's IAM role
#     -> helm_release.gateway_api_crds            Gateway API standard channel (fetched, hash-checked)
#     -> helm_release.aws_load_balancer_controller  (its own CRDs come with its chart)
#     -> helm_release.gateway, helm_release.ingress_nginx   (the load balancers)
#     -> helm_release.operator (addons.tf)
#
# Destroy ordering (the hand-built platform's teardown failure): load balancers that a
# controller asks AWS for are not in Terraform's state. If the VPC went first, their network
# interfaces would block deleting the subnets, the internet gateway and the VPC. So:
#   * every release that makes AWS create a load balancer (the Gateway, ingress-nginx's
#     Service) depends on the controller's release, and is uninstalled while the controller
#     still runs. Their `wait = true` applies to the uninstall too: Helm returns once the
#     objects are gone, and the controller's finalizers (gateway.k8s.aws/alb on the Gateway,
#     service.k8s.aws/resources on the Service) keep them until AWS has deleted the load
#     balancer, its target groups and its security groups;
#   * the controller's release depends on every network resource, the node group, CoreDNS and
#     its IAM policy attachment, so it is uninstalled before any of them: until it is gone it
#     still has nodes to run on, a network to reach AWS through and the permissions it needs.

locals {
  aws_load_balancer_controller_namespace       = "kube-system"
  aws_load_balancer_controller_service_account = "aws-load-balancer-controller"

  # The Gateway every app's HTTPRoute names in parentRefs: {namespace, name, sectionName}.
  gateway_name       = "platform"
  gateway_class_name = "alb"
  # With gateway_routes_from = "Selector", namespaces labelled so may attach HTTPRoutes.
  gateway_route_namespace_label       = "bluegreen.dev/gateway-routes"
  gateway_route_namespace_label_value = "true"
  # With a certificate the apps' listener is "https" (and "http" only redirects).
  gateway_app_listener = var.gateway_certificate_arn == null ? "http" : "https"

  # Values of the AWS Load Balancer Controller chart (3.x).
  aws_load_balancer_controller_values = {
    clusterName = aws_eks_cluster.this.name
    # Nodes allow one IMDS hop (pods cannot reach the instance metadata), so the controller
    # cannot discover its region and VPC there: both are given.
    region       = var.region
    vpcId        = aws_vpc.this.id
    replicaCount = 2
    serviceAccount = {
      create = true
      name   = local.aws_load_balancer_controller_service_account
      annotations = {
        "eks.amazonaws.com/role-arn" = aws_iam_role.aws_load_balancer_controller.arn
      }
    }
    # The VPC CNI gives pods VPC addresses: target groups register pod IPs, so ClusterIP
    # Services work as backends (no NodePort hop).
    defaultTargetType = "ip"
    # Tags on every load balancer, target group and security group it creates (provider
    # default_tags cannot reach them).
    defaultTags = local.tags
    # WAF, WAF Classic and Shield integrations off: their IAM permissions are not granted.
    enableWaf    = false
    enableWafv2  = false
    enableShield = false
    # No webhook on every Service creation in the cluster (failurePolicy Fail would make all
    # Service writes depend on this controller, including those of releases installed in
    # parallel with it). Services that want an NLB from it set loadBalancerClass
    # service.k8s.aws/nlb, as ingress-nginx's does below.
    enableServiceMutatorWebhook = false
    # Likewise its validating webhook sees every Ingress write (the operator's nginx Ingresses
    # included): it validates when the controller is up, and does not block when it is not.
    # (The chart's key is spelled this way.)
    webhookConfig = { ingressValdationFailurePolicy = "Ignore" }
    # Keep the webhook's self-signed certificate across upgrades instead of a new one each time.
    keepTLSSecret       = true
    podDisruptionBudget = { maxUnavailable = 1 }
    resources = {
      requests = { cpu = "50m", memory = "128Mi" }
      limits   = { memory = "512Mi" }
    }
    controllerConfig = {
      # Set explicitly, so the controller does not guess from the CRDs it finds at start.
      featureGates = {
        ALBGatewayAPI      = true  # Gateway + HTTPRoute -> ALB
        NLBGatewayAPI      = false # no L4 Gateways on this platform
        GatewayListenerSet = false
        # Listeners and rules carry the elbv2.k8s.aws/cluster tag: the IAM policy only lets the
        # controller change listeners and rules that have it.
        ListenerRulesTagging = true
      }
    }
  }

  # Values of the platform Gateway chart (charts/platform-gateway).
  gateway_values = {
    gatewayClass = { name = local.gateway_class_name }
    gateway = {
      name           = local.gateway_name
      scheme         = var.gateway_scheme
      certificateArn = var.gateway_certificate_arn == null ? "" : var.gateway_certificate_arn
      sslPolicy      = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    }
    routes = {
      from                = var.gateway_routes_from
      namespaceLabel      = local.gateway_route_namespace_label
      namespaceLabelValue = local.gateway_route_namespace_label_value
    }
  }
}

# --- IAM: the controller's IRSA role and its least-privilege policy -------------------------

# Its trust policy (only its ServiceAccount) is irsa.tf's irsa_assume["aws_load_balancer_controller"].
resource "aws_iam_role" "aws_load_balancer_controller" {
  name                 = "${var.cluster_name}-aws-load-balancer-controller"
  description          = "AWS Load Balancer Controller (IRSA): load balancers, target groups and their security groups of the ${var.cluster_name} cluster"
  assume_role_policy   = data.aws_iam_policy_document.irsa_assume["aws_load_balancer_controller"].json
  max_session_duration = 3600
}

# Written for this platform from the API calls the controller (v3.5) makes, not the
# controller's published policy. Differences:
#   * everything it creates must carry elbv2.k8s.aws/cluster = this cluster's name, and
#     everything it changes or deletes must already carry it (the published policy accepts
#     any value of the tag, so one cluster's controller could delete another's load
#     balancers in the same account);
#   * security groups only in this VPC; ARNs only in this region and account;
#   * listeners and rules are tag-scoped too (ListenerRulesTagging is on), where the published
#     policy allows them on "*";
#   * no WAF, WAF Classic, Shield, Cognito, ACM discovery, IAM server certificates, Outposts
#     or IPAM permissions: the chart values above turn WAF and Shield off, the Gateway's
#     certificate is given by ARN (no discovery), and the other features are not used;
#   * the node security groups (tagged kubernetes.io/cluster/<name> by EKS) are the only
#     others whose ingress rules it may change: it lets the load balancer reach the pods.
locals {
  elb_arn_prefix = "arn:${data.aws_partition.current.partition}:elasticloadbalancing:${var.region}:${data.aws_caller_identity.current.account_id}"
  ec2_arn_prefix = "arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}"

  elb_load_balancer_arns = ["${local.elb_arn_prefix}:loadbalancer/app/*/*", "${local.elb_arn_prefix}:loadbalancer/net/*/*"]
  elb_target_group_arns  = ["${local.elb_arn_prefix}:targetgroup/*/*"]
  elb_listener_arns = [
    "${local.elb_arn_prefix}:listener/app/*/*/*",
    "${local.elb_arn_prefix}:listener/net/*/*/*",
    "${local.elb_arn_prefix}:listener-rule/app/*/*/*/*",
    "${local.elb_arn_prefix}:listener-rule/net/*/*/*/*",
  ]
}

data "aws_iam_policy_document" "aws_load_balancer_controller" {
  # Read-only calls; these actions support no resource-level scoping.
  statement {
    sid    = "Describe"
    effect = "Allow"
    actions = [
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
    ]
    resources = ["*"]
  }

  # The first load balancer of an account needs the ELB service-linked role.
  statement {
    sid       = "ElbServiceLinkedRole"
    effect    = "Allow"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  # Security groups: created in this VPC, tagged for this cluster at creation.
  statement {
    sid       = "CreateSecurityGroupInThisVpc"
    effect    = "Allow"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = [aws_vpc.this.arn]
  }

  statement {
    sid       = "CreateSecurityGroupTaggedForThisCluster"
    effect    = "Allow"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["${local.ec2_arn_prefix}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  statement {
    sid       = "TagSecurityGroupOnCreate"
    effect    = "Allow"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn_prefix}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  # Its own security groups: rules, tags (never the cluster tag itself), deletion.
  statement {
    sid    = "ManageOwnSecurityGroups"
    effect = "Allow"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:DeleteSecurityGroup",
    ]
    resources = ["${local.ec2_arn_prefix}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }

    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.this.arn]
    }
  }

  statement {
    sid       = "RetagOwnSecurityGroups"
    effect    = "Allow"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.ec2_arn_prefix}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }
  }

  # The nodes' security groups (EKS tags the cluster security group
  # kubernetes.io/cluster/<name> = owned): open them to the load balancer, and close again.
  statement {
    sid    = "OpenNodeSecurityGroupsToLoadBalancers"
    effect = "Allow"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = ["${local.ec2_arn_prefix}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/kubernetes.io/cluster/${var.cluster_name}"
      values   = ["owned", "shared"]
    }

    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.this.arn]
    }
  }

  # Load balancers, target groups, listeners and rules: created tagged for this cluster.
  statement {
    sid    = "CreateTaggedForThisCluster"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:CreateRule",
    ]
    resources = concat(local.elb_load_balancer_arns, local.elb_target_group_arns, local.elb_listener_arns)

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  statement {
    sid       = "TagOnCreate"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:AddTags"]
    resources = concat(local.elb_load_balancer_arns, local.elb_target_group_arns, local.elb_listener_arns)

    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "CreateRule"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  # ...and changed or deleted only while they carry this cluster's tag.
  statement {
    sid    = "ManageOwnLoadBalancersAndTargetGroups"
    effect = "Allow"
    actions = [
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
    ]
    resources = concat(local.elb_load_balancer_arns, local.elb_target_group_arns)

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  statement {
    sid    = "ManageOwnListenersAndRules"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:ModifyListenerAttributes",
      "elasticloadbalancing:AddListenerCertificates",
      "elasticloadbalancing:RemoveListenerCertificates",
      "elasticloadbalancing:DeleteRule",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:SetRulePriorities",
    ]
    resources = local.elb_listener_arns

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }
  }

  statement {
    sid       = "RetagOwnElbResources"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    resources = concat(local.elb_load_balancer_arns, local.elb_target_group_arns, local.elb_listener_arns)

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [var.cluster_name]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }
  }
}

resource "aws_iam_policy" "aws_load_balancer_controller" {
  name        = "${var.cluster_name}-aws-load-balancer-controller"
  description = "AWS Load Balancer Controller of the ${var.cluster_name} cluster: its own load balancers, target groups and security groups only"
  policy      = data.aws_iam_policy_document.aws_load_balancer_controller.json
}

resource "aws_iam_role_policy_attachment" "aws_load_balancer_controller" {
  role       = aws_iam_role.aws_load_balancer_controller.name
  policy_arn = aws_iam_policy.aws_load_balancer_controller.arn
}

# --- In the cluster ----------------------------------------------------------------------

# Gateway API, standard channel: the CRDs and the safe-upgrades ValidatingAdmissionPolicy.
# Terraform downloads the files of the release's config/crd/standard/ at plan time, pinned by
# the release tag AND by the sha256 of each file: a file that differs from the one this
# configuration was written for (a moved tag, a tampered download) fails the plan before
# anything is applied, and so does a file that cannot be downloaded.
#
# To move to another release: set gateway_api_version, then replace the hashes (and the file
# names, if the release adds or removes files) with the ones tests/terraform/test_traffic.py
# prints; it computes them from the Go module sigs.k8s.io/gateway-api at that version. Check
# first which Gateway API version the AWS Load Balancer Controller in use is built for.
locals {
  gateway_api_version = "v1.6.1"

  # sha256 of every file of config/crd/standard/ at gateway_api_version, by file name.
  gateway_api_standard_sha256 = {
    "gateway.networking.k8s.io_backendtlspolicies.yaml" = "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419"
    "gateway.networking.k8s.io_gatewayclasses.yaml"     = "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5"
    "gateway.networking.k8s.io_gateways.yaml"           = "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a"
    "gateway.networking.k8s.io_grpcroutes.yaml"         = "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc"
    "gateway.networking.k8s.io_httproutes.yaml"         = "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852"
    "gateway.networking.k8s.io_listenersets.yaml"       = "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70"
    "gateway.networking.k8s.io_referencegrants.yaml"    = "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3"
    "gateway.networking.k8s.io_tcproutes.yaml"          = "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6"
    "gateway.networking.k8s.io_tlsroutes.yaml"          = "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb"
    "gateway.networking.k8s.io_udproutes.yaml"          = "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de"
    "gateway.networking.k8s.io_vap_safeupgrades.yaml"   = "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e"
  }

  gateway_api_standard_url = "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/${local.gateway_api_version}/config/crd/standard"

  # sha256 of what was downloaded, by file name.
  gateway_api_standard_downloaded_sha256 = {
    for name, file in data.http.gateway_api_standard : name => sha256(file.response_body)
  }
}

# Read at plan time (nothing defers it: no depends_on, a known URL) and kept in the state.
data "http" "gateway_api_standard" {
  for_each = local.gateway_api_standard_sha256

  url = "${local.gateway_api_standard_url}/${each.key}"

  lifecycle {
    postcondition {
      condition     = self.status_code == 200
      error_message = "${self.url} answered ${self.status_code}: is ${local.gateway_api_version} a Gateway API release with the file ${each.key}?"
    }
  }
}

# The downloaded files, rendered unchanged by charts/gateway-api-crds. As templates, not crds/,
# so that `terraform apply` upgrades them to a new version and `terraform destroy` removes
# them.
resource "helm_release" "gateway_api_crds" {
  name      = "gateway-api-crds"
  chart     = "${path.module}/charts/gateway-api-crds"
  namespace = local.aws_load_balancer_controller_namespace

  # Waits until every CRD is Established.
  wait    = true
  timeout = 300

  values = [yamlencode({
    bundleVersion = local.gateway_api_version
    files         = { for name, file in data.http.gateway_api_standard : name => file.response_body }
  })]

  lifecycle {
    # The hash check. Here rather than in the data source's postcondition, whose failure
    # message would print every downloaded file in full: this one names the files that differ
    # and what they hash to.
    precondition {
      condition     = local.gateway_api_standard_downloaded_sha256 == local.gateway_api_standard_sha256
      error_message = "Gateway API ${local.gateway_api_version}: downloaded files differ from the sha256 pinned in gateway_api_standard_sha256: ${join(", ", [for name, hash in local.gateway_api_standard_downloaded_sha256 : "${name} is ${hash}" if hash != local.gateway_api_standard_sha256[name]])}. Do not apply them; if the release really changed, review it and pin the new hashes."
    }
  }

  depends_on = [aws_eks_node_group.this]
}

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = var.aws_load_balancer_controller_chart_version
  namespace  = local.aws_load_balancer_controller_namespace

  wait    = true
  timeout = 600

  values = [yamlencode(local.aws_load_balancer_controller_values)]

  depends_on = [
    # Nodes to run on, DNS to find the AWS APIs.
    aws_eks_node_group.this,
    aws_eks_addon.coredns,
    # The Gateway API CRDs must exist when it starts (the feature gates are explicit).
    helm_release.gateway_api_crds,
    # Its permissions outlive it: on destroy it still deletes load balancers.
    aws_iam_role_policy_attachment.aws_load_balancer_controller,
    # Everything a load balancer uses or sits in; destroy removes the controller (and, before
    # it, every load balancer it made) before any of these.
    aws_subnet.public,
    aws_subnet.private,
    aws_internet_gateway.this,
    aws_nat_gateway.this,
    aws_eip.nat,
    aws_route_table.public,
    aws_route_table.private,
    aws_route.public_internet,
    aws_route.private_nat,
    aws_route_table_association.public,
    aws_route_table_association.private,
  ]
}

resource "kubernetes_namespace_v1" "gateway" {
  metadata {
    name = var.gateway_namespace
    labels = {
      # Only Gateway API objects live here, no pods.
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }

  depends_on = [aws_eks_node_group.this]
}

# The GatewayClass "alb", the Gateway and its LoadBalancerConfiguration: one ALB. Its
# uninstall (wait = true) returns once the controller has deleted the ALB and released the
# Gateway's finalizer.
resource "helm_release" "gateway" {
  name      = "platform-gateway"
  chart     = "${path.module}/charts/platform-gateway"
  namespace = kubernetes_namespace_v1.gateway.metadata[0].name

  wait    = true
  timeout = 900

  values = [yamlencode(local.gateway_values)]

  depends_on = [
    helm_release.gateway_api_crds,
    # Provisions the ALB while installed, deletes it while this release is uninstalled.
    helm_release.aws_load_balancer_controller,
  ]
}

# The Gateway as the controller reports it: status.addresses holds the ALB's DNS name once
# the ALB exists (a minute or two after the first apply; `terraform apply -refresh-only`
# reads it again).
data "kubernetes_resource" "gateway" {
  api_version = "gateway.networking.k8s.io/v1"
  kind        = "Gateway"

  metadata {
    name      = local.gateway_name
    namespace = helm_release.gateway.namespace
  }
}

# --- ingress-nginx (optional) ----------------------------------------------------------

# Retired upstream (March 2026). Kept for BlueGreenApps that still route through
# spec.ingress with the nginx canary annotations; off by default.
resource "kubernetes_namespace_v1" "ingress_nginx" {
  count = var.ingress_nginx_enabled ? 1 : 0

  metadata {
    name = "ingress-nginx"
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }

  depends_on = [aws_eks_node_group.this]
}

resource "helm_release" "ingress_nginx" {
  count = var.ingress_nginx_enabled ? 1 : 0

  name       = "ingress-nginx"
  repository = "https://kubernetes.github.io/ingress-nginx"
  chart      = "ingress-nginx"
  version    = var.ingress_nginx_chart_version
  namespace  = kubernetes_namespace_v1.ingress_nginx[0].metadata[0].name

  # wait applies to the uninstall too: destroy returns only once the Service, and with it
  # the AWS load balancer, is gone.
  wait    = true
  timeout = 900

  values = [yamlencode({
    controller = {
      replicaCount = 2
      ingressClassResource = {
        name    = "nginx" # the class BlueGreenApp.spec.ingress.className refers to
        default = false
      }
      service = {
        # A Network Load Balancer from the AWS Load Balancer Controller (not the legacy
        # in-tree provider): tagged with its defaultTags, targets are the pod IPs.
        loadBalancerClass = "service.k8s.aws/nlb"
        annotations = {
          "service.beta.kubernetes.io/aws-load-balancer-scheme"          = "internet-facing"
          "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type" = "ip"
          "service.beta.kubernetes.io/aws-load-balancer-attributes"      = "load_balancing.cross_zone.enabled=true"
        }
      }
      metrics = {
        enabled = true
        serviceMonitor = {
          enabled          = true
          additionalLabels = { release = helm_release.kube_prometheus_stack.name }
        }
      }
    }
  })]

  depends_on = [
    # Nodes to run the controller.
    aws_eks_node_group.this,
    # The ServiceMonitor CRD.
    helm_release.kube_prometheus_stack,
    # Provisions the NLB while installed, deletes it while this release is uninstalled.
    helm_release.aws_load_balancer_controller,
    # Everything the load balancer uses or sits in (also reached through the controller).
    aws_subnet.public,
    aws_subnet.private,
    aws_internet_gateway.this,
    aws_nat_gateway.this,
    aws_eip.nat,
    aws_route_table.public,
    aws_route_table.private,
    aws_route.public_internet,
    aws_route.private_nat,
    aws_route_table_association.public,
    aws_route_table_association.private,
  ]
}

# Platforms built before ingress-nginx became optional keep their release's state (and, with
# ingress_nginx_enabled = true, the release itself) instead of a destroy and a new install.
moved {
  from = kubernetes_namespace_v1.ingress_nginx
  to   = kubernetes_namespace_v1.ingress_nginx[0]
}

moved {
  from = helm_release.ingress_nginx
  to   = helm_release.ingress_nginx[0]
}

# The public address of ingress-nginx, read back after the release is installed.
data "kubernetes_service_v1" "ingress_nginx_controller" {
  count = var.ingress_nginx_enabled ? 1 : 0

  metadata {
    name      = "${helm_release.ingress_nginx[0].name}-controller"
    namespace = helm_release.ingress_nginx[0].namespace
  }
}
