"""Tick tests: `reconcile.reconcile` called again and again against an in-memory cluster.

Each tick is one full pass (load, observe, decide, apply, status), then the fake cluster's
controllers run (`simulate`) and the fake clock moves on by the pass's requeue delay. The
tests assert the phases the app goes through, the exact writes the operator makes, and
that a restarted operator (a brand-new gateway over the same stored objects) finishes a
release with exactly one flip of the active Service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bluegreen.api import BlueGreenAppStatus
from bluegreen.core import naming
from bluegreen.core.ports import NoticeSink
from bluegreen.runtime import reconcile
from tests.unit.factories import (
    NAME,
    NAMESPACE,
    R1,
    R2,
    R3,
    T0,
    V1,
    V2,
    V3,
    VERSION_OF,
    app_body,
    status_dict,
)
from tests.unit.fake_cluster import Call, Crash, FakeClock, FakeCluster, apply_merge_patch

ACTIVE = naming.active_service(NAME)
IDLE_STEP = 1.0  # how far the clock moves after a pass that asked for no requeue
MIN_STEP = 0.01  # a requeue of 0 still takes a little time


def describe(call: Call) -> str:
    if call.op == "scale":
        return f"scale {call.name} to {call.body}"
    if call.op == "remove_app_annotation":
        return f"remove annotation {call.body}"
    if call.op == "patch_app_status":
        return "patch status"
    assert call.op == "apply", call
    m = call.body
    if call.kind == "Deployment":
        rev = m["spec"]["template"]["metadata"]["labels"][naming.LABEL_REVISION]
        return f"apply Deployment/{call.name} {VERSION_OF.get(rev, rev)} x{m['spec']['replicas']}"
    if call.kind == "Service":
        color = m["spec"]["selector"].get(naming.LABEL_COLOR, "both")
        return f"apply Service/{call.name} -> {color}"
    return f"apply {call.kind}/{call.name}"


def dedup(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not out or out[-1] != item:
            out.append(item)
    return out


@dataclass
class Tick:
    at: float  # seconds after T0 when the pass ran
    outcome: reconcile.PassResult | None  # None: the operator died during the pass
    phase: str | None  # the stored phase after the pass
    calls: list[Call]


@dataclass
class Harness:
    """Drives one app through ticks and keeps what happened, tick by tick."""

    cluster: FakeCluster
    clock: FakeClock = field(default_factory=FakeClock)
    ticks: list[Tick] = field(default_factory=list)
    flips: list[tuple[float, str, str]] = field(default_factory=list)  # (at, from, to)
    check_status: bool = True
    defaults: reconcile.AppDefaults = field(default_factory=reconcile.AppDefaults)
    notices: NoticeSink | None = None

    @classmethod
    def new(cls, **spec: Any) -> Harness:
        cluster = FakeCluster()
        cluster.create_app(app_body(**spec))
        return cls(cluster)

    def now(self) -> float:
        return (self.clock.now() - T0).total_seconds()

    def tick(self, *, simulate: bool = True, endpoints: bool = True) -> Tick:
        start = len(self.cluster.calls)
        before = self.cluster.obj("Service", ACTIVE)
        t = self.now()
        try:
            out = reconcile.reconcile(
                NAMESPACE,
                NAME,
                self.cluster,
                self.cluster,
                self.clock,
                events=self.cluster,
                defaults=self.defaults,
                notices=self.notices,
            )
        except Crash:
            self.ticks.append(
                Tick(t, None, self.cluster.status.get("phase"), self.cluster.calls[start:])
            )
            self._flips(before, t)
            raise
        tick = Tick(t, out, self.cluster.status.get("phase"), self.cluster.calls[start:])
        self.ticks.append(tick)
        self._flips(before, t)
        if self.check_status and out.plan is not None:
            # What was written, read back through the merge patch, is what was decided.
            stored = BlueGreenAppStatus.model_validate(self.cluster.status)
            assert status_dict(stored) == status_dict(out.plan.status)
        if simulate:
            self.cluster.simulate(endpoints=endpoints)
        # Time moves on by the pass's own timer, or by the time until the next thing
        # happens in the cluster (at most IDLE_STEP): a watch event wakes the app then.
        wanted = IDLE_STEP if out.requeue_after is None else min(out.requeue_after, IDLE_STEP)
        step = max(wanted, MIN_STEP)
        self.clock.advance(step)
        return tick

    def _flips(self, before: dict[str, Any] | None, t: float) -> None:
        after = self.cluster.obj("Service", ACTIVE)
        if before is None or after is None:
            return
        old = before["spec"]["selector"][naming.LABEL_COLOR]
        new = after["spec"]["selector"][naming.LABEL_COLOR]
        if old != new:
            self.flips.append((t, old, new))

    def run_until(self, done: Callable[[dict[str, Any]], bool], max_ticks: int = 60) -> None:
        for _ in range(max_ticks):
            self.tick()
            if done(self.cluster.status):
                return
        raise AssertionError(
            f"not done after {max_ticks} ticks; phases: {dedup([t.phase for t in self.ticks])}"
        )

    def phases(self, since: int = 0) -> list[str | None]:
        return dedup([t.phase for t in self.ticks[since:]])

    def calls(self, since: int = 0) -> list[Call]:
        return [c for t in self.ticks[since:] for c in t.calls]

    def actions(self, since: int = 0) -> list[str]:
        """Writes to owned objects and the app's metadata, in order (status patches aside)."""
        return [describe(c) for c in self.calls(since) if c.is_write and c.op != "patch_app_status"]

    def events(self, since: int = 0) -> list[str]:
        return [c.name for c in self.calls(since) if c.op == "emit_event"]


