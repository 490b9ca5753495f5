variable "kubeconfig_path" {
  description = "Kubeconfig of the cluster (kind and k3d write ~/.kube/config)."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context in the kubeconfig: kind-<name> for kind, k3d-<name> for k3d."
  type        = string
  default     = "kind-rtml"
}

variable "image_repository" {
  description = "rtml image, loaded into the cluster (`kind load docker-image`, `k3d image import`)."
  type        = string
  default     = "rtml"
}

variable "rtml_secrets" {
  description = "RTML_* secrets for the rtml Secret; set TF_VAR_rtml_secrets, never a committed file."
  type        = map(string)
  sensitive   = true
}

variable "mlflow_postgres" {
  description = "MLflow's Postgres user and password."
  type = object({
    username = string
    password = string
  })
  sensitive = true
}
