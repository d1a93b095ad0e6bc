# Terraform/OpenTofu and provider versions.
#
# Terraform >= 1.10 (or OpenTofu >= 1.10) is required for two reasons:
#   * the S3 backend's native lock file (`use_lockfile = true`, see backend.tf.example), which
#     replaces the DynamoDB lock table;
#   * variable validations that refer to other variables (node_desired_size checks
#     node_min_size and node_max_size).
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    helm = {
      # 3.x: `kubernetes = { ... }` and `set = [ ... ]` are attributes, not blocks.
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.0"
    }
    http = {
      # Downloads the Gateway API CRDs at plan time (traffic.tf); 3.x reports status_code and
      # response_body instead of failing on a non-2xx answer.
      source  = "hashicorp/http"
      version = "~> 3.0"
    }
  }
}
