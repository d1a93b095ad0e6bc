"""The pass: one app, one observed snapshot, and the plan being built.

Every function of the release package takes the `Pass` and nothing hidden: what it reads is
`p.app`, `p.observed` and `p.status` (the status as this pass has made it so far); what it
decides goes into `p.status`, `p.actions`, `p.events` and `p.requeue`. The facts below
(`saturated`, `converged`, ...) read the snapshot only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bluegreen.api import (
    BlueGreenApp,
    BlueGreenAppSpec,
    BlueGreenAppStatus,
    Color,
    Phase,
    Release,
)
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.api.text import readable
from bluegreen.core import configs, naming, render
from bluegreen.core.plan import Action, Event, Plan
from bluegreen.core.world import Observed
from bluegreen.release.pins import ImageIssue, resolve_pins

DEADLINE_MARGIN = 0.001
"""A deadline's timer fires this much after it, when it has passed (`deadline_passed`)."""


class InvariantError(RuntimeError):
    """The status contradicts itself (a phase that needs a release has none)."""


@dataclass
class Pass:
    app: BlueGreenApp
    observed: Observed
    target: str
    """The revision the spec asks for (digests included)."""
    image: str
    """The template's first image as written."""
    pins: Mapping[str, str]
    image_issue: ImageIssue | None
    request: str | None
    """A person's request (bluegreen.dev/request), lower case, or None."""
    status: BlueGreenAppStatus
    config: configs.Choice = field(default_factory=configs.Choice)
    """What spec.configTracking tracks (part of `target`), and what it cannot."""
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue: float | None = None

    @property
    def now(self) -> datetime:
        return self.observed.now

    @property
    def spec(self) -> BlueGreenAppSpec:
        return self.app.spec

    @property
    def name(self) -> str:
        return self.app.metadata.name

    @property
    def release(self) -> Release:
        """The current release; only asked for in phases that always have one."""
        if self.status.release is None:
            raise InvariantError(f"phase {self.status.phase.value} without a release")
        return self.status.release

    def stamp(self) -> str:
        return ts.format(self.now)

    def update(self, **changes: Any) -> None:
        """Change fields of the status; a message is made `readable` (escaped, clipped)."""
        self.status = self.status.model_copy(update=_readable_message(changes))

    def update_release(self, **changes: Any) -> None:
        self.update(release=self.release.model_copy(update=_readable_message(changes)))

    def event(self, reason: Reason, message: str, *, warning: bool = False) -> None:
        message = readable(message)
        self.events.append(Event("Warning" if warning else "Normal", reason.value, message))

    def enter(
        self, phase: Phase, status: str, reason: Reason, told: str, *, warning: bool = False
    ) -> None:
        """Enter `phase` with `status` as its message, and tell it as an Event."""
        self.update(phase=phase, message=status)
        self.event(reason, told, warning=warning)

    def poll(self, seconds: float) -> None:
        """Look again within `seconds`, whatever happens meanwhile (the earliest of all such
        asks wins). Only for what is truly timed: analysis samples, pauses, delays."""
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def follow_up(self) -> None:
        """The next step needs nothing new from the cluster: take it at once."""
        self.poll(0)

    def await_cluster(self, since: str | None = None) -> None:
        """Wait for the cluster: a change of the app's objects (pods getting ready, its
        EndpointSlices) wakes the app. At the latest, look again when the progress deadline
        counted from `since` (default: the release's start) has passed."""
        start = since or self.release.started_at
        deadline = self.spec.strategy.progress_deadline_seconds
        self.poll(max(0.0, deadline - elapsed(self, start)) + DEADLINE_MARGIN)

    def await_endpoints(self, color: Color, since: str | None = None) -> None:
        """After a flip to `color`: its EndpointSlices follow the selector and wake the app.
        When they show `color` already (an operator stopped between the flip and its status
        write flipped it; this one finds it done), no change is coming: look again at once."""
        if converged(self, color):
            self.follow_up()
        else:
            self.await_cluster(since)

    def plan(self) -> Plan:
        return Plan(
            target=self.target,
            actions=tuple(self.actions),
            status=self.status,
            events=tuple(self.events),
            requeue_after=self.requeue,
        )


