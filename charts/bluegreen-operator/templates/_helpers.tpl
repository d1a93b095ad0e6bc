{{/* The chart's name, overridable with nameOverride. */}}
{{- define "bluegreen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every namespaced object of the release: the release name alone when it already
contains the chart's name (`helm install bluegreen-operator ...`), else release-chart.
*/}}
{{- define "bluegreen.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "bluegreen.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Cluster-scoped objects (ClusterRole, ClusterRoleBinding) live in one flat space for every
release in the cluster, and a namespaced install's Roles live in namespaces that are not the
release's own: their names carry the release's namespace too.
*/}}
{{- define "bluegreen.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "bluegreen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bluegreen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bluegreen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bluegreen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bluegreen.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: bluegreen
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bluegreen.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bluegreen.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest is given (immutable), else repository:tag. */}}
{{- define "bluegreen.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the metrics server listens (BLUEGREEN_METRICS_BIND), from metrics.exposure. */}}
{{- define "bluegreen.metricsBind" -}}
{{- if eq .Values.metrics.exposure "localhost" }}127.0.0.1{{ else }}0.0.0.0{{ end }}
{{- end }}

{{/* A map as comma-separated key=value pairs, in key order (operator settings). */}}
{{- define "bluegreen.pairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
