"""Notifications through whole releases: `reconcile.reconcile` tick by tick against the
in-memory cluster (tests/unit/test_reconcile_ticks.py), with a recording notice sink.

Each release event is sent once, when the pass that made it wrote its status; a restarted
operator, which starts from that status, never sends it again.
"""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.api import NotificationEvent, Subscription
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import configs, naming
from bluegreen.core.notify import Notice
from bluegreen.release.notices import Routing
from bluegreen.runtime import reconcile
from tests.unit.factories import R1, R2, R3, UID, V1, V2, V3
from tests.unit.fake_cluster import Crash, FakeCluster
from tests.unit.test_reconcile_ticks import Harness, settled_on

E = NotificationEvent
ROUTING = Routing(
    endpoints=frozenset({"team", "audit"}),
    defaults=(Subscription(endpoint="audit", events=[E.ROLLED_BACK, E.ABORTED, E.DEGRADED]),),
)


class Recorder:
    """The NoticeSink port, recording what a pass queued."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Notice]] = []

    def send(self, endpoint: str, notice: Notice) -> None:
        self.sent.append((endpoint, notice))

    def events(self, endpoint: str = "team") -> list[str]:
        return [n.event.value for e, n in self.sent if e == endpoint]

    def last(self, event: NotificationEvent) -> Notice:
        return [n for _, n in self.sent if n.event is event][-1]


def harness(recorder: Recorder, **spec: Any) -> Harness:
    h = Harness.new(image=V1, **spec)
    h.defaults = reconcile.AppDefaults(notifications=ROUTING)
    h.notices = recorder
    h.cluster.update_spec(lambda s: s.update(notifications=[{"endpoint": "team"}]))
    return h


def degraded(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Degraded" and "scaleDown" not in status


def test_a_first_deploy_and_a_release_each_start_and_promote_once() -> None:
    rec = Recorder()
    h = harness(rec)
    h.run_until(settled_on(R1))
    h.cluster.set_image(V2)
    h.run_until(settled_on(R2))
    for _ in range(5):
        h.tick()  # at rest: nothing more
    assert rec.events() == ["Started", "Promoted", "Started", "Promoted"]
    assert rec.events("audit") == []  # the operator-wide subscription wants failures only
    promoted = rec.last(E.PROMOTED)
    release = h.cluster.status["release"]
    assert (promoted.revision, promoted.uid) == (R2, UID)
    assert (promoted.from_color, promoted.to_color, promoted.active_color) == (
        "blue",
        "green",
        "green",
    )
    assert promoted.duration_seconds == release["durationSeconds"] > 0
    assert promoted.switch_latency_seconds == release["switchLatencySeconds"]
    assert promoted.at == release["completedAt"]
    ready = next(c for c in h.cluster.status["conditions"] if c["type"] == "NotificationsReady")
    assert (ready["status"], ready["reason"]) == ("True", Reason.ENDPOINTS_CONFIGURED)


def test_a_manual_gate_pauses_once_then_promotes() -> None:
    rec = Recorder()
    h = harness(rec, strategy={"autoPromotion": False})
    h.run_until(settled_on(R1))
    h.cluster.set_image(V2)
    h.run_until(lambda s: s.get("phase") == "Paused")
    for _ in range(3):
        h.tick()
    h.cluster.annotate(naming.ANNOTATION_REQUEST, "promote")
    h.run_until(settled_on(R2))
    assert rec.events() == ["Started", "Promoted", "Started", "Paused", "Promoted"]
    paused = rec.last(E.PAUSED)
    assert paused.reason == Reason.MANUAL_PROMOTION
    assert "kubectl bluegreen promote" in paused.message


def test_an_abort_after_the_switch_notifies_aborted_not_degraded() -> None:
    rec = Recorder()
    h = harness(rec)
    h.run_until(settled_on(R1))
    h.cluster.set_image(V2)
    h.run_until(lambda s: s.get("phase") == "Observing")
    h.cluster.annotate(naming.ANNOTATION_REQUEST, "abort")
    h.run_until(degraded)
    assert rec.events() == ["Started", "Promoted", "Started", "Aborted"]
    assert rec.events("audit") == ["Aborted"]
    aborted = rec.last(E.ABORTED)
    assert aborted.reason == Reason.ABORTED and aborted.active_color == "blue"
    assert aborted.rollback_seconds is not None


def test_a_rollback_then_a_refused_revision_then_recovery() -> None:
    rec = Recorder()
    h = harness(rec, strategy={"progressDeadlineSeconds": 5, "abortScaleDownDelaySeconds": 10})
    h.run_until(settled_on(R1))
    h.cluster.hold_not_ready(R2)
    h.cluster.set_image(V2)
    h.run_until(degraded, max_ticks=100)
    assert rec.events() == ["Started", "Promoted", "Started", "RolledBack"]
    rolled = rec.last(E.ROLLED_BACK)
    assert rolled.reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "replicas of revision" in rolled.message

    h.cluster.set_image(V1)  # back on the stable revision: Healthy, nothing to tell
    h.run_until(lambda s: s.get("phase") == "Healthy")
    h.cluster.set_image(V3)  # a fixed revision: released
    h.run_until(settled_on(R3))
    h.cluster.set_image(V2)  # the revision that failed: refused, not released
    h.run_until(lambda s: s.get("phase") == "Degraded")
    for _ in range(3):
        h.tick()
    assert rec.events() == [
        *("Started", "Promoted", "Started", "RolledBack"),
        *("Started", "Promoted", "Degraded"),
    ]
    assert rec.events("audit") == ["RolledBack", "Degraded"]
    refused = rec.last(E.DEGRADED)
    assert (refused.revision, refused.reason) == (R2, Reason.REVISION_FAILED_BEFORE)
    assert f"revision {R2} failed before" in refused.message
    cond = next(c for c in h.cluster.status["conditions"] if c["type"] == ConditionType.DEGRADED)
    assert cond["reason"] == Reason.REVISION_FAILED_BEFORE  # not the last release's "Promoted"


def test_a_degraded_notice_without_a_release_names_the_revision_with_its_config() -> None:
    """Config tracking: the revision includes the ConfigMaps' digests; a Degraded notice
    sent with no release in flight reports that revision, the one status and the
    Deployments carry."""
    rec = Recorder()
    h = harness(rec)
    h.cluster.put_config(configs.CONFIG_MAP, "settings", {"LEVEL": "info"})

    def track(spec: dict[str, Any]) -> None:
        spec["configTracking"] = {"enabled": True}
        container = spec["template"]["spec"]["containers"][0]
        container["envFrom"] = [{"configMapRef": {"name": "settings"}}]

    h.cluster.update_spec(track)
    h.run_until(lambda s: s.get("phase") == "Healthy" and "scaleDown" not in s)
    rev = h.cluster.status["stableRevision"]

    def reject_services(manifest: dict[str, Any]) -> str | None:
        return "spec.ports[0].port: Invalid value" if manifest["kind"] == "Service" else None

    h.cluster.reject = reject_services
    h.check_status = False
    h.cluster.update_spec(lambda s: s["service"].update(port=8081))
    h.tick()
    refused = rec.last(E.DEGRADED)
    assert refused.reason == Reason.OBJECT_REJECTED
    assert refused.revision == rev


def test_an_endpoint_the_administrator_did_not_configure_gets_nothing_and_says_so() -> None:
    rec = Recorder()
    h = harness(rec)
    h.cluster.update_spec(lambda s: s.update(notifications=[{"endpoint": "tema"}]))
    h.run_until(settled_on(R1))
    assert rec.events("tema") == [] and rec.events() == []
    ready = next(c for c in h.cluster.status["conditions"] if c["type"] == "NotificationsReady")
    assert (ready["status"], ready["reason"]) == ("False", Reason.ENDPOINT_UNKNOWN)
    assert "tema is not configured" in ready["message"]


def test_no_notifier_no_notifications_and_no_condition() -> None:
    h = Harness.new(image=V1)
    h.run_until(settled_on(R1))
    assert all(c["type"] != "NotificationsReady" for c in h.cluster.status["conditions"])


def test_a_crash_after_any_write_never_sends_an_event_twice() -> None:
    """The operator dies right after the n-th write of a release; a new process finishes
    it. Whatever n, no notice is sent twice, and a notice is missing only when the
    operator died between the status write that made it and handing it over."""
    reference = Recorder()
    ref = harness(reference)
    ref.run_until(settled_on(R1))
    ref.cluster.set_image(V2)
    start = ref.cluster.writes_done
    ref.run_until(settled_on(R2))
    total = ref.cluster.writes_done - start
    assert reference.events()[2:] == ["Started", "Promoted"]

    lost = []
    for n in range(1, total + 1):
        rec = Recorder()
        h = harness(rec)
        h.run_until(settled_on(R1))
        h.cluster.set_image(V2)
        h.cluster.crash_after_write = h.cluster.writes_done + n
        h.check_status = False
        with pytest.raises(Crash):
            h.run_until(settled_on(R2))
        died_writing_status = h.cluster.calls[-1].op == "patch_app_status"
        h.cluster.simulate()
        again = Harness(FakeCluster(state=h.cluster.state()), clock=h.clock)
        again.defaults, again.notices = h.defaults, rec
        again.run_until(settled_on(R2))
        keys = [notice.key for _, notice in rec.sent]
        assert len(keys) == len(set(keys)), f"write #{n}: sent twice: {rec.events()}"
        events = rec.events()[2:]
        if events != ["Started", "Promoted"]:
            assert died_writing_status, f"write #{n}: {events}"
            lost.append((n, events))
    # Only a crash right after the status write of Started or Promoted loses that notice.
    assert [events for _, events in lost] == [["Promoted"], ["Started"]]
