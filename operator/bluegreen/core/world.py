"""A frozen snapshot of everything the operator reads for one app in one pass.

`reconcile.observe` builds it once; `decide.plan` reads it and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bluegreen.api import Color
from bluegreen.core.analysis import QueryResult
from bluegreen.core.configs import Copy, Found, Ref
from bluegreen.core.images import Resolution
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.core.templates import Templates


@dataclass(frozen=True)
class DeploymentState:
    color: Color
    revision: str | None
    replicas: int
    generation: int = 0
    observed_generation: int = 0
    total_replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    has_owner: bool = True
    selector: Mapping[str, str] = field(default_factory=dict)
    """spec.selector.matchLabels: immutable, so it says which operator version made it."""
    config: Mapping[str, str] = field(default_factory=dict)
    """The digests of the ConfigMaps and Secrets its revision tracked (`Kind/name` ->
    digest, the `bluegreen.dev/config` annotation): its pods reference their copies."""

    @property
    def settled(self) -> bool:
        """The Deployment controller has seen the latest spec and rolled all of it out.
        Old pods may still be on their way out (their grace period): they carry another
        revision, and saturation counts only ready pods of the revision it asks for."""
        return (
            self.observed_generation >= self.generation and self.updated_replicas == self.replicas
        )


@dataclass(frozen=True)
class ServiceState:
    name: str
    selector: Mapping[str, str]
    ports: tuple[tuple[str, int, str], ...]  # (name, port, targetPort as text)
    headless: bool = False
    has_owner: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    """Compared with the rendered labels, so label drift on an owned Service is repaired."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    own_labels: frozenset[str] = frozenset()
    own_annotations: frozenset[str] = frozenset()
    """The label and annotation keys the operator's applies set (service.labels and
    service.annotations taken out of the spec are taken off)."""
    protocols: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    """(protocol, appProtocol) by port name; a port not listed is TCP without appProtocol."""


@dataclass(frozen=True)
class IngressState:
    name: str
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    own_annotations: frozenset[str] = frozenset()
    """The annotation keys the operator's applies set (others may add their own)."""

    @property
    def weight(self) -> int | None:
        raw = self.annotations.get("nginx.ingress.kubernetes.io/canary-weight")
        return int(raw) if raw is not None and raw.isdigit() else None


@dataclass(frozen=True)
class Backend:
    """One backendRef of an HTTPRoute rule."""

    kind: str  # "Service" unless the route says otherwise
    name: str
    port: int | None
    weight: int  # the Gateway API default is 1


@dataclass(frozen=True)
class RouteRule:
    name: str | None
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class RouteState:
    """An HTTPRoute the app routes through (spec.trafficRouting.gatewayAPI)."""

    name: str
    resource_version: str
    rules: tuple[RouteRule, ...]


@dataclass(frozen=True)
class Marks:
    """Labels and annotations of a pod: the ones the operator set (strategy.activeMetadata,
    previewMetadata), or the ones it wants set."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodState:
    name: str
    color: Color | None
    revision: str | None
    ready: bool
    deleting: bool = False
    marks: Marks = field(default_factory=Marks)
    """The labels and annotations the operator set on it (role metadata)."""


@dataclass(frozen=True)
class BudgetState:
    """A colour's PodDisruptionBudget."""

    name: str
    spec: Mapping[str, Any]
    has_owner: bool = True


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of an EndpointSlice, with the pod it points at."""

    pod: str | None
    ready: bool


@dataclass(frozen=True)
class JobState:
    """An analysis Job the app owns (a job metric's measurement)."""

    name: str
    window: str | None
    """The analysis window that started it (its `bluegreen.dev/analysis-window` label)."""
    metric: str | None
    created_at: datetime | None
    finished: str | None = None
    """"Complete" or "Failed" once the Job controller says so (its terminal condition)."""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Observed:
    now: datetime
    deployments: Mapping[Color, DeploymentState] = field(default_factory=dict)
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    pods: tuple[PodState, ...] = ()
    budgets: Mapping[str, BudgetState] = field(default_factory=dict)
    """The colours' PodDisruptionBudgets, by name."""
    active_endpoints: tuple[Endpoint, ...] = ()
    active_endpoints_since: datetime | None = None
    """When the active Service's EndpointSlices last changed, as far as the operator knows."""
    active_endpoints_exact: bool = False
    """True when a watch saw that change as it happened; False: the API server's write time,
    to the second (the slices changed while the operator was not watching)."""
    metrics_endpoints: tuple[Endpoint, ...] = ()
    """Of `<name>-metrics`, and of `<name>-legacy` while that exists: both colours."""
    service_monitor_supported: bool = False
    service_monitor: Mapping[str, Any] | None = None
    ingresses: Mapping[str, IngressState] = field(default_factory=dict)
    route: RouteState | None = None
    """The HTTPRoute of spec.trafficRouting.gatewayAPI, if it exists."""
    routes_served: bool = True
    """False when the Gateway API's HTTPRoute is not served (its CRDs are not installed)."""
    images: Mapping[str, Resolution] = field(default_factory=dict)
    """Digest resolutions of the template's images (spec.image.resolveDigest), by image."""
    ingress_policy: IngressPolicy = field(default_factory=IngressPolicy)
    """The administrator's Ingress guard (operator settings): what spec.ingress may ask."""
    refused: Mapping[str, str] = field(default_factory=dict)
    """Metrics whose endpoint the administrator's policy refuses, by `<phase>/<metric>`
    (as `samples`), with the rule that refused it: their windows never open."""
    samples: Mapping[str, QueryResult] = field(default_factory=dict)
    """Analysis samples taken in this pass, keyed by `<phase>/<metric name>`."""
    templates: Templates = field(default_factory=Templates)
    """The AnalysisTemplates and ClusterAnalysisTemplates the app names, as found."""
    jobs: Mapping[str, JobState] = field(default_factory=dict)
    """The app's analysis Jobs (job metrics), by name."""
    config: Mapping[Ref, Found] = field(default_factory=dict)
    """The ConfigMaps and Secrets that exist of those the template references
    (spec.configTracking) and of those the colours' Deployments tracked, with those
    colours' copies (by name). Secrets only when the operator tracks them."""
    config_copies: tuple[Copy, ...] = ()
    """The app's copies of them, of every revision."""
    secrets_tracked: bool = False
    """The operator's administrator allows tracking Secrets (BLUEGREEN_TRACK_SECRETS)."""

    def ready_pods(self, color: Color, revision: str | None = None) -> set[str]:
        return {
            p.name
            for p in self.pods
            if p.color is color
            and p.ready
            and not p.deleting
            and (revision is None or p.revision == revision)
        }

    def stray_pods(self, color: Color, revision: str) -> int:
        """Pods of `color` that run another revision and are not on their way out."""
        return sum(
            1 for p in self.pods if p.color is color and p.revision != revision and not p.deleting
        )
