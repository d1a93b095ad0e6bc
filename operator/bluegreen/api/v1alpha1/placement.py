"""Where the colours run and what marks them: anti-affinity between the colours, the labels
and annotations of the active and preview pods, and a PodDisruptionBudget per colour. The
Services' ports, labels and annotations are `service.py`'s."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from bluegreen.api.v1alpha1.base import KeyMap, Model, cel, check_keys, keys_rule

# Each rule below is checked twice, as in base.py: a CEL rule in the CRD and a validator in
# the model, with the same message.
ANTI_AFFINITY_KIND = (
    "strategy.antiAffinity needs exactly one of preferredDuringSchedulingIgnoredDuringExecution "
    "or requiredDuringSchedulingIgnoredDuringExecution"
)
POD_METADATA_LABELS = (
    "activeMetadata and previewMetadata labels must not be the operator's own "
    "(bluegreen.dev/*) or used by a selector (app.kubernetes.io/name, pod-template-hash)"
)
POD_METADATA_ANNOTATIONS = (
    "activeMetadata and previewMetadata annotations under bluegreen.dev/ are the operator's own"
)
POD_METADATA_TEMPLATE = (
    "activeMetadata and previewMetadata labels must not repeat a label of the template "
    "(the pod would lose it when its colour leaves the role)"
)
PDB_KIND = "podDisruptionBudget needs exactly one of minAvailable or maxUnavailable"
PDB_VALUE = "podDisruptionBudget values are a number >= 0 or a percentage from 0% to 100%"

_POD_LABELS_FORBIDDEN = ("app.kubernetes.io/name", "pod-template-hash")
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


# ----------------------------------------------------------------------------- anti-affinity


class PreferredAntiAffinity(Model):
    weight: Annotated[
        int,
        Field(ge=1, le=100, description="Weight of the scheduler's preference, 1 to 100."),
    ] = 1


def _no_properties(schema: dict[str, Any]) -> None:
    """An object without fields, as `maxProperties: 0`: the API server drops an empty
    `properties` when it stores the CRD, and a stored CRD that differs from the file makes
    `helm install` (server-side apply) conflict with whoever installed it first."""
    schema.pop("properties", None)
    schema["maxProperties"] = 0


class RequiredAntiAffinity(Model):
    """No field: a candidate pod never shares a node with a pod of the other colour."""

    model_config = ConfigDict(json_schema_extra=_no_properties)


class AntiAffinity(Model):
    model_config = cel(
        (
            "has(self.preferredDuringSchedulingIgnoredDuringExecution) != "
            "has(self.requiredDuringSchedulingIgnoredDuringExecution)",
            ANTI_AFFINITY_KIND,
        ),
    )

    preferred_during_scheduling_ignored_during_execution: PreferredAntiAffinity | None = Field(
        default=None,
        description="The scheduler prefers nodes without pods of the other colour.",
    )
    required_during_scheduling_ignored_during_execution: RequiredAntiAffinity | None = Field(
        default=None,
        description="Never on a node (kubernetes.io/hostname) with a pod of the other "
        "colour: with too few nodes the candidate stays Pending and takes no traffic.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AntiAffinity:
        preferred = self.preferred_during_scheduling_ignored_during_execution is not None
        required = self.required_during_scheduling_ignored_during_execution is not None
        if preferred == required:
            raise ValueError(ANTI_AFFINITY_KIND)
        return self


# ----------------------------------------------------------------------------- pod metadata


class PodMetadata(Model):
    model_config = cel(
        (keys_rule("labels", _POD_LABELS_FORBIDDEN), POD_METADATA_LABELS),
        (keys_rule("annotations", ()), POD_METADATA_ANNOTATIONS),
    )

    labels: KeyMap = Field(
        default_factory=dict,
        description="Labels the pods of the colour in this role carry while it has it.",
    )
    annotations: KeyMap = Field(
        default_factory=dict,
        description="Annotations the pods of the colour in this role carry while it has it.",
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        check_keys(labels, _POD_LABELS_FORBIDDEN, POD_METADATA_LABELS)
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        check_keys(annotations, (), POD_METADATA_ANNOTATIONS)
        return annotations


# ----------------------------------------------------------------------------- disruption


def _pdb_value_rule(field: str) -> str:
    f = f"self.{field}"
    return (
        f"!has({f}) || (type({f}) == int ? int({f}) >= 0"
        f" : string({f}).matches('^(100|[1-9]?[0-9])%$'))"
    )


class PodDisruptionBudgetSpec(Model):
    model_config = cel(
        ("has(self.minAvailable) != has(self.maxUnavailable)", PDB_KIND),
        (_pdb_value_rule("minAvailable"), PDB_VALUE),
        (_pdb_value_rule("maxUnavailable"), PDB_VALUE),
    )

    min_available: Annotated[
        int | str | None,
        Field(description="Pods of the colour that must stay available: a number or a percent."),
    ] = None
    max_unavailable: Annotated[
        int | str | None,
        Field(description="Pods of the colour that may be unavailable: a number or a percent."),
    ] = None

    @field_validator("min_available", "max_unavailable")
    @classmethod
    def _value(cls, value: int | str | None) -> int | str | None:
        if value is None:
            return None
        ok = value >= 0 if isinstance(value, int) else bool(_PERCENT.fullmatch(value))
        if not ok:
            raise ValueError(PDB_VALUE)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PodDisruptionBudgetSpec:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError(PDB_KIND)
        return self
