"""The spec of a BlueGreenApp: its pods, Services, release strategy, Ingress and monitoring."""

from __future__ import annotations

import enum
import itertools
import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from bluegreen.api import durations
from bluegreen.api.v1alpha1.base import (
    CANARY_NEEDS_INGRESS,
    CANARY_WEIGHTS,
    HOST_PATTERN,
    INGRESS_HOST,
    LIST_MAP,
    STEP_QUERY_NEEDS_PROMETHEUS,
    Model,
    cel,
)
from bluegreen.api.v1alpha1.config import ConfigTracking
from bluegreen.api.v1alpha1.metrics import Analysis, Metric
from bluegreen.api.v1alpha1.notifications import NOTIFICATIONS_LIST, Subscription, unique_endpoints
from bluegreen.api.v1alpha1.placement import (
    POD_METADATA_TEMPLATE,
    AntiAffinity,
    PodDisruptionBudgetSpec,
    PodMetadata,
)
from bluegreen.api.v1alpha1.pods import PodTemplate
from bluegreen.api.v1alpha1.refs import TemplateAnalysis
from bluegreen.api.v1alpha1.service import ServiceSpec


class CanaryStep(Model):
    weight: Annotated[
        int, Field(ge=1, le=100, description="Share of requests for the candidate, in percent.")
    ]
    pause_seconds: Annotated[int, Field(ge=0, le=86400)] = 60
    metrics: Annotated[
        list[Metric] | None,
        Field(
            max_length=20,
            json_schema_extra=LIST_MAP,
            description="Checks of this step; default (without metrics and analysis): "
            "analysis.prePromotion and prePromotionAnalysis.",
        ),
    ] = None
    analysis: TemplateAnalysis | None = Field(
        default=None,
        description="Checks of this step from AnalysisTemplates, judged with its metrics.",
    )


class Canary(Model):
    model_config = cel(
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
    canary: Canary | None = Field(
        default=None,
        description="Canary steps before the full switch: Ingress canary weights, or the "
        "weights of trafficRouting.gatewayAPI's HTTPRoute rule.",
    )
    anti_affinity: AntiAffinity | None = Field(
        default=None,
        description="Keep the colours off each other's nodes (kubernetes.io/hostname). A "
        "change is released like a template change: to the idle colour.",
    )
    active_metadata: PodMetadata | None = Field(
        default=None,
        description="Labels and annotations of the active colour's pods, set on the pods "
        "(no restart) and taken off when the colour stops being active.",
    )
    preview_metadata: PodMetadata | None = Field(
        default=None,
        description="Labels and annotations of the candidate's pods while it is deployed "
        "and judged (before the switch), set on the pods (no restart).",
    )


class GatewayAPIRouting(Model):
    http_route: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            description="An HTTPRoute in the app's namespace, made by you (or your GitOps "
            "repository) and attached to your Gateway. The operator writes only the "
            "backendRefs of one rule of it, and never deletes it.",
        ),
    ]
    rule: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=253,
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            description="The name of the rule to route (rules[].name); default: the rule "
            "whose backendRefs are the app's Services, or the route's only rule.",
        ),
    ] = None


class TrafficRouting(Model):
    gateway_api: GatewayAPIRouting | None = Field(
        default=None,
        alias="gatewayAPI",
        description="Gateway API: the rule's backendRefs are the active and preview Services, "
        "weighted 100/0 at rest and by the canary step's weight during canary steps.",
    )


class IngressSpec(Model):
    model_config = cel(
        (
            "self.host.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')"
            " && !self.host.matches('^[0-9.]+$')",
            INGRESS_HOST,
        ),
    )

    host: Annotated[str, Field(min_length=1, max_length=253)]
    class_name: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=253,
            description="The IngressClass; unset: the cluster's default IngressClass. The "
            "operator writes only classes its administrator allows (docs/security.md).",
        ),
    ] = None
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    tls_secret_name: Annotated[str | None, Field(min_length=1, max_length=253)] = None
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations of the Ingress. The operator writes only keys its "
        "administrator allows (docs/security.md); the canary keys are its own.",
    )

    @field_validator("host")
    @classmethod
    def _dns_name(cls, host: str) -> str:
        if not HOST_PATTERN.fullmatch(host) or re.fullmatch(r"[0-9.]+", host):
            raise ValueError(INGRESS_HOST)
        return host


class ServiceMonitorSpec(Model):
    enabled: bool = Field(
        default=True, description="Apply a ServiceMonitor when its CRD is served."
    )
    interval: Annotated[
        str,
        Field(
            pattern=durations.PROMETHEUS_PATTERN,
            description="Scrape interval, in Prometheus's syntax (15s, 1m).",
        ),
    ] = "15s"
    labels: dict[str, str] = Field(default_factory=dict)


