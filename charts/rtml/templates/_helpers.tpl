{{/* Names and labels. */}}
{{- define "rtml.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end }}

{{- define "rtml.labels" -}}
app.kubernetes.io/name: rtml
app.kubernetes.io/instance: {{ include "rtml.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "rtml.selector" -}}
app.kubernetes.io/name: rtml
app.kubernetes.io/instance: {{ include "rtml.name" . }}
{{- end }}

{{- define "rtml.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end }}

{{/* Addresses every rtml pod gets through the ConfigMap. */}}
{{- define "rtml.kafkaBootstrap" -}}
{{- if .Values.kafka.strimzi.enabled -}}{{ include "rtml.name" . }}-kafka-kafka-bootstrap:9092
{{- else -}}{{ .Values.kafka.bootstrap }}{{- end }}
{{- end }}

{{- define "rtml.redisUrl" -}}
{{- if .Values.redis.enabled -}}redis://{{ include "rtml.name" . }}-redis:6379/0
{{- else -}}{{ required "redis.url is required when redis.enabled=false" .Values.redis.url }}{{- end }}
{{- end }}

{{- define "rtml.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}http://{{ include "rtml.name" . }}-mlflow:5000
{{- else -}}{{ required "mlflow.trackingUri is required when mlflow.enabled=false" .Values.mlflow.trackingUri }}{{- end }}
{{- end }}

{{/* envFrom of every rtml pod: the settings ConfigMap and the user's Secret. */}}
{{- define "rtml.envFrom" -}}
- configMapRef: {name: {{ include "rtml.name" . }}-config}
- secretRef: {name: {{ .Values.secrets.existingSecret }}, optional: true}
{{- end }}

{{- define "rtml.podSecurity" -}}
securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 100, fsGroup: 100}
{{- end }}

{{- define "rtml.containerSecurity" -}}
securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
{{- end }}

{{/*
rtml.kuberay: the Helm half of kuberay/render.py. Fills a manifest of kuberay/manifests (linked
into files/kuberay) by replacing every ${key} with the value as JSON (JSON is YAML). A test renders
the same manifest with kuberay.render and requires the same object; a placeholder left unfilled
fails the install here.
*/}}
{{- define "rtml.kuberay" -}}
{{- $text := .root.Files.Get (printf "files/kuberay/%s" .file) -}}
{{- if not $text }}{{ fail (printf "files/kuberay/%s is missing (a link to kuberay/manifests)" .file) }}{{ end -}}
{{- range $key, $value := .values -}}
{{- $text = replace (printf "${%s}" $key) (toJson $value) $text -}}
{{- end -}}
{{- $left := regexFindAll "\\$\\{[a-z_]+\\}" $text -1 -}}
{{- if $left }}{{ fail (printf "%s: no value for %s" .file (join ", " $left)) }}{{ end -}}
{{ $text }}
{{- end }}

{{/* The placeholders every kuberay manifest shares (ClusterParams.common in kuberay/render.py). */}}
{{- define "rtml.kuberayCommon" -}}
{{- $name := include "rtml.name" . -}}
{{- $labels := include "rtml.labels" . | fromYaml -}}
{{- $pod := include "rtml.selector" . | fromYaml -}}
{{- $envFrom := list (dict "configMapRef" (dict "name" (printf "%s-config" $name))) (dict "secretRef" (dict "name" .Values.secrets.existingSecret "optional" true)) -}}
{{- dict "namespace" .Release.Namespace "labels" $labels "pod_labels" $pod "image" (include "rtml.image" .) "image_pull_policy" .Values.image.pullPolicy "env_from" $envFrom "head_resources" .Values.rayService.head.resources | toJson -}}
{{- end }}
