"""The status of a BlueGreenApp: phase, colours, conditions, the release timeline, history
and the analysis window in flight. Everything a restarted operator resumes from."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from bluegreen.api import timestamps
from bluegreen.api.v1alpha1.base import Color, Model, Phase
from bluegreen.api.v1alpha1.metrics import Metric

MAX_TEMPLATE_METRICS = 20
"""Metrics from templates one analysis window may hold (they are kept in status)."""


class Condition(Model):
    """A Kubernetes condition. lastTransitionTime changes only when status changes."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class ReleaseResult(enum.StrEnum):
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"
    FAILED = "Failed"


class Release(Model):
    """Timeline of the current or last release. Timestamps are RFC 3339 UTC."""

    revision: str
    image: str = ""
    pinned_image: str | None = None
    """The image as it runs: `repo@sha256:...` when spec.image.resolveDigest pinned it."""
    color: Color
    previous_color: Color | None = None
    started_at: str
    candidate_ready_at: str | None = None
    promotion_requested_at: str | None = None
    switched_at: str | None = None
    endpoints_converged_at: str | None = None
    rollback_started_at: str | None = None
    switched_back_at: str | None = None
    completed_at: str | None = None
    switch_latency_seconds: float | None = None
    rollback_seconds: float | None = None
    """Rollback started to every ready endpoint behind the active Service being stable again."""
    first_failure_at: str | None = None
    """When analysis measured the first failing sample of this release."""
    duration_seconds: float | None = None
    result: ReleaseResult | None = None
    rollback_result: ReleaseResult | None = None
    """While rolling back: how the release ends once traffic is back on the stable colour
    (RolledBack after a failure, Aborted on request, Superseded by a newer revision)."""
    reason: str = ""
    """Why the release ended, or is ending: one of the reasons in `bluegreen.api.reasons`."""
    message: str = ""


class HistoryEntry(Model):
    revision: str
    image: str = ""
    color: Color
    result: ReleaseResult
    reason: str = ""
    started_at: str
    completed_at: str
    switch_latency_seconds: float | None = None


class CanaryStatus(Model):
    """Where the canary of the current release stands (NGINX Ingress canary weights)."""

    revision: str
    step: int
    """Index of the current step in spec.strategy.canary.steps (0-based)."""
    weight: int
    """Share of requests the candidate gets now, in percent (0 while it is removed)."""
    step_started_at: str


class ScaleDown(Model):
    """A colour to scale to zero once `at` has passed (the warm-keeping delay)."""

    color: Color
    at: str


AnalysisPhase = Literal["pre", "post"]
"""Which list a metric comes from: spec.analysis.prePromotion or postPromotion."""


class MeasurementVerdict(enum.StrEnum):
    """The verdict of a single measurement."""

    SUCCESSFUL = "Successful"
    """Every series is inside thresholdRange (or no data with noData: Pass)."""
    FAILED = "Failed"
    """A series is outside thresholdRange (or no data with noData: Fail)."""
    INCONCLUSIVE = "Inconclusive"
    """No data, NaN/Inf, too few requests, or the provider could not be reached."""
    ERROR = "Error"
    """The metric itself is wrong (Prometheus rejected the query, the query does not give an
    instant vector or a scalar): counted like Inconclusive, shown apart so a person fixes it."""


class Measurement(Model):
    """One measurement of one metric, as kept in status (camelCase on the wire)."""

    metric: Annotated[str, Field(min_length=1, max_length=63)]
    phase: AnalysisPhase
    at: str
    """RFC 3339 UTC time the sample was taken."""
    value: Annotated[float | None, Field(allow_inf_nan=False)] = None
    """The deciding value; None when there was none (no data, NaN, an error)."""
    verdict: MeasurementVerdict
    message: str = ""

    @field_validator("at")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        timestamps.parse(value)
        return value

    @property
    def taken_at(self) -> datetime:
        return timestamps.parse(self.at)


class Verdict(enum.StrEnum):
    """The verdict of one metric's window, or of a whole analysis window."""

    RUNNING = "Running"
    """The window is not complete yet, and nothing has failed beyond the limit."""
    SUCCESS = "Successful"
    """The window is complete and enough measurements were successful."""
    FAILURE = "Failed"
    """More measurements failed than failureLimit allows."""
    INCONCLUSIVE = "Inconclusive"
    """The window is complete but too many measurements could not say (no data, NaN, too
    little traffic, Prometheus unreachable): it is taken again, or a person decides."""


class UnresolvedAnalysis(Model):
    """Why a window's templates cannot be resolved: the window does not open, the
    release waits in Paused (never a pass, never a rollback) until they can be."""

    reason: str
    """AnalysisTemplateNotFound, AnalysisArgMissing, AnalysisArgInvalid or
    AnalysisTemplateInvalid (`bluegreen.api.reasons`)."""
    message: str


class AnalysisRun(Model):
    """One analysis window (pre- or post-promotion) of the current release, kept in status
    so a restarted operator goes on with the same window and counters."""

    phase: AnalysisPhase
    revision: str
    window_start: str
    verdict: Verdict = Verdict.RUNNING
    message: str = ""
    step: int | None = None
    """The canary step this window judges, if any."""
    runs: int = 1
    """Windows taken so far in this phase: an inconclusive window is followed by a new one."""
    refused: str | None = None
    """The operator's endpoint policy refuses an address of this window's metrics (the rule
    that refused it): no sample is taken, the release waits in Paused until it is allowed."""
    measurements: list[Measurement] = Field(default_factory=list)
    template_metrics: Annotated[list[Metric], Field(max_length=MAX_TEMPLATE_METRICS)] = Field(
        default_factory=list
    )
    """The metrics of the window's templates, args filled in, as they were when the
    window opened: a template edited meanwhile changes the next window, not this one."""
    templates: Annotated[list[str], Field(max_length=10)] = Field(default_factory=list)
    """Where template_metrics came from: `<Kind>/<name>@<resourceVersion>`."""
    unresolved: UnresolvedAnalysis | None = None
    jobs: list[str] = Field(default_factory=list)
    """The analysis Jobs this window started (job metrics), oldest first: read one with
    `kubectl logs job/<name>`. They are kept until the next window opens."""


class BlueGreenAppStatus(Model):
    phase: Phase = Phase.PENDING
    active_color: Color | None = None
    stable_revision: str | None = None
    candidate_revision: str | None = None
    observed_generation: int | None = None
    replicas: int = 0
    selector: str = ""
    message: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    release: Release | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    failed_revisions: list[str] = Field(default_factory=list)
    scale_down: ScaleDown | None = None
    analysis: AnalysisRun | None = None
    canary: CanaryStatus | None = None
    pinned_images: dict[str, str] = Field(default_factory=dict)
    """Each image of the template as written, and the digest reference it runs as."""
