# Inputs. Every value that could be mistyped has a validation block, so a bad value fails at
# `terraform plan` with a clear message instead of half-way through an apply.

# --- Where and what -----------------------------------------------------------------------

variable "region" {
  description = "AWS region for every resource, e.g. us-east-1."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must look like an AWS region name, e.g. us-east-1 or eu-central-2."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster; also the prefix of IAM roles, log groups and the launch template."
  type        = string
  default     = "bluegreen"

  validation {
    # IAM role names built from it ("<name>-node-group", ...) must stay within 64 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.cluster_name))
    error_message = "The cluster name must be 3-32 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every AWS resource (merged into the provider's default_tags)."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.tags : length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "Tag keys must be at most 128 characters and must not start with \"aws:\"; values at most 256 characters."
  }

  validation {
    # The AWS Load Balancer Controller receives the tags as one "k=v,k=v" flag.
    condition     = alltrue([for k, v in var.tags : length(regexall("[,=]", "${k}${v}")) == 0])
    error_message = "Tag keys and values must not contain \",\" or \"=\" (the load balancer controller takes the tags as k=v,k=v)."
  }

  validation {
    # AWS allows 50 tags per resource; leave room for the fixed tags and the per-resource ones.
    condition     = length(var.tags) <= 40
    error_message = "At most 40 extra tags."
  }
}

# --- Network ------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC, /16 to /19. Private subnets get one eighth each, the public subnets share the last eighth."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("^[0-9.]+/[0-9]+$", var.vpc_cidr))
    error_message = "The VPC CIDR must be a valid IPv4 CIDR block, e.g. 10.40.0.0/16."
  }

  validation {
    # try(): Terraform's && does not short-circuit, so a malformed CIDR must not raise here.
    condition     = try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 19, false)
    error_message = "The VPC CIDR prefix must be between /16 and /19 (AWS allows /16 at most; the VPC CNI gives every pod an address, so small VPCs run out)."
  }

  validation {
    # cidrhost(x, 0) returns the network address: the CIDR must not have host bits set.
    condition     = try(cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0], false)
    error_message = "The VPC CIDR must be a network address (no host bits set), e.g. 10.40.0.0/16, not 10.40.1.0/16."
  }
}

