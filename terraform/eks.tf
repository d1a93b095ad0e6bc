# The EKS control plane, its managed add-ons and the managed node group.

resource "aws_eks_cluster" "this" {
  #checkov:skip=CKV_AWS_38:The allowed CIDRs are a required input (no default, so checkov cannot see the value) whose validation rejects 0.0.0.0/0 and requires at least one block; tests/terraform proves the validation with tofu.
  #checkov:skip=CKV_AWS_39:Terraform installs the Helm releases through the API endpoint from outside the VPC; the public endpoint is limited to cluster_endpoint_public_access_cidrs (0.0.0.0/0 is rejected by validation) and can be turned off with cluster_endpoint_public_access = false when Terraform runs inside the VPC.
  name     = var.cluster_name
  version  = var.cluster_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  # Access entries instead of the aws-auth ConfigMap; whoever runs Terraform is admin.
  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = var.cluster_endpoint_public_access
    public_access_cidrs     = var.cluster_endpoint_public_access_cidrs
  }

  # Envelope encryption of Kubernetes Secrets with the platform key.
  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = aws_kms_key.this.arn
    }
  }

  depends_on = [
    aws_iam_role_policy_attachment.cluster_policy,
    aws_cloudwatch_log_group.cluster,
    # The control plane's network interfaces sit in the private subnets, whose traffic to
    # AWS APIs leaves through the NAT gateways.
    aws_route_table_association.private,
    aws_route.private_nat,
  ]
}

resource "aws_eks_access_entry" "admins" {
  for_each = toset(var.cluster_admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
}

resource "aws_eks_access_policy_association" "admins" {
  for_each = toset(var.cluster_admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admins[each.value].principal_arn
  policy_arn    = "arn:${data.aws_partition.current.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# Networking add-ons are managed by EKS (versions follow the control plane) and must be in
# place before nodes can become Ready.
resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  # Network-policy enforcement: the add-on's node agent applies Kubernetes NetworkPolicy
  # (the operator chart ships one), which otherwise is accepted and ignored. The add-on's
  # configuration schema takes the value as the string "true".
  configuration_values = jsonencode({
    enableNetworkPolicy = "true"
  })
}

resource "aws_eks_addon" "kube_proxy" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "kube-proxy"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"
}

# CoreDNS is a Deployment: it only becomes healthy once nodes exist.
resource "aws_eks_addon" "coredns" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "coredns"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  depends_on = [aws_eks_node_group.this]
}

# Node settings EKS managed node groups do not expose directly: IMDSv2 only, with a hop
# limit of 1 so pods cannot borrow the node role (they use IRSA), and an encrypted root
# volume.
resource "aws_launch_template" "node" {
  name_prefix            = "${var.cluster_name}-node-"
  description            = "Nodes of the ${var.cluster_name} EKS managed node group"
  update_default_version = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.node_disk_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # default_tags do not reach what the node group launches; tag instances and volumes here.
  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.cluster_name}-node" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.cluster_name}-node" })
  }

  tags = {
    Name = "${var.cluster_name}-node"
  }
}

resource "aws_eks_node_group" "this" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${var.cluster_name}-default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id

  ami_type       = var.node_ami_type
  capacity_type  = var.node_capacity_type
  instance_types = var.node_instance_types

  scaling_config {
    min_size     = var.node_min_size
    max_size     = var.node_max_size
    desired_size = var.node_desired_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  # Nodes need their IAM policies, the networking add-ons, and a route out (image pulls
  # from ECR and the EKS API) before they can join. Listing the routes also keeps them
  # until the nodes are gone on destroy.
  depends_on = [
    aws_iam_role_policy_attachment.node_worker_policy,
    aws_iam_role_policy_attachment.node_cni_policy,
    aws_iam_role_policy_attachment.node_ecr_pull,
    aws_eks_addon.vpc_cni,
    aws_eks_addon.kube_proxy,
    aws_route.private_nat,
    aws_route_table_association.private,
  ]
}