def _readable_message(changes: dict[str, Any]) -> dict[str, Any]:
    message = changes.get("message")
    return {**changes, "message": readable(message)} if isinstance(message, str) else changes


def begin(app: BlueGreenApp, observed: Observed) -> Pass:
    pins, issue = resolve_pins(app, observed)
    raw = app.metadata.annotations.get(naming.ANNOTATION_REQUEST)
    config = tracked_config(app, observed)
    return Pass(
        app=app,
        observed=observed,
        config=config,
        target=render.target_revision(app, pins, config.config),
        image=render.primary_image(app),
        pins=pins,
        image_issue=issue,
        request=raw.strip().lower() if raw is not None else None,
        status=app.status,
    )


def tracked_config(app: BlueGreenApp, observed: Observed) -> configs.Choice:
    tracking = app.spec.config_tracking
    if not tracking.enabled:
        return configs.Choice()
    return configs.track(
        configs.references(render.template_dict(app)),
        observed.config,
        secrets=tracking.secrets,
        secrets_allowed=observed.secrets_tracked,
    )


# ----------------------------------------------------------------------------- facts


def saturated(p: Pass, color: Color, replicas: int, revision: str | None = None) -> bool:
    """Every replica of `color` runs `revision` (default: the target), is ready, and the
    EndpointSlices show that many ready endpoints."""
    revision = revision or p.target
    dep = p.observed.deployments.get(color)
    if dep is None or dep.revision != revision or dep.replicas != replicas:
        return False
    if not dep.settled or dep.ready_replicas < replicas:
        return False
    if p.observed.stray_pods(color, revision):
        return False
    ready = p.observed.ready_pods(color, revision)
    if len(ready) < replicas:
        return False
    in_slices = {e.pod for e in p.observed.metrics_endpoints if e.ready and e.pod in ready}
    return len(in_slices) >= replicas


def legacy(p: Pass, color: Color) -> bool:
    """The colour's Deployment is one an earlier operator version made: it selects its pods
    by `app.kubernetes.io/name`, and its selector cannot change. It is replaced when its
    colour is next released (`workloads.ensure_deployment`); until then the Services
    select its pods as it does."""
    dep = p.observed.deployments.get(color)
    return dep is not None and dict(dep.selector) == naming.legacy_selector(p.name, color)


def pod_selector(p: Pass, color: Color) -> dict[str, str]:
    """The labels every pod of `color` carries, for the Services that select it."""
    if legacy(p, color):
        return naming.legacy_selector(p.name, color)
    return naming.selector(p.name, color)


def converged(p: Pass, color: Color) -> bool:
    """Every ready endpoint behind the active Service belongs to `color`, and all of that
    colour's ready pods are there."""
    svc = p.observed.services.get(naming.active_service(p.name))
    if svc is None or dict(svc.selector) != pod_selector(p, color):
        return False
    ready_of_color = p.observed.ready_pods(color)
    ready_endpoints = {e.pod for e in p.observed.active_endpoints if e.ready}
    if not ready_endpoints <= ready_of_color:
        return False
    replicas = p.spec.replicas
    if replicas == 0:
        return True
    return len(ready_endpoints) >= min(replicas, len(ready_of_color)) and bool(ready_endpoints)


def elapsed(p: Pass, since: str | None) -> float:
    return 0.0 if since is None else (p.now - ts.parse(since)).total_seconds()


def deadline_passed(p: Pass, since: str | None = None) -> bool:
    """progressDeadlineSeconds have passed since `since` (default: the release's start)."""
    if p.status.release is None:
        return False
    start = since or p.status.release.started_at
    return elapsed(p, start) > p.spec.strategy.progress_deadline_seconds


def ready_count(p: Pass, color: Color) -> int:
    return len(p.observed.ready_pods(color, p.target))