variable "availability_zones" {
  description = "Availability zones (names, in var.region) for the subnets: at least two. Pinned, not discovered, so a zone AWS adds later never reshuffles the subnets. In us-east-1, avoid the zone whose ID is use1-az3 (no EKS control plane there)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6
    error_message = "Give between 2 and 6 availability zones: EKS needs subnets in at least two."
  }

  validation {
    condition     = length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Availability zones must not repeat."
  }

  validation {
    condition     = alltrue([for z in var.availability_zones : can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9][a-z]$", z))])
    error_message = "Availability zones must be zone names such as us-east-1a."
  }

  validation {
    condition     = alltrue([for z in var.availability_zones : can(regex("^${var.region}[a-z]$", z))])
    error_message = "Every availability zone must be in var.region (for another region, set availability_zones too)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper, but one zone's outage cuts egress everywhere). False: one per zone."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs and the EKS control plane logs in CloudWatch, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "Retention must be one CloudWatch Logs value of at least a year: 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

# --- EKS ----------------------------------------------------------------------------------

variable "cluster_version" {
  description = "Kubernetes minor version of the EKS control plane, e.g. 1.35."
  type        = string
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.3[0-9]$", var.cluster_version))
    error_message = "The cluster version must be a Kubernetes minor version of the form 1.3x, e.g. 1.35 (no patch level)."
  }
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted to cluster_endpoint_public_access_cidrs). Terraform itself needs it unless it runs inside the VPC."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public API endpoint, e.g. your workstation's or CI runner's address as [\"203.0.113.7/32\"]."
  type        = list(string)

  validation {
    condition     = length(var.cluster_endpoint_public_access_cidrs) >= 1
    error_message = "Give at least one CIDR block for the public API endpoint."
  }

  validation {
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "Every entry must be a valid IPv4 CIDR block, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = !contains(var.cluster_endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "0.0.0.0/0 would open the Kubernetes API to the whole internet; give the addresses that need it."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM role or user ARNs (e.g. a CI role) given cluster-admin through EKS access entries. The identity running Terraform is always admin."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.cluster_admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", a))])
    error_message = "Each entry must be an IAM role or user ARN, e.g. arn:aws:iam::123456789012:role/ci."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group (several types help Spot capacity)."
  type        = list(string)
  default     = ["t3.large"]

  validation {
    condition     = length(var.node_instance_types) >= 1 && length(var.node_instance_types) <= 20
    error_message = "Give between 1 and 20 instance types."
  }

  validation {
    condition     = alltrue([for t in var.node_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "Instance types must look like t3.large or m7i.xlarge."
  }
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT capacity for the node group."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_ami_type" {
  description = "EKS-optimised AMI family of the nodes. The launch template's root volume is /dev/xvda, which fits the Amazon Linux 2023 types."
  type        = string
  default     = "AL2023_x86_64_STANDARD"

  validation {
    condition     = contains(["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD"], var.node_ami_type)
    error_message = "node_ami_type must be AL2023_x86_64_STANDARD or AL2023_ARM_64_STANDARD (the instance types must match the architecture)."
  }
}

variable "node_disk_size" {
  description = "Root volume size of each node in GiB (encrypted gp3)."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size >= 20 && var.node_disk_size <= 1000 && floor(var.node_disk_size) == var.node_disk_size
    error_message = "node_disk_size must be a whole number of GiB from 20 to 1000."
  }
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 2

  validation {
    condition     = var.node_min_size >= 1 && var.node_min_size <= 100 && floor(var.node_min_size) == var.node_min_size
    error_message = "node_min_size must be a whole number from 1 to 100 (the platform add-ons need at least one node)."
  }
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 4

  validation {
    condition     = var.node_max_size >= 1 && var.node_max_size <= 100 && floor(var.node_max_size) == var.node_max_size
    error_message = "node_max_size must be a whole number from 1 to 100."
  }

  validation {
    condition     = var.node_max_size >= var.node_min_size
    error_message = "node_max_size must be at least node_min_size."
  }
}

variable "node_desired_size" {
  description = "Initial number of nodes; must lie between node_min_size and node_max_size."
  type        = number
  default     = 2

  validation {
    condition     = floor(var.node_desired_size) == var.node_desired_size
    error_message = "node_desired_size must be a whole number."
  }

  validation {
    condition     = var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size
    error_message = "node_desired_size must satisfy node_min_size <= node_desired_size <= node_max_size."
  }
}

# --- ECR ----------------------------------------------------------------------------------

variable "operator_repository_name" {
  description = "ECR repository of the operator image."
  type        = string
  default     = "bluegreen-operator"

  validation {
    condition     = can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", var.operator_repository_name)) && length(var.operator_repository_name) <= 256
    error_message = "ECR repository names are lower-case letters, digits and . _ - / separators."
  }
}

variable "app_repository_name" {
  description = "ECR repository of the demo application image."
  type        = string
  default     = "bluegreen-app"

  validation {
    condition     = can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", var.app_repository_name)) && length(var.app_repository_name) <= 256
    error_message = "ECR repository names are lower-case letters, digits and . _ - / separators."
  }
}

variable "ecr_keep_image_count" {
  description = "Images kept per repository by the lifecycle policy. Releases pin image digests, so keep enough to roll back to any release in the operator's history."
  type        = number
  default     = 100

  validation {
    condition     = var.ecr_keep_image_count >= 10 && var.ecr_keep_image_count <= 10000 && floor(var.ecr_keep_image_count) == var.ecr_keep_image_count
    error_message = "ecr_keep_image_count must be a whole number from 10 to 10000."
  }
}

variable "ecr_untagged_expiry_days" {
  description = "Days after which untagged images (left behind by failed or superseded pushes) expire."
  type        = number
  default     = 14

  validation {
    condition     = var.ecr_untagged_expiry_days >= 1 && var.ecr_untagged_expiry_days <= 365 && floor(var.ecr_untagged_expiry_days) == var.ecr_untagged_expiry_days
    error_message = "ecr_untagged_expiry_days must be a whole number from 1 to 365."
  }
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete repositories that still hold images. Apply it as true before a destroy you mean (see README)."
  type        = bool
  default     = false
}

# --- Platform add-ons ---------------------------------------------------------------------

variable "aws_load_balancer_controller_chart_version" {
  description = "Version of the AWS Load Balancer Controller Helm chart (https://aws.github.io/eks-charts); 3.x, whose Gateway API support is GA. Its IAM policy in traffic.tf is written for the calls of v3.5."
  type        = string
  default     = "3.5.0"

  validation {
    condition     = can(regex("^3\\.[0-9]+\\.[0-9]+$", var.aws_load_balancer_controller_chart_version))
    error_message = "Pin an exact 3.x chart version, e.g. 3.5.0 (Gateway API support is GA from 3.0)."
  }
}

variable "gateway_namespace" {
  description = "Namespace of the platform Gateway (and of its LoadBalancerConfiguration). HTTPRoutes name it in parentRefs."
  type        = string
  default     = "gateway"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.gateway_namespace))
    error_message = "A namespace name must be a DNS-1123 label."
  }
}

