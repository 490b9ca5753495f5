# The module installs onto whatever cluster the caller's `helm` and `kubernetes` providers point
# at (the root configures them from a kubeconfig; see examples/kind). Providers are not configured
# inside the module, so it can be used with count/for_each and removed cleanly.

variable "namespace" {
  description = "Namespace of rtml (created by the module)."
  type        = string
  default     = "rtml"
}

variable "release_name" {
  description = "Helm release name of rtml; also the RayService's name."
  type        = string
  default     = "rtml"
}

variable "chart_path" {
  description = "Path to the rtml chart (charts/rtml of this repository)."
  type        = string
}

variable "values" {
  description = "Values for the rtml chart (see charts/rtml/values.yaml); merged over its defaults."
  type        = any
  default     = {}
}

variable "install_kuberay" {
  description = "Install the KubeRay operator (false when the cluster already runs one)."
  type        = bool
  default     = true
}

variable "kuberay_namespace" {
  description = "Namespace of the KubeRay operator."
  type        = string
  default     = "kuberay-system"
}

variable "kuberay_version" {
  description = "Chart version of kuberay-operator; rtml's manifests are validated against the v1.7 CRDs."
  type        = string
  default     = "1.7.0"
}

variable "rtml_secrets" {
  description = "RTML_* secrets (RTML_CHECKPOINT_KEY, RTML_API_TOKEN, RTML_LAKE_S3_ACCESS_KEY_ID, RTML_LAKE_S3_SECRET_ACCESS_KEY). Written into the Secret the chart references; pass through TF_VAR_rtml_secrets, never a committed file."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = alltrue([for k in keys(var.rtml_secrets) : can(regex("^RTML_[A-Z0-9_]+$", k))])
    error_message = "Every key of rtml_secrets must be an RTML_* variable name."
  }
}

variable "mlflow_postgres" {
  description = "Credentials of MLflow's Postgres backend (username, password); null when the chart's MLflow is off or the Secret exists."
  type = object({
    username = string
    password = string
  })
  sensitive = true
  default   = null
}

variable "mlflow_s3" {
  description = "S3 keys of MLflow's artifact store (access_key_id, secret_access_key); null for cloud identity (IRSA, workload identity)."
  type = object({
    access_key_id     = string
    secret_access_key = string
  })
  sensitive = true
  default   = null
}
