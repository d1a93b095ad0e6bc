"""The BlueGreenApp API, version v1alpha1.

These models are the single source of truth: the CRD in crds/ is generated from them
(`make crds`), and a test fails when the committed CRD drifts. Field names are a
contract with users, GitOps repositories and dashboards (see docs/api.md).
"""

from __future__ import annotations

import enum
import itertools
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from bluegreen.api import durations, timestamps

GROUP = "bluegreen.dev"
VERSION = "v1alpha1"
KIND = "BlueGreenApp"
PLURAL = "bluegreenapps"
SINGULAR = "bluegreenapp"
SHORT_NAMES = ["bga"]

# Derived object names add at most "-preview"/"-metrics" (8 characters) to the app's name,
# and Services must be DNS-1035 labels of at most 63 characters.
MAX_NAME_LENGTH = 55

# Metric lists are maps keyed by name: the API server rejects duplicate names.
_LIST_MAP: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


# Each rule below is checked twice: by the API server (a CEL rule in the CRD) and by the model
# (a validator), with the same message, so the operator never reads what the CRD would reject.
RESERVED_LABELS = (
    "template labels under bluegreen.dev/ and app.kubernetes.io/name are set by the operator"
)
TARGET_PORT = (
    "service.targetPort must be a port number 1-65535 or a port name: "
    "at most 15 lowercase letters, digits and '-', with at least one letter"
)
# Service.spec.ports[].targetPort by name is an IANA service name (as a container port's name).
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CANARY_WEIGHTS = "canary step weights must be strictly increasing"
CANARY_NEEDS_INGRESS = "strategy.canary needs spec.ingress"
STEP_QUERY_NEEDS_PROMETHEUS = "query metrics of canary steps need analysis.prometheus.address"
THRESHOLD_EMPTY = "thresholdRange needs min, max or both"
THRESHOLD_ORDER = "thresholdRange.min must not exceed max"
METRIC_KIND = "a metric needs exactly one of query (Prometheus) or url (web check)"
METRIC_THRESHOLD = "a query metric needs thresholdRange"
METRIC_FAILURE_LIMIT = "failureLimit must be lower than count"
METRIC_MIN_REQUESTS = "minRequestsQuery and minRequests go together"
ANALYSIS_PROMETHEUS = "query metrics need analysis.prometheus.address"
INGRESS_HOST = (
    "ingress.host must be a lowercase DNS name such as shop.example.com "
    "(optionally *.example.com), without scheme, port or path"
)
_HOST = re.compile(r"^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Model(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Color(enum.StrEnum):
    """One of the two Deployments; `other` is the one that is not."""

    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class Phase(enum.StrEnum):
    """Where a BlueGreenApp stands in its release cycle. Each value says what is true."""

    PENDING = "Pending"
    """Nothing serves yet: the first colour is being deployed."""
    HEALTHY = "Healthy"
    """The active colour serves the stable revision; no release is in flight."""
    DEPLOYING = "Deploying"
    """The candidate colour is being rolled to the new revision; traffic is untouched."""
    ANALYZING = "Analyzing"
    """The candidate is saturated; pre-promotion checks run before the switch."""
    PAUSED = "Paused"
    """The release waits for a person: promote or abort."""
    OBSERVING = "Observing"
    """Traffic is on the candidate; the old colour is kept warm for a rollback."""
    ROLLING_BACK = "RollingBack"
    """Traffic is being moved back to the stable colour."""
    DEGRADED = "Degraded"
    """The last release failed; traffic is on the stable revision."""


IN_FLIGHT_PHASES = frozenset(
    {Phase.PENDING, Phase.DEPLOYING, Phase.ANALYZING, Phase.OBSERVING, Phase.ROLLING_BACK}
)


# ----------------------------------------------------------------------------- spec


def _pod_template_schema(schema: dict[str, Any]) -> None:
    """The CRD checks the outline of a pod template; the Deployment API checks the rest."""
    schema.clear()
    schema.update(
        {
            "type": "object",
            "description": "A PodTemplateSpec, exactly as in a Deployment.",
            "required": ["spec"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                    "x-kubernetes-validations": [
                        {
                            "rule": "!has(self.labels) || self.labels.all(k, "
                            "!k.startsWith('bluegreen.dev/') && k != 'app.kubernetes.io/name')",
                            "message": RESERVED_LABELS,
                        }
                    ],
                },
                "spec": {
                    "type": "object",
                    "required": ["containers"],
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "containers": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 64,
                            "items": {
                                "type": "object",
                                "required": ["name", "image"],
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {
                                    "name": {"type": "string", "minLength": 1, "maxLength": 63},
                                    "image": {"type": "string", "minLength": 1, "maxLength": 4096},
                                },
                            },
                        }
                    },
                },
            },
        }
    )