def settled_on(rev: str) -> Callable[[dict[str, Any]], bool]:
    """Healthy on `rev`, with no scale-down left to do."""

    def done(status: dict[str, Any]) -> bool:
        return (
            status.get("phase") == "Healthy"
            and status.get("stableRevision") == rev
            and "scaleDown" not in status
        )

    return done


def healthy_on_v1(**spec: Any) -> Harness:
    h = Harness.new(image=V1, **spec)
    h.run_until(settled_on(R1))
    return h


# ----------------------------------------------------------------------------- a release


def test_first_release_then_v2_goes_through_every_phase_once() -> None:
    h = healthy_on_v1()
    assert h.phases() == ["Pending", "Observing", "Healthy"]
    mark = len(h.ticks)
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))
    assert h.phases(mark) == ["Deploying", "Analyzing", "Observing", "Healthy"]
    assert h.phases() == [
        "Pending",
        "Observing",
        "Healthy",
        "Deploying",
        "Analyzing",
        "Observing",
        "Healthy",
    ]
    status = h.cluster.status
    assert status["activeColor"] == "green"
    assert [(e["revision"], e["result"]) for e in status["history"]] == [
        (R2, "Promoted"),
        (R1, "Promoted"),
    ]


def test_first_release_writes() -> None:
    h = healthy_on_v1()
    assert h.actions() == [
        "apply Deployment/shop-blue v1 x2",
        "apply Service/shop-metrics -> both",
        "apply Service/shop -> blue",
        "apply Service/shop-preview -> blue",
    ]
    assert h.flips == []  # creating the active Service is not a flip


def test_release_writes_exactly_candidate_preview_flip_then_delayed_scale_down() -> None:
    h = healthy_on_v1(strategy={"scaleDownDelaySeconds": 30})
    mark = len(h.ticks)
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))
    assert h.actions(mark) == [
        "apply Deployment/shop-green v2 x2",
        "apply Service/shop-preview -> green",
        "apply Service/shop -> green",
        "scale shop-blue to 0",
    ]
    assert [(a, b) for _, a, b in h.flips] == [("blue", "green")]
    assert h.events(mark) == [
        "ReleaseStarted",
        "CandidateReady",
        "Switched",
        "EndpointsConverged",
        "Promoted",
        "ScaledDown",
    ]
    # The old colour is kept warm for the delay after the release completes.
    flip_at = h.flips[0][0]
    scaled_at = next(t.at for t in h.ticks[mark:] for c in t.calls if c.op == "scale")
    promoted_at = next(t.at for t in h.ticks[mark:] if t.phase == "Healthy")
    assert scaled_at - promoted_at == pytest.approx(30)
    assert scaled_at > flip_at
    # The candidate is never scaled or re-applied after the switch.
    assert h.cluster.obj("Deployment", "shop-green")["spec"]["replicas"] == 2  # type: ignore[index]


