# rtml on a local kind or k3d cluster: `kind create cluster --name rtml` (or k3d), then
#   TF_VAR_rtml_secrets='{"RTML_CHECKPOINT_KEY":"..."}' terraform init && terraform apply
# A laptop cluster has no Kafka, S3 or Postgres of its own: this example turns on the Strimzi
# Kafka (install the Strimzi operator first) and expects an S3-compatible store (SeaweedFS, as
# `rtml up --profile cluster` runs) and Postgres at the addresses below.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig_path
  config_context = var.kube_context
}

provider "helm" {
  kubernetes = {
    config_path    = var.kubeconfig_path
    config_context = var.kube_context
  }
}

module "rtml" {
  source     = "../../modules/rtml"
  chart_path = "${path.module}/../../../charts/rtml"

  rtml_secrets    = var.rtml_secrets
  mlflow_postgres = var.mlflow_postgres

  values = {
    image = { repository = var.image_repository, pullPolicy = "IfNotPresent" }
    kafka = { topicReplication = 1, strimzi = { enabled = true, replicas = 1, storage = "5Gi" } }
    lake  = { s3 = { bucket = "rtml-lake", endpoint = "http://seaweedfs-s3.storage:8333" } }
    mlflow = {
      postgres  = { host = "postgres.postgres" }
      artifacts = { destination = "s3://rtml-mlflow/artifacts", endpoint = "http://seaweedfs-s3.storage:8333", existingSecret = "" }
    }
    producers = { enabled = true }
    # A laptop: one small pod per Ray group.
    rayService = {
      upgradeStrategy = { type = "NewCluster" }
      head            = { resources = { requests = { cpu = "500m", memory = "2Gi" }, limits = { cpu = "1", memory = "2Gi" } } }
      learners        = { replicas = 1, slots = 3, resources = { requests = { cpu = "1", memory = "3Gi" }, limits = { cpu = "3", memory = "3Gi" } } }
      serve           = { minReplicas = 1, maxReplicas = 1, resources = { requests = { cpu = "500m", memory = "1536Mi" }, limits = { cpu = "1", memory = "1536Mi" } } }
    }
  }
}
