# Platform add-ons, installed by Terraform so that Terraform also removes them:
# kube-prometheus-stack and the bluegreen operator. The traffic layer (AWS Load Balancer
# Controller, Gateway API, the optional ingress-nginx) and its destroy ordering are in
# traffic.tf.

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
# The release is named "monitoring": its Prometheus selects ServiceMonitors and
# PrometheusRules labelled release=monitoring, and its Grafana loads dashboards from
# ConfigMaps labelled grafana_dashboard=1. Prometheus answers at
# http://prometheus-operated.<monitoring_namespace>.svc:9090; a BlueGreenApp that analyses
# metrics names that address itself (spec.analysis.prometheus.address has no default).
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

# The bluegreen operator, from the chart in this repository. Its ServiceAccount carries the
# IRSA role; the image comes from this platform's ECR repository. Its own ServiceMonitor,
# alerts (PrometheusRule) and Grafana dashboards are on, labelled for the Prometheus and the
# Grafana above.
locals {
  operator_chart_values = {
    metrics = {
      serviceMonitor = {
        enabled = true
        labels  = { release = helm_release.kube_prometheus_stack.name }
      }
    }
    prometheusRule = {
      enabled = true
      labels  = { release = helm_release.kube_prometheus_stack.name }
    }
    # Every app's ServiceMonitor carries the label this Prometheus selects by, so the apps'
    # metrics are scraped without each app saying so (spec.monitoring.serviceMonitor.labels).
    apps = {
      serviceMonitorLabels = { release = helm_release.kube_prometheus_stack.name }
    }
    dashboards = {
      enabled = true
      # Grafana's dashboard sidecar watches its own namespace.
      namespace = kubernetes_namespace_v1.monitoring.metadata[0].name
    }
    # The operator's egress (the chart's NetworkPolicy, enforced by the vpc-cni add-on):
    # analysis reaches the Prometheus above, in its namespace, and no other pods on 9090.
    networkPolicy = {
      egress = {
        prometheus = {
          to = [{
            namespaceSelector = {
              matchLabels = {
                "kubernetes.io/metadata.name" = kubernetes_namespace_v1.monitoring.metadata[0].name
              }
            }
          }]
        }
      }
    }
  }

  # With operator_amp_workspace_arn: the workspace's Prometheus-compatible API root (the
  # amp_prometheus_address output). The operator signs its queries there with SigV4 and its
  # IRSA role (which may run aps:QueryMetrics on it, irsa.tf), and apps may name it in
  # spec.analysis.prometheus.address besides the in-cluster Services.
  operator_amp_address = var.operator_amp_workspace_arn == null ? null : "https://aps-workspaces.${split(":", var.operator_amp_workspace_arn)[3]}.${data.aws_partition.current.dns_suffix}/workspaces/${split("/", var.operator_amp_workspace_arn)[1]}"
  operator_amp_chart_values = local.operator_amp_address == null ? null : {
    prometheusAuth = {
      addresses = [local.operator_amp_address]
      sigv4     = { enabled = true }
    }
    extraEnv = [{
      name  = "BLUEGREEN_ANALYSIS_PROMETHEUS_ALLOWED"
      value = "*.svc,*.svc.cluster.local,${local.operator_amp_address}"
    }]
  }
}

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

  # Without operator_image_tag the chart's own default (its appVersion) applies; with
  # operator_amp_workspace_arn, the operator's SigV4 credentials for that workspace. With
  # ingress-nginx, apps may name its class in spec.ingress.className (the Ingress guard,
  # docs/security.md; no annotation is allowed unless listed here).
  values = concat(
    [yamlencode(local.operator_chart_values)],
    var.operator_image_tag == null ? [] : [yamlencode({ image = { tag = var.operator_image_tag } })],
    local.operator_amp_chart_values == null ? [] : [yamlencode(local.operator_amp_chart_values)],
    var.ingress_nginx_enabled ? [yamlencode({ ingressGuard = { allowedClasses = ["nginx"] } })] : [],
  )

  depends_on = [
    aws_eks_node_group.this,
    # The ServiceMonitor and PrometheusRule CRDs, the monitoring namespace; the apps'
    # HTTPRoutes attach to the Gateway and their Ingresses (if any) use the "nginx" class.
    # On destroy the operator goes first, while all of these are still there.
    helm_release.kube_prometheus_stack,
    helm_release.gateway,
    helm_release.ingress_nginx,
    aws_iam_role_policy_attachment.operator_ecr_read,
    aws_iam_role_policy_attachment.operator_amp_query,
    aws_iam_role_policy_attachment.operator_cloudwatch_read,
  ]
}