def test_preview_replicas_scale_up_happens_before_the_flip() -> None:
    h = healthy_on_v1(replicas=3, strategy={"previewReplicas": 1})
    mark = len(h.ticks)
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))
    assert h.actions(mark) == [
        "apply Deployment/shop-green v2 x1",
        "apply Service/shop-preview -> green",
        "scale shop-green to 3",
        "apply Service/shop -> green",
        "scale shop-blue to 0",
    ]


def test_switch_latency_is_the_time_from_flip_to_converged_endpoints() -> None:
    h = healthy_on_v1()
    h.cluster.set_image(V2)
    h.run_until(_in("Analyzing"))
    # The EndpointSlice controller lags behind the selector change for a few passes.
    h.tick(endpoints=False)
    assert h.cluster.status["phase"] == "Observing"
    (flip_at, _, _) = h.flips[-1]
    for _ in range(3):
        h.tick(endpoints=False)
    assert "endpointsConvergedAt" not in h.cluster.status["release"]
    h.cluster.simulate()
    converged = h.tick()
    release = h.cluster.status["release"]
    assert release["switchLatencySeconds"] == pytest.approx(converged.at - flip_at, abs=1e-3)
    assert release["switchLatencySeconds"] > 3 * IDLE_STEP - 1e-9


def test_candidate_that_never_gets_ready_rolls_back_without_touching_traffic() -> None:
    h = healthy_on_v1(strategy={"progressDeadlineSeconds": 5, "abortScaleDownDelaySeconds": 10})
    mark = len(h.ticks)
    h.cluster.hold_not_ready(R2)
    h.cluster.set_image(V2)

    def done(status: dict[str, Any]) -> bool:
        return status.get("phase") == "Degraded" and "scaleDown" not in status

    h.run_until(done, max_ticks=100)
    assert h.phases(mark) == ["Deploying", "RollingBack", "Degraded"]
    assert h.flips == []
    assert h.actions(mark) == ["apply Deployment/shop-green v2 x2", "scale shop-green to 0"]
    assert h.cluster.status["failedRevisions"] == [R2]
    assert h.cluster.status["activeColor"] == "blue"
    # No flapping: the failed revision is not tried again by itself.
    mark = len(h.ticks)
    for _ in range(5):
        h.tick()
    assert h.actions(mark) == []
    assert h.phases(mark) == ["Degraded"]


def test_replicas_only_change_scales_the_active_colour_and_starts_no_release() -> None:
    h = healthy_on_v1()
    history = h.cluster.status["history"]
    mark = len(h.ticks)
    h.cluster.update_spec(lambda spec: spec.update(replicas=3))
    for _ in range(4):
        h.tick()
    assert h.phases(mark) == ["Healthy"]
    assert h.actions(mark) == ["scale shop-blue to 3"]
    assert h.flips == []
    status = h.cluster.status
    assert (status["history"], status["stableRevision"], status["replicas"]) == (history, R1, 3)
    assert "candidateRevision" not in status
    last = h.ticks[-1].outcome
    assert last is not None and last.requeue_after is None  # settled again: no polling


def test_a_newer_spec_mid_release_supersedes_the_candidate_and_flips_once() -> None:
    h = healthy_on_v1()
    mark = len(h.ticks)
    h.cluster.hold_not_ready(R2)
    h.cluster.set_image(V2)
    h.tick()
    h.tick()
    assert h.cluster.status["phase"] == "Deploying"
    h.cluster.set_image(V3)
    h.run_until(settled_on(R3))
    assert h.phases(mark) == ["Deploying", "Analyzing", "Observing", "Healthy"]
    assert h.actions(mark) == [
        "apply Deployment/shop-green v2 x2",
        "apply Deployment/shop-green v3 x2",
        "apply Service/shop-preview -> green",
        "apply Service/shop -> green",
        "scale shop-blue to 0",
    ]
    assert [(a, b) for _, a, b in h.flips] == [("blue", "green")]
    assert [(e["revision"], e["result"]) for e in h.cluster.status["history"]] == [
        (R3, "Promoted"),
        (R2, "Superseded"),
        (R1, "Promoted"),
    ]
    assert h.cluster.status.get("failedRevisions", []) == []


