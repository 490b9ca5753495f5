output "serve_service" {
  description = "Serve API; `kubectl -n rtml port-forward svc/rtml-serve-svc 8000`."
  value       = module.rtml.serve_service
}

output "head_service" {
  description = "Ray head; `kubectl -n rtml port-forward svc/rtml-head-svc 8265` for `ray job submit`."
  value       = module.rtml.head_service
}
