"""The small interfaces the orchestration depends on; adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from bluegreen.core.analysis import QueryResult
from bluegreen.core.cloudwatch import CloudWatchRequest
from bluegreen.core.images import Resolution
from bluegreen.core.notify import Notice
from bluegreen.core.plan import RouteBackends

SEEN_AT = "seenAt"
"""Key of a ClusterReader object: the wall-clock time (epoch seconds) its version arrived by
a watch event. Absent for an object that came from a full list (nobody watched it change)."""
WRITTEN_AT = "writtenAt"
"""Key of a ClusterReader EndpointSlice: the API server's time of its last write (RFC 3339,
to the second)."""


class ClusterReader(Protocol):
    """What a pass reads of the cluster: the operator's watch caches (never the API server
    itself). Objects come as the API's dicts, trimmed to what the decision reads."""

    def app(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """kind: Deployment | Service | ServiceMonitor | Ingress | HTTPRoute | Job |
        AnalysisTemplate | ClusterAnalysisTemplate (namespace "") | ConfigMap | Secret
        (these two trimmed to their content digest). None when absent."""

    def pods(self, namespace: str, app: str) -> list[dict[str, Any]]:
        """Every pod of both colours of `app`."""

    def endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """The Service's EndpointSlices, with SEEN_AT and WRITTEN_AT."""

    def service_monitors_supported(self) -> bool: ...

    def http_routes_supported(self) -> bool: ...

    def analysis_templates_readable(self, cluster: bool) -> bool:
        """Whether the operator can read AnalysisTemplates (ClusterAnalysisTemplates with
        `cluster`): their CRD is served, and it may list them."""

    def analysis_jobs(self, namespace: str, app: str) -> list[dict[str, Any]]:
        """The analysis Jobs `app` owns (job metrics), in any window."""
        ...

    def config_copies(self, namespace: str, app: str) -> list[dict[str, Any]]:
        """The copies of ConfigMaps and Secrets `app` made (spec.configTracking), each with
        its `kind`."""
        ...

    def secrets_tracked(self) -> bool:
        """Whether the operator watches Secrets (its administrator allows tracking them)."""
        ...


class ClusterGateway(Protocol):
    """Every write the operator makes to the Kubernetes API goes through this. Each write's
    answer updates what the ClusterReader reads, so a pass never sees less than the
    operator itself wrote."""

    def apply(self, manifest: dict[str, Any], *, adopt: bool = False) -> None:
        """Server-side apply of an object the app owns. An existing object of that name
        that is not the app's (its ownerReference) raises ConflictError unless `adopt`."""

    def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def copy_config(self, manifest: dict[str, Any], source: str, digest: str) -> None:
        """Create the immutable copy `manifest` with the content of ConfigMap or Secret
        `source` of its namespace, if that content has `digest` (TransientError when not:
        it changed, and a new revision follows). A copy that exists already is kept."""

    def patch_app_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    def remove_app_annotation(self, namespace: str, name: str, key: str) -> None: ...

    def route_backends(self, namespace: str, change: RouteBackends) -> None:
        """Set the backendRefs of one rule of an HTTPRoute, if it is still at
        `change.resource_version` (TransientError when it is not)."""

    def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """A merge patch of an object's labels and annotations; one that is gone is done."""


class EventSink(Protocol):
    """Where a pass's Events go: best effort, never in the way of a release."""

    def emit_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class MetricsSource(Protocol):
    """Reads one sample. Never raises for a failed read: the error is in the QueryResult
    (an unreachable Prometheus is an inconclusive measurement, not a crashed reconcile)."""

    def query(self, address: str, promql: str) -> QueryResult:
        """An instant PromQL query against the Prometheus at `address` (http(s)://host:port)."""
        ...

    def probe(self, url: str) -> QueryResult:
        """A web check: value 1.0 when GET `url` answers 2xx, 0.0 for any other status."""
        ...

    def cloudwatch(self, request: CloudWatchRequest) -> QueryResult:
        """Amazon CloudWatch GetMetricData with the operator's own AWS credentials (the
        default chain: IRSA in EKS), every page of it, judged by
        `bluegreen.core.cloudwatch.judge_results`."""
        ...

    def refusal(self, prometheus: str | None, url: str | None) -> str | None:
        """Why the operator will not send a request to this Prometheus address or web-check
        URL (the administrator's endpoint policy), or None when it may."""
        ...


class ImageResolver(Protocol):
    """Resolves an image reference to a digest. Implementations never raise for registry
    failures: those are UNAVAILABLE (temporary) or NOT_FOUND (definite) resolutions."""

    def resolve(self, image: str) -> Resolution: ...


class NoticeSink(Protocol):
    """Where a pass's notifications go: queued at once, sent by threads of their own, never
    in the way of a release (adapters/notify.py)."""

    def send(self, endpoint: str, notice: Notice) -> None: ...