# ----------------------------------------------------------------------------- status writes


def test_status_is_written_only_when_it_changes() -> None:
    h = healthy_on_v1()
    mark = len(h.ticks)
    for _ in range(5):
        tick = h.tick()
        assert tick.outcome is not None
        assert tick.outcome.status_written is False
        assert tick.outcome.requeue_after is None
    assert [c for c in h.calls(mark) if c.is_write] == []


def test_every_tick_of_a_release_writes_status_at_most_once_and_only_on_change() -> None:
    h = healthy_on_v1()
    h.cluster.set_image(V2)
    mark = len(h.ticks)
    h.run_until(settled_on(R2))
    previous = h.ticks[mark - 1]
    for tick in h.ticks[mark:]:
        assert tick.outcome is not None
        patches = [c for c in tick.calls if c.op == "patch_app_status"]
        assert len(patches) == (1 if tick.outcome.status_written else 0)
        if tick.phase != previous.phase:
            assert tick.outcome.status_written
        previous = tick


def test_stored_status_drops_the_previous_release_timeline() -> None:
    """A new release replaces `release`: the merge patch must null out the old
    timestamps the new release does not have, or the stored status lies."""
    h = healthy_on_v1()
    assert {"switchedAt", "endpointsConvergedAt", "completedAt", "result"} <= set(
        h.cluster.status["release"]
    )
    h.cluster.set_image(V2)
    h.tick()
    release = h.cluster.status["release"]
    assert h.cluster.status["phase"] == "Deploying"
    assert release["revision"] == R2
    assert not {"switchedAt", "endpointsConvergedAt", "completedAt", "result"} & set(release)
    assert "candidateRevision" in h.cluster.status


@pytest.mark.parametrize(
    ("before", "after", "patch"),
    [
        pytest.param(
            {"phase": "Observing", "release": {"revision": "r", "switchedAt": "t"}},
            {"phase": "Healthy", "release": {"revision": "r"}},
            {"phase": "Healthy", "release": {"switchedAt": None}},
            id="nested-key-removed",
        ),
        pytest.param(
            {"a": {"b": {"c": 1, "d": 2}}, "e": 1},
            {"a": {"b": {"c": 1}}},
            {"a": {"b": {"d": None}}, "e": None},
            id="deeply-nested-and-top-level-removed",
        ),
        pytest.param(
            {"scaleDown": {"color": "blue", "at": "t"}},
            {},
            {"scaleDown": None},
            id="whole-object-removed",
        ),
        pytest.param(
            {"history": [{"r": 1}], "x": 1},
            {"history": [{"r": 2}, {"r": 1}], "x": 1},
            {"history": [{"r": 2}, {"r": 1}]},
            id="lists-replaced-whole",
        ),
        pytest.param(
            {"release": "old"},
            {"release": {"revision": "r"}},
            {"release": {"revision": "r"}},
            id="scalar-becomes-object",
        ),
        pytest.param({"a": {"b": 1}}, {"a": {"b": 1}}, {}, id="nothing-changed"),
    ],
)
def test_merge_patch(before: dict[str, Any], after: dict[str, Any], patch: dict[str, Any]) -> None:
    got = reconcile.merge_patch(before, after)
    assert got == patch
    assert apply_merge_patch(before, got) == after


# ----------------------------------------------------------------------------- bad input


def _invalid_body() -> dict[str, Any]:
    body = app_body(image=V1)
    body["spec"]["replicas"] = -1
    return body


