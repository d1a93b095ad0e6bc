output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_version" {
  description = "Kubernetes version of the control plane."
  value       = aws_eks_cluster.this.version
}

output "kubeconfig_command" {
  description = "Command that adds the cluster to your kubeconfig."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.this.name}"
}

output "ecr_registry" {
  description = "Registry host, for `aws ecr get-login-password | docker login --username AWS --password-stdin <this>`."
  value       = split("/", aws_ecr_repository.this["operator"].repository_url)[0]
}

output "ecr_repository_urls" {
  description = "Repository URLs by component: operator and app."
  value       = { for k, repo in aws_ecr_repository.this : k => repo.repository_url }
}

output "operator_ecr_repository_url" {
  description = "Repository of the operator image."
  value       = aws_ecr_repository.this["operator"].repository_url
}

output "app_ecr_repository_url" {
  description = "Repository of the demo application image."
  value       = aws_ecr_repository.this["app"].repository_url
}

output "operator_role_arn" {
  description = "IAM role assumed by the operator's ServiceAccount through IRSA."
  value       = aws_iam_role.operator.arn
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster, for further IRSA roles."
  value       = aws_iam_openid_connect_provider.eks.arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets (nodes, pods, internal load balancers)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets (internet-facing load balancers, NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "gateway" {
  description = "The Gateway apps attach HTTPRoutes to: put {namespace, name, sectionName} in spec.parentRefs. With gateway_routes_from = Selector, label the app's namespace with route_namespace_label first."
  value = {
    namespace             = helm_release.gateway.namespace
    name                  = local.gateway_name
    sectionName           = local.gateway_app_listener
    gatewayClassName      = local.gateway_class_name
    route_namespace_label = var.gateway_routes_from == "Selector" ? "${local.gateway_route_namespace_label}=${local.gateway_route_namespace_label_value}" : null
  }
}

output "gateway_hostname" {
  description = "DNS name of the Gateway's ALB: point your application hosts here (CNAME). Null until the ALB exists; `terraform apply -refresh-only` reads it again."
  value       = try(data.kubernetes_resource.gateway.object.status.addresses[0].value, null)
}

output "aws_load_balancer_controller_role_arn" {
  description = "IAM role assumed by the AWS Load Balancer Controller's ServiceAccount through IRSA."
  value       = aws_iam_role.aws_load_balancer_controller.arn
}

output "amp_prometheus_address" {
  description = "With operator_amp_workspace_arn: the workspace's Prometheus-compatible API root, for spec.analysis.prometheus.address (queries signed with SigV4). Null otherwise."
  value       = local.operator_amp_address
}

output "ingress_hostname" {
  description = "With ingress_nginx_enabled: DNS name of ingress-nginx's Network Load Balancer. Null otherwise."
  value       = try(data.kubernetes_service_v1.ingress_nginx_controller[0].status[0].load_balancer[0].ingress[0].hostname, null)
}
