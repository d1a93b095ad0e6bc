{{- define "platform-gateway.labels" -}}
app.kubernetes.io/name: platform-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- /* allowedRoutes of the listener applications attach to. */ -}}
{{- define "platform-gateway.appRoutes" -}}
allowedRoutes:
  kinds:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
  namespaces:
    from: {{ .Values.routes.from }}
    {{- if eq .Values.routes.from "Selector" }}
    selector:
      matchLabels:
        {{ .Values.routes.namespaceLabel }}: {{ .Values.routes.namespaceLabelValue | quote }}
    {{- end }}
{{- end }}