class PodTemplate(BaseModel):
    """A PodTemplateSpec, exactly as in a Deployment. Kept as data: the API server
    validates it when the Deployment is applied, and the CRD checks its outline."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_pod_template_schema)

    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any]

    @field_validator("metadata")
    @classmethod
    def _labels(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        for key in ("labels", "annotations"):
            values = metadata.get(key, {})
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ValueError(f"template.metadata.{key} must map names to strings")
        labels = metadata.get("labels", {})
        if any(k.startswith("bluegreen.dev/") or k == "app.kubernetes.io/name" for k in labels):
            raise ValueError(RESERVED_LABELS)
        return metadata

    @field_validator("spec")
    @classmethod
    def _has_containers(cls, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not 1 <= len(containers) <= 64:
            raise ValueError("template.spec.containers must list 1 to 64 containers")
        for c in containers:
            if not isinstance(c, dict):
                raise ValueError("template.spec.containers must be objects")
            for field, limit in (("name", 63), ("image", 4096)):
                value = c.get(field)
                if not isinstance(value, str) or not 1 <= len(value) <= limit:
                    raise ValueError(f"every container needs a {field} (1-{limit} characters)")
        return spec


def _cel(*rules: tuple[str, str]) -> ConfigDict:
    """Validation JSON Schema cannot say, as CEL rules the API server evaluates."""
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]
        },
    )


class ServiceSpec(Model):
    model_config = _cel(
        (
            "type(self.targetPort) == int ? self.targetPort >= 1 && self.targetPort <= 65535"
            " : size(self.targetPort) <= 15 && !self.targetPort.contains('--')"
            " && self.targetPort.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')"
            " && self.targetPort.matches('[a-z]')",
            TARGET_PORT,
        ),
    )

    port: Annotated[
        int,
        Field(ge=1, le=65535, description="Port of the active and preview Services (named http)."),
    ] = 80
    target_port: Annotated[
        int | str,
        Field(description="Container port the Services send to: a name or a number."),
    ] = "http"

    @field_validator("target_port")
    @classmethod
    def _target_port(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            ok = 1 <= value <= 65535
        else:
            ok = (
                len(value) <= 15
                and "--" not in value
                and bool(_PORT_NAME.fullmatch(value))
                and any(c.isalpha() for c in value)
            )
        if not ok:
            raise ValueError(TARGET_PORT)
        return value


class CanaryStep(Model):
    weight: Annotated[
        int, Field(ge=1, le=100, description="Share of requests for the candidate, in percent.")
    ]
    pause_seconds: Annotated[int, Field(ge=0, le=86400)] = 60
    metrics: Annotated[
        list[Metric] | None,
        Field(
            max_length=20,
            json_schema_extra=_LIST_MAP,
            description="Checks of this step; default: analysis.prePromotion.",
        ),
    ] = None


class Canary(Model):
    model_config = _cel(
        (
            "self.steps.map(s, s.weight).isSorted() && self.steps.all(s, "
            "self.steps.filter(t, t.weight == s.weight).size() == 1)",
            CANARY_WEIGHTS,
        ),
    )

    steps: Annotated[list[CanaryStep], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _increasing(self) -> Canary:
        weights = [s.weight for s in self.steps]
        if any(a >= b for a, b in itertools.pairwise(weights)):
            raise ValueError(CANARY_WEIGHTS)
        return self


class Strategy(Model):
    auto_promotion: Annotated[
        bool, Field(description="false: stop in Paused until a person promotes.")
    ] = True
    auto_promotion_seconds: Annotated[
        int, Field(ge=0, le=86400, description="Wait this long in Analyzing before promoting.")
    ] = 0
    preview_replicas: Annotated[
        int | None,
        Field(
            ge=0,
            le=10000,
            description="Replicas of the candidate before the switch; default: replicas.",
        ),
    ] = None
    scale_down_delay_seconds: Annotated[
        int,
        Field(ge=0, le=86400, description="Keep the old colour warm this long after the switch."),
    ] = 30
    abort_scale_down_delay_seconds: Annotated[
        int,
        Field(ge=0, le=86400, description="Keep a failed candidate this long after a rollback."),
    ] = 30
    progress_deadline_seconds: Annotated[
        int, Field(ge=1, le=86400, description="A candidate not saturated by then is rolled back.")
    ] = 600
    canary: Canary | None = None


class ThresholdRange(Model):
    model_config = _cel(
        ("has(self.min) || has(self.max)", THRESHOLD_EMPTY),
        ("!has(self.min) || !has(self.max) || self.min <= self.max", THRESHOLD_ORDER),
    )

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError(THRESHOLD_EMPTY)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(THRESHOLD_ORDER)
        return self


class NoDataPolicy(enum.StrEnum):
    INCONCLUSIVE = "Inconclusive"
    FAIL = "Fail"
    PASS = "Pass"  # noqa: S105 - a no-data policy, not a password


class Metric(Model):
    model_config = _cel(
        ("has(self.query) != has(self.url)", METRIC_KIND),
        ("!has(self.query) || has(self.thresholdRange)", METRIC_THRESHOLD),
        ("self.failureLimit < self.count", METRIC_FAILURE_LIMIT),
        ("has(self.minRequestsQuery) == has(self.minRequests)", METRIC_MIN_REQUESTS),
    )

    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ]
    query: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=4096,
            description="PromQL; {{namespace}} {{name}} {{color}} {{revision}} are replaced.",
        ),
    ] = None
    url: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2048,
            pattern=r"^https?://",
            description="web check: an http(s) URL that must answer 2xx.",
        ),
    ] = None
    threshold_range: ThresholdRange | None = None
    interval: Annotated[
        str,
        Field(
            pattern=durations.PATTERN,
            description="Time between measurements: a Go duration such as 15s or 1m30s.",
        ),
    ] = "15s"
    count: Annotated[int, Field(ge=1, le=100)] = 4
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 0
    no_data: NoDataPolicy = NoDataPolicy.INCONCLUSIVE
    min_requests_query: Annotated[str | None, Field(min_length=1, max_length=4096)] = None
    min_requests: Annotated[float | None, Field(ge=0)] = None

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if (self.query is None) == (self.url is None):
            raise ValueError(METRIC_KIND)
        if self.query is not None and self.threshold_range is None:
            raise ValueError(METRIC_THRESHOLD)
        if self.failure_limit >= self.count:
            raise ValueError(METRIC_FAILURE_LIMIT)
        if (self.min_requests_query is None) != (self.min_requests is None):
            raise ValueError(METRIC_MIN_REQUESTS)
        return self


class PrometheusProvider(Model):
    address: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://")]


class Analysis(Model):
    model_config = _cel(
        (
            "has(self.prometheus) || ((!has(self.prePromotion) || self.prePromotion.all(m, !has(m.query)))"
            " && (!has(self.postPromotion) || self.postPromotion.all(m, !has(m.query))))",
            ANALYSIS_PROMETHEUS,
        ),
    )

    prometheus: PrometheusProvider | None = None
    pre_promotion: Annotated[list[Metric], Field(max_length=20, json_schema_extra=_LIST_MAP)] = (
        Field(default_factory=list)
    )
    post_promotion: Annotated[list[Metric], Field(max_length=20, json_schema_extra=_LIST_MAP)] = (
        Field(default_factory=list)
    )

    @field_validator("pre_promotion", "post_promotion")
    @classmethod
    def _unique_names(cls, metrics: list[Metric]) -> list[Metric]:
        # The CRD's list-map key: the API server answers "Duplicate value".
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be unique within prePromotion and postPromotion")
        return metrics

    @model_validator(mode="after")
    def _prometheus(self) -> Analysis:
        metrics = [*self.pre_promotion, *self.post_promotion]
        if self.prometheus is None and any(m.query is not None for m in metrics):
            raise ValueError(ANALYSIS_PROMETHEUS)
        return self


class IngressSpec(Model):
    model_config = _cel(
        (
            "self.host.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')"
            " && !self.host.matches('^[0-9.]+$')",
            INGRESS_HOST,
        ),
    )

    host: Annotated[str, Field(min_length=1, max_length=253)]
    class_name: Annotated[str, Field(min_length=1, max_length=253)] = "nginx"
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    tls_secret_name: Annotated[str | None, Field(min_length=1, max_length=253)] = None
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("host")
    @classmethod
    def _dns_name(cls, host: str) -> str:
        if not _HOST.fullmatch(host) or re.fullmatch(r"[0-9.]+", host):
            raise ValueError(INGRESS_HOST)
        return host


class ServiceMonitorSpec(Model):
    enabled: bool = True
    interval: Annotated[
        str,
        Field(
            pattern=durations.PROMETHEUS_PATTERN,
            description="Scrape interval, in Prometheus's syntax (15s, 1m).",
        ),
    ] = "15s"
    labels: dict[str, str] = Field(default_factory=dict)


class Monitoring(Model):
    service_monitor: ServiceMonitorSpec = Field(default_factory=ServiceMonitorSpec)


class ResolveDigest(enum.StrEnum):
    NEVER = "Never"
    IF_POSSIBLE = "IfPossible"
    REQUIRED = "Required"


class ImagePolicy(Model):
    resolve_digest: ResolveDigest = ResolveDigest.NEVER


class BlueGreenAppSpec(Model):
    model_config = _cel(
        (
            "!has(self.strategy) || !has(self.strategy.canary) || has(self.ingress)",
            CANARY_NEEDS_INGRESS,
        ),
        (
            "!has(self.strategy) || !has(self.strategy.canary) || "
            "self.strategy.canary.steps.all(s, !has(s.metrics) || s.metrics.all(m, !has(m.query)))"
            " || (has(self.analysis) && has(self.analysis.prometheus))",
            STEP_QUERY_NEEDS_PROMETHEUS,
        ),
    )

    replicas: Annotated[
        int,
        Field(ge=0, le=10000, description="Replicas of the active colour (the scale subresource)."),
    ] = 1
    template: PodTemplate
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    strategy: Strategy = Field(default_factory=Strategy)
    analysis: Analysis | None = None
    ingress: IngressSpec | None = None
    monitoring: Monitoring = Field(default_factory=Monitoring)
    image: ImagePolicy = Field(default_factory=ImagePolicy)

    @model_validator(mode="after")
    def _canary_needs_ingress(self) -> BlueGreenAppSpec:
        canary = self.strategy.canary
        if canary is not None and self.ingress is None:
            raise ValueError(CANARY_NEEDS_INGRESS)
        no_prometheus = self.analysis is None or self.analysis.prometheus is None
        if (
            canary is not None
            and no_prometheus
            and any(m.query for s in canary.steps for m in s.metrics or [])
        ):
            raise ValueError(STEP_QUERY_NEEDS_PROMETHEUS)
        return self

    @property
    def preview_replicas(self) -> int:
        p = self.strategy.preview_replicas
        return self.replicas if p is None else p


# ----------------------------------------------------------------------------- status


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
    measurements: list[Measurement] = Field(default_factory=list)


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


class ObjectMeta(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel
    )

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class BlueGreenApp(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel
    )

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: ObjectMeta
    spec: BlueGreenAppSpec
    status: BlueGreenAppStatus = Field(default_factory=BlueGreenAppStatus)

    @field_validator("status", mode="before")
    @classmethod
    def _status_tolerant(cls, value: Any) -> Any:
        # kopf keeps its own bookkeeping in status under other keys; ignore what is not ours.
        if isinstance(value, dict):
            known = {f.alias or n for n, f in BlueGreenAppStatus.model_fields.items()}
            return {k: v for k, v in value.items() if k in known}
        return value or {}
