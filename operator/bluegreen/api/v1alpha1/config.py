"""spec.configTracking: ConfigMaps (and Secrets) the template references, released with it."""

from __future__ import annotations

from pydantic import Field

from bluegreen.api.v1alpha1.base import Model


class ConfigTracking(Model):
    enabled: bool = Field(
        default=False,
        description="Release a change of a ConfigMap the template references (env, envFrom, "
        "volumes) like a change of the template: each revision's pods reference an immutable "
        "copy, <name>-<revision>, so a rollback brings the old configuration back with them.",
    )
    secrets: bool = Field(
        default=False,
        description="Track the Secrets the template references the same way. Takes effect "
        "only when the operator's administrator allows it (chart value "
        "configTracking.secrets); otherwise the ConfigTracked condition says so and the "
        "pods reference the Secrets directly.",
    )
