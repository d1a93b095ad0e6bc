"""Every reason the operator writes: in conditions, in `status.release.reason`, in Events.

Reasons are part of the API: alerts, dashboards, GitOps health checks and scripts match on
them. Each is a constant here, with what it means; nothing compares a reason written inline.
"""

from __future__ import annotations

import enum


class ConditionType(enum.StrEnum):
    AVAILABLE = "Available"
    """The active colour has ready replicas behind the active Service."""
    PROGRESSING = "Progressing"
    """A release is in flight."""
    DEGRADED = "Degraded"
    """The last release failed, or the spec cannot be carried out."""
    PAUSED = "Paused"
    """The release waits for a person, or for analysis to become conclusive."""
    IMAGE_PINNED = "ImagePinned"
    """Every image runs by digest (spec.image.resolveDigest)."""
    SERVICE_MONITOR_READY = "ServiceMonitorReady"
    """The app's ServiceMonitor exists (the Prometheus Operator CRD is served)."""
    INGRESS_ADMITTED = "IngressAdmitted"
    """The operator's Ingress guard admits spec.ingress (its class, annotation keys and
    host), so the Ingress is written; False: it is not, and the message says why."""
    TRAFFIC_ROUTED = "TrafficRouted"
    """The HTTPRoute rule of spec.trafficRouting.gatewayAPI can be written (routes to the
    app's Services only)."""
    CONFIG_TRACKED = "ConfigTracked"
    """spec.configTracking: every ConfigMap (and Secret) the template references is part of
    the revision, and the pods reference its immutable copy; False: one does not exist
    (the release waits), a copy a colour's pods reference is lost, or Secrets are asked for
    but the operator does not track them."""
    # kstatus (Flux, kubectl wait, cli-utils): Ready, and the abnormal-true pair below.
    READY = "Ready"
    """The app is at rest on its spec: Healthy, every release done."""
    RECONCILING = "Reconciling"
    """kstatus: a release is in flight or waits (Pending to RollingBack, Paused)."""
    STALLED = "Stalled"
    """kstatus: the last release failed and will not go on by itself (Degraded)."""
    NOTIFICATIONS_READY = "NotificationsReady"
    """Every endpoint spec.notifications names is one the operator's administrator
    configured (present only when the app subscribes to notifications)."""


