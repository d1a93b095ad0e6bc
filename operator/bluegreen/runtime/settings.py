"""Operator settings, from the environment (BLUEGREEN_*), built once at startup."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    idle_poll_seconds: float = 30.0
    """How long a daemon that has nothing to wait for sleeps before looking again."""
