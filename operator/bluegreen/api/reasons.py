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
    NOT_PAUSED = "NotPaused"
    PINNED = "Pinned"
    APPLIED = "Applied"
    CRD_NOT_INSTALLED = "CRDNotInstalled"
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
    CANARY_STEP = "CanaryStep"
    CANARY_REMOVED = "CanaryRemoved"
    PROMOTION_REQUESTED = "PromotionRequested"
    RETRY_REQUESTED = "RetryRequested"
    REQUEST_REJECTED = "RequestRejected"
    REQUEST_IGNORED = "RequestIgnored"
