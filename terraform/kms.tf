# One customer-managed key for the platform's data at rest: Kubernetes Secrets in etcd
# (EKS envelope encryption), ECR image layers, and the CloudWatch log groups.

resource "aws_kms_key" "this" {
  description             = "${var.cluster_name}: EKS secrets, ECR images, CloudWatch logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.cluster_name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  # The account administers the key through IAM (the key's default policy). EKS and ECR use
  # the key through grants made with the caller's IAM permissions, so they need no entry here.
  #checkov:skip=CKV_AWS_109:A key policy's "*" resource means this key only; account-level administration through IAM is the documented default key policy.
  #checkov:skip=CKV_AWS_111:Same: in a key policy "*" is the key itself, not every resource in the account.
  #checkov:skip=CKV_AWS_356:Same: in a key policy "*" is the key itself, not every resource in the account.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the two log groups of this configuration, and nothing else.
  statement {
    sid    = "CloudWatchLogsForThisClusterOnly"
    effect = "Allow"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:${local.cluster_log_group_name}",
        "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:${local.flow_log_log_group_name}",
      ]
    }
  }
}
