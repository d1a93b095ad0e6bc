"""Operator settings, from the environment (BLUEGREEN_*), built once at startup."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bluegreen.adapters.endpoints import DEFAULT_RULES, NOTIFICATION_RULES
from bluegreen.core.ingress_guard import IngressPolicy

Rules = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLUEGREEN_", frozen=True)

    kubeconfig: str | None = None
    """A kubeconfig file; unset: in-cluster ServiceAccount, then KUBECONFIG."""
    metrics_port: int = 8080
    """Where the operator serves its own Prometheus metrics (0: off)."""
    metrics_bind: str = "0.0.0.0"  # noqa: S104 - the default serves the metrics Service
    """The address the metrics server listens on: `0.0.0.0` (every address of the pod, for
    the metrics Service), or `127.0.0.1` (the pod's loopback only: /metrics names every app,
    and then nothing outside the pod reads it, e.g. an authenticating proxy beside it)."""
    workers: int = 64
    """Reconcile passes that may run at once (each in a worker thread)."""
    api_timeout_seconds: float = 10.0
    analysis_timeout_seconds: float = 5.0
    image_cache_seconds: float = 60.0
    """How long a tag's digest from ECR is trusted before it is asked again."""
    registry_timeout_seconds: float = 3.0
    """How long one Prometheus query or web check may take before it counts as unreachable."""
    watch_namespaces: Rules = ()
    """A namespaced install: the namespaces the operator serves (comma-separated; kopf's
    `--namespace` flags must name the same). Its watches are per namespace, so it needs no
    cluster-wide rights. Empty: every namespace, with cluster-wide watches."""
    pass_burst: float = 50.0
    """Passes one app may ask for itself at once (follow-up steps, timers); a release
    asks for a handful."""
    pass_rate: float = 5.0
    """Such passes per second after the burst: a spec that loops, valid or not, costs at
    most this many passes (each a few API requests at most) a second."""
    analysis_prometheus_allowed: Rules = DEFAULT_RULES
    """Prometheus addresses apps may name (analysis.prometheus.address): URLs or host
    patterns, comma-separated (`http://prometheus-operated.monitoring.svc:9090,*.svc`).
    Loopback, link-local and metadata addresses are refused whatever this says."""
    analysis_web_allowed: Rules = DEFAULT_RULES
    """Hosts apps' web checks may reach (a metric's `url`), the same way."""
    cloudwatch_endpoint_url: str | None = None
    """Where CloudWatch GetMetricData goes (a VPC endpoint, or a stand-in in tests); unset:
    the region's public endpoint. Set by the administrator only: apps name a region."""
    cloudwatch_max_attempts: int = 3
    """HTTP requests per GetMetricData page at most (throttling is retried with backoff)."""
    ingress_allowed_classes: Rules = IngressPolicy.classes
    """IngressClasses apps may name in spec.ingress.className (comma-separated; `*`: any).
    Empty (the default): apps leave className unset and get the cluster's default class."""
    ingress_allowed_annotations: Rules = IngressPolicy.annotations
    """Annotation keys apps may set in spec.ingress.annotations: exact keys or patterns with
    `*` (`nginx.ingress.kubernetes.io/proxy-*`), comma-separated. Empty (the default): none.
    Snippet keys and the keys of known ingress-nginx CVEs only by their exact name."""
    ingress_allowed_hosts: Rules = IngressPolicy.hosts
    """Hosts apps may route (spec.ingress.host): names, `*.example.com` (any name under
    it), `{namespace}` for the app's namespace (`*.{namespace}.apps.example.com`);
    default `*`: any."""

    prometheus_auth_addresses: Rules = ()
    """The Prometheus addresses the credentials below are for, and no others: URL prefixes
    (`https://prometheus.monitoring.svc:9090`) or hosts (`*.monitoring.svc`),
    comma-separated. Required with any of them. See the README, "Prometheus credentials"."""
    prometheus_bearer_token_file: str | None = None
    """A mounted file whose content is sent as `Authorization: Bearer ...` (read again when
    it changes: a projected ServiceAccount token rotates)."""
    prometheus_ca_file: str | None = None
    """A mounted PEM file of the CA certificates that signed Prometheus's certificate (they
    replace the system's CAs for those addresses)."""
    prometheus_sigv4: bool = False
    """Sign queries with SigV4 (Amazon Managed Prometheus, service `aps`), with credentials
    from botocore's default chain (IRSA in EKS)."""
    prometheus_sigv4_region: str | None = None
    """The SigV4 region; unset: from the address (aps-workspaces.<region>.amazonaws.com)."""
    prometheus_auth_file: str | None = None
    """A YAML or JSON file of more credential profiles (addresses, bearerTokenFile, caFile,
    sigv4, headers), for several Prometheus servers or headers such as X-Scope-OrgID."""

    notifications_file: str | None = None
    """A YAML or JSON file of notification endpoints (Slack or JSON webhooks, by name) and
    of every app's subscriptions; apps name the endpoints in spec.notifications. See the
    README, "Notifications"."""
    notifications_allowed: Rules = NOTIFICATION_RULES
    """Where notification endpoint URLs may point: URLs or host patterns, comma-separated,
    as for analysis (`hooks.slack.com,*.svc`). Loopback, link-local and metadata addresses
    are refused whatever this says."""
    notifications_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    """How long one delivery may wait to connect, and then for the answer."""
    notifications_attempts: Annotated[int, Field(ge=1, le=10)] = 4
    """Attempts of one delivery; between them the wait doubles, from the one below."""
    notifications_retry_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    """The wait after the first failed attempt (then 2x, 4x, ..., at most a minute)."""
    notifications_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Notifications waiting to be sent, at most; more are dropped (and counted)."""

    track_secrets: bool = False
    """Apps may track the Secrets their template references (spec.configTracking.secrets):
    the operator watches Secrets (keeping a digest of each, never its data) and copies the
    referenced ones. Its role needs get, list, watch, create and delete on secrets (chart
    value configTracking.secrets grants them and sets this)."""

    service_monitor_labels: Annotated[dict[str, str], NoDecode] = {}
    """Labels every app's ServiceMonitor carries unless the app sets the same key
    (`release=monitoring`: what kube-prometheus-stack's Prometheus selects by), as
    comma-separated key=value pairs."""

    @field_validator("metrics_bind")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"an IP address (0.0.0.0, 127.0.0.1, ::1), not {value!r}") from None

    @field_validator("service_monitor_labels", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{part!r} is not key=value")
            pairs[key.strip()] = val.strip()
        return pairs

    @field_validator(
        "analysis_prometheus_allowed",
        "analysis_web_allowed",
        "watch_namespaces",
        "ingress_allowed_classes",
        "ingress_allowed_annotations",
        "ingress_allowed_hosts",
        "prometheus_auth_addresses",
        "notifications_allowed",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
