"""The BlueGreenApp API (pydantic models; the CRD is generated from them)."""

from bluegreen.api.v1alpha1 import (
    GROUP,
    IN_FLIGHT_PHASES,
    KIND,
    PLURAL,
    VERSION,
    BlueGreenApp,
    BlueGreenAppSpec,
    BlueGreenAppStatus,
    Color,
    Condition,
    HistoryEntry,
    Phase,
    Release,
    ReleaseResult,
    ScaleDown,
)

__all__ = [
    "GROUP",
    "IN_FLIGHT_PHASES",
    "KIND",
    "PLURAL",
    "VERSION",
    "BlueGreenApp",
    "BlueGreenAppSpec",
    "BlueGreenAppStatus",
    "Color",
    "Condition",
    "HistoryEntry",
    "Phase",
    "Release",
    "ReleaseResult",
    "ScaleDown",
]