variable "gateway_scheme" {
  description = "internet-facing: the Gateway's ALB sits in the public subnets and answers on the internet. internal: private subnets, reachable inside the VPC only."
  type        = string
  default     = "internet-facing"

  validation {
    condition     = contains(["internet-facing", "internal"], var.gateway_scheme)
    error_message = "gateway_scheme must be internet-facing or internal."
  }
}

variable "gateway_certificate_arn" {
  description = "ACM certificate ARN for the Gateway's HTTPS listener (port 443; port 80 then only redirects to HTTPS). Null: plain HTTP on port 80."
  type        = string
  default     = null

  validation {
    condition     = var.gateway_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$", var.gateway_certificate_arn))
    error_message = "gateway_certificate_arn must be an ACM certificate ARN, e.g. arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-...."
  }
}

variable "gateway_routes_from" {
  description = "Which namespaces may attach HTTPRoutes to the Gateway: Selector (only namespaces labelled bluegreen.dev/gateway-routes=true) or All."
  type        = string
  default     = "Selector"

  validation {
    condition     = contains(["Selector", "All"], var.gateway_routes_from)
    error_message = "gateway_routes_from must be Selector or All."
  }
}

variable "ingress_nginx_enabled" {
  description = "Also install ingress-nginx (retired upstream) behind an NLB, for BlueGreenApps that still route with spec.ingress and the nginx canary annotations. The Gateway is the default traffic layer."
  type        = bool
  default     = false
}

variable "ingress_nginx_chart_version" {
  description = "Version of the ingress-nginx Helm chart (https://kubernetes.github.io/ingress-nginx), used when ingress_nginx_enabled is true."
  type        = string
  default     = "4.14.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.ingress_nginx_chart_version))
    error_message = "Pin an exact chart version, e.g. 4.14.1."
  }
}

variable "kube_prometheus_stack_chart_version" {
  description = "Version of the kube-prometheus-stack Helm chart (https://prometheus-community.github.io/helm-charts)."
  type        = string
  default     = "79.5.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kube_prometheus_stack_chart_version))
    error_message = "Pin an exact chart version, e.g. 79.5.0."
  }
}

variable "grafana_admin_password" {
  description = "Password of Grafana's admin user (the chart's default is public knowledge). Pass it as TF_VAR_grafana_admin_password."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.grafana_admin_password) >= 16
    error_message = "The Grafana admin password must be at least 16 characters."
  }
}

variable "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack. Its Prometheus answers at http://prometheus-operated.<this namespace>.svc:9090, the address BlueGreenApps give in spec.analysis.prometheus.address."
  type        = string
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.monitoring_namespace))
    error_message = "A namespace name must be a DNS-1123 label."
  }
}

variable "operator_namespace" {
  description = "Namespace of the bluegreen operator. Part of the IRSA trust condition."
  type        = string
  default     = "bluegreen-system"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.operator_namespace))
    error_message = "A namespace name must be a DNS-1123 label."
  }
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator; the only identity allowed to assume the operator's IAM role."
  type        = string
  default     = "bluegreen-operator"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.operator_service_account))
    error_message = "A ServiceAccount name must be a DNS-1123 subdomain."
  }
}

variable "operator_namespace_pod_security" {
  description = "Pod Security Admission level enforced in the operator's namespace."
  type        = string
  default     = "restricted"

  validation {
    condition     = contains(["privileged", "baseline", "restricted"], var.operator_namespace_pod_security)
    error_message = "Pod security level must be privileged, baseline or restricted."
  }
}

variable "operator_image_tag" {
  description = "Tag of the operator image in the operator ECR repository (tags are immutable there). Null: the chart's default (its appVersion)."
  type        = string
  default     = null

  validation {
    condition     = var.operator_image_tag == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.operator_image_tag))
    error_message = "An image tag is 1-128 characters: letters, digits, _ . -, not starting with . or -."
  }
}

variable "operator_cloudwatch_metrics" {
  description = "Let the operator read Amazon CloudWatch metrics (cloudwatch:GetMetricData with its IRSA role), for apps whose analysis has cloudwatch metrics. False (default): no such permission."
  type        = bool
  default     = false
}

variable "operator_amp_workspace_arn" {
  description = "ARN of an Amazon Managed Service for Prometheus workspace the operator may query (aps:QueryMetrics, SigV4 with its IRSA role). Null (default): no such permission."
  type        = string
  default     = null

  validation {
    condition     = var.operator_amp_workspace_arn == null || can(regex("^arn:aws[a-z-]*:aps:[a-z0-9-]+:[0-9]{12}:workspace/ws-[A-Za-z0-9-]+$", var.operator_amp_workspace_arn))
    error_message = "operator_amp_workspace_arn must be one workspace's ARN, e.g. arn:aws:aps:us-east-1:123456789012:workspace/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789 (no wildcards)."
  }
}
