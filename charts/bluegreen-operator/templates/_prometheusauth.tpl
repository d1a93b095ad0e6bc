{{/*
The operator's Prometheus credentials (values.prometheusAuth): BLUEGREEN_PROMETHEUS_*
settings naming files in volumes mounted into the pod. Volumes, not subPath mounts, so
that a rotated token or a new CA reaches the running operator. The operator reads these
files; it never reads a Secret through the API (its ClusterRole has no Secrets).

Each define renders a YAML list without a leading newline (or nothing); deployment.yaml
indents it.
*/}}

{{/* "true" when one of the credentials of the settings' profile is set. */}}
{{- define "bluegreen.prometheusAuth.credentials" -}}
{{- $a := .Values.prometheusAuth -}}
{{- if or $a.bearerToken.source $a.caConfigMap.name $a.sigv4.enabled }}true{{ end -}}
{{- end }}

{{/* The profiles file: "inline" (values.prometheusAuth.profiles, a ConfigMap of this
release), "configMap" (profilesConfigMap.name) or "" (none). */}}
{{- define "bluegreen.prometheusAuth.profilesFrom" -}}
{{- $a := .Values.prometheusAuth -}}
{{- if and $a.profiles $a.profilesConfigMap.name -}}
{{- fail "prometheusAuth: set either profiles or profilesConfigMap.name, not both" -}}
{{- end -}}
{{- if $a.profiles }}inline{{ else if $a.profilesConfigMap.name }}configMap{{ end -}}
{{- end }}

{{- define "bluegreen.prometheusAuth.configMapName" -}}
{{- printf "%s-prometheus-auth" (include "bluegreen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A pod annotation's value that changes with the inline profiles, so that a change
rolls the operator (it reads its profiles file once, at start). */}}
{{- define "bluegreen.prometheusAuth.checksum" -}}
{{- with .Values.prometheusAuth.profiles }}{{ toYaml . | sha256sum }}{{ end -}}
{{- end }}

{{- define "bluegreen.prometheusAuth.env" -}}
{{- $a := .Values.prometheusAuth -}}
{{- $credentials := include "bluegreen.prometheusAuth.credentials" . -}}
{{- if and $credentials (not $a.addresses) -}}
{{- fail "prometheusAuth.addresses must name the Prometheus addresses the credentials are for (they are sent nowhere else)" -}}
{{- end -}}
{{- if and $a.addresses (not $credentials) -}}
{{- fail "prometheusAuth.addresses is set, but no credentials for them (bearerToken.source, caConfigMap.name or sigv4.enabled)" -}}
{{- end -}}
{{- if and (eq $a.bearerToken.source "secret") (not $a.bearerToken.secretName) -}}
{{- fail "prometheusAuth.bearerToken.secretName is required with source: secret" -}}
{{- end -}}
{{- if and $a.bearerToken.source $a.sigv4.enabled -}}
{{- fail "prometheusAuth: a bearer token and SigV4 both set the Authorization header; choose one" -}}
{{- end -}}
{{- if $a.addresses }}
- name: BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES
  value: {{ join "," $a.addresses | quote }}
{{- end }}
{{- if $a.bearerToken.source }}
- name: BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE
  value: /var/run/secrets/bluegreen/prometheus/token
{{- end }}
{{- if $a.caConfigMap.name }}
- name: BLUEGREEN_PROMETHEUS_CA_FILE
  value: /etc/bluegreen/prometheus-ca/ca.crt
{{- end }}
{{- if $a.sigv4.enabled }}
- name: BLUEGREEN_PROMETHEUS_SIGV4
  value: "true"
{{- with $a.sigv4.region }}
- name: BLUEGREEN_PROMETHEUS_SIGV4_REGION
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if include "bluegreen.prometheusAuth.profilesFrom" . }}
- name: BLUEGREEN_PROMETHEUS_AUTH_FILE
  value: /etc/bluegreen/prometheus-auth/profiles.yaml
{{- end }}
{{- end }}

{{- define "bluegreen.prometheusAuth.volumeMounts" -}}
{{- $a := .Values.prometheusAuth -}}
{{- if $a.bearerToken.source }}
- name: prometheus-token
  mountPath: /var/run/secrets/bluegreen/prometheus
  readOnly: true
{{- end }}
{{- if $a.caConfigMap.name }}
- name: prometheus-ca
  mountPath: /etc/bluegreen/prometheus-ca
  readOnly: true
{{- end }}
{{- if include "bluegreen.prometheusAuth.profilesFrom" . }}
- name: prometheus-auth
  mountPath: /etc/bluegreen/prometheus-auth
  readOnly: true
{{- end }}
{{- with $a.volumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "bluegreen.prometheusAuth.volumes" -}}
{{- $a := .Values.prometheusAuth -}}
{{- if eq $a.bearerToken.source "serviceAccountToken" }}
- name: prometheus-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ $a.bearerToken.expirationSeconds }}
          {{- with $a.bearerToken.audience }}
          audience: {{ . | quote }}
          {{- end }}
{{- else if eq $a.bearerToken.source "secret" }}
- name: prometheus-token
  secret:
    secretName: {{ $a.bearerToken.secretName }}
    items:
      - key: {{ $a.bearerToken.secretKey }}
        path: token
{{- end }}
{{- if $a.caConfigMap.name }}
- name: prometheus-ca
  configMap:
    name: {{ $a.caConfigMap.name }}
    items:
      - key: {{ $a.caConfigMap.key }}
        path: ca.crt
{{- end }}
{{- $from := include "bluegreen.prometheusAuth.profilesFrom" . }}
{{- if $from }}
- name: prometheus-auth
  configMap:
    {{- if eq $from "inline" }}
    name: {{ include "bluegreen.prometheusAuth.configMapName" . }}
    items:
      - key: profiles.yaml
        path: profiles.yaml
    {{- else }}
    name: {{ $a.profilesConfigMap.name }}
    items:
      - key: {{ $a.profilesConfigMap.key }}
        path: profiles.yaml
    {{- end }}
{{- end }}
{{- with $a.volumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
