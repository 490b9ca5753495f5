output "namespace" {
  description = "Namespace rtml runs in."
  value       = kubernetes_namespace_v1.rtml.metadata[0].name
}

output "serve_service" {
  description = "The Serve API's Service (KubeRay keeps it on the healthy cluster): port 8000."
  value       = "${var.release_name}-serve-svc.${kubernetes_namespace_v1.rtml.metadata[0].name}.svc"
}

output "head_service" {
  description = "The Ray head's Service: dashboard and job API on 8265 (`ray job submit`)."
  value       = "${var.release_name}-head-svc.${kubernetes_namespace_v1.rtml.metadata[0].name}.svc"
}