def test_invalid_spec_is_a_degraded_condition_written_once() -> None:
    cluster = FakeCluster()
    cluster.create_app(_invalid_body())
    h = Harness(cluster)
    for _ in range(4):
        tick = h.tick()
        assert tick.outcome is not None
        assert tick.outcome.requeue_after is None
    patches = [c for c in h.calls() if c.op == "patch_app_status"]
    assert len(patches) == 1
    assert [c for c in h.calls() if c.is_write and c.op != "patch_app_status"] == []
    (degraded,) = [c for c in cluster.status["conditions"] if c["type"] == "Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert "replicas" in degraded["message"]
    assert [t.outcome.status_written for t in h.ticks if t.outcome] == [True, False, False, False]


def test_fixing_an_invalid_spec_clears_the_condition_and_the_message() -> None:
    h = healthy_on_v1()
    h.cluster.update_spec(lambda spec: spec.update(replicas=-1))
    h.tick()
    assert h.cluster.status["message"].startswith("invalid spec")
    h.cluster.update_spec(lambda spec: spec.update(replicas=2))
    h.tick()
    status = h.cluster.status
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    assert degraded["status"] == "False"
    assert status.get("message", "") == "", "status.message still reports the old invalid spec"


def _reject_deployments(manifest: dict[str, Any]) -> str | None:
    if manifest["kind"] == "Deployment":
        return 'spec.template.spec.containers[0].image: Invalid value: "shop:v1"'
    return None


def test_rejected_apply_is_a_degraded_object_rejected_condition() -> None:
    cluster = FakeCluster()
    cluster.create_app(app_body(image=V1))
    cluster.reject = _reject_deployments
    h = Harness(cluster, check_status=False)
    tick = h.tick()
    assert tick.outcome is not None
    assert tick.outcome.requeue_after is None
    status = cluster.status
    (degraded,) = [c for c in status["conditions"] if c["type"] == "Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ObjectRejected")
    assert "Deployment shop-blue was rejected" in degraded["message"]
    assert 'containers[0].image: Invalid value: "shop:v1"' in degraded["message"]
    assert status["message"] == degraded["message"]
    # Nothing after the rejected apply ran.
    assert [describe(c) for c in h.calls() if c.is_write] == [
        "apply Deployment/shop-blue v1 x2",
        "patch status",
    ]
    # Once the API server accepts the object again, the release goes on to Healthy.
    cluster.reject = None
    h.check_status = True
    h.run_until(settled_on(R1))
    degraded = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]
    assert degraded["status"] == "False"


def test_repeated_rejection_keeps_the_condition_and_does_not_rewrite_status() -> None:
    """The same rejection on every tick is not a new transition: lastTransitionTime stays,
    and a tick that learns nothing new writes no status."""
    cluster = FakeCluster()
    cluster.create_app(app_body(image=V1))
    cluster.reject = _reject_deployments
    h = Harness(cluster, check_status=False)
    h.tick()
    first = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]
    for _ in range(3):
        h.tick()
    again = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]
    assert (again["status"], again["reason"]) == ("True", "ObjectRejected")
    assert again["lastTransitionTime"] == first["lastTransitionTime"]
    assert [t.outcome.status_written for t in h.ticks[1:] if t.outcome] == [False, False, False]


# ----------------------------------------------------------------------------- restarts


def _in(phase: str, **release: bool) -> Callable[[dict[str, Any]], bool]:
    """The stored status is in `phase` (and the release has / lacks the named fields)."""

    def point(status: dict[str, Any]) -> bool:
        if status.get("phase") != phase or status.get("release", {}).get("revision") != R2:
            return False
        return all((key in status["release"]) is want for key, want in release.items())

    return point


RESTART_POINTS = {
    "Deploying": _in("Deploying"),
    "Analyzing": _in("Analyzing"),
    # Without post-promotion analysis the pass that sees the endpoints converged also
    # completes the release: Observing is stored only before they converged.
    "Observing-before-endpoints-converged": _in("Observing", endpointsConvergedAt=False),
    "Healthy-with-scale-down-pending": lambda s: (
        s.get("phase") == "Healthy" and s.get("stableRevision") == R2 and "scaleDown" in s
    ),
}


def _finish_release_after_restart(h: Harness) -> Harness:
    """A new operator process: a brand-new gateway over the same stored objects. The
    clock keeps going: time does not stop while the operator is down."""
    restarted = Harness(FakeCluster(state=h.cluster.state()), clock=h.clock)
    restarted.run_until(settled_on(R2))
    return restarted


