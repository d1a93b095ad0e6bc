# Shared lookups and names used by the other files.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Checks at plan time that the pinned zones exist and are available to the account (and are
# regular zones: Local and Wavelength Zones cannot host EKS subnets).
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = var.availability_zones
  }

  filter {
    name   = "zone-type"
    values = ["availability-zone"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zones)
      error_message = "Some of var.availability_zones are not available availability zones of this account in var.region."
    }
  }
}

locals {
  # Tags on every AWS resource (provider default_tags).
  tags = merge(var.tags, {
    Project   = "bluegreen"
    Cluster   = var.cluster_name
    ManagedBy = "terraform"
  })

  # In the order given (data.aws_availability_zones.selected only checks them), so subnet
  # counts are known at plan time.
  azs = var.availability_zones

  # Subnet plan: the VPC is cut into eighths. Private subnets (nodes and pods; the VPC CNI
  # gives every pod a VPC address) take eighths 0..5, one per zone. The public subnets
  # (load balancers and NAT gateways only) share the last eighth, 1/32 of it each.
  private_subnet_cidrs = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 3, i)]
  public_subnet_cidrs  = [for i, _ in local.azs : cidrsubnet(cidrsubnet(var.vpc_cidr, 3, 7), 5, i)]

  nat_gateway_count = var.single_nat_gateway ? 1 : length(local.azs)

  ecr_repositories = {
    operator = var.operator_repository_name
    app      = var.app_repository_name
  }

  # The OIDC issuer without its scheme: the prefix of the IRSA condition keys.
  oidc_issuer = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")

  cluster_log_group_name  = "/aws/eks/${var.cluster_name}/cluster"
  flow_log_log_group_name = "/aws/vpc-flow-logs/${var.cluster_name}"
}
