"""The real API server rejects invalid BlueGreenApps up front, with a message a person reads.

Every case starts from one valid app (which uses every section of the spec, and which the
first test proves the server accepts, so the table cannot pass vacuously) and breaks exactly
one thing. The server must answer 422 Invalid (400 BadRequest for the strict-decoding case)
and its message must name what is wrong: the CEL rule's message, or the schema's field path
and reason.

Values at the rules' limits must pass (so no rule is stricter than its message says). The
pydantic models are the source of the CRD and what the operator parses; the last test checks
that the model rejects every spec the CRD rejects, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from bluegreen.api import BlueGreenApp, crdgen
from bluegreen.api.v1alpha1 import MAX_NAME_LENGTH, RESERVED_LABELS
from bluegreen.api.v1alpha1.base import (
    CLOUDWATCH_LOOKBACK,
    CLOUDWATCH_PERIOD,
    CLOUDWATCH_QUERY_KIND,
    CLOUDWATCH_RETURN,
    CLOUDWATCH_THRESHOLD,
    GUARD_KIND,
    JOB_THRESHOLD,
    JOB_TIMEOUT,
    METRIC_KIND,
    METRIC_MIN_REQUESTS,
)
from bluegreen.api.v1alpha1.placement import (
    ANTI_AFFINITY_KIND,
    PDB_KIND,
    PDB_VALUE,
    POD_METADATA_ANNOTATIONS,
    POD_METADATA_LABELS,
    POD_METADATA_TEMPLATE,
)
from bluegreen.api.v1alpha1.service import (
    SERVICE_ANNOTATIONS,
    SERVICE_LABELS,
    SERVICE_PORT_FORMS,
    SERVICE_PORT_TARGET,
    SERVICE_PORT_UNIQUE,
    SERVICE_PRIMARY_TCP,
)
from tests.support.apps import GROUP, PLURAL, VERSION, app_manifest

pytestmark = pytest.mark.cluster

NAME = "shop"

ERROR_RATE: dict[str, Any] = {
    "name": "error-rate",
    "query": 'sum(rate(http_requests_total{app="{{name}}",color="{{color}}",status=~"5.."}[1m]))'
    ' / sum(rate(http_requests_total{app="{{name}}",color="{{color}}"}[1m]))',
    "thresholdRange": {"max": 0.05},
    "interval": "15s",
    "count": 4,
    "failureLimit": 1,
    "noData": "Inconclusive",
    "minRequestsQuery": 'sum(rate(http_requests_total{app="{{name}}",color="{{color}}"}[1m]))',
    "minRequests": 20,
}
HEALTH_CHECK: dict[str, Any] = {
    "name": "health",
    "url": "http://{{name}}-preview.{{namespace}}.svc/health",
    "count": 2,
}


def _alb_stat(metric: str) -> dict[str, Any]:
    return {
        "namespace": "AWS/ApplicationELB",
        "metricName": metric,
        "dimensions": [
            {"name": "LoadBalancer", "value": "app/shop/0123456789abcdef"},
            {"name": "TargetGroup", "value": "targetgroup/{{name}}-{{color}}/fedcba9876543210"},
        ],
        "stat": "Sum",
        "period": 60,
    }


ALB_ERRORS: dict[str, Any] = {
    "name": "alb-5xx",
    "thresholdRange": {"max": 0.01},
    "cloudwatch": {
        "region": "us-east-1",
        "lookback": "5m",
        "queries": [
            {
                "id": "errors",
                "returnData": False,
                "metricStat": _alb_stat("HTTPCode_Target_5XX_Count"),
            },
            {"id": "requests", "returnData": False, "metricStat": _alb_stat("RequestCount")},
            {"id": "ratio", "expression": "errors / requests"},
        ],
    },
}
SMOKE_JOB: dict[str, Any] = {
    "name": "smoke",
    "job": {
        "timeout": "2m",
        "backoffLimit": 1,
        "template": {
            "metadata": {"labels": {"team": "shop"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "check", "image": "curlimages/curl", "args": ["-f", "$(PREVIEW_URL)"]}
                ],
            },
        },
    },
}


def valid_app(name: str = NAME) -> dict[str, Any]:
    """A valid app that uses every section of the spec, so one mutation breaks one thing."""
    body = app_manifest(
        name,
        autoPromotion=True,
        autoPromotionSeconds=0,
        previewReplicas=2,
        progressDeadlineSeconds=600,
        canary={"steps": [{"weight": 10, "pauseSeconds": 30}, {"weight": 50}]},
        antiAffinity={"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 50}},
        activeMetadata={"labels": {"stage": "live"}, "annotations": {"example.com/a": "1"}},
        previewMetadata={"labels": {"stage": "preview"}},
    )
    body["spec"].update(
        {
            "service": {
                "port": 80,
                "targetPort": "http",
                "appProtocol": "http",
                "labels": {"team": "shop"},
                "annotations": {"example.com/owner": "shop"},
            },
            "podDisruptionBudget": {"maxUnavailable": "25%"},
            "analysis": {
                "prometheus": {"address": "http://prometheus-operated.monitoring.svc:9090"},
                "prePromotion": [copy.deepcopy(ERROR_RATE)],
                "postPromotion": [
                    copy.deepcopy(HEALTH_CHECK),
                    copy.deepcopy(ALB_ERRORS),
                    copy.deepcopy(SMOKE_JOB),
                ],
            },
            "ingress": {"host": "shop.example.com", "className": "nginx", "path": "/"},
            "monitoring": {
                "serviceMonitor": {
                    "enabled": True,
                    "interval": "15s",
                    "labels": {"release": "monitoring"},
                }
            },
            "image": {"resolveDigest": "IfPossible"},
        }
    )
    return body


# ----------------------------------------------------------------------------- mutations

Mutation = Callable[[dict[str, Any]], None]


def _steps(path: str) -> list[str | int]:
    """'spec.a[0].b' -> ['spec', 'a', 0, 'b']"""
    return [
        int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"\[\d+\]|[^.\[\]]+", path)
    ]


def _parent(body: dict[str, Any], path: str) -> tuple[Any, str | int]:
    *head, last = _steps(path)
    node: Any = body
    for step in head:
        node = node[step]
    return node, last


def put(path: str, value: Any) -> Mutation:
    """Set the field at `path` (dotted, with [i] for list items) to `value`."""

    def mutate(body: dict[str, Any]) -> None:
        parent, key = _parent(body, path)
        parent[key] = copy.deepcopy(value)

    return mutate


def drop(path: str) -> Mutation:
    """Remove the field at `path`."""

    def mutate(body: dict[str, Any]) -> None:
        parent, key = _parent(body, path)
        del parent[key]

    return mutate


def append(path: str, value: Any) -> Mutation:
    """Add `value` to the end of the list at `path`."""

    def mutate(body: dict[str, Any]) -> None:
        parent, key = _parent(body, path)
        parent[key].append(copy.deepcopy(value))

    return mutate


def both(*mutations: Mutation) -> Mutation:
    """Two edits that make one mistake (e.g. a metric that has both query and url)."""

    def mutate(body: dict[str, Any]) -> None:
        for m in mutations:
            m(body)

    return mutate


PRE = "spec.analysis.prePromotion[0]"
POST = "spec.analysis.postPromotion[0]"
CW = "spec.analysis.postPromotion[1]"
JOB = "spec.analysis.postPromotion[2]"


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    phrases: tuple[str, ...]  # every one must be in the server's message
    status: int = 422
    strict: bool = False  # send fieldValidation=Strict
    in_spec: bool = True  # a rule of the spec, so the pydantic model must reject it too


def case(id: str, mutate: Mutation, *phrases: str, **kw: Any) -> Any:
    return pytest.param(Case(id, mutate, phrases, **kw), id=id)


CASES = [
    # --- replicas
    case(
        "replicas-negative", put("spec.replicas", -1), "spec.replicas", "greater than or equal to 0"
    ),
    case(
        "replicas-as-string", put("spec.replicas", "2"), "spec.replicas", "must be of type integer"
    ),
    case(
        "replicas-above-10000",
        put("spec.replicas", 10001),
        "spec.replicas",
        "less than or equal to 10000",
    ),
    # --- template
    case("spec-missing", drop("spec"), "spec", "Required value"),
    case("template-missing", drop("spec.template"), "spec.template", "Required value"),
    case(
        "template-spec-missing", drop("spec.template.spec"), "spec.template.spec", "Required value"
    ),
    case(
        "containers-empty",
        put("spec.template.spec.containers", []),
        "spec.template.spec.containers",
        "should have at least 1 items",
    ),
    case(
        "container-without-image",
        drop("spec.template.spec.containers[0].image"),
        "spec.template.spec.containers[0].image",
        "Required value",
    ),
    case(
        "container-image-empty",
        put("spec.template.spec.containers[0].image", ""),
        "spec.template.spec.containers[0].image",
        "at least 1 chars long",
    ),
    case(
        "container-without-name",
        drop("spec.template.spec.containers[0].name"),
        "spec.template.spec.containers[0].name",
        "Required value",
    ),
    case(
        "template-label-under-bluegreen.dev",
        put("spec.template.metadata.labels", {"tier": "web", "bluegreen.dev/color": "blue"}),
        RESERVED_LABELS,
    ),
    case(
        "template-label-bluegreen.dev-app",
        put("spec.template.metadata.labels", {"tier": "web", "bluegreen.dev/app": "x"}),
        RESERVED_LABELS,
    ),
    case(
        "template-label-value-not-string",
        put("spec.template.metadata.labels", {"tier": 1}),
        "spec.template.metadata.labels.tier",
        "must be of type string",
    ),
    # --- service
    case(
        "service-port-0",
        put("spec.service.port", 0),
        "spec.service.port",
        "greater than or equal to 1",
    ),
    case(
        "service-port-70000",
        put("spec.service.port", 70000),
        "spec.service.port",
        "less than or equal to 65535",
    ),
    case(
        "service-targetPort-0",
        put("spec.service.targetPort", 0),
        "service.targetPort must be a port number 1-65535 or a port name",
    ),
    case(
        "service-targetPort-70000",
        put("spec.service.targetPort", 70000),
        "service.targetPort must be a port number 1-65535 or a port name",
    ),
    case(
        "service-targetPort-bad-name",
        put("spec.service.targetPort", "Http_Port"),
        "service.targetPort must be a port number 1-65535 or a port name",
    ),
    case(
        "service-targetPort-number-as-string",
        put("spec.service.targetPort", "8080"),
        "service.targetPort must be a port number 1-65535 or a port name",
    ),
    # --- placement and marks (docs/placement.md)
    case(
        "antiAffinity-both",
        put(
            "spec.strategy.antiAffinity",
            {
                "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 1},
                "requiredDuringSchedulingIgnoredDuringExecution": {},
            },
        ),
        ANTI_AFFINITY_KIND,
    ),
    case("antiAffinity-neither", put("spec.strategy.antiAffinity", {}), ANTI_AFFINITY_KIND),
    case(
        "antiAffinity-required-with-a-field",
        put(
            "spec.strategy.antiAffinity",
            {"requiredDuringSchedulingIgnoredDuringExecution": {"topologyKey": "zone"}},
        ),
        "spec.strategy.antiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        "at most 0",
    ),
    case(
        "antiAffinity-weight-0",
        put("spec.strategy.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight", 0),
        "weight",
        "greater than or equal to 1",
    ),
    case(
        "activeMetadata-label-bluegreen.dev",
        put("spec.strategy.activeMetadata.labels", {"bluegreen.dev/color": "x"}),
        POD_METADATA_LABELS,
    ),
    case(
        "previewMetadata-label-pod-template-hash",
        put("spec.strategy.previewMetadata.labels", {"pod-template-hash": "x"}),
        POD_METADATA_LABELS,
    ),
    case(
        "activeMetadata-label-app-name",
        put("spec.strategy.activeMetadata.labels", {"app.kubernetes.io/name": "x"}),
        POD_METADATA_LABELS,
    ),
    case(
        "activeMetadata-annotation-bluegreen.dev",
        put("spec.strategy.activeMetadata.annotations", {"bluegreen.dev/request": "x"}),
        POD_METADATA_ANNOTATIONS,
    ),
    case(
        "activeMetadata-label-of-the-template",
        put("spec.strategy.activeMetadata.labels", {"tier": "live"}),
        POD_METADATA_TEMPLATE,
    ),
    case(
        "pdb-both",
        put("spec.podDisruptionBudget", {"minAvailable": 1, "maxUnavailable": 1}),
        PDB_KIND,
    ),
    case("pdb-neither", put("spec.podDisruptionBudget", {}), PDB_KIND),
    case("pdb-negative", put("spec.podDisruptionBudget", {"minAvailable": -1}), PDB_VALUE),
    case("pdb-101-percent", put("spec.podDisruptionBudget", {"maxUnavailable": "101%"}), PDB_VALUE),
    case("pdb-not-a-percent", put("spec.podDisruptionBudget", {"minAvailable": "half"}), PDB_VALUE),
    case(
        "service-ports-and-port",
        put("spec.service.ports", [{"name": "http", "port": 80}]),
        SERVICE_PORT_FORMS,
    ),
    case(
        "service-ports-same-number",
        both(
            put("spec.service", {}),
            put("spec.service.ports", [{"name": "http", "port": 80}, {"name": "b", "port": 80}]),
        ),
        SERVICE_PORT_UNIQUE,
    ),
    case(
        "service-ports-same-name",
        both(
            put("spec.service", {}),
            put("spec.service.ports", [{"name": "http", "port": 80}, {"name": "http", "port": 81}]),
        ),
        "Duplicate value",
    ),
    case(
        "service-ports-primary-udp",
        both(
            put("spec.service", {}),
            put(
                "spec.service.ports",
                [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "web", "port": 80}],
            ),
        ),
        SERVICE_PRIMARY_TCP,
    ),
    case(
        "service-ports-bad-targetPort",
        both(
            put("spec.service", {}),
            put("spec.service.ports", [{"name": "http", "port": 80, "targetPort": "Web_Port"}]),
        ),
        SERVICE_PORT_TARGET,
    ),
    case(
        "service-appProtocol-bad",
        put("spec.service.appProtocol", "not a protocol"),
        "spec.service.appProtocol",
        "should match",
    ),
    case(
        "service-label-managed-by",
        put("spec.service.labels", {"app.kubernetes.io/managed-by": "me"}),
        SERVICE_LABELS,
    ),
    case(
        "service-annotation-bluegreen.dev",
        put("spec.service.annotations", {"bluegreen.dev/x": "y"}),
        SERVICE_ANNOTATIONS,
    ),
    # --- strategy
    case(
        "progressDeadlineSeconds-0",
        put("spec.strategy.progressDeadlineSeconds", 0),
        "spec.strategy.progressDeadlineSeconds",
        "greater than or equal to 1",
    ),
    case(
        "autoPromotionSeconds-negative",
        put("spec.strategy.autoPromotionSeconds", -5),
        "spec.strategy.autoPromotionSeconds",
        "greater than or equal to 0",
    ),
    case(
        "previewReplicas-negative",
        put("spec.strategy.previewReplicas", -1),
        "spec.strategy.previewReplicas",
        "greater than or equal to 0",
    ),
    case(
        "scaleDownDelaySeconds-above-a-day",
        put("spec.strategy.scaleDownDelaySeconds", 86401),
        "spec.strategy.scaleDownDelaySeconds",
        "less than or equal to 86400",
    ),
    case(
        "autoPromotion-as-string",
        put("spec.strategy.autoPromotion", "yes"),
        "spec.strategy.autoPromotion",
        "must be of type boolean",
    ),
    # kubectl apply (and kubectl create) ask for fieldValidation=Strict by default, so a typo
    # is an error there. A client that does not ask gets the default, Warn: structural
    # pruning silently DROPS the unknown field and the create succeeds (see the test below).
    case(
        "unknown-field-under-strategy",
        put("spec.strategy.autoPromote", True),
        'unknown field "spec.strategy.autoPromote"',
        status=400,
        strict=True,
    ),
    # --- canary
    case(
        "canary-without-ingress",
        drop("spec.ingress"),
        "strategy.canary needs spec.ingress or spec.trafficRouting.gatewayAPI",
    ),
    case(
        "canary-weights-decreasing",
        put("spec.strategy.canary.steps", [{"weight": 50}, {"weight": 10}]),
        "canary step weights must be strictly increasing",
    ),
    case(
        "canary-weights-repeated",
        put("spec.strategy.canary.steps", [{"weight": 10}, {"weight": 10}]),
        "canary step weights must be strictly increasing",
    ),
    case(
        "canary-weight-0",
        put("spec.strategy.canary.steps[0].weight", 0),
        "spec.strategy.canary.steps[0].weight",
        "greater than or equal to 1",
    ),
    case(
        "canary-weight-101",
        put("spec.strategy.canary.steps[1].weight", 101),
        "spec.strategy.canary.steps[1].weight",
        "less than or equal to 100",
    ),
    case(
        "canary-without-steps",
        put("spec.strategy.canary.steps", []),
        "spec.strategy.canary.steps",
        "should have at least 1 items",
    ),
    case(
        "canary-pauseSeconds-negative",
        put("spec.strategy.canary.steps[0].pauseSeconds", -1),
        "spec.strategy.canary.steps[0].pauseSeconds",
        "greater than or equal to 0",
    ),
    # --- analysis
    case(
        "metric-with-query-and-url",
        put(f"{PRE}.url", "http://shop/health"),
        METRIC_KIND,
    ),
    case(
        "metric-with-neither-query-nor-url",
        drop(f"{POST}.url"),
        METRIC_KIND,
    ),
    case(
        "query-metric-without-thresholdRange",
        drop(f"{PRE}.thresholdRange"),
        "a query metric needs thresholdRange",
    ),
    case(
        "thresholdRange-without-min-or-max",
        put(f"{PRE}.thresholdRange", {}),
        "thresholdRange needs min, max or both",
    ),
    case(
        "thresholdRange-min-above-max",
        put(f"{PRE}.thresholdRange", {"min": 0.5, "max": 0.1}),
        "thresholdRange.min must not exceed max",
    ),
    case(
        "failureLimit-equal-to-count",
        put(f"{PRE}.failureLimit", 4),
        "failureLimit must be lower than count",
    ),
    case(
        # count is defaulted (4) before the rule runs
        "failureLimit-above-defaulted-count",
        both(drop(f"{PRE}.count"), put(f"{PRE}.failureLimit", 5)),
        "failureLimit must be lower than count",
    ),
    case(
        "minRequests-without-minRequestsQuery",
        drop(f"{PRE}.minRequestsQuery"),
        "minRequestsQuery and minRequests go together",
    ),
    case(
        "minRequestsQuery-without-minRequests",
        drop(f"{PRE}.minRequests"),
        "minRequestsQuery and minRequests go together",
    ),
    case(
        "query-metric-without-prometheus",
        drop("spec.analysis.prometheus"),
        "query metrics need analysis.prometheus.address",
    ),
    case(
        "duplicate-metric-names",
        append("spec.analysis.prePromotion", ERROR_RATE),
        "spec.analysis.prePromotion[1]",
        "Duplicate value",
        '"error-rate"',
    ),
    case(
        "interval-15-seconds",
        put(f"{PRE}.interval", "15 seconds"),
        "spec.analysis.prePromotion[0].interval",
        "should match",
    ),
    case(
        "interval-0s-a-hot-loop",
        put(f"{PRE}.interval", "0s"),
        "spec.analysis.prePromotion[0]",
        "interval must be at least 1s and at most 1h",
    ),
    case(
        "interval-500ms",
        put(f"{PRE}.interval", "500ms"),
        "spec.analysis.prePromotion[0]",
        "interval must be at least 1s and at most 1h",
    ),
    case(
        "interval-2h",
        put(f"{PRE}.interval", "2h"),
        "spec.analysis.prePromotion[0]",
        "interval must be at least 1s and at most 1h",
    ),
    case(
        "noData-Maybe",
        put(f"{PRE}.noData", "Maybe"),
        "spec.analysis.prePromotion[0].noData",
        'Unsupported value: "Maybe"',
        '"Inconclusive", "Fail", "Pass"',
    ),
    case(
        "metric-name-uppercase",
        put(f"{PRE}.name", "ErrorRate"),
        "spec.analysis.prePromotion[0].name",
        "should match",
    ),
    case(
        "metric-count-0",
        put(f"{PRE}.count", 0),
        "spec.analysis.prePromotion[0].count",
        "greater than or equal to 1",
    ),
    case(
        "metric-url-without-scheme",
        put(f"{POST}.url", "shop-preview/health"),
        "spec.analysis.postPromotion[0].url",
        "should match '^https?://'",
    ),
    case(
        "prometheus-address-without-scheme",
        put("spec.analysis.prometheus.address", "prometheus-operated.monitoring.svc:9090"),
        "spec.analysis.prometheus.address",
        "should match '^https?://'",
    ),
    # --- CloudWatch metrics
    case(
        "cloudwatch-and-query",
        put(f"{CW}.query", "sum(up)"),
        "spec.analysis.postPromotion[1]",
        METRIC_KIND,
    ),
    case(
        "cloudwatch-without-threshold",
        drop(f"{CW}.thresholdRange"),
        "spec.analysis.postPromotion[1]",
        CLOUDWATCH_THRESHOLD,
    ),
    case(
        "cloudwatch-with-a-promql-guard",
        both(put(f"{CW}.minRequestsQuery", "sum(x)"), put(f"{CW}.minRequests", 5)),
        GUARD_KIND,
    ),
    case(
        "cloudwatch-with-minRequests-alone",
        put(f"{CW}.minRequests", 5),
        "spec.analysis.postPromotion[1]",
        METRIC_MIN_REQUESTS,
    ),
    case(
        "cloudwatch-lookback-30s",
        put(f"{CW}.cloudwatch.lookback", "30s"),
        "spec.analysis.postPromotion[1].cloudwatch",
        CLOUDWATCH_LOOKBACK,
    ),
    case(
        "cloudwatch-lookback-2d",
        put(f"{CW}.cloudwatch.lookback", "48h"),
        "spec.analysis.postPromotion[1].cloudwatch",
        CLOUDWATCH_LOOKBACK,
    ),
    case(
        "cloudwatch-region-a-url",
        put(f"{CW}.cloudwatch.region", "us-east-1.amazonaws"),
        "spec.analysis.postPromotion[1].cloudwatch.region",
        "should match",
    ),
    case(
        "cloudwatch-period-45",
        put(f"{CW}.cloudwatch.queries[0].metricStat.period", 45),
        "spec.analysis.postPromotion[1].cloudwatch.queries[0].metricStat",
        CLOUDWATCH_PERIOD,
    ),
    case(
        "cloudwatch-query-expression-and-metricStat",
        put(f"{CW}.cloudwatch.queries[2].metricStat", _alb_stat("RequestCount")),
        "spec.analysis.postPromotion[1].cloudwatch.queries[2]",
        CLOUDWATCH_QUERY_KIND,
    ),
    case(
        "cloudwatch-nothing-returns-data",
        put(f"{CW}.cloudwatch.queries[2].returnData", False),
        "spec.analysis.postPromotion[1].cloudwatch",
        CLOUDWATCH_RETURN,
    ),
    case(
        "cloudwatch-query-id-uppercase",
        put(f"{CW}.cloudwatch.queries[2].id", "Ratio"),
        "spec.analysis.postPromotion[1].cloudwatch.queries[2].id",
        "should match",
    ),
    case(
        "cloudwatch-query-ids-repeat",
        put(f"{CW}.cloudwatch.queries[1].id", "errors"),
        "spec.analysis.postPromotion[1].cloudwatch.queries[1]",
        "Duplicate value",
    ),
    # --- Job metrics
    case(
        "job-and-url",
        put(f"{JOB}.url", "http://shop-preview.shop.svc/"),
        "spec.analysis.postPromotion[2]",
        METRIC_KIND,
    ),
    case(
        "job-with-threshold",
        put(f"{JOB}.thresholdRange", {"min": 1}),
        "spec.analysis.postPromotion[2]",
        JOB_THRESHOLD,
    ),
    case(
        "job-timeout-7h",
        put(f"{JOB}.job.timeout", "7h"),
        "spec.analysis.postPromotion[2].job",
        JOB_TIMEOUT,
    ),
    case(
        "job-backoffLimit-11",
        put(f"{JOB}.job.backoffLimit", 11),
        "spec.analysis.postPromotion[2].job.backoffLimit",
        "less than or equal to 10",
    ),
    case(
        "job-restartPolicy-Always",
        put(f"{JOB}.job.template.spec.restartPolicy", "Always"),
        "spec.analysis.postPromotion[2].job.template.spec.restartPolicy",
        'Unsupported value: "Always"',
    ),
    case(
        "job-pod-joins-the-app-s-services",
        put(f"{JOB}.job.template.metadata.labels", {"bluegreen.dev/color": "green"}),
        "spec.analysis.postPromotion[2].job.template.metadata",
        RESERVED_LABELS,
    ),
    case(
        "job-without-containers",
        put(f"{JOB}.job.template.spec.containers", []),
        "spec.analysis.postPromotion[2].job.template.spec.containers",
        "should have at least 1 items",
    ),
    # --- ingress, monitoring, image
    case(
        "ingress-host-with-scheme",
        put("spec.ingress.host", "https://shop.example.com"),
        "ingress.host must be a lowercase DNS name",
    ),
    case(
        "ingress-host-uppercase",
        put("spec.ingress.host", "Shop.Example.com"),
        "ingress.host must be a lowercase DNS name",
    ),
    case(
        "ingress-path-relative",
        put("spec.ingress.path", "shop"),
        "spec.ingress.path",
        "should match '^/'",
    ),
    case(
        "serviceMonitor-interval-bad-duration",
        put("spec.monitoring.serviceMonitor.interval", "1 minute"),
        "spec.monitoring.serviceMonitor.interval",
        "should match",
    ),
    case(
        "resolveDigest-Sometimes",
        put("spec.image.resolveDigest", "Sometimes"),
        "spec.image.resolveDigest",
        'Unsupported value: "Sometimes"',
        '"Never", "IfPossible", "Required"',
    ),
    # --- metadata.name (the root's CEL rules; the operator never sees such names)
    case(
        "name-uppercase",
        put("metadata.name", "Shop"),
        "metadata.name must be a DNS-1035 label",
        in_spec=False,
    ),
    case(
        "name-starts-with-digit",
        put("metadata.name", "1shop"),
        "metadata.name must be a DNS-1035 label",
        in_spec=False,
    ),
    case(
        "name-with-dot",
        put("metadata.name", "shop.v2"),
        "metadata.name must be a DNS-1035 label",
        in_spec=False,
    ),
]


# ----------------------------------------------------------------------------- the API server


def _create(
    api_client: client.ApiClient, namespace: str, body: dict[str, Any], strict: bool = False
) -> dict[str, Any]:
    kwargs = {"field_validation": "Strict"} if strict else {}
    result: dict[str, Any] = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, **kwargs
    )
    return result


def _rejection(
    api_client: client.ApiClient, namespace: str, body: dict[str, Any], strict: bool = False
) -> tuple[int, str]:
    """Create `body`, which must fail; return the HTTP status and the server's message."""
    with pytest.raises(ApiException) as info:
        _create(api_client, namespace, body, strict)
    err = info.value
    message = json.loads(err.body)["message"] if err.body else str(err)
    return err.status, message


