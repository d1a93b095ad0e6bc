{{/*
The operator's notification endpoints (values.notifications): a ConfigMap with the
notifications file, BLUEGREEN_NOTIFICATIONS_* settings, and the Secret of the URLs and
header values mounted as a volume (not subPath: a changed Secret reaches the running
operator, which reads these files at each delivery). Nothing here when no endpoint is set.

Each define renders a YAML list without a leading newline (or nothing); deployment.yaml
indents it.
*/}}

{{- define "bluegreen.notifications.secretPath" -}}
/var/run/secrets/bluegreen/notifications
{{- end }}

{{- define "bluegreen.notifications.configMapName" -}}
{{- printf "%s-notifications" (include "bluegreen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The notifications file, checked: subscriptions name endpoints, files are in the Secret. */}}
{{- define "bluegreen.notifications.file" -}}
{{- $n := .Values.notifications -}}
{{- $dir := printf "%s/" (include "bluegreen.notifications.secretPath" .) -}}
{{- $names := list -}}
{{- range $n.endpoints -}}
{{- if has .name $names -}}
{{- fail (printf "notifications.endpoints: %s is listed twice" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- $files := list -}}
{{- with .urlFile }}{{ $files = append $files . }}{{ end -}}
{{- range $header, $value := .headers -}}
{{- if kindIs "map" $value }}{{ $files = append $files $value.file }}{{ end -}}
{{- end -}}
{{- range $files -}}
{{- if or (not $n.secretName) (not (hasPrefix $dir .)) -}}
{{- fail (printf "notifications.endpoints: %s is not a file of notifications.secretName (mounted at %s)" . $dir) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $n.subscriptions -}}
{{- if not (has .endpoint $names) -}}
{{- fail (printf "notifications.subscriptions: %s is not one of notifications.endpoints" .endpoint) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "endpoints" $n.endpoints "subscriptions" $n.subscriptions) -}}
{{- end }}

{{/* A pod annotation's value that changes with the endpoints and subscriptions, so that a
change rolls the operator (it reads its notifications file once, at start). */}}
{{- define "bluegreen.notifications.checksum" -}}
{{- if .Values.notifications.endpoints }}{{ include "bluegreen.notifications.file" . | sha256sum }}{{ end -}}
{{- end }}

{{- define "bluegreen.notifications.env" -}}
{{- $n := .Values.notifications -}}
{{- if $n.endpoints }}
- name: BLUEGREEN_NOTIFICATIONS_FILE
  value: /etc/bluegreen/notifications/notifications.yaml
- name: BLUEGREEN_NOTIFICATIONS_ALLOWED
  value: {{ join "," $n.allowed | quote }}
- name: BLUEGREEN_NOTIFICATIONS_TIMEOUT_SECONDS
  value: {{ $n.timeoutSeconds | quote }}
- name: BLUEGREEN_NOTIFICATIONS_ATTEMPTS
  value: {{ $n.attempts | quote }}
- name: BLUEGREEN_NOTIFICATIONS_RETRY_SECONDS
  value: {{ $n.retrySeconds | quote }}
- name: BLUEGREEN_NOTIFICATIONS_QUEUE_SIZE
  value: {{ $n.queueSize | quote }}
{{- end }}
{{- end }}

{{- define "bluegreen.notifications.volumeMounts" -}}
{{- $n := .Values.notifications -}}
{{- if $n.endpoints }}
- name: notifications
  mountPath: /etc/bluegreen/notifications
  readOnly: true
{{- if $n.secretName }}
- name: notifications-secret
  mountPath: {{ include "bluegreen.notifications.secretPath" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "bluegreen.notifications.volumes" -}}
{{- $n := .Values.notifications -}}
{{- if $n.endpoints }}
- name: notifications
  configMap:
    name: {{ include "bluegreen.notifications.configMapName" . }}
    items:
      - key: notifications.yaml
        path: notifications.yaml
{{- if $n.secretName }}
- name: notifications-secret
  secret:
    secretName: {{ $n.secretName }}
{{- end }}
{{- end }}
{{- end }}
