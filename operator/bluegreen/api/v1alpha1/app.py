"""The BlueGreenApp object as the API server stores it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from bluegreen.api.v1alpha1.base import GROUP, KIND, VERSION
from bluegreen.api.v1alpha1.spec import BlueGreenAppSpec
from bluegreen.api.v1alpha1.status import BlueGreenAppStatus


class ObjectMeta(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel
    )

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class BlueGreenApp(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel
    )

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: ObjectMeta
    spec: BlueGreenAppSpec
    status: BlueGreenAppStatus = Field(default_factory=BlueGreenAppStatus)

    @field_validator("status", mode="before")
    @classmethod
    def _status_tolerant(cls, value: Any) -> Any:
        # kopf keeps its own bookkeeping in status under other keys; ignore what is not ours.
        if isinstance(value, dict):
            known = {f.alias or n for n, f in BlueGreenAppStatus.model_fields.items()}
            return {k: v for k, v in value.items() if k in known}
        return value or {}
