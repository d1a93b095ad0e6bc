"""Builders for the pure core's inputs: a BlueGreenApp (spec + status) and an Observed world.

Time is fake: every timestamp is `T0` plus a number of seconds, so a test says
"started at 0, now 601" instead of writing dates. Nothing here reads the wall clock.

    app = make_app(image=V2, status=in_release(Phase.DEPLOYING, started=0))
    observed = (
        ObservedBuilder(at(5))
        .color(Color.BLUE, V1)                  # 2 ready pods of v1, all in the EndpointSlices
        .color(Color.GREEN, V2, ready=1)        # 1 of 2 ready
        .services(active=Color.BLUE)            # active + preview select blue, metrics both
        .build()
    )
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from bluegreen.api import (
    BlueGreenApp,
    BlueGreenAppStatus,
    Color,
    Condition,
    HistoryEntry,
    Phase,
    Release,
    ReleaseResult,
    ScaleDown,
)
from bluegreen.core import naming, render
from bluegreen.core.world import DeploymentState, Endpoint, Observed, PodState, ServiceState

NAME = "shop"
NAMESPACE = "default"
UID = "5b1e7c2a-0000-4000-8000-000000000001"
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

BLUE = Color.BLUE
GREEN = Color.GREEN

V0 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v0"
V1 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v1"
V2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v2"
V3 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v3"


# ----------------------------------------------------------------------------- time


def service_labels(role: str) -> dict[str, str]:
    """The labels the operator renders on its Services (their drift is repaired)."""
    return {**naming.owned_labels(NAME), naming.LABEL_ROLE: role}


def at(seconds: float) -> datetime:
    """The fake clock: `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    """An RFC 3339 UTC timestamp `seconds` after T0, as status stores it."""
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_of(value: str | None) -> float | None:
    """A status timestamp back as seconds after T0 (None stays None)."""
    t = parse_time(value)
    return None if t is None else (t - T0).total_seconds()


# ----------------------------------------------------------------------------- spec


def template(image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"tier": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 3000}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                }
            ]
        },
    }


def status_dict(status: BlueGreenAppStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def app_body(
    *,
    image: str = V1,
    replicas: int = 2,
    strategy: dict[str, Any] | None = None,
    status: BlueGreenAppStatus | dict[str, Any] | None = None,
    request: str | None = None,
    generation: int = 1,
    name: str = NAME,
) -> dict[str, Any]:
    """The app as the API server would return it (camelCase, status included)."""
    annotations = {} if request is None else {naming.ANNOTATION_REQUEST: request}
    body: dict[str, Any] = {
        "apiVersion": "bluegreen.dev/v1alpha1",
        "kind": "BlueGreenApp",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": generation,
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "template": template(image),
            "service": {"port": 80, "targetPort": "http"},
            "strategy": dict(strategy or {}),
        },
    }
    if isinstance(status, BlueGreenAppStatus):
        body["status"] = status_dict(status)
    elif status is not None:
        body["status"] = copy.deepcopy(status)
    return body


def make_app(
    *,
    image: str = V1,
    replicas: int = 2,
    strategy: dict[str, Any] | None = None,
    status: BlueGreenAppStatus | None = None,
    request: str | None = None,
    generation: int = 1,
) -> BlueGreenApp:
    """An app from a few parameters. `strategy` takes the wire (camelCase) names."""
    return BlueGreenApp.model_validate(
        app_body(
            image=image,
            replicas=replicas,
            strategy=strategy,
            status=status,
            request=request,
            generation=generation,
        )
    )


def revision_of(image: str) -> str:
    """The revision hash the operator gives the template that runs `image`."""
    return render.target_revision(make_app(image=image))


R0, R1, R2, R3 = (revision_of(v) for v in (V0, V1, V2, V3))
VERSION_OF = {R0: "v0", R1: "v1", R2: "v2", R3: "v3"}


# ----------------------------------------------------------------------------- status


def release(
    image: str,
    color: Color,
    previous: Color | None = None,
    *,
    started: float = 0,
    candidate_ready: float | None = None,
    promotion_requested: float | None = None,
    switched: float | None = None,
    converged: float | None = None,
    rollback_started: float | None = None,
    completed: float | None = None,
    latency: float | None = None,
    result: ReleaseResult | None = None,
    rollback_result: ReleaseResult | None = None,
    reason: str = "",
    message: str = "",
) -> Release:
    def ts(s: float | None) -> str | None:
        return None if s is None else stamp(s)

    return Release(
        revision=revision_of(image),
        image=image,
        color=color,
        previous_color=previous,
        started_at=stamp(started),
        candidate_ready_at=ts(candidate_ready),
        promotion_requested_at=ts(promotion_requested),
        switched_at=ts(switched),
        endpoints_converged_at=ts(converged),
        rollback_started_at=ts(rollback_started),
        completed_at=ts(completed),
        switch_latency_seconds=latency,
        result=result,
        rollback_result=rollback_result,
        reason=reason,
        message=message,
    )


def history_entry(
    image: str,
    color: Color,
    result: ReleaseResult = ReleaseResult.PROMOTED,
    *,
    started: float = -1000,
    completed: float = -900,
) -> HistoryEntry:
    return HistoryEntry(
        revision=revision_of(image),
        image=image,
        color=color,
        result=result,
        reason=result.value,
        started_at=stamp(started),
        completed_at=stamp(completed),
    )


def status(
    phase: Phase,
    *,
    active: Color | None = None,
    stable: str | None = None,
    release: Release | None = None,
    history: list[HistoryEntry] | None = None,
    failed: list[str] | None = None,
    scale_down: tuple[Color, float] | None = None,
    conditions: list[Condition] | None = None,
    message: str = "",
) -> BlueGreenAppStatus:
    """A status. `stable` is an image; `failed` lists images; `scale_down` is (colour, at)."""
    return BlueGreenAppStatus(
        phase=phase,
        active_color=active,
        stable_revision=None if stable is None else revision_of(stable),
        candidate_revision=(
            release.revision
            if release is not None and phase not in (Phase.HEALTHY, Phase.DEGRADED)
            else None
        ),
        observed_generation=1,
        release=release,
        history=list(history or []),
        failed_revisions=[revision_of(i) for i in (failed or [])],
        scale_down=None
        if scale_down is None
        else ScaleDown(color=scale_down[0], at=stamp(scale_down[1])),
        conditions=list(conditions or []),
        message=message,
    )


def healthy(
    image: str = V1,
    active: Color = BLUE,
    *,
    previous: Color | None = None,
    scale_down: tuple[Color, float] | None = None,
    history: list[HistoryEntry] | None = None,
    failed: list[str] | None = None,
) -> BlueGreenAppStatus:
    """Healthy on `image` in `active`, its release completed 100 s before T0."""
    done = release(
        image,
        active,
        previous,
        started=-200,
        candidate_ready=-190,
        switched=-180,
        converged=-179.9,
        completed=-100,
        latency=0.1,
        result=ReleaseResult.PROMOTED,
        reason="Promoted",
    )
    return status(
        Phase.HEALTHY,
        active=active,
        stable=image,
        release=done,
        history=history
        if history is not None
        else [history_entry(image, active, started=-200, completed=-100)],
        failed=failed,
        scale_down=scale_down,
    )


def in_release(
    phase: Phase,
    image: str = V2,
    *,
    color: Color = GREEN,
    stable: str = V1,
    active: Color | None = None,
    failed: list[str] | None = None,
    history: list[HistoryEntry] | None = None,
    scale_down: tuple[Color, float] | None = None,
    message: str = "",
    **timeline: Any,
) -> BlueGreenAppStatus:
    """A release of `image` to `color`, with `color.other` serving `stable` before it.

    `timeline` takes the keyword arguments of `release()` (started, candidate_ready,
    switched, converged, rollback_started, reason, ...). `active` defaults to the
    previous colour, or to the candidate once `switched` is given (and not rolling back).
    """
    previous = color.other
    rel = release(image, color, previous, **timeline)
    if active is None:
        switched = rel.switched_at is not None and phase is not Phase.ROLLING_BACK
        active = color if switched else previous
    return status(
        phase,
        active=active,
        stable=stable,
        release=rel,
        history=history
        if history is not None
        else [history_entry(stable, previous, started=-200, completed=-100)],
        failed=failed,
        scale_down=scale_down,
        message=message,
    )


# ----------------------------------------------------------------------------- world


@dataclass
class _ColorPlan:
    color: Color
    revision: str
    replicas: int
    ready: int
    in_slices: int
    stray: int
    stray_revision: str
    terminating: int
    settled: bool
    owned: bool
    legacy: bool

    def pod_names(self) -> list[str]:
        return [f"{NAME}-{self.color.value}-{self.revision[:5]}-{i}" for i in range(self.replicas)]


@dataclass
class ObservedBuilder:
    """Says, colour by colour, what runs and what the EndpointSlices show.

    Every method returns a new builder, so a partly built world can be shared by cases.
    A colour's ready pods are listed as ready endpoints of the metrics Service (all of
    them unless `in_slices` says fewer: the EndpointSlice controller lags). The active
    Service's EndpointSlices show the pods of the colour its selector names, unless
    `active_endpoints_of` says they still show another colour (or none).

    A `legacy` colour's Deployment is one an earlier operator version made (selecting
    `app.kubernetes.io/name`): the Services select it that way, and its pods are listed by
    `<name>-legacy` instead of `<name>-metrics`, which exists while such a colour does.
    `before_upgrade` shows the Services as that earlier version left them.
    """

    now: datetime
    port: int = 80
    target_port: str = "http"
    _colors: dict[Color, _ColorPlan] = field(default_factory=dict)
    _active: Color | None = None
    _preview: Color | None = None
    _metrics: bool = False
    _active_endpoints_of: Color | None = None
    _active_endpoints_override: bool = False
    _missing: set[str] = field(default_factory=set)
    _before_upgrade: bool = False

    def _copy(self) -> Self:
        return copy.deepcopy(self)

    def color(
        self,
        color: Color,
        image: str,
        *,
        replicas: int = 2,
        ready: int | None = None,
        in_slices: int | None = None,
        stray: int = 0,
        stray_image: str = V1,
        terminating: int = 0,
        settled: bool = True,
        owned: bool = True,
        legacy: bool = False,
    ) -> Self:
        """`color` runs `image` with `replicas` pods, `ready` of them ready (default: all),
        `in_slices` of the ready ones shown ready in the EndpointSlices (default: all),
        plus `stray` live pods and `terminating` deleting pods of `stray_image`; `legacy`:
        its Deployment is one an earlier operator version made."""
        ready = replicas if ready is None else ready
        new = self._copy()
        new._colors[color] = _ColorPlan(
            color=color,
            revision=revision_of(image),
            replicas=replicas,
            ready=ready,
            in_slices=ready if in_slices is None else in_slices,
            stray=stray,
            stray_revision=revision_of(stray_image),
            terminating=terminating,
            settled=settled,
            owned=owned,
            legacy=legacy,
        )
        return new

    def services(
        self,
        active: Color | None = None,
        preview: Color | None = None,
        *,
        metrics: bool = True,
    ) -> Self:
        """The active Service selects `active`, the preview Service `preview` (default: the
        active colour); the headless metrics Service selects both colours."""
        new = self._copy()
        new._active = active
        new._preview = preview if preview is not None else active
        new._metrics = metrics
        return new

    def active_endpoints_of(self, color: Color | None) -> Self:
        """The active Service's EndpointSlices still show `color`'s pods (None: nothing)."""
        new = self._copy()
        new._active_endpoints_override = True
        new._active_endpoints_of = color
        return new

    def before_upgrade(self) -> Self:
        """The Services as an earlier operator version left them: every selector on
        `app.kubernetes.io/name`, no `bluegreen.dev/app` label, no `<name>-legacy`."""
        new = self._copy()
        new._before_upgrade = True
        return new

    def without_service(self, name: str) -> Self:
        """The Service `name` does not exist (deleted by someone)."""
        new = self._copy()
        new._missing.add(name)
        return new

    def at(self, seconds: float) -> Self:
        """The same world, seen `seconds` after T0."""
        new = self._copy()
        new.now = at(seconds)
        return new

    # ------------------------------------------------------------------ build

    def _ports(self) -> tuple[tuple[str, int, str], ...]:
        return (("http", self.port, self.target_port),)

    def _pods(self, plan: _ColorPlan) -> list[tuple[PodState, bool]]:
        """Pods of one colour, each with whether it is a ready endpoint in the slices."""
        out: list[tuple[PodState, bool]] = []
        for i, pod in enumerate(plan.pod_names()):
            ready = i < plan.ready
            out.append(
                (PodState(pod, plan.color, plan.revision, ready), ready and i < plan.in_slices)
            )
        for i in range(plan.stray):
            pod = f"{NAME}-{plan.color.value}-{plan.stray_revision[:5]}-stray-{i}"
            out.append((PodState(pod, plan.color, plan.stray_revision, True), True))
        for i in range(plan.terminating):
            pod = f"{NAME}-{plan.color.value}-{plan.stray_revision[:5]}-old-{i}"
            out.append((PodState(pod, plan.color, plan.stray_revision, True, deleting=True), False))
        return out

    def _selector(self, color: Color) -> dict[str, str]:
        plan = self._colors.get(color)
        if self._before_upgrade or (plan is not None and plan.legacy):
            return naming.legacy_selector(NAME, color)
        return naming.selector(NAME, color)

    def _labels(self, role: str) -> dict[str, str]:
        labels = service_labels(role)
        if self._before_upgrade:
            labels.pop(naming.LABEL_APP)
        return labels

    def build(self) -> Observed:
        deployments: dict[Color, DeploymentState] = {}
        pods: list[PodState] = []
        metrics: list[Endpoint] = []
        legacy: list[Endpoint] = []
        by_color: dict[Color, list[Endpoint]] = {}
        for color, plan in self._colors.items():
            # Stray pods are outside the Deployment's own counts (an orphaned ReplicaSet's
            # pods, say): only the pod list shows them.
            total = plan.replicas
            deployments[color] = DeploymentState(
                color=color,
                revision=plan.revision,
                replicas=plan.replicas,
                generation=2,
                observed_generation=2 if plan.settled else 1,
                total_replicas=total if plan.settled else total + 1,
                updated_replicas=plan.replicas,
                ready_replicas=plan.ready,
                has_owner=plan.owned,
                selector=naming.legacy_selector(NAME, color)
                if plan.legacy
                else naming.selector(NAME, color),
            )
            endpoints = []
            for pod, shown_ready in self._pods(plan):
                pods.append(pod)
                if pod.deleting:
                    continue
                # Not-ready pods are listed as not-ready endpoints; lagging ones not at all.
                if shown_ready or not pod.ready:
                    endpoints.append(Endpoint(pod.name, shown_ready))
            by_color[color] = endpoints
            if plan.legacy and not self._before_upgrade:
                legacy.extend(endpoints)
            else:
                metrics.extend(endpoints)

        services: dict[str, ServiceState] = {}
        if self._active is not None:
            services[naming.active_service(NAME)] = ServiceState(
                name=naming.active_service(NAME),
                selector=self._selector(self._active),
                ports=self._ports(),
                labels=self._labels("active"),
            )
        if self._preview is not None:
            services[naming.preview_service(NAME)] = ServiceState(
                name=naming.preview_service(NAME),
                selector=self._selector(self._preview),
                ports=self._ports(),
                labels=self._labels("preview"),
            )
        if self._metrics:
            services[naming.metrics_service(NAME)] = ServiceState(
                name=naming.metrics_service(NAME),
                selector=naming.legacy_app_selector(NAME)
                if self._before_upgrade
                else naming.app_selector(NAME),
                ports=self._ports(),
                headless=True,
                labels=self._labels("metrics"),
            )
        bridge = any(p.legacy for p in self._colors.values()) and not self._before_upgrade
        if self._metrics and bridge:
            services[naming.legacy_metrics_service(NAME)] = ServiceState(
                name=naming.legacy_metrics_service(NAME),
                selector=naming.legacy_app_selector(NAME),
                ports=self._ports(),
                headless=True,
                labels=self._labels("metrics"),
            )
        for name in self._missing:
            services.pop(name, None)
        if naming.legacy_metrics_service(NAME) not in services:
            legacy = []

        shown = self._active_endpoints_of if self._active_endpoints_override else self._active
        active_endpoints = tuple(by_color.get(shown, [])) if shown is not None else ()
        return Observed(
            now=self.now,
            deployments=deployments,
            services=services,
            pods=tuple(pods),
            active_endpoints=active_endpoints if self._active is not None else (),
            metrics_endpoints=tuple(metrics + legacy) if self._metrics else (),
        )


def steady(
    now: datetime, image: str = V1, active: Color = BLUE, *, replicas: int = 2
) -> ObservedBuilder:
    """`active` runs `image`, saturated, and every Service selects it."""
    return ObservedBuilder(now).color(active, image, replicas=replicas).services(active=active)