@pytest.mark.parametrize("point", list(RESTART_POINTS), ids=list(RESTART_POINTS))
def test_restart_mid_release_finishes_with_exactly_one_flip(point: str) -> None:
    h = healthy_on_v1()
    mark = len(h.ticks)
    h.cluster.set_image(V2)
    h.run_until(RESTART_POINTS[point])
    restarted = _finish_release_after_restart(h)
    flips = h.flips + restarted.flips
    assert [(a, b) for _, a, b in flips] == [("blue", "green")]
    assert h.actions(mark) + restarted.actions() == [
        "apply Deployment/shop-green v2 x2",
        "apply Service/shop-preview -> green",
        "apply Service/shop -> green",
        "scale shop-blue to 0",
    ]
    status = restarted.cluster.status
    assert status["activeColor"] == "green"
    assert [(e["revision"], e["result"]) for e in status["history"]][:2] == [
        (R2, "Promoted"),
        (R1, "Promoted"),
    ]


def test_restart_points_cover_every_phase_of_a_release() -> None:
    h = healthy_on_v1()
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))
    hit = {name for name, point in RESTART_POINTS.items() for t in h.ticks if _stored(t, point)}
    assert hit == set(RESTART_POINTS)


def _stored(tick: Tick, point: Callable[[dict[str, Any]], bool]) -> bool:
    plan = tick.outcome.plan if tick.outcome is not None else None
    return plan is not None and point(status_dict(plan.status))


def test_a_crash_right_after_any_write_still_flips_exactly_once() -> None:
    """The operator dies right after the n-th write of the release reached the API server
    (an action done, its status not yet written, say). A new process finishes the release
    with each action done once and one flip, whatever n is."""
    reference = healthy_on_v1()
    reference.cluster.set_image(V2)
    start = reference.cluster.writes_done
    reference.run_until(settled_on(R2))
    total = reference.cluster.writes_done - start
    assert total >= 8  # 4 actions and a status write on every phase change

    problems = []
    for n in range(1, total + 1):
        h = healthy_on_v1()
        mark = len(h.ticks)
        h.cluster.set_image(V2)
        h.cluster.crash_after_write = h.cluster.writes_done + n
        h.check_status = False
        try:
            h.run_until(settled_on(R2))
            problems.append(f"write #{n}: the operator never crashed")
            continue
        except Crash:
            h.cluster.simulate()  # the cluster's controllers keep running
        restarted = _finish_release_after_restart(h)
        flips = [(a, b) for _, a, b in h.flips + restarted.flips]
        actions = h.actions(mark) + restarted.actions()
        if flips != [("blue", "green")]:
            problems.append(f"write #{n}: flips {flips}")
        if actions != [
            "apply Deployment/shop-green v2 x2",
            "apply Service/shop-preview -> green",
            "apply Service/shop -> green",
            "scale shop-blue to 0",
        ]:
            problems.append(f"write #{n}: actions {actions}")
    assert problems == []


def test_abort_after_the_switch_flips_back_once_and_ends_degraded() -> None:
    h = healthy_on_v1()
    mark = len(h.ticks)
    h.cluster.set_image(V2)
    h.run_until(_in("Observing", endpointsConvergedAt=False))
    h.cluster.annotate(naming.ANNOTATION_REQUEST, "abort")

    def done(status: dict[str, Any]) -> bool:
        return status.get("phase") == "Degraded" and "scaleDown" not in status

    h.run_until(done)
    assert [(a, b) for _, a, b in h.flips] == [("blue", "green"), ("green", "blue")]
    assert h.phases(mark) == ["Deploying", "Analyzing", "Observing", "RollingBack", "Degraded"]
    assert h.actions(mark) == [
        "apply Deployment/shop-green v2 x2",
        "apply Service/shop-preview -> green",
        "apply Service/shop -> green",
        f"remove annotation {naming.ANNOTATION_REQUEST}",
        "apply Service/shop -> blue",
        "apply Service/shop-preview -> blue",
        "scale shop-green to 0",
    ]
    assert naming.ANNOTATION_REQUEST not in h.cluster.body["metadata"]["annotations"]  # type: ignore[index]
    assert h.cluster.status["failedRevisions"] == [R2]
