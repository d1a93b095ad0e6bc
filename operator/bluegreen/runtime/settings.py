"""Operator settings, from the environment (BLUEGREEN_*), built once at startup."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bluegreen.adapters.endpoints import DEFAULT_RULES
from bluegreen.core.ingress_guard import IngressPolicy

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

    @field_validator(
        "analysis_prometheus_allowed",
        "analysis_web_allowed",
        "watch_namespaces",
        "ingress_allowed_classes",
        "ingress_allowed_annotations",
        "ingress_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
