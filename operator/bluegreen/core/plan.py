"""What one reconcile pass decided: actions to apply, the new status, events, when to look again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bluegreen.api import BlueGreenAppStatus


@dataclass(frozen=True)
class Apply:
    """Server-side apply of a whole object the operator owns."""

    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.manifest['kind']}/{self.manifest['metadata']['name']}"


@dataclass(frozen=True)
class Scale:
    """Set a Deployment's replicas, leaving its template as it is."""

    deployment: str
    replicas: int


@dataclass(frozen=True)
class Delete:
    """Delete an object the operator owns (absent already is fine)."""

    kind: str
    name: str


@dataclass(frozen=True)
class RouteBackends:
    """Set the backendRefs of one rule of an HTTPRoute the operator does not own: only that
    rule changes, and only if the route is still at `resource_version`."""

    route: str
    rule: int
    backends: tuple[dict[str, Any], ...]
    resource_version: str


@dataclass(frozen=True)
class PatchMetadata:
    """Set or remove labels and annotations of one object (a merge patch of its metadata;
    None removes a key): the role metadata of a pod, without restarting it, or keys the
    operator set on a Service and the spec no longer has."""

    kind: str
    name: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class CopyConfig:
    """Create the immutable copy `manifest` (a ConfigMap or Secret without content) with the
    content of `source`, if that content still has `digest` (else the copy waits for the
    change to reach the cache, which makes a new revision). A copy that exists is kept."""

    manifest: dict[str, Any]
    source: str
    digest: str


@dataclass(frozen=True)
class ClearRequest:
    """Remove the person's request annotation once it has been handled."""


Action = Apply | Scale | Delete | RouteBackends | PatchMetadata | CopyConfig | ClearRequest


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: BlueGreenAppStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    target: str = ""
    """The revision the spec asks for, config digests included: what a notice without a
    release names."""
