# KubeRay operator, rtml's namespace and Secrets, and the rtml chart. The chart never holds a
# secret: this module writes them as Kubernetes Secrets and the chart references them by name.

locals {
  secret_name      = "${var.release_name}-secrets"
  postgres_secret  = "${var.release_name}-mlflow-postgres"
  mlflow_s3_secret = "${var.release_name}-mlflow-s3"
  chart_secret_names = {
    secrets = { existingSecret = local.secret_name }
    mlflow = {
      postgres  = { existingSecret = local.postgres_secret }
      artifacts = { existingSecret = var.mlflow_s3 == null ? "" : local.mlflow_s3_secret }
    }
  }
}

resource "helm_release" "kuberay_operator" {
  count            = var.install_kuberay ? 1 : 0
  name             = "kuberay-operator"
  repository       = "https://ray-project.github.io/kuberay-helm/"
  chart            = "kuberay-operator"
  version          = var.kuberay_version
  namespace        = var.kuberay_namespace
  create_namespace = true
  wait             = true
}

resource "kubernetes_namespace_v1" "rtml" {
  metadata {
    name   = var.namespace
    labels = { "app.kubernetes.io/part-of" = "rtml" }
  }
}

resource "kubernetes_secret_v1" "rtml" {
  metadata {
    name      = local.secret_name
    namespace = kubernetes_namespace_v1.rtml.metadata[0].name
  }
  data = var.rtml_secrets
}

resource "kubernetes_secret_v1" "mlflow_postgres" {
  count = var.mlflow_postgres == null ? 0 : 1
  metadata {
    name      = local.postgres_secret
    namespace = kubernetes_namespace_v1.rtml.metadata[0].name
  }
  data = {
    username = var.mlflow_postgres.username
    password = var.mlflow_postgres.password
  }
}

resource "kubernetes_secret_v1" "mlflow_s3" {
  count = var.mlflow_s3 == null ? 0 : 1
  metadata {
    name      = local.mlflow_s3_secret
    namespace = kubernetes_namespace_v1.rtml.metadata[0].name
  }
  data = {
    AWS_ACCESS_KEY_ID     = var.mlflow_s3.access_key_id
    AWS_SECRET_ACCESS_KEY = var.mlflow_s3.secret_access_key
  }
}

resource "helm_release" "rtml" {
  name      = var.release_name
  chart     = var.chart_path
  namespace = kubernetes_namespace_v1.rtml.metadata[0].name
  # The caller's values first, the Secret names this module created last: they must match.
  values = [yamlencode(var.values), yamlencode(local.chart_secret_names)]
  # A RayService becomes Ready only after its cluster started and Serve deployed (minutes);
  # Helm waits for the Deployments and StatefulSets, `rtml k8s status` shows the rest.
  wait    = true
  timeout = 900

  depends_on = [
    helm_release.kuberay_operator,
    kubernetes_secret_v1.rtml,
    kubernetes_secret_v1.mlflow_postgres,
    kubernetes_secret_v1.mlflow_s3,
  ]
}
