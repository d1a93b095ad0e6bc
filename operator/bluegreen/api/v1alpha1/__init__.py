"""The BlueGreenApp API, version v1alpha1.

These models are the single source of truth: the CRD in crds/ is generated from them
(`make crds`), and a test fails when the committed CRD drifts. Field names are a contract
with users, GitOps repositories and dashboards (docs/api.md).

    base     names, the base model, Color and Phase
    metrics  analysis metrics and their windows
    refs     how an app names analysis templates (templates, args)
    templates  AnalysisTemplate and ClusterAnalysisTemplate
    providers  CloudWatch and Job sources of metrics
    pods     pod templates (the app's, an analysis Job's)
    placement  anti-affinity, pod metadata, disruption budgets, the Services
    spec     the spec
    notifications  the release events an app's notification endpoints hear of
    status   the status
    app      the whole object
"""

from bluegreen.api.v1alpha1.app import BlueGreenApp
from bluegreen.api.v1alpha1.base import (
    ANALYSIS_PROMETHEUS,
    CANARY_NEEDS_INGRESS,
    CANARY_WEIGHTS,
    GROUP,
    IN_FLIGHT_PHASES,
    INGRESS_HOST,
    KIND,
    MAX_NAME_LENGTH,
    MAX_TEMPLATE_DEPTH,
    METRIC_FAILURE_LIMIT,
    METRIC_KIND,
    METRIC_MIN_REQUESTS,
    METRIC_THRESHOLD,
    PLURAL,
    RESERVED_LABELS,
    SHORT_NAMES,
    SINGULAR,
    STEP_QUERY_NEEDS_PROMETHEUS,
    TARGET_PORT,
    TEMPLATE_DEPTH,
    THRESHOLD_EMPTY,
    THRESHOLD_ORDER,
    VERSION,
    Color,
    Model,
    ObjectMeta,
    Phase,
)
from bluegreen.api.v1alpha1.config import ConfigTracking
from bluegreen.api.v1alpha1.metrics import (
    Analysis,
    Metric,
    NoDataPolicy,
    PrometheusProvider,
    ThresholdRange,
)
from bluegreen.api.v1alpha1.notifications import NotificationEvent, Subscription
from bluegreen.api.v1alpha1.pods import JobTemplate, PodTemplate
from bluegreen.api.v1alpha1.providers import (
    CloudWatchMetric,
    Dimension,
    JobMetric,
    MetricDataQuery,
    MetricStat,
)
from bluegreen.api.v1alpha1.refs import ArgValue, TemplateAnalysis, TemplateRef
from bluegreen.api.v1alpha1.service import ServiceSpec
from bluegreen.api.v1alpha1.spec import (
    BlueGreenAppSpec,
    Canary,
    CanaryStep,
    ImagePolicy,
    IngressSpec,
    Monitoring,
    ResolveDigest,
    ServiceMonitorSpec,
    Strategy,
)
from bluegreen.api.v1alpha1.status import (
    MAX_TEMPLATE_METRICS,
    AnalysisPhase,
    AnalysisRun,
    BlueGreenAppStatus,
    CanaryStatus,
    Condition,
    HistoryEntry,
    Measurement,
    MeasurementVerdict,
    Release,
    ReleaseResult,
    ScaleDown,
    UnresolvedAnalysis,
    Verdict,
)
from bluegreen.api.v1alpha1.templates import (
    CLUSTER_TEMPLATE_KIND,
    CLUSTER_TEMPLATE_PLURAL,
    CLUSTER_TEMPLATE_SINGULAR,
    TEMPLATE_KIND,
    TEMPLATE_PLURAL,
    TEMPLATE_SINGULAR,
    AnalysisTemplate,
    AnalysisTemplateSpec,
    ArgType,
    TemplateArg,
    TemplateMetric,
    TemplateThresholdRange,
)

__all__ = [
    "ANALYSIS_PROMETHEUS",
    "CANARY_NEEDS_INGRESS",
    "CANARY_WEIGHTS",
    "CLUSTER_TEMPLATE_KIND",
    "CLUSTER_TEMPLATE_PLURAL",
    "CLUSTER_TEMPLATE_SINGULAR",
    "GROUP",
    "INGRESS_HOST",
    "IN_FLIGHT_PHASES",
    "KIND",
    "MAX_NAME_LENGTH",
    "MAX_TEMPLATE_DEPTH",
    "MAX_TEMPLATE_METRICS",
    "METRIC_FAILURE_LIMIT",
    "METRIC_KIND",
    "METRIC_MIN_REQUESTS",
    "METRIC_THRESHOLD",
    "PLURAL",
    "RESERVED_LABELS",
    "SHORT_NAMES",
    "SINGULAR",
    "STEP_QUERY_NEEDS_PROMETHEUS",
    "TARGET_PORT",
    "TEMPLATE_DEPTH",
    "TEMPLATE_KIND",
    "TEMPLATE_PLURAL",
    "TEMPLATE_SINGULAR",
    "THRESHOLD_EMPTY",
    "THRESHOLD_ORDER",
    "VERSION",
    "Analysis",
    "AnalysisPhase",
    "AnalysisRun",
    "AnalysisTemplate",
    "AnalysisTemplateSpec",
    "ArgType",
    "ArgValue",
    "BlueGreenApp",
    "BlueGreenAppSpec",
    "BlueGreenAppStatus",
    "Canary",
    "CanaryStatus",
    "CanaryStep",
    "CloudWatchMetric",
    "Color",
    "Condition",
    "ConfigTracking",
    "Dimension",
    "HistoryEntry",
    "ImagePolicy",
    "IngressSpec",
    "JobMetric",
    "JobTemplate",
    "Measurement",
    "MeasurementVerdict",
    "Metric",
    "MetricDataQuery",
    "MetricStat",
    "Model",
    "Monitoring",
    "NoDataPolicy",
    "NotificationEvent",
    "ObjectMeta",
    "Phase",
    "PodTemplate",
    "PrometheusProvider",
    "Release",
    "ReleaseResult",
    "ResolveDigest",
    "ScaleDown",
    "ServiceMonitorSpec",
    "ServiceSpec",
    "Strategy",
    "Subscription",
    "TemplateAnalysis",
    "TemplateArg",
    "TemplateMetric",
    "TemplateRef",
    "TemplateThresholdRange",
    "ThresholdRange",
    "UnresolvedAnalysis",
    "Verdict",
]