def test_the_valid_base_app_is_accepted(
    api_client: client.ApiClient, crd: None, namespace: str
) -> None:
    body = valid_app()
    created = _create(api_client, namespace, body, strict=True)
    assert created["metadata"]["name"] == NAME
    assert created["spec"]["analysis"]["prePromotion"][0]["failureLimit"] == 1
    assert created["spec"]["strategy"]["canary"]["steps"][1]["pauseSeconds"] == 60  # defaulted
    # ...and the operator's model reads what the server stored.
    app = BlueGreenApp.model_validate(created)
    assert app.spec.strategy.canary is not None
    assert app.spec.ingress is not None


@pytest.mark.parametrize("c", CASES)
def test_the_api_server_rejects(
    api_client: client.ApiClient, crd: None, namespace: str, c: Case
) -> None:
    body = valid_app()
    c.mutate(body)
    status, message = _rejection(api_client, namespace, body, c.strict)
    assert status == c.status, message
    for phrase in c.phrases:
        assert phrase in message, f"{phrase!r} not in the server's message: {message}"


def test_a_name_longer_than_55_characters_is_rejected_up_front(
    api_client: client.ApiClient, crd: None, namespace: str
) -> None:
    longest = "s" * MAX_NAME_LENGTH
    assert MAX_NAME_LENGTH == 55
    status, message = _rejection(api_client, namespace, valid_app(longest + "x"))
    assert status == 422, message
    assert "metadata.name must be at most 55 characters" in message
    assert "derives Service names such as <name>-preview" in message
    # 55 is allowed: "<name>-preview" and "<name>-metrics" are then exactly 63 characters.
    _create(api_client, namespace, valid_app(longest))


