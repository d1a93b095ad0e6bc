"""Operator settings, from the environment (BLUEGREEN_*), built once at startup."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bluegreen.adapters.endpoints import DEFAULT_RULES

Rules = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLUEGREEN_", frozen=True)

    kubeconfig: str | None = None
    """A kubeconfig file; unset: in-cluster ServiceAccount, then KUBECONFIG."""
    log_format: Literal["plain", "json"] = "plain"
    metrics_port: int = 8080
    """Where the operator serves its own Prometheus metrics (0: off)."""
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

    @field_validator(
        "analysis_prometheus_allowed", "analysis_web_allowed", "watch_namespaces", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
