# IAM Roles for Service Accounts: the cluster's OIDC issuer becomes an IAM identity provider,
# and the operator's ServiceAccount (and nothing else) may assume a read-only ECR role.

resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM trusts the EKS OIDC issuers' certificate authority itself.

  tags = {
    Name = "${var.cluster_name}-irsa"
  }
}

data "aws_iam_policy_document" "operator_assume" {
  statement {
    sid     = "OnlyTheOperatorServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.operator_namespace}:${var.operator_service_account}"]
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
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
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