def test_without_strict_validation_an_unknown_field_is_pruned_not_rejected(
    api_client: client.ApiClient, crd: None, namespace: str
) -> None:
    """Why the unknown-field case asks for Strict: the API's default only warns and prunes."""
    body = valid_app()
    body["spec"]["strategy"]["autoPromote"] = False
    created = _create(api_client, namespace, body)
    assert "autoPromote" not in created["spec"]["strategy"]


EDGES = [
    pytest.param(put("spec.replicas", 0), id="replicas-0"),
    pytest.param(put("spec.service.targetPort", 8080), id="targetPort-number"),
    pytest.param(put("spec.service.targetPort", "metrics-9090"), id="targetPort-name-with-digits"),
    pytest.param(put("spec.ingress.host", "*.shop.example.com"), id="ingress-wildcard-host"),
    pytest.param(put("spec.strategy.canary.steps", [{"weight": 100}]), id="canary-one-step-100"),
    pytest.param(put(f"{PRE}.failureLimit", 3), id="failureLimit-count-minus-1"),
    pytest.param(put(f"{PRE}.thresholdRange", {"min": 0.5, "max": 0.5}), id="threshold-min-eq-max"),
    pytest.param(put(f"{PRE}.interval", "1m30s"), id="interval-1m30s"),
    pytest.param(drop("spec.strategy.canary"), id="no-canary-no-ingress-needed"),
    pytest.param(
        put("spec.strategy.antiAffinity", {"requiredDuringSchedulingIgnoredDuringExecution": {}}),
        id="antiAffinity-required",
    ),
    pytest.param(put("spec.podDisruptionBudget", {"minAvailable": 0}), id="pdb-min-0"),
    pytest.param(put("spec.podDisruptionBudget", {"maxUnavailable": "100%"}), id="pdb-100%"),
    pytest.param(
        put(
            "spec.service",
            {
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53},
                    {"name": "http", "port": 80, "appProtocol": "kubernetes.io/h2c"},
                ]
            },
        ),
        id="service-ports-udp-and-tcp-53-primary-http",
    ),
    pytest.param(put(f"{CW}.cloudwatch.lookback", "24h"), id="cloudwatch-lookback-24h"),
    pytest.param(put(f"{CW}.cloudwatch.lookback", "1m"), id="cloudwatch-lookback-1m"),
    pytest.param(put(f"{CW}.cloudwatch.queries[0].metricStat.period", 5), id="period-5"),
    pytest.param(drop(f"{CW}.cloudwatch.region"), id="cloudwatch-operator-s-region"),
    pytest.param(put(f"{JOB}.job.timeout", "6h"), id="job-timeout-6h"),
    pytest.param(put(f"{JOB}.job.template.spec.restartPolicy", "OnFailure"), id="OnFailure"),
    pytest.param(
        put(
            "spec.template.metadata.labels",
            {
                "app.kubernetes.io/name": "storefront",
                "app.kubernetes.io/instance": "prod",
                "app.kubernetes.io/part-of": "shop",
            },
        ),
        id="template-standard-labels-are-the-users",
    ),
    pytest.param(
        both(drop("spec.analysis.prometheus"), drop("spec.analysis.prePromotion")),
        id="url-metrics-need-no-prometheus",
    ),
]


