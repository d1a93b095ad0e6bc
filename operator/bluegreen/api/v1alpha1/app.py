"""The BlueGreenApp object as the API server stores it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from bluegreen.api.v1alpha1.base import KIND, StoredObject
from bluegreen.api.v1alpha1.spec import BlueGreenAppSpec
from bluegreen.api.v1alpha1.status import BlueGreenAppStatus


class BlueGreenApp(StoredObject):
    kind: str = KIND
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
