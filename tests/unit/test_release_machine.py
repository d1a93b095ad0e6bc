"""Table-driven tests of the release state machine, `machine.plan(app, observed)`.

Each case is a named (app, world) pair with the plan it must produce: the phase after the
pass, the active colour, the exact ordered actions, the event reasons and when to look again.
The clock is fake: `now` is `observed.now`, seconds after T0 (see factories).

Every case is also run through `assert_invariants`, which checks what must hold whatever
the case: traffic only moves to a saturated colour, one phase transition per pass, bounded
history, and a requeue whenever a release is in flight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bluegreen.api import (
    AnalysisRun,
    BlueGreenApp,
    Color,
    Phase,
    Release,
    ReleaseResult,
    ScaleDown,
    Verdict,
)
from bluegreen.core import naming, render
from bluegreen.core.analysis import QueryResult
from bluegreen.core.plan import Action, Apply, ClearRequest, Delete, Plan, Scale
from bluegreen.core.world import Observed
from bluegreen.release import lifecycle, machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    NAME,
    R1,
    R2,
    R3,
    T0,
    V0,
    V1,
    V2,
    V3,
    VERSION_OF,
    ObservedBuilder,
    app_body,
    at,
    healthy,
    history_entry,
    in_release,
    make_app,
    release,
    revision_of,
    seconds_of,
    stamp,
    status,
    steady,
)

ACTIVE = naming.active_service(NAME)
PREVIEW = naming.preview_service(NAME)

WAIT = "waits on the cluster"
"""The pass asks for no prompt look: the app's objects wake it (pods getting ready, its
EndpointSlices). Its only timer is the progress deadline of the step it waits in."""


# ----------------------------------------------------------------------------- describing plans


def describe(action: Action) -> str:
    """One action as a short line a person can read in a failing test."""
    if isinstance(action, ClearRequest):
        return "clear request"
    if isinstance(action, Scale):
        return f"scale {action.deployment} to {action.replicas}"
    if isinstance(action, Delete):
        return f"delete {action.kind}/{action.name}"
    assert isinstance(action, Apply)
    m = action.manifest
    kind, name = m["kind"], m["metadata"]["name"]
    if kind == "Deployment":
        rev = m["spec"]["template"]["metadata"]["labels"][naming.LABEL_REVISION]
        return f"apply {kind}/{name} {VERSION_OF.get(rev, rev)} x{m['spec']['replicas']}"
    if kind == "Service":
        color = m["spec"]["selector"].get(naming.LABEL_COLOR, "both")
        return f"apply {kind}/{name} -> {color}"
    return f"apply {kind}/{name}"


def describe_all(plan: Plan) -> list[str]:
    return [describe(a) for a in plan.actions]


# ----------------------------------------------------------------------------- invariants

# Where a phase may go in one pass (staying put is always allowed). Supersede moves any
# pre-switch phase back to Deploying (or to Healthy / Degraded when the spec returns to
# the stable or a failed revision).
ALLOWED: dict[Phase, set[Phase]] = {
    Phase.PENDING: {Phase.OBSERVING, Phase.DEGRADED},
    Phase.HEALTHY: {Phase.DEPLOYING, Phase.DEGRADED},
    Phase.DEPLOYING: {Phase.ANALYZING, Phase.ROLLING_BACK, Phase.HEALTHY, Phase.DEGRADED},
    Phase.ANALYZING: {
        Phase.PAUSED,
        Phase.OBSERVING,
        Phase.ROLLING_BACK,
        Phase.DEPLOYING,
        Phase.HEALTHY,
        Phase.DEGRADED,
    },
    Phase.PAUSED: {
        # Back to Analyzing: the pre-promotion window passed after an inconclusive one, or
        # the analysis templates it waited for resolve.
        Phase.ANALYZING,
        Phase.OBSERVING,
        Phase.ROLLING_BACK,
        Phase.DEPLOYING,
        Phase.HEALTHY,
        Phase.DEGRADED,
    },
    # Paused after the switch: post-promotion analysis that cannot say, or cannot start.
    Phase.OBSERVING: {Phase.HEALTHY, Phase.ROLLING_BACK, Phase.PAUSED},
    # A rollback caused by a newer template goes on with it at once.
    Phase.ROLLING_BACK: {Phase.DEGRADED, Phase.DEPLOYING, Phase.HEALTHY},
    Phase.DEGRADED: {Phase.DEPLOYING, Phase.HEALTHY, Phase.PENDING},
}

# Phases in which traffic stays where it was before the release.
TRAFFIC_UNTOUCHED = {Phase.DEPLOYING, Phase.ANALYZING, Phase.PAUSED}
TIME_CAN_END = {Phase.PENDING, Phase.DEPLOYING, Phase.ANALYZING, Phase.OBSERVING}
"""Phases a deadline or a timer ends when nothing else happens: a pass in one asks for one."""


def serving_capacity(observed: Observed, color: Color) -> int:
    """Pods of `color` that are ready AND listed as ready endpoints in the EndpointSlices,
    or -1 when the colour runs a mix of revisions (it cannot take traffic as one)."""
    live = [p for p in observed.pods if p.color is color and not p.deleting]
    if len({p.revision for p in live}) > 1:
        return -1
    in_slices = {e.pod for e in observed.metrics_endpoints if e.ready}
    return sum(1 for p in live if p.ready and p.name in in_slices)


def assert_traffic_safe(app: BlueGreenApp, observed: Observed, plan: Plan) -> None:
    """Invariant 1: the active Service never gets a selector naming a colour that is not
    saturated right now, unless the Service already selected that colour."""
    needed = app.spec.replicas
    before = observed.services.get(ACTIVE)
    for action in plan.actions:
        if not (isinstance(action, Apply) and action.key == f"Service/{ACTIVE}"):
            continue
        selector = action.manifest["spec"]["selector"]
        assert selector, "the active Service's selector is empty"
        color = Color(selector[naming.LABEL_COLOR])
        # Exactly the pods of that colour's Deployment: the labels it selects (a Deployment
        # of an earlier operator version selects app.kubernetes.io/name), else the new ones.
        dep = observed.deployments.get(color)
        wanted = dict(dep.selector) if dep is not None else naming.selector(NAME, color)
        assert selector == wanted, selector
        assert plan.status.active_color is color, (
            f"the active Service selects {color} but status.activeColor is "
            f"{plan.status.active_color}"
        )
        if before is not None and dict(before.selector) == selector:
            continue
        capacity = serving_capacity(observed, color)
        assert capacity >= needed, (
            f"the active Service was pointed at {color.value}, which has {capacity} ready "
            f"endpoints of the {needed} it needs"
        )
    new, old = plan.status.active_color, app.status.active_color
    if new is not None and new is not old:
        capacity = serving_capacity(observed, new)
        assert capacity >= needed, (
            f"status.activeColor moved {old} -> {new.value}, which has {capacity} ready "
            f"endpoints of the {needed} it needs"
        )


def assert_waits_on_the_cluster(app: BlueGreenApp, observed: Observed, plan: Plan) -> None:
    """No timer before the progress deadline of the release's current step (counted from
    its start, its promotion request or its switch), or none at all."""
    if plan.requeue_after is None:
        return
    release = plan.status.release
    assert release is not None, f"a timer ({plan.requeue_after}s) without a release"
    deadline = app.spec.strategy.progress_deadline_seconds
    now = (observed.now - T0).total_seconds()
    anchors = [release.started_at, release.promotion_requested_at, release.switched_at]
    remaining = [deadline - (now - t) for a in anchors if (t := seconds_of(a)) is not None]
    assert any(abs(plan.requeue_after - max(r, 0.0)) < 0.01 for r in remaining), (
        f"a timer in {plan.requeue_after}s while waiting on the cluster; deadlines in {remaining}"
    )


KSTATUS = {
    # phase: (Ready, Reconciling, Stalled), as kstatus reads them (Flux, kubectl wait):
    # Current when Healthy, InProgress while releasing or paused, Failed when Degraded.
    Phase.HEALTHY: ("True", "False", "False"),
    Phase.DEGRADED: ("False", "False", "True"),
    **{p: ("False", "True", "False") for p in Phase if p not in (Phase.HEALTHY, Phase.DEGRADED)},
}


def assert_invariants(app: BlueGreenApp, observed: Observed, plan: Plan) -> None:
    before, after = app.status.phase, plan.status.phase
    assert after is before or after in ALLOWED[before], (
        f"{before.value} -> {after.value} is not one step"
    )
    conditions = {c.type: c.status for c in plan.status.conditions}
    kstatus = tuple(conditions.get(t) for t in ("Ready", "Reconciling", "Stalled"))
    assert kstatus == KSTATUS[after], f"{after.value}: Ready/Reconciling/Stalled {kstatus}"
    assert_traffic_safe(app, observed, plan)
    if after in TRAFFIC_UNTOUCHED:
        assert plan.status.active_color is app.status.active_color
    assert len(plan.status.history) <= lifecycle.HISTORY_LIMIT
    assert len(plan.status.failed_revisions) <= lifecycle.FAILED_REVISIONS_LIMIT
    assert len(set(plan.status.failed_revisions)) == len(plan.status.failed_revisions)
    if after in TIME_CAN_END:
        assert plan.requeue_after is not None, f"{after.value} without a timer or a deadline"
    if plan.requeue_after is not None:
        assert plan.requeue_after >= 0
    requests = [a for a in plan.actions if isinstance(a, ClearRequest)]
    has_request = naming.ANNOTATION_REQUEST in app.metadata.annotations
    assert len(requests) == (1 if has_request else 0)
    names = [describe(a) for a in plan.actions]
    assert len(names) == len(set(names)), f"an action is repeated: {names}"


# ----------------------------------------------------------------------------- the table

Check = Callable[[Plan], None]


@dataclass(frozen=True)
class Case:
    id: str
    app: BlueGreenApp
    observed: Observed
    phase: Phase
    active: Color | None
    actions: list[str] | None  # exact, in order; None: left to the invariants
    events: list[str] | None = None  # reasons, in order
    requeue: float | str | None = "unchecked"
    check: Check | None = None


def checks(*fns: Check) -> Check:
    def run(plan: Plan) -> None:
        for fn in fns:
            fn(plan)

    return run


def release_times(**expected: float | None) -> Check:
    """Release timestamps, in seconds after T0 (None: unset)."""

    def run(plan: Plan) -> None:
        rel = plan.status.release
        assert rel is not None
        got = {k: seconds_of(getattr(rel, k)) for k in expected}
        assert got == pytest.approx(expected)

    return run


def stable_is(rev: str | None) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.stable_revision == rev

    return run


def candidate_is(rev: str | None) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.candidate_revision == rev

    return run


def release_is(rev: str, color: Color, previous: Color | None) -> Check:
    def run(plan: Plan) -> None:
        rel = plan.status.release
        assert rel is not None
        assert (rel.revision, rel.color, rel.previous_color) == (rev, color, previous)

    return run


def failed_are(*revs: str) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.failed_revisions == list(revs)

    return run


def scale_down_is(expected: tuple[Color, float] | None) -> Check:
    def run(plan: Plan) -> None:
        sd = plan.status.scale_down
        got = None if sd is None else (sd.color, seconds_of(sd.at))
        assert got == expected

    return run


def last_history(rev: str, result: ReleaseResult, reason: str | None = None) -> Check:
    def run(plan: Plan) -> None:
        entry = plan.status.history[0]
        assert (entry.revision, entry.result) == (rev, result)
        if reason is not None:
            assert entry.reason == reason

    return run


def release_reason(reason: str) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.release is not None
        assert plan.status.release.reason == reason

    return run


def condition(ctype: str, value: str, reason: str | None = None) -> Check:
    def run(plan: Plan) -> None:
        cond = {c.type: c for c in plan.status.conditions}[ctype]
        assert cond.status == value
        if reason is not None:
            assert cond.reason == reason

    return run


def release_unchanged(app: BlueGreenApp) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.release == app.status.release
        assert plan.status.history == app.status.history

    return run


def settled(replicas: int = 2) -> Check:
    """Nothing left for time to do: no timer, no requeue."""

    def run(plan: Plan) -> None:
        assert plan.status.phase in (Phase.HEALTHY, Phase.DEGRADED, Phase.PAUSED)
        assert plan.status.scale_down is None
        assert plan.requeue_after is None

    return run


def event_types(*types: str) -> Check:
    def run(plan: Plan) -> None:
        assert [e.type for e in plan.events] == list(types)

    return run


def case(
    id: str,
    app: BlueGreenApp,
    observed: Observed,
    *,
    phase: Phase,
    active: Color | None,
    actions: list[str] | None,
    events: list[str] | None = None,
    requeue: float | str | None = "unchecked",
    check: Check | None = None,
) -> Case:
    return Case(id, app, observed, phase, active, actions, events, requeue, check)


# ----------------------------------------------------------------------------- helpers for the table


def _first_release(
    *,
    candidate_ready: float | None = None,
    switched: float | None = None,
    converged: float | None = None,
    result: ReleaseResult | None = None,
) -> Release:
    return release(
        V1,
        BLUE,
        None,
        started=0,
        candidate_ready=candidate_ready,
        switched=switched,
        converged=converged,
        result=result,
        completed=601 if result else None,
    )


def _failed_release() -> Release:
    return release(
        V2,
        GREEN,
        BLUE,
        started=0,
        rollback_started=601,
        completed=601.1,
        result=ReleaseResult.ROLLED_BACK,
        reason="ProgressDeadlineExceeded",
        message="1/2 replicas ready",
    )


def _sd(color: Color, seconds: float) -> ScaleDown:
    return ScaleDown(color=color, at=stamp(seconds))


def _at(observed: Observed, seconds: float) -> Observed:
    """The same world, seen at another time."""
    return dataclasses.replace(observed, now=at(seconds))


def _latency(expected: float) -> Check:
    def run(plan: Plan) -> None:
        assert plan.status.release is not None
        assert plan.status.release.switch_latency_seconds == pytest.approx(expected)

    return run


def _message_is(plan: Plan, message: str) -> None:
    assert plan.status.message == message


def _history_is(plan: Plan, revisions: list[str], last: Any) -> None:
    assert [e.revision for e in plan.status.history] == revisions
    assert plan.status.history[-1] == last


# ----------------------------------------------------------------------------- worlds shared by cases

# Statuses and worlds several cases start from. Times are seconds after T0: a release of v2
# to green starts at 0, green is ready at 20, the switch happens at 21.

pending = status(Phase.PENDING, release=_first_release())

first_observing = status(
    Phase.OBSERVING, active=BLUE, release=_first_release(candidate_ready=8, switched=8)
)

observing = in_release(
    Phase.OBSERVING, started=0, candidate_ready=20, promotion_requested=21, switched=21
)

both = ObservedBuilder(at(21.2)).color(BLUE, V1).color(GREEN, V2).services(active=GREEN)

converged = in_release(
    Phase.OBSERVING,
    started=0,
    candidate_ready=20,
    promotion_requested=21,
    switched=21,
    converged=21.25,
    latency=0.25,
)

steady_app = make_app(status=healthy())

replicas_only = make_app(replicas=3, status=healthy())

deploying = in_release(Phase.DEPLOYING, started=0)


def deploying_world(now: float, **green: Any) -> Observed:
    return (
        ObservedBuilder(at(now)).color(BLUE, V1).color(GREEN, V2, **green).services(BLUE)
    ).build()


rolled = in_release(
    Phase.ROLLING_BACK,
    started=0,
    rollback_started=601,
    reason="ProgressDeadlineExceeded",
    message="1/2 replicas ready",
)

aborted_after_switch = in_release(
    Phase.ROLLING_BACK,
    started=0,
    candidate_ready=20,
    switched=21,
    converged=21.25,
    rollback_started=40,
    rollback_result=ReleaseResult.ABORTED,
    reason="Aborted",
)

superseded_after_switch = in_release(
    Phase.ROLLING_BACK,
    started=0,
    candidate_ready=20,
    switched=21,
    converged=21.25,
    rollback_started=22,
    rollback_result=ReleaseResult.SUPERSEDED,
    reason="Superseded",
)

degraded = status(
    Phase.DEGRADED,
    active=BLUE,
    stable=V1,
    release=_failed_release(),
    failed=[V2],
    message="revision failed",
)

degraded_world = (
    ObservedBuilder(at(900)).color(BLUE, V1).color(GREEN, V2, replicas=0).services(BLUE)
)

analyzing = in_release(Phase.ANALYZING, started=0, candidate_ready=20)

ready_world = (
    ObservedBuilder(at(20.1)).color(BLUE, V1).color(GREEN, V2).services(BLUE, preview=GREEN).build()
)

paused = in_release(Phase.PAUSED, started=0, candidate_ready=20)

small_preview = {"autoPromotion": False, "previewReplicas": 1}

small_world = (
    ObservedBuilder(at(300))
    .color(BLUE, V1)
    .color(GREEN, V2, replicas=1)
    .services(BLUE, preview=GREEN)
    .build()
)

promoting = in_release(Phase.PAUSED, started=0, candidate_ready=20, promotion_requested=300)

after_release = healthy(V2, GREEN, previous=BLUE, scale_down=(BLUE, 51.5))

two_colours = ObservedBuilder(at(0)).color(BLUE, V1).color(GREEN, V2).services(GREEN)

ten = [history_entry(V0, BLUE, started=-1000 - i, completed=-900 - i) for i in range(10)]

many_failed = [f"old{i:07d}" for i in range(lifecycle.FAILED_REVISIONS_LIMIT)]


# ----------------------------------------------------------------------------- Pending


def _pending_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "pending/first-deploy-applies-blue",
            make_app(),
            ObservedBuilder(at(0)).build(),
            phase=Phase.PENDING,
            active=None,
            actions=["apply Deployment/shop-blue v1 x2"],
            events=["ReleaseStarted"],
            requeue=WAIT,
            check=checks(
                release_is(R1, BLUE, None),
                candidate_is(R1),
                release_times(started_at=0, switched_at=None),
            ),
        )
    )
    add(
        case(
            "pending/pods-starting-creates-metrics-service-only",
            make_app(status=pending),
            ObservedBuilder(at(5)).color(BLUE, V1, ready=0).build(),
            phase=Phase.PENDING,
            active=None,
            actions=["apply Service/shop-metrics -> both"],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "pending/ready-pods-missing-from-endpointslices-is-not-saturated",
            make_app(status=pending),
            ObservedBuilder(at(6)).color(BLUE, V1, in_slices=1).services().build(),
            phase=Phase.PENDING,
            active=None,
            actions=[],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "pending/saturated-switches-and-observes",
            make_app(status=pending),
            ObservedBuilder(at(8)).color(BLUE, V1).services().build(),
            phase=Phase.OBSERVING,
            active=BLUE,
            actions=["apply Service/shop -> blue", "apply Service/shop-preview -> blue"],
            events=["Switched"],
            requeue=WAIT,
            check=release_times(candidate_ready_at=8, switched_at=8),
        )
    )
    add(
        case(
            "pending/progress-deadline-fails-first-deploy",
            make_app(status=pending),
            ObservedBuilder(at(601)).color(BLUE, V1, ready=1).services().build(),
            phase=Phase.DEGRADED,
            active=None,
            actions=[],
            events=["ProgressDeadlineExceeded"],
            requeue=None,
            check=checks(
                failed_are(R1),
                last_history(R1, ReleaseResult.FAILED, "ProgressDeadlineExceeded"),
                candidate_is(None),
                condition("Degraded", "True", "ProgressDeadlineExceeded"),
            ),
        )
    )
    add(
        case(
            "pending/failed-first-revision-is-not-redeployed",
            make_app(
                status=status(
                    Phase.DEGRADED,
                    release=_first_release(result=ReleaseResult.FAILED),
                    failed=[V1],
                )
            ),
            ObservedBuilder(at(700)).color(BLUE, V1, ready=0).services().build(),
            phase=Phase.DEGRADED,
            active=None,
            actions=[],
            events=[],
            requeue=None,
        )
    )
    add(
        case(
            "pending/new-spec-after-failed-first-deploy-starts-again",
            make_app(
                image=V2,
                status=status(
                    Phase.DEGRADED,
                    release=_first_release(result=ReleaseResult.FAILED),
                    failed=[V1],
                ),
            ),
            ObservedBuilder(at(700)).color(BLUE, V1, ready=0).services().build(),
            phase=Phase.PENDING,
            active=None,
            actions=["apply Deployment/shop-blue v2 x2"],
            events=["ReleaseStarted"],
            requeue=WAIT,
            check=release_is(R2, BLUE, None),
        )
    )
    return cs


# ----------------------------------------------------------------------------- Observing


def _observing_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "observing/first-release-endpoints-not-there-yet",
            make_app(status=first_observing),
            steady(at(8.5)).active_endpoints_of(None).build(),
            phase=Phase.OBSERVING,
            active=BLUE,
            actions=[],
            events=[],
            requeue=WAIT,
            check=release_times(endpoints_converged_at=None),
        )
    )
    add(
        case(
            "observing/old-colour-endpoints-linger-not-converged",
            make_app(image=V2, status=observing),
            both.active_endpoints_of(BLUE).build(),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=[],
            events=[],
            requeue=WAIT,
            check=release_times(endpoints_converged_at=None),
        )
    )
    add(
        case(
            "observing/partly-converged-is-not-converged",
            make_app(image=V2, status=observing),
            ObservedBuilder(at(21.2))
            .color(BLUE, V1)
            .color(GREEN, V2, in_slices=1)
            .services(active=GREEN)
            .build(),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=[],
            events=[],
            requeue=WAIT,
            check=release_times(endpoints_converged_at=None),
        )
    )
    add(
        case(
            "observing/converged-records-switch-latency-and-completes-in-the-same-pass",
            make_app(image=V2, status=observing),
            ObservedBuilder(at(21.25))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(active=GREEN)
            .build(),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["EndpointsConverged", "Promoted"],
            requeue=30,  # the old colour's scale-down
            check=checks(
                release_times(endpoints_converged_at=21.25),
                _latency(0.25),
            ),
        )
    )
    add(
        case(
            "observing/switch-latency-from-when-the-watch-saw-the-slices-not-the-pass",
            make_app(image=V2, status=observing),
            dataclasses.replace(
                ObservedBuilder(at(25))
                .color(BLUE, V1)
                .color(GREEN, V2)
                .services(active=GREEN)
                .build(),
                active_endpoints_since=at(21.1),
                active_endpoints_exact=True,
            ),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["EndpointsConverged", "Promoted"],
            requeue=30,
            check=checks(release_times(endpoints_converged_at=21.1), _latency(0.1)),
        )
    )
    add(
        case(
            "observing/after-a-restart-switch-latency-from-the-slices-write-time",
            make_app(image=V2, status=observing),
            dataclasses.replace(
                ObservedBuilder(at(27))
                .color(BLUE, V1)
                .color(GREEN, V2)
                .services(active=GREEN)
                .build(),
                active_endpoints_since=at(22),
                active_endpoints_exact=False,
            ),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["EndpointsConverged", "Promoted"],
            requeue=30,
            check=checks(release_times(endpoints_converged_at=22), _latency(1.0)),
        )
    )
    add(
        case(
            "observing/converged-completes-and-schedules-scale-down",
            make_app(image=V2, status=converged),
            ObservedBuilder(at(21.5))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(active=GREEN)
            .build(),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["Promoted"],
            requeue=30,
            check=checks(
                stable_is(R2),
                candidate_is(None),
                scale_down_is((BLUE, 51.5)),
                last_history(R2, ReleaseResult.PROMOTED),
                release_times(completed_at=21.5),
                condition("Progressing", "False"),
                condition("Available", "True"),
            ),
        )
    )
    add(
        case(
            "observing/scale-down-delay-comes-from-the-spec",
            make_app(image=V2, status=converged, strategy={"scaleDownDelaySeconds": 120}),
            ObservedBuilder(at(21.5))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(active=GREEN)
            .build(),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["Promoted"],
            requeue=120,
            check=scale_down_is((BLUE, 141.5)),
        )
    )
    add(
        case(
            "observing/first-release-completes-without-scale-down",
            make_app(
                status=status(
                    Phase.OBSERVING,
                    active=BLUE,
                    release=_first_release(candidate_ready=8, switched=8, converged=8.1),
                )
            ),
            steady(at(8.2)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=[],
            events=["Promoted"],
            requeue=None,
            check=checks(stable_is(R1), scale_down_is(None), settled()),
        )
    )
    add(
        case(
            "observing/endpoints-never-converge-rolls-back",
            make_app(image=V2, status=observing),
            both.active_endpoints_of(BLUE).at(21 + 601).build(),
            phase=Phase.ROLLING_BACK,
            # The selector moves back on the next pass, once blue is seen saturated.
            active=GREEN,
            actions=[],
            events=["RollingBack"],
            requeue=WAIT,
            check=release_reason("EndpointsNotConverged"),
        )
    )
    add(
        case(
            "observing/spec-changed-after-convergence-rolls-back-as-superseded",
            make_app(image=V3, status=converged),
            ObservedBuilder(at(22)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build(),
            phase=Phase.ROLLING_BACK,
            active=GREEN,
            actions=[],
            events=["RollingBack"],
            requeue=0,  # the flip back is the next step
            check=release_reason("Superseded"),
        )
    )
    return cs


# ----------------------------------------------------------------------------- Healthy


def _healthy_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "healthy/same-revision-does-nothing",
            steady_app,
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=[],
            events=[],
            requeue=None,
            check=checks(release_unchanged(steady_app), settled(), candidate_is(None)),
        )
    )
    add(
        case(
            "healthy/missing-preview-service-is-recreated",
            steady_app,
            steady(at(0)).without_service(PREVIEW).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["apply Service/shop-preview -> blue"],
            events=[],
            requeue=None,
        )
    )
    add(
        case(
            "healthy/replicas-only-change-scales-active-colour",
            replicas_only,
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["scale shop-blue to 3"],
            events=[],
            requeue=None,  # the new replicas' pods wake it
            check=checks(release_unchanged(replicas_only), candidate_is(None), stable_is(R1)),
        )
    )
    add(
        case(
            "healthy/replicas-only-change-leaves-warm-colour-alone",
            make_app(
                image=V2,
                replicas=1,
                status=healthy(V2, GREEN, previous=BLUE, scale_down=(BLUE, 20)),
            ),
            ObservedBuilder(at(5)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build(),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=["scale shop-green to 1"],
            events=[],
            requeue=15,
            check=scale_down_is((BLUE, 20)),
        )
    )
    add(
        case(
            "healthy/new-template-deploys-other-colour-at-preview-replicas",
            make_app(image=V2, replicas=3, strategy={"previewReplicas": 1}, status=healthy()),
            steady(at(0), replicas=3).build(),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["apply Deployment/shop-green v2 x1"],
            events=["ReleaseStarted"],
            requeue=WAIT,
            check=checks(
                release_is(R2, GREEN, BLUE),
                candidate_is(R2),
                stable_is(R1),
                release_times(started_at=0),
                condition("Progressing", "True", "Deploying"),
            ),
        )
    )
    add(
        case(
            "healthy/new-template-reuses-the-warm-colour",
            make_app(image=V3, status=healthy(V2, GREEN, previous=BLUE, scale_down=(BLUE, 20))),
            ObservedBuilder(at(5)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build(),
            phase=Phase.DEPLOYING,
            active=GREEN,
            actions=["apply Deployment/shop-blue v3 x2"],
            events=["ReleaseStarted"],
            requeue=WAIT,
            check=checks(release_is(R3, BLUE, GREEN), scale_down_is(None)),
        )
    )
    add(
        case(
            "healthy/failed-revision-is-not-released-again",
            make_app(image=V2, status=healthy(failed=[V2])),
            steady(at(0)).build(),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=[],
            events=["RevisionFailedBefore"],
            requeue=None,
            check=event_types("Warning"),
        )
    )
    return cs


# ----------------------------------------------------------------------------- Deploying


def _deploying_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    not_saturated: list[tuple[str, dict[str, Any]]] = [
        ("deploying/pods-not-ready", {"ready": 0}),
        ("deploying/ready-pods-missing-from-endpointslices", {"in_slices": 1}),
        ("deploying/stray-pods-of-old-revision", {"stray": 1, "stray_image": V1}),
        ("deploying/deployment-not-settled", {"settled": False}),
        ("deploying/too-few-replicas", {"replicas": 1}),
    ]
    for cid, green in not_saturated:
        add(
            case(
                cid,
                make_app(image=V2, status=deploying),
                deploying_world(5, **green),
                phase=Phase.DEPLOYING,
                active=BLUE,
                # a wrong replica count is corrected; nothing else is written
                actions=["scale shop-green to 2"] if "replicas" in green else [],
                events=[],
                requeue=WAIT,
                check=release_times(candidate_ready_at=None),
            )
        )
    add(
        case(
            "deploying/candidate-deployment-of-old-revision-is-reapplied",
            make_app(image=V2, status=deploying),
            ObservedBuilder(at(1))
            .color(BLUE, V1)
            .color(GREEN, V0, replicas=0)
            .services(BLUE)
            .build(),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["apply Deployment/shop-green v2 x2"],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "deploying/terminating-old-pods-do-not-block",
            make_app(image=V2, status=deploying),
            deploying_world(5, terminating=2),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=["apply Service/shop-preview -> green"],
            events=["CandidateReady"],
            requeue=0,
        )
    )
    add(
        case(
            "deploying/saturated-moves-to-analyzing-and-previews",
            make_app(image=V2, status=deploying),
            deploying_world(20),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=["apply Service/shop-preview -> green"],
            events=["CandidateReady"],
            requeue=0,
            check=release_times(candidate_ready_at=20, switched_at=None),
        )
    )
    add(
        case(
            "deploying/progress-deadline-rolls-back-with-traffic-untouched",
            make_app(image=V2, status=deploying),
            deploying_world(601, ready=1),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=[],
            events=["RollingBack"],
            requeue=WAIT,
            check=checks(
                release_reason("ProgressDeadlineExceeded"),
                release_times(rollback_started_at=601, switched_at=None),
                event_types("Warning"),
            ),
        )
    )
    add(
        case(
            "deploying/deadline-not-yet-passed-keeps-waiting",
            make_app(image=V2, status=deploying),
            deploying_world(600, ready=1),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=[],
            events=[],
            requeue=WAIT,
        )
    )
    return cs


# ----------------------------------------------------------------------------- RollingBack


def _rollingback_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "rollingback/endpoints-back-on-stable-ends-degraded",
            make_app(image=V2, status=rolled),
            deploying_world(601.1, ready=1),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=[],
            events=["RolledBack"],
            requeue=30,
            check=checks(
                failed_are(R2),
                scale_down_is((GREEN, 631.1)),
                last_history(R2, ReleaseResult.ROLLED_BACK),
                candidate_is(None),
                stable_is(R1),
                condition("Degraded", "True", "ProgressDeadlineExceeded"),
            ),
        )
    )
    add(
        case(
            "rollingback/abort-scale-down-delay-comes-from-the-spec",
            make_app(image=V2, status=rolled, strategy={"abortScaleDownDelaySeconds": 0}),
            deploying_world(601.1, ready=1),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=["scale shop-green to 0"],
            events=["RolledBack", "ScaledDown"],
            requeue=None,
            check=scale_down_is(None),
        )
    )
    add(
        case(
            "rollingback/waits-until-endpoints-are-back",
            make_app(image=V2, status=aborted_after_switch),
            ObservedBuilder(at(40.1))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(BLUE)
            .active_endpoints_of(GREEN)
            .build(),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=[],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            # An operator stopped after flipping back and before writing status: the
            # EndpointSlices are back already, so no change of them will wake the app.
            "rollingback/flipped-back-by-a-stopped-operator-looks-again-at-once",
            make_app(
                image=V2,
                status=in_release(
                    Phase.ROLLING_BACK,
                    started=0,
                    candidate_ready=20,
                    switched=21,
                    converged=21.25,
                    rollback_started=40,
                    rollback_result=ReleaseResult.ABORTED,
                    reason="Aborted",
                    active=GREEN,
                ),
            ),
            ObservedBuilder(at(40.1)).color(BLUE, V1).color(GREEN, V2).services(BLUE).build(),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=[],
            events=[],
            requeue=0,
        )
    )
    add(
        case(
            "rollingback/service-not-flipped-back-yet-is-flipped",
            make_app(image=V2, status=aborted_after_switch),
            ObservedBuilder(at(40.1))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(GREEN, preview=BLUE)
            .build(),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=["apply Service/shop -> blue"],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "rollingback/superseded-records-no-failure-and-moves-on-at-once",
            make_app(image=V3, status=superseded_after_switch),
            ObservedBuilder(at(40.2)).color(BLUE, V1).color(GREEN, V2).services(BLUE).build(),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=None,
            events=["ReleaseSuperseded", "ReleaseStarted"],
            requeue=WAIT,
            check=checks(failed_are(), last_history(R2, ReleaseResult.SUPERSEDED)),
        )
    )
    add(
        case(
            "rollingback/aborted-ends-degraded-with-revision-failed",
            make_app(image=V2, status=aborted_after_switch),
            ObservedBuilder(at(40.2)).color(BLUE, V1).color(GREEN, V2).services(BLUE).build(),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=[],
            events=["Aborted"],
            requeue=30,
            check=checks(
                failed_are(R2),
                last_history(R2, ReleaseResult.ABORTED),
                scale_down_is((GREEN, 70.2)),
            ),
        )
    )
    return cs


# ----------------------------------------------------------------------------- Degraded


def _degraded_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "degraded/same-failed-template-stays-put",
            make_app(image=V2, status=degraded),
            degraded_world.build(),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=[],
            events=[],
            requeue=None,
            check=checks(failed_are(R2), settled()),
        )
    )
    add(
        case(
            "degraded/retry-request-deploys-again",
            make_app(image=V2, status=degraded, request="retry"),
            degraded_world.build(),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["clear request", "scale shop-green to 2"],
            events=["RetryRequested", "ReleaseStarted"],
            requeue=WAIT,
            check=checks(failed_are(), release_is(R2, GREEN, BLUE), release_times(started_at=900)),
        )
    )
    add(
        case(
            "degraded/spec-reverted-to-stable-is-healthy",
            make_app(image=V1, status=degraded),
            degraded_world.build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=[],
            events=["Recovered"],
            requeue=None,
            check=checks(
                failed_are(R2),
                condition("Degraded", "False"),
                lambda p: _message_is(p, ""),
            ),
        )
    )
    add(
        case(
            "degraded/new-revision-deploys",
            make_app(image=V3, status=degraded),
            degraded_world.build(),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["apply Deployment/shop-green v3 x2"],
            events=["ReleaseStarted"],
            requeue=WAIT,
            check=release_is(R3, GREEN, BLUE),
        )
    )
    add(
        case(
            "degraded/retry-after-failed-first-deploy-goes-back-to-pending",
            make_app(
                status=status(
                    Phase.DEGRADED,
                    release=_first_release(result=ReleaseResult.FAILED),
                    failed=[V1],
                ),
                request="retry",
            ),
            ObservedBuilder(at(700)).color(BLUE, V1, ready=0).services().build(),
            phase=Phase.PENDING,
            active=None,
            actions=["clear request"],
            events=["RetryRequested", "ReleaseStarted"],
            requeue=WAIT,
            check=checks(failed_are(), release_is(R1, BLUE, None), release_times(started_at=700)),
        )
    )
    return cs


# ----------------------------------------------------------------------------- Analyzing / Paused


def _analyzing_paused_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "analyzing/auto-promotion-switches",
            make_app(image=V2, status=analyzing),
            ready_world,
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=["apply Service/shop -> green"],
            events=["Switched"],
            requeue=WAIT,
            check=release_times(switched_at=20.1, promotion_requested_at=20.1),
        )
    )
    add(
        case(
            # An operator stopped after the flip and before writing status: the
            # EndpointSlices show green already, so no change of them will wake the app.
            "analyzing/switched-by-a-stopped-operator-looks-again-at-once",
            make_app(image=V2, status=analyzing),
            ObservedBuilder(at(20.1)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build(),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=[],
            events=["Switched"],
            requeue=0,
        )
    )
    add(
        case(
            "analyzing/manual-promotion-pauses",
            make_app(image=V2, status=analyzing, strategy={"autoPromotion": False}),
            ready_world,
            phase=Phase.PAUSED,
            active=BLUE,
            actions=[],
            events=["Paused"],
            requeue=None,
            check=checks(condition("Paused", "True", "ManualPromotion"), settled()),
        )
    )
    add(
        case(
            "analyzing/auto-promotion-seconds-waits-the-remaining-time",
            make_app(image=V2, status=analyzing, strategy={"autoPromotionSeconds": 30}),
            _at(ready_world, 25),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=[],
            events=[],
            requeue=25.0,
        )
    )
    add(
        case(
            "analyzing/auto-promotion-seconds-elapsed-switches",
            make_app(image=V2, status=analyzing, strategy={"autoPromotionSeconds": 30}),
            _at(ready_world, 50),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=["apply Service/shop -> green"],
            events=["Switched"],
            requeue=WAIT,
        )
    )
    add(
        case(
            "analyzing/promotion-scales-candidate-up-before-switching",
            make_app(image=V2, status=analyzing, strategy={"previewReplicas": 1}),
            ObservedBuilder(at(20.1))
            .color(BLUE, V1)
            .color(GREEN, V2, replicas=1)
            .services(BLUE, preview=GREEN)
            .build(),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=["scale shop-green to 2"],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "paused/waits-for-a-person",
            make_app(image=V2, status=paused, strategy={"autoPromotion": False}),
            _at(ready_world, 3000),
            phase=Phase.PAUSED,
            active=BLUE,
            actions=[],
            events=[],
            requeue=None,
            check=settled(),
        )
    )
    add(
        case(
            "paused/promote-request-switches-when-saturated",
            make_app(image=V2, status=paused, strategy={"autoPromotion": False}, request="promote"),
            _at(ready_world, 300),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=["clear request", "apply Service/shop -> green"],
            events=["PromotionRequested", "Switched"],
            requeue=WAIT,
            check=release_times(promotion_requested_at=300, switched_at=300),
        )
    )
    add(
        case(
            "paused/promote-request-is-case-and-space-insensitive",
            make_app(
                image=V2, status=paused, strategy={"autoPromotion": False}, request=" Promote\n"
            ),
            _at(ready_world, 300),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=["clear request", "apply Service/shop -> green"],
            events=["PromotionRequested", "Switched"],
            requeue=WAIT,
        )
    )
    add(
        case(
            "paused/promote-with-small-preview-scales-up-first",
            make_app(image=V2, status=paused, strategy=small_preview, request="promote"),
            small_world,
            phase=Phase.PAUSED,
            active=BLUE,
            actions=["clear request", "scale shop-green to 2"],
            events=["PromotionRequested"],
            requeue=WAIT,
            check=release_times(promotion_requested_at=300, switched_at=None),
        )
    )
    add(
        case(
            # A person who promotes after the progress deadline has passed (a manual gate
            # is allowed to wait) must get the scale-up, not an instant rollback.
            "paused/promote-after-a-long-wait-still-scales-up-first",
            make_app(image=V2, status=paused, strategy=small_preview, request="promote"),
            _at(small_world, 3600),
            phase=Phase.PAUSED,
            active=BLUE,
            actions=["clear request", "scale shop-green to 2"],
            events=["PromotionRequested"],
            requeue=WAIT,
        )
    )
    add(
        case(
            # Same with autoPromotionSeconds longer than the progress deadline: the wait
            # was asked for, so it cannot count against the scale-up.
            "analyzing/auto-promotion-after-a-long-wait-still-scales-up-first",
            make_app(
                image=V2,
                status=analyzing,
                strategy={
                    "autoPromotionSeconds": 900,
                    "previewReplicas": 1,
                    "progressDeadlineSeconds": 600,
                },
            ),
            _at(small_world, 921),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=["scale shop-green to 2"],
            events=[],
            requeue=WAIT,
            check=release_times(promotion_requested_at=921, switched_at=None),
        )
    )
    add(
        case(
            "paused/promotion-requested-waits-for-scale-up",
            make_app(image=V2, status=promoting, strategy=small_preview),
            ObservedBuilder(at(302))
            .color(BLUE, V1)
            .color(GREEN, V2, ready=1)
            .services(BLUE, preview=GREEN)
            .build(),
            phase=Phase.PAUSED,
            active=BLUE,
            actions=[],
            events=[],
            requeue=WAIT,
        )
    )
    add(
        case(
            "paused/promotion-requested-switches-once-scaled-up",
            make_app(image=V2, status=promoting, strategy=small_preview),
            _at(ready_world, 305),
            phase=Phase.OBSERVING,
            active=GREEN,
            actions=["apply Service/shop -> green"],
            events=["Switched"],
            requeue=WAIT,
            check=release_times(promotion_requested_at=300, switched_at=305),
        )
    )
    return cs


# ----------------------------------------------------------------------------- abort


def _abort_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "abort/in-deploying-rolls-back",
            make_app(image=V2, status=deploying, request="abort"),
            deploying_world(5, ready=1),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=["clear request"],
            events=["RollingBack"],
            requeue=0,  # the flip back is the next step
            check=release_reason("Aborted"),
        )
    )
    add(
        case(
            "abort/in-analyzing-rolls-back",
            make_app(image=V2, status=analyzing, request="abort"),
            ready_world,
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=["clear request", "apply Service/shop-preview -> blue"],
            events=["RollingBack"],
            requeue=0,  # the flip back is the next step
            check=release_reason("Aborted"),
        )
    )
    add(
        case(
            "abort/in-paused-rolls-back",
            make_app(image=V2, status=paused, request="abort", strategy={"autoPromotion": False}),
            _at(ready_world, 100),
            phase=Phase.ROLLING_BACK,
            active=BLUE,
            actions=["clear request", "apply Service/shop-preview -> blue"],
            events=["RollingBack"],
            requeue=0,  # the flip back is the next step
            check=release_reason("Aborted"),
        )
    )
    add(
        case(
            "abort/in-observing-starts-rolling-back",
            make_app(image=V2, status=converged, request="abort"),
            ObservedBuilder(at(30)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build(),
            phase=Phase.ROLLING_BACK,
            active=GREEN,
            actions=["clear request"],
            events=["RollingBack"],
            requeue=0,  # the flip back is the next step
            check=checks(release_reason("Aborted"), release_times(rollback_started_at=30)),
        )
    )
    add(
        case(
            # Invariant 1: the flip back goes to a saturated colour too. The warm colour
            # lost a pod; pointing the Service at it would halve the capacity.
            "abort/in-observing-does-not-flip-to-an-under-replicated-colour",
            make_app(image=V2, status=converged, request="abort"),
            ObservedBuilder(at(30))
            .color(BLUE, V1, ready=1)
            .color(GREEN, V2)
            .services(GREEN)
            .build(),
            phase=Phase.ROLLING_BACK,
            active=None,  # checked by the invariants: no flip to blue yet
            actions=None,
        )
    )
    add(
        case(
            "abort/in-healthy-is-ignored",
            make_app(status=healthy(), request="abort"),
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["clear request"],
            events=["RequestIgnored"],
            requeue=None,
        )
    )
    return cs


# ----------------------------------------------------------------------------- supersede


def _supersede_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "supersede/in-deploying-starts-new-release-on-same-colour",
            make_app(image=V3, status=deploying),
            deploying_world(5, ready=1),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["apply Deployment/shop-green v3 x2"],
            events=["ReleaseSuperseded", "ReleaseStarted"],
            requeue=WAIT,
            check=checks(
                release_is(R3, GREEN, BLUE),
                last_history(R2, ReleaseResult.SUPERSEDED, "Superseded"),
                candidate_is(R3),
                release_times(started_at=5),
                failed_are(),
            ),
        )
    )
    add(
        case(
            "supersede/in-analyzing-starts-new-release-on-same-colour",
            make_app(image=V3, status=analyzing, strategy={"autoPromotionSeconds": 60}),
            _at(ready_world, 30),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=[
                "apply Deployment/shop-green v3 x2",
                "apply Service/shop-preview -> blue",
            ],
            events=["ReleaseSuperseded", "ReleaseStarted"],
            requeue=WAIT,
            check=checks(
                release_is(R3, GREEN, BLUE),
                last_history(R2, ReleaseResult.SUPERSEDED),
                release_times(started_at=30, candidate_ready_at=None),
            ),
        )
    )
    add(
        case(
            "supersede/in-paused-starts-new-release-on-same-colour",
            make_app(image=V3, status=paused, strategy={"autoPromotion": False}),
            _at(ready_world, 30),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=[
                "apply Deployment/shop-green v3 x2",
                "apply Service/shop-preview -> blue",
            ],
            events=["ReleaseSuperseded", "ReleaseStarted"],
            requeue=WAIT,
            check=last_history(R2, ReleaseResult.SUPERSEDED),
        )
    )
    add(
        case(
            "supersede/back-to-stable-is-healthy-and-scales-candidate-to-zero",
            make_app(image=V1, status=deploying),
            deploying_world(5, ready=1),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["scale shop-green to 0"],
            events=["ReleaseSuperseded"],
            requeue=None,
            check=checks(
                stable_is(R1),
                candidate_is(None),
                last_history(R2, ReleaseResult.SUPERSEDED),
                condition("Progressing", "False"),
            ),
        )
    )
    add(
        case(
            "supersede/to-a-failed-revision-is-degraded",
            make_app(image=V2, status=in_release(Phase.DEPLOYING, V3, started=0, failed=[V2])),
            ObservedBuilder(at(5)).color(BLUE, V1).color(GREEN, V3, ready=1).services(BLUE).build(),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=["scale shop-green to 0"],
            events=["ReleaseSuperseded", "RevisionFailedBefore"],
            requeue=None,
            check=last_history(R3, ReleaseResult.SUPERSEDED),
        )
    )
    return cs


# ----------------------------------------------------------------------------- requests


def _requests_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "request/unknown-value-warns-and-is-cleared",
            make_app(status=healthy(), request="promote-now"),
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["clear request"],
            events=["RequestRejected"],
            requeue=None,
            check=event_types("Warning"),
        )
    )
    add(
        case(
            "request/unknown-value-in-a-release-still-moves-it-on",
            make_app(image=V2, status=deploying, request="yes-please"),
            deploying_world(20),
            phase=Phase.ANALYZING,
            active=BLUE,
            actions=["clear request", "apply Service/shop-preview -> green"],
            events=["RequestRejected", "CandidateReady"],
            requeue=0,
        )
    )
    add(
        case(
            "request/promote-in-healthy-is-ignored",
            make_app(status=healthy(), request="promote"),
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["clear request"],
            events=["RequestIgnored"],
            requeue=None,
            check=checks(event_types("Warning"), release_unchanged(make_app(status=healthy()))),
        )
    )
    add(
        case(
            "request/promote-while-deploying-is-ignored",
            make_app(image=V2, status=deploying, request="promote"),
            deploying_world(5, ready=1),
            phase=Phase.DEPLOYING,
            active=BLUE,
            actions=["clear request"],
            events=["RequestIgnored"],
            requeue=WAIT,
            check=release_times(promotion_requested_at=None),
        )
    )
    add(
        case(
            "request/retry-in-healthy-is-ignored",
            make_app(status=healthy(), request="retry"),
            steady(at(0)).build(),
            phase=Phase.HEALTHY,
            active=BLUE,
            actions=["clear request"],
            events=["RequestIgnored"],
            requeue=None,
        )
    )
    return cs


# ----------------------------------------------------------------------------- scale-down


def _scale_down_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "scale-down/due-scales-old-colour-to-zero",
            make_app(image=V2, status=after_release),
            _at(two_colours.build(), 52),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=["scale shop-blue to 0"],
            events=["ScaledDown"],
            requeue=None,
            check=checks(scale_down_is(None), settled()),
        )
    )
    add(
        case(
            "scale-down/not-yet-due-requeues-for-the-remaining-time",
            make_app(image=V2, status=after_release),
            _at(two_colours.build(), 33.5),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=[],
            requeue=18.0,
            check=scale_down_is((BLUE, 51.5)),
        )
    )
    add(
        case(
            "scale-down/after-rollback-scales-the-failed-candidate",
            make_app(image=V2, status=degraded.model_copy(update={"scale_down": _sd(GREEN, 630)})),
            ObservedBuilder(at(631)).color(BLUE, V1).color(GREEN, V2).services(BLUE).build(),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=["scale shop-green to 0"],
            events=["ScaledDown"],
            requeue=None,
        )
    )
    return cs


# ----------------------------------------------------------------------------- bounds


def _bounds_cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    add(
        case(
            "bounds/history-keeps-the-last-ten",
            make_app(
                image=V2,
                status=converged.model_copy(update={"history": ten}),
            ),
            ObservedBuilder(at(21.5))
            .color(BLUE, V1)
            .color(GREEN, V2)
            .services(active=GREEN)
            .build(),
            phase=Phase.HEALTHY,
            active=GREEN,
            actions=[],
            events=["Promoted"],
            requeue=30,
            check=lambda p: _history_is(p, [R2, *(e.revision for e in ten[:9])], ten[8]),
        )
    )
    add(
        case(
            "bounds/failed-revisions-keep-the-newest",
            make_app(
                image=V2,
                status=rolled.model_copy(update={"failed_revisions": many_failed}),
            ),
            deploying_world(601.1, ready=1),
            phase=Phase.DEGRADED,
            active=BLUE,
            actions=[],
            events=["RolledBack"],
            requeue=30,
            check=failed_are(*many_failed[1:], R2),
        )
    )
    return cs


def _cases() -> list[Case]:
    return [
        *_pending_cases(),
        *_observing_cases(),
        *_healthy_cases(),
        *_deploying_cases(),
        *_rollingback_cases(),
        *_degraded_cases(),
        *_analyzing_paused_cases(),
        *_abort_cases(),
        *_supersede_cases(),
        *_requests_cases(),
        *_scale_down_cases(),
        *_bounds_cases(),
    ]


CASES = _cases()
IDS = [c.id for c in CASES]


def test_case_ids_are_unique() -> None:
    assert len(IDS) == len(set(IDS))


def test_every_phase_is_a_starting_point() -> None:
    assert {c.app.status.phase for c in CASES} == set(Phase)


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_plan(c: Case) -> None:
    plan = machine.plan(c.app, c.observed)
    assert plan.status.phase is c.phase
    if c.active is not None or c.actions is not None:
        assert plan.status.active_color is c.active
    if c.actions is not None:
        assert describe_all(plan) == c.actions
    if c.events is not None:
        assert [e.reason for e in plan.events] == c.events
    if c.requeue == WAIT:
        assert_waits_on_the_cluster(c.app, c.observed, plan)
    elif c.requeue != "unchecked":
        if c.requeue is None:
            assert plan.requeue_after is None
        else:
            assert plan.requeue_after == pytest.approx(c.requeue)
    if c.check is not None:
        c.check(plan)


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_invariants(c: Case) -> None:
    assert_invariants(c.app, c.observed, machine.plan(c.app, c.observed))


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_plan_is_deterministic_and_does_not_touch_its_inputs(c: Case) -> None:
    before = c.app.model_dump()
    first = machine.plan(c.app, c.observed)
    second = machine.plan(c.app, c.observed)
    assert first == second
    assert c.app.model_dump() == before


# ----------------------------------------------------------------------------- the invariant checker bites


def test_traffic_check_rejects_a_flip_to_an_unsaturated_colour() -> None:
    """`assert_traffic_safe` is not a tautology: a hand-made plan that flips to a colour
    with one of two endpoints fails it."""
    app = make_app(image=V2, status=in_release(Phase.ANALYZING, started=0, candidate_ready=1))
    observed = ObservedBuilder(at(2)).color(BLUE, V1).color(GREEN, V2, in_slices=1).services(BLUE)
    bad = Plan(
        actions=(Apply(render.active_service(app, GREEN)),),
        status=app.status.model_copy(update={"active_color": GREEN}),
    )
    with pytest.raises(AssertionError, match="1 ready endpoints of the 2"):
        assert_traffic_safe(app, observed.build(), bad)


def test_transition_check_rejects_two_steps_in_one_pass() -> None:
    app = make_app(image=V2, status=in_release(Phase.DEPLOYING, started=0))
    observed = steady(at(1)).build()
    two_steps = Plan(actions=(), status=app.status.model_copy(update={"phase": Phase.OBSERVING}))
    with pytest.raises(AssertionError, match="not one step"):
        assert_invariants(app, observed, two_steps)


# ----------------------------------------------------------------------------- conditions


def _settle(app: BlueGreenApp, observed: Observed) -> BlueGreenApp:
    """The app as it would be read back after its status was written."""
    plan = machine.plan(app, observed)
    return app.model_copy(update={"status": plan.status})


def test_conditions_keep_their_transition_time_when_nothing_changes() -> None:
    app = _settle(make_app(status=healthy()), steady(at(0)).build())
    first = {c.type: c for c in app.status.conditions}
    assert {t: c.status for t, c in first.items()} == {
        "Available": "True",
        "Progressing": "False",
        "Degraded": "False",
        "Paused": "False",
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        # No ServiceMonitor CRD in this world: the condition says so.
        "ServiceMonitorReady": "False",
    }
    assert all(c.last_transition_time == stamp(0) for c in first.values())

    later = machine.plan(app, steady(at(3600)).build())
    assert later.status.conditions == app.status.conditions
    assert later.status == app.status  # nothing to write


def test_conditions_move_their_transition_time_only_on_a_real_transition() -> None:
    app = _settle(make_app(status=healthy()), steady(at(0)).build())
    released = app.model_copy(
        update={"spec": make_app(image=V2).spec},
    )
    plan = machine.plan(released, steady(at(100)).build())
    assert plan.status.phase is Phase.DEPLOYING
    got = {c.type: (c.status, seconds_of(c.last_transition_time)) for c in plan.status.conditions}
    assert got == {
        "Available": ("True", 0),
        "Progressing": ("True", 100),
        "Degraded": ("False", 0),
        "Paused": ("False", 0),
        "Ready": ("False", 100),
        "Reconciling": ("True", 100),
        "Stalled": ("False", 0),
        "ServiceMonitorReady": ("False", 0),
    }
    # Deploying -> Analyzing keeps Progressing True: its time stays although its reason moves.
    deploying = released.model_copy(update={"status": plan.status})
    world = ObservedBuilder(at(130)).color(BLUE, V1).color(GREEN, V2).services(BLUE).build()
    nxt = machine.plan(deploying, world)
    assert nxt.status.phase is Phase.ANALYZING
    progressing = {c.type: c for c in nxt.status.conditions}["Progressing"]
    assert (progressing.reason, seconds_of(progressing.last_transition_time)) == (
        "Analyzing",
        100,
    )


def test_conditions_carry_the_generation() -> None:
    app = make_app(status=healthy(), generation=7)
    plan = machine.plan(app, steady(at(0)).build())
    assert {c.observed_generation for c in plan.status.conditions} == {7}
    assert plan.status.observed_generation == 7


# ----------------------------------------------------------------------------- derived fields


def test_status_reports_ready_replicas_and_selector_of_the_active_colour() -> None:
    app = make_app(image=V2, replicas=3, status=healthy(V2, GREEN))
    world = ObservedBuilder(at(0)).color(GREEN, V2, replicas=3, ready=2).services(GREEN).build()
    plan = machine.plan(app, world)
    assert plan.status.replicas == 2
    assert plan.status.selector == "bluegreen.dev/app=shop,bluegreen.dev/color=green"


def test_candidate_deployment_is_pinned_to_its_revision_and_owned() -> None:
    plan = machine.plan(make_app(image=V2, status=healthy()), steady(at(0)).build())
    (apply,) = plan.actions
    assert isinstance(apply, Apply)
    m = apply.manifest
    labels = m["spec"]["template"]["metadata"]["labels"]
    assert labels[naming.LABEL_REVISION] == revision_of(V2)
    assert labels[naming.LABEL_COLOR] == "green"
    assert m["spec"]["selector"]["matchLabels"] == naming.selector(NAME, GREEN)
    assert m["metadata"]["ownerReferences"][0]["uid"] == make_app().metadata.uid
    env = {e["name"]: e["value"] for e in m["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"APP_COLOR": "green", "APP_VERSION": "v2"}


@pytest.mark.parametrize("role", ["active", "preview", "metrics"])
def test_label_drift_on_an_owned_service_is_repaired(role: str) -> None:
    """Someone removed or changed a label the operator renders on its Service: the next
    pass applies the Service again (and only that one)."""
    name = {"active": ACTIVE, "preview": PREVIEW, "metrics": naming.metrics_service(NAME)}[role]
    world = steady(at(10)).build()
    drifted = dataclasses.replace(world.services[name], labels={naming.LABEL_ROLE: "someone-else"})
    observed = dataclasses.replace(world, services={**world.services, name: drifted})
    plan = machine.plan(make_app(status=healthy()), observed)
    applied = [a.key for a in plan.actions if isinstance(a, Apply)]
    assert applied == [f"Service/{name}"]
    assert machine.plan(make_app(status=healthy()), world).actions == ()


def test_a_revert_inside_the_warm_window_deploys_nothing_and_goes_on_at_once() -> None:
    """v2 serves on green, blue is still warm on v1; the spec goes back to v1. Blue already
    runs v1, saturated: nothing to deploy and no event to wait for, so the next step is
    taken at once (not when a timer fires)."""
    app = make_app(image=V1, status=healthy(V2, GREEN, previous=BLUE, scale_down=(BLUE, 60)))
    world = ObservedBuilder(at(10)).color(BLUE, V1).color(GREEN, V2).services(GREEN).build()
    plan = machine.plan(app, world)
    assert plan.status.phase is Phase.DEPLOYING
    assert describe_all(plan) == []
    assert plan.status.scale_down is None  # the warm colour is reused, not scaled down
    assert plan.requeue_after == 0
    # ... and the steps after it flip traffic back within two more passes.
    app = app.model_copy(update={"status": plan.status})
    plan = machine.plan(app, world)
    assert plan.status.phase is Phase.ANALYZING and plan.requeue_after == 0
    app = app.model_copy(update={"status": plan.status})
    plan = machine.plan(app, world)
    assert plan.status.phase is Phase.OBSERVING
    assert plan.status.active_color is BLUE


def test_a_window_inconclusive_again_while_paused_is_taken_again_at_once() -> None:
    """Paused because pre-promotion analysis was inconclusive: when the new window ends
    inconclusive too, the next pass opens another one at once (no clock would wake it)."""
    metric = {
        "name": "up",
        "url": "http://shop-preview.default.svc/health",
        "interval": "1s",
        "count": 1,
    }
    body = app_body(image=V2, status=in_release(Phase.PAUSED, started=0, candidate_ready=5))
    body["spec"]["analysis"] = {"prePromotion": [metric]}
    base = BlueGreenApp.model_validate(body)
    run = AnalysisRun(phase="pre", revision=R2, window_start=stamp(20), runs=2)
    app = base.model_copy(update={"status": base.status.model_copy(update={"analysis": run})})
    world = dataclasses.replace(
        deploying_world(30),
        samples={"pre/up": QueryResult(error="GET unreachable: connection refused")},
    )
    plan = machine.plan(app, world)
    assert plan.status.phase is Phase.PAUSED
    assert plan.status.analysis is not None
    assert plan.status.analysis.verdict is Verdict.INCONCLUSIVE
    assert plan.requeue_after == 0
    again = machine.plan(app.model_copy(update={"status": plan.status}), deploying_world(30))
    assert again.status.analysis is not None and again.status.analysis.runs == 3