class Monitoring(Model):
    service_monitor: ServiceMonitorSpec = Field(
        default_factory=ServiceMonitorSpec,
        description="The ServiceMonitor that scrapes both colours through <name>-metrics.",
    )


class ResolveDigest(enum.StrEnum):
    NEVER = "Never"
    IF_POSSIBLE = "IfPossible"
    REQUIRED = "Required"


class ImagePolicy(Model):
    resolve_digest: ResolveDigest = Field(
        default=ResolveDigest.NEVER,
        description="Never: run images as written. IfPossible: pin ECR tags to digests, fall "
        "back to the tag. Required: pin or fail the release before any pod.",
    )


class BlueGreenAppSpec(Model):
    model_config = cel(
        (
            "!has(self.strategy) || !has(self.strategy.canary) || has(self.ingress)"
            " || (has(self.trafficRouting) && has(self.trafficRouting.gatewayAPI))",
            CANARY_NEEDS_INGRESS,
        ),
        (
            "!has(self.strategy) || !has(self.strategy.canary) || "
            "self.strategy.canary.steps.all(s, !has(s.metrics) || s.metrics.all(m, !has(m.query)))"
            " || (has(self.analysis) && has(self.analysis.prometheus))",
            STEP_QUERY_NEEDS_PROMETHEUS,
        ),
        *(
            (
                f"!has(self.strategy) || !has(self.strategy.{role}) || "
                f"!has(self.strategy.{role}.labels) || !has(self.template.metadata) || "
                "!has(self.template.metadata.labels) || "
                f"self.strategy.{role}.labels.all(k, !(k in self.template.metadata.labels))",
                POD_METADATA_TEMPLATE,
            )
            for role in ("activeMetadata", "previewMetadata")
        ),
    )

    replicas: Annotated[
        int,
        Field(ge=0, le=10000, description="Replicas of the active colour (the scale subresource)."),
    ] = 1
    template: PodTemplate
    service: ServiceSpec = Field(
        default_factory=ServiceSpec,
        description="The active and preview Services: their port and the container port.",
    )
    strategy: Strategy = Field(
        default_factory=Strategy,
        description="How a release goes: promotion gate, warm-keeping, deadline, canary steps.",
    )
    analysis: Analysis | None = Field(
        default=None,
        description="Checks before the switch (prePromotion, canary steps) and after it "
        "(postPromotion); a failure rolls back, no data pauses.",
    )
    ingress: IngressSpec | None = Field(
        default=None,
        description="An Ingress on the active Service (and the canary Ingress of canary steps).",
    )
    traffic_routing: TrafficRouting = Field(
        default_factory=TrafficRouting,
        description="Where the traffic split of canary steps happens, besides spec.ingress.",
    )
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="The app's ServiceMonitor for Prometheus."
    )
    image: ImagePolicy = Field(
        default_factory=ImagePolicy, description="Image digests: run every release by digest."
    )
    pod_disruption_budget: PodDisruptionBudgetSpec | None = Field(
        default=None,
        description="A PodDisruptionBudget per colour (<name>-blue, <name>-green) while the "
        "colour has replicas; removed with this field.",
    )
    config_tracking: ConfigTracking = Field(
        default_factory=ConfigTracking,
        description="Release changes of the ConfigMaps (and Secrets) the template references.",
    )
    notifications: Annotated[
        list[Subscription],
        Field(
            max_length=10,
            json_schema_extra=NOTIFICATIONS_LIST,
            description="Release events to send to the notification endpoints the "
            "operator's administrator configured, by name.",
        ),
    ] = Field(default_factory=list)

    @field_validator("notifications")
    @classmethod
    def _one_subscription_per_endpoint(cls, subs: list[Subscription]) -> list[Subscription]:
        return unique_endpoints(subs)

    @model_validator(mode="after")
    def _canary_needs_ingress(self) -> BlueGreenAppSpec:
        canary = self.strategy.canary
        if canary is not None and self.ingress is None and self.gateway_api is None:
            raise ValueError(CANARY_NEEDS_INGRESS)
        no_prometheus = self.analysis is None or self.analysis.prometheus is None
        if (
            canary is not None
            and no_prometheus
            and any(m.query for s in canary.steps for m in s.metrics or [])
        ):
            raise ValueError(STEP_QUERY_NEEDS_PROMETHEUS)
        template_labels = (self.template.metadata or {}).get("labels") or {}
        for role in (self.strategy.active_metadata, self.strategy.preview_metadata):
            if role is not None and any(k in template_labels for k in role.labels):
                raise ValueError(POD_METADATA_TEMPLATE)
        return self

    @property
    def gateway_api(self) -> GatewayAPIRouting | None:
        return self.traffic_routing.gateway_api

    @property
    def preview_replicas(self) -> int:
        p = self.strategy.preview_replicas
        return self.replicas if p is None else p


# ----------------------------------------------------------------------------- status