@pytest.mark.parametrize("mutate", EDGES)
def test_edge_values_are_accepted(
    api_client: client.ApiClient, crd: None, namespace: str, mutate: Mutation
) -> None:
    """The rules are not stricter than they say: values at their limits pass both checks."""
    body = valid_app()
    mutate(body)
    _create(api_client, namespace, body, strict=True)
    BlueGreenApp.model_validate_json(json.dumps(body), strict=True)


def _cel_messages(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_cel_messages(v) for v in node))
    if not isinstance(node, dict):
        return set()
    found = {r["message"] for r in node.get("x-kubernetes-validations", [])}
    return found.union(*(_cel_messages(v) for v in node.values()))


CEL_MESSAGES = _cel_messages(crdgen.crd())


@pytest.mark.parametrize("c", [p for p in CASES if p.values[0].in_spec])
def test_the_model_rejects_it_too(c: Case) -> None:
    """What the CRD rejects, the pydantic model (the CRD's source) rejects as well, with the
    same message where the CRD's is a CEL rule's.

    Validated as JSON in strict mode, as the API server does: "2" is not an integer there.
    """
    body = valid_app()
    c.mutate(body)
    with pytest.raises(ValidationError) as info:
        BlueGreenApp.model_validate_json(json.dumps(body), strict=True)
    for phrase in CEL_MESSAGES.intersection(c.phrases):
        assert phrase in str(info.value)
