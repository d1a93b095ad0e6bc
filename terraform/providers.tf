provider "aws" {
  region = var.region

  # Every taggable AWS resource in this configuration gets these tags. The launch template
  # repeats them in tag_specifications (default_tags do not reach instances and volumes
  # started by the node group) and the AWS Load Balancer Controller puts them on the load
  # balancers, target groups and security groups it creates (its defaultTags, traffic.tf).
  default_tags {
    tags = local.tags
  }
}

# Both Kubernetes-facing providers talk to the cluster created here. Credentials come from
# `aws eks get-token` at run time, so nothing long-lived lands in the state, and Terraform
# knows that every Helm release and namespace depends on the cluster (destroy removes them
# first).
provider "kubernetes" {
  host                   = aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", aws_eks_cluster.this.name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes = {
    host                   = aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)

    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", aws_eks_cluster.this.name, "--region", var.region]
    }
  }
}
