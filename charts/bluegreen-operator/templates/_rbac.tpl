{{/*
The rules of every namespaced kind the operator uses: exactly its API calls, the same in a
ClusterRole (every namespace) and in each Role of a namespaced install (watchNamespaces).
Its watches (bluegreen.adapters.watch: list and watch every kind it owns, filtered by its
labels), its writes (bluegreen.adapters.k8s) and kopf (watching the apps, events).
No Secrets (unless configTracking.secrets), no pods/exec, no wildcards. Server-side apply creates an object that does not
exist yet, so `create` comes with `patch` wherever the operator applies, and `get`: when the
create finds an object of that name which is not in its caches (not labelled as the
operator's), the operator reads it to say whose it is, and leaves it alone.
*/}}
{{- define "bluegreen.rules.namespaced" -}}
# kopf lists and watches the apps; the gateway removes a handled bluegreen.dev/request
# annotation.
- apiGroups: ["bluegreen.dev"]
  resources: ["bluegreenapps"]
  verbs: ["list", "watch", "patch"]
# The whole release state: phase, colours, revisions, timeline, history.
- apiGroups: ["bluegreen.dev"]
  resources: ["bluegreenapps/status"]
  verbs: ["patch"]
# The blue and green Deployments: watched, applied, scaled (a patch of spec.replicas).
# delete: a Deployment an earlier operator version made (its selector cannot change) is
# replaced at its colour's next release, while that colour serves no traffic.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# The active, preview and metrics Services: watched and applied (the selector flip).
# delete: the <app>-legacy metrics Service goes once no such Deployment is left.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# Readiness of every replica of both colours (pods carrying bluegreen.dev/color). patch:
# the labels and annotations of strategy.activeMetadata/previewMetadata, set on the pods of
# the colour in that role (metadata only: a pod is never restarted by it).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
# A PodDisruptionBudget per colour (spec.podDisruptionBudget): delete when the field is
# removed or the colour is scaled to zero.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# What the Services really route to, read back after every flip.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# Release events (events.k8s.io/v1, the operator) and kopf's warnings (core/v1).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The app's ServiceMonitor, when Prometheus Operator's CRD is served.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["list", "watch", "get", "create", "patch"]
# The app's Ingress and canary Ingress (spec.ingress, the canary feature): delete removes
# the canary Ingress once its steps are over.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# Gateway API: the HTTPRoutes apps route through (spec.trafficRouting.gatewayAPI), owned
# by their authors; the operator patches the backendRefs of one rule, never creates or
# deletes a route.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["list", "watch", "patch"]
# The AnalysisTemplates apps name (analysis.prePromotionAnalysis and the like): read from
# the operator's watch cache, never written.
- apiGroups: ["bluegreen.dev"]
  resources: ["analysistemplates"]
  verbs: ["list", "watch"]
# Analysis Jobs (job metrics): watched (a finished Job wakes its app), applied once per
# measurement, deleted with their pods when the next analysis window opens.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# Config tracking (spec.configTracking): ConfigMaps watched (a digest of each is kept, a
# change wakes the apps that reference it), read when a revision's copy is made, copies
# created (immutable, never updated) and deleted once no revision needs them.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "get", "create", "delete"]
{{- if .Values.configTracking.secrets }}
# configTracking.secrets: the same for Secrets. This lets the operator read every Secret
# of the namespaces it serves (the content passes through it into the copy; only a digest
# is kept in memory) and create and delete Secrets there.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch", "get", "create", "delete"]
{{- end }}
{{- end }}
