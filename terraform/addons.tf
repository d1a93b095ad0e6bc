# Platform add-ons, installed by Terraform so that Terraform also removes them.
#
# Destroy ordering (the hand-built platform's teardown failure): ingress-nginx's Service of
# type LoadBalancer makes AWS create a Network Load Balancer in the public subnets. That load
# balancer is not in Terraform's state. If the VPC went first, the load balancer's network
# interfaces would block deleting the subnets, the internet gateway and the VPC. Here the
# ingress-nginx release depends on the node group and on every network resource, so
# `terraform destroy` uninstalls it first; with `wait = true` the uninstall waits until the
# Service is gone, and the Service's load-balancer finalizer keeps it until AWS has deleted
# the load balancer. Only then does Terraform touch the nodes and the network.

locals {
  # Passed to AWS for the load balancer, which default_tags cannot reach.
  load_balancer_tags = join(",", [for k, v in local.tags : "${k}=${v}"])
}

resource "kubernetes_namespace_v1" "ingress_nginx" {
  metadata {
    name = "ingress-nginx"
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }

  depends_on = [aws_eks_node_group.this]
}

resource "kubernetes_namespace_v1" "monitoring" {
  metadata {
    name = var.monitoring_namespace
    labels = {
      # node-exporter needs the host's network, PID namespace and filesystem.
      "pod-security.kubernetes.io/enforce" = "privileged"
    }
  }

  depends_on = [aws_eks_node_group.this]
}

resource "kubernetes_namespace_v1" "operator" {
  metadata {
    name = var.operator_namespace
    labels = {
      "pod-security.kubernetes.io/enforce" = var.operator_namespace_pod_security
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }

  depends_on = [aws_eks_node_group.this]
}

# Prometheus, Alertmanager, Grafana and the Prometheus Operator's CRDs (ServiceMonitor, ...).
# The release is named "monitoring": its Prometheus selects ServiceMonitors labelled
# release=monitoring, and the operator's default Prometheus address is
# prometheus-operated.monitoring.svc:9090.
resource "helm_release" "kube_prometheus_stack" {
  name       = "monitoring"
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = var.kube_prometheus_stack_chart_version
  namespace  = kubernetes_namespace_v1.monitoring.metadata[0].name

  wait    = true
  timeout = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        retention = "15d"
      }
    }
    grafana = {
      defaultDashboardsTimezone = "utc"
    }
  })]

  set_sensitive = [
    { name = "grafana.adminPassword", value = var.grafana_admin_password },
  ]

  depends_on = [
    aws_eks_node_group.this,
    aws_eks_addon.coredns,
  ]
}

resource "helm_release" "ingress_nginx" {
  name       = "ingress-nginx"
  repository = "https://kubernetes.github.io/ingress-nginx"
  chart      = "ingress-nginx"
  version    = var.ingress_nginx_chart_version
  namespace  = kubernetes_namespace_v1.ingress_nginx.metadata[0].name

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
        annotations = {
          "service.beta.kubernetes.io/aws-load-balancer-type"                              = "nlb"
          "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled" = "true"
          "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags"          = local.load_balancer_tags
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
    # Everything the load balancer uses or sits in; destroy removes the release before any
    # of these.
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

# The bluegreen operator, from the chart in this repository. Its ServiceAccount carries the
# IRSA role; the image comes from this platform's ECR repository.
resource "helm_release" "operator" {
  name      = "bluegreen-operator"
  chart     = "${path.module}/../charts/bluegreen-operator"
  namespace = kubernetes_namespace_v1.operator.metadata[0].name

  wait    = true
  timeout = 600

  set = [
    { name = "serviceAccount.create", value = "true" },
    { name = "serviceAccount.name", value = var.operator_service_account },
    # Helm's --set syntax: the dots inside the annotation key are escaped.
    { name = "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn", value = aws_iam_role.operator.arn },
    { name = "image.repository", value = aws_ecr_repository.this["operator"].repository_url },
  ]

  # Without operator_image_tag the chart's own default (its appVersion) applies.
  values = var.operator_image_tag == null ? [] : [yamlencode({ image = { tag = var.operator_image_tag } })]

  depends_on = [
    aws_eks_node_group.this,
    # The chart ships ServiceMonitors and its BlueGreenApps use the "nginx" IngressClass;
    # on destroy the operator goes first, while both are still there.
    helm_release.kube_prometheus_stack,
    helm_release.ingress_nginx,
    aws_iam_role_policy_attachment.operator_ecr_read,
  ]
}

# The public address of the ingress controller, read back after the release is installed.
data "kubernetes_service_v1" "ingress_nginx_controller" {
  metadata {
    name      = "${helm_release.ingress_nginx.name}-controller"
    namespace = helm_release.ingress_nginx.namespace
  }
}
