# IAM Roles for Service Accounts: the cluster's OIDC issuer becomes an IAM identity provider,
# and the operator's ServiceAccount (and nothing else) may assume its role: read-only ECR,
# and optionally queries to one Amazon Managed Prometheus workspace and CloudWatch metrics. The AWS Load Balancer
# Controller's role is in traffic.tf; both trust policies are irsa_assume below.

resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM trusts the EKS OIDC issuers' certificate authority itself.

  tags = {
    Name = "${var.cluster_name}-irsa"
  }
}

# Who may assume each IRSA role: one ServiceAccount ("namespace:name"), and nothing else.
locals {
  irsa_service_accounts = {
    operator                     = "${var.operator_namespace}:${var.operator_service_account}"
    aws_load_balancer_controller = "${local.aws_load_balancer_controller_namespace}:${local.aws_load_balancer_controller_service_account}"
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_service_accounts

  statement {
    sid     = "OnlyItsServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${each.value}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = "${var.cluster_name}-operator"
  description          = "bluegreen operator (IRSA): resolve image tags to digests in this platform's ECR repositories"
  assume_role_policy   = data.aws_iam_policy_document.irsa_assume["operator"].json
  max_session_duration = 3600
}

# What the operator does with ECR: resolve a tag to its digest (DescribeImages), read the
# image manifest (BatchGetImage) and check that the repository exists (DescribeRepositories),
# always through the ECR API with explicit repository names.
#
# Not granted: ecr:GetAuthorizationToken. It only issues a password for the Docker registry
# protocol (docker/kubelet pulls); the ECR API calls above are signed with the role's own
# credentials and need no registry token. The kubelet pulls images with the node role.
data "aws_iam_policy_document" "operator_ecr_read" {
  statement {
    sid    = "ReadImageMetadataOfPlatformRepositories"
    effect = "Allow"
    actions = [
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
    ]
    resources = [for repo in aws_ecr_repository.this : repo.arn]
  }
}

resource "aws_iam_policy" "operator_ecr_read" {
  name        = "${var.cluster_name}-operator-ecr-read"
  description = "Read-only image metadata of the ${var.cluster_name} ECR repositories"
  policy      = data.aws_iam_policy_document.operator_ecr_read.json
}

resource "aws_iam_role_policy_attachment" "operator_ecr_read" {
  role       = aws_iam_role.operator.name
  policy_arn = aws_iam_policy.operator_ecr_read.arn
}

# Amazon Managed Service for Prometheus (optional): with operator_amp_workspace_arn set, the
# operator may run PromQL queries (signed with SigV4 by the role's credentials) against that
# one workspace, and nothing else there: no writes, no other workspace. Off by default.
data "aws_iam_policy_document" "operator_amp_query" {
  count = var.operator_amp_workspace_arn == null ? 0 : 1

  statement {
    sid       = "QueryOneManagedPrometheusWorkspace"
    effect    = "Allow"
    actions   = ["aps:QueryMetrics"]
    resources = [var.operator_amp_workspace_arn]
  }
}

resource "aws_iam_policy" "operator_amp_query" {
  count = var.operator_amp_workspace_arn == null ? 0 : 1

  name        = "${var.cluster_name}-operator-amp-query"
  description = "Query (aps:QueryMetrics) one Amazon Managed Prometheus workspace"
  policy      = data.aws_iam_policy_document.operator_amp_query[0].json
}

resource "aws_iam_role_policy_attachment" "operator_amp_query" {
  count = var.operator_amp_workspace_arn == null ? 0 : 1

  role       = aws_iam_role.operator.name
  policy_arn = aws_iam_policy.operator_amp_query[0].arn
}

# Amazon CloudWatch (optional): with operator_cloudwatch_metrics, the operator may read
# metrics with GetMetricData, for apps whose analysis has `cloudwatch` metrics (an ALB's
# 5xx count per target group, for example). Reading only: no PutMetricData, no alarms, no
# logs. GetMetricData has no resource-level permissions, so the resource is "*".
data "aws_iam_policy_document" "operator_cloudwatch_read" {
  count = var.operator_cloudwatch_metrics ? 1 : 0

  statement {
    sid       = "ReadMetricsForAnalysis"
    effect    = "Allow"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "operator_cloudwatch_read" {
  count = var.operator_cloudwatch_metrics ? 1 : 0

  name        = "${var.cluster_name}-operator-cloudwatch-read"
  description = "Read CloudWatch metrics (cloudwatch:GetMetricData) for analysis"
  policy      = data.aws_iam_policy_document.operator_cloudwatch_read[0].json
}

resource "aws_iam_role_policy_attachment" "operator_cloudwatch_read" {
  count = var.operator_cloudwatch_metrics ? 1 : 0

  role       = aws_iam_role.operator.name
  policy_arn = aws_iam_policy.operator_cloudwatch_read[0].arn
}