class Reason(enum.StrEnum):
    # ---------------------------------------------------------------- why a release ended
    PROMOTED = "Promoted"
    """The candidate became the stable revision."""
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    """The candidate was not saturated within progressDeadlineSeconds."""
    PRE_PROMOTION_ANALYSIS_FAILED = "PrePromotionAnalysisFailed"
    """A prePromotion metric failed; traffic never moved."""
    CANARY_ANALYSIS_FAILED = "CanaryAnalysisFailed"
    """A canary step's checks failed; the canary weight went back to 0."""
    POST_PROMOTION_ANALYSIS_FAILED = "PostPromotionAnalysisFailed"
    """A postPromotion metric failed after the switch; traffic went back."""
    ENDPOINTS_NOT_CONVERGED = "EndpointsNotConverged"
    """After the switch the EndpointSlices never showed only the new colour."""
    ABORTED = "Aborted"
    """A person aborted the release."""
    SUPERSEDED = "Superseded"
    """A newer template arrived before the release finished."""
    IMAGE_NOT_FOUND = "ImageNotFound"
    """The registry says the image's tag or repository does not exist."""
    IMAGE_NOT_PINNABLE = "ImageNotPinnable"
    """resolveDigest: Required, and the image is not in a registry the operator can ask."""
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"
    """The registry did not answer; releases wait (Required) or run by tag (IfPossible)."""
    OBJECT_REJECTED = "ObjectRejected"
    """The API server refused an object built from the spec (a template it cannot accept)."""
    OBJECT_CONFLICT = "ObjectConflict"
    """An object of a name the app would own exists and is someone else's: left alone."""
    INVALID_SPEC = "InvalidSpec"
    """The spec passed the CRD's schema but not the operator's model."""
    RELEASE_FAILED = "ReleaseFailed"
    """Degraded for a reason not recorded on the release."""
    # ---------------------------------------------------------------- condition reasons
    ACTIVE_COLOR_READY = "ActiveColorReady"
    NO_READY_ACTIVE_COLOR = "NoReadyActiveColor"
    IDLE = "Idle"
    AS_EXPECTED = "AsExpected"
    MANUAL_PROMOTION = "ManualPromotion"
    """Paused: a person promotes (autoPromotion: false)."""
    ANALYSIS_ENDPOINT_REFUSED = "AnalysisEndpointRefused"
    """Paused: the operator's policy refuses a metric's Prometheus address or URL."""
    ANALYSIS_TEMPLATE_NOT_FOUND = "AnalysisTemplateNotFound"
    """Paused: an AnalysisTemplate or ClusterAnalysisTemplate the app names does not exist
    (or the operator cannot read that kind); creating it lets the release go on."""
    ANALYSIS_ARG_MISSING = "AnalysisArgMissing"
    """Paused: a template's arg has no default and the app gives no value."""
    ANALYSIS_ARG_INVALID = "AnalysisArgInvalid"
    """Paused: the app gives an arg no template declares, or a Number arg (or a bound)
    that is not a number."""
    ANALYSIS_TEMPLATE_INVALID = "AnalysisTemplateInvalid"
    """Paused: a template's metrics do not resolve into valid metrics (an undeclared
    {{args.x}}, a name also used by another metric of the window, a query metric without
    analysis.prometheus, too many or too large metrics)."""
    NOT_PAUSED = "NotPaused"
    PINNED = "Pinned"
    APPLIED = "Applied"
    CRD_NOT_INSTALLED = "CRDNotInstalled"
    ADMITTED = "Admitted"
    """IngressAdmitted: spec.ingress is within the operator's Ingress guard."""
    INGRESS_REFUSED = "IngressRefused"
    """IngressAdmitted, Ready, Event: spec.ingress asks for a class, annotation key or host
    the operator's settings do not allow; no Ingress is written (what exists stays)."""
    ROUTED = "Routed"
    ROUTE_API_NOT_SERVED = "RouteAPINotServed"
    """TrafficRouted: the Gateway API's HTTPRoute is not served (CRDs not installed)."""
    ROUTE_NOT_FOUND = "RouteNotFound"
    """TrafficRouted: spec.trafficRouting.gatewayAPI.httpRoute does not exist."""
    RULE_NOT_FOUND = "RuleNotFound"
    """TrafficRouted: the route has no such rule (or several, and none is named)."""
    ROUTE_CONFLICT = "RouteConflict"
    """TrafficRouted: the rule routes to Services of someone else; it is left alone."""
    TRACKED = "Tracked"
    """ConfigTracked: the referenced ConfigMaps (and Secrets) are part of the revision."""
    CONFIG_MISSING = "ConfigMissing"
    """ConfigTracked: a ConfigMap or Secret the template references without `optional: true`
    does not exist; no release starts or goes on until it does."""
    CONFIG_COPY_LOST = "ConfigCopyLost"
    """ConfigTracked: a copy the pods of a colour reference is gone and its object no longer
    holds that revision's content: a pod of that colour that restarts fails to start.
    Traffic does not move because of it."""
    SECRETS_NOT_TRACKED = "SecretsNotTracked"
    """ConfigTracked: the app asks to track Secrets, the operator's administrator does not
    allow it; a Secret's change starts no release, the pods reference it directly."""
    RELEASED = "Released"
    """Ready: the active colour serves the stable revision the spec asks for."""
    # ---------------------------------------------------------------- Events
    RELEASE_STARTED = "ReleaseStarted"
    CANDIDATE_READY = "CandidateReady"
    SWITCHED = "Switched"
    ENDPOINTS_CONVERGED = "EndpointsConverged"
    SCALED_DOWN = "ScaledDown"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    RELEASE_SUPERSEDED = "ReleaseSuperseded"
    REVISION_FAILED_BEFORE = "RevisionFailedBefore"
    RECOVERED = "Recovered"
    PAUSED = "Paused"
    ANALYSIS_STARTED = "AnalysisStarted"
    ANALYSIS_SUCCEEDED = "AnalysisSucceeded"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_JOB_STARTED = "AnalysisJobStarted"
    """A job metric's measurement started its Job (the Event names it and its logs)."""
    CANARY_STEP = "CanaryStep"
    CANARY_REMOVED = "CanaryRemoved"
    PROMOTION_REQUESTED = "PromotionRequested"
    RETRY_REQUESTED = "RetryRequested"
    REQUEST_REJECTED = "RequestRejected"
    REQUEST_IGNORED = "RequestIgnored"
    # ---------------------------------------------------------------- notifications
    NOTIFICATION_FAILED = "NotificationFailed"
    """Event: a notification was not delivered (every attempt failed, the endpoint refused
    it, or the queue in front of the endpoints was full)."""
    ENDPOINTS_CONFIGURED = "EndpointsConfigured"
    """NotificationsReady: every endpoint the app names is configured."""
    ENDPOINT_UNKNOWN = "EndpointUnknown"
    """NotificationsReady: the app names an endpoint the administrator did not configure;
    nothing is sent to it."""
