"""Notifications, the pure part: which transitions notify, where they go, what they say,
and the retry schedule of a delivery. Table-driven; no network."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from bluegreen.api import (
    AnalysisRun,
    BlueGreenAppStatus,
    Condition,
    Measurement,
    MeasurementVerdict,
    NotificationEvent,
    Phase,
    ReleaseResult,
    Subscription,
    Verdict,
)
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core.notify import (
    MAX_MEASUREMENTS,
    Notice,
    RetryPolicy,
    retryable,
    slack_payload,
    summarize,
    text,
    webhook_payload,
)
from bluegreen.release import notices as n
from tests.unit.factories import (
    BLUE,
    GREEN,
    NAMESPACE,
    R2,
    UID,
    V1,
    V2,
    at,
    healthy,
    in_release,
    make_app,
    release,
    stamp,
    status,
)

E = NotificationEvent


def cond(
    type_: ConditionType, true: bool, reason: str, t: float = 0, message: str = ""
) -> Condition:
    return Condition(
        type=type_.value,
        status="True" if true else "False",
        reason=reason,
        message=message,
        last_transition_time=stamp(t),
    )


def measurements(
    metric: str, *values: tuple[float | None, MeasurementVerdict]
) -> list[Measurement]:
    return [
        Measurement(metric=metric, phase="post", at=stamp(i), value=v, verdict=verdict)
        for i, (v, verdict) in enumerate(values)
    ]


F, S, NO = MeasurementVerdict.FAILED, MeasurementVerdict.SUCCESSFUL, MeasurementVerdict.INCONCLUSIVE
RUN = AnalysisRun(
    phase="post",
    revision=R2,
    window_start=stamp(20),
    verdict=Verdict.FAILURE,
    message="error-rate Failed: 0.5 > max 0.05",
    measurements=[
        *measurements("error-rate", (0.0, S), (0.5, F), (0.6, F)),
        *measurements("latency", (0.1, S), (None, NO)),
    ],
)

# ----------------------------------------------------------------------------- transitions

DEPLOYING = in_release(Phase.DEPLOYING, started=10)
ANALYZING = in_release(Phase.ANALYZING, started=10, candidate_ready=15)
OBSERVING = in_release(Phase.OBSERVING, started=10, candidate_ready=15, switched=16, latency=0.2)
ROLLING_BACK = in_release(
    Phase.ROLLING_BACK,
    started=10,
    switched=16,
    latency=0.2,
    rollback_started=30,
    rollback_result=ReleaseResult.ROLLED_BACK,
    reason=Reason.POST_PROMOTION_ANALYSIS_FAILED,
    message="error-rate Failed: 0.5 > max 0.05",
)


def ended(
    st: BlueGreenAppStatus, result: ReleaseResult, phase: Phase, **kw: object
) -> BlueGreenAppStatus:
    assert st.release is not None
    rel = st.release.model_copy(
        update={"result": result, "completed_at": stamp(40), "duration_seconds": 30.0, **kw}
    )
    degraded = phase is Phase.DEGRADED
    conditions = [
        cond(ConditionType.DEGRADED, degraded, rel.reason if degraded else "AsExpected", 40)
    ]
    return st.model_copy(
        update={"phase": phase, "release": rel, "conditions": conditions, "analysis": RUN}
    )


PAUSED_MANUAL = ANALYZING.model_copy(
    update={
        "phase": Phase.PAUSED,
        "message": "waiting for promote",
        "conditions": [cond(ConditionType.PAUSED, True, Reason.MANUAL_PROMOTION, 18)],
    }
)
FAILED_FIRST = status(
    Phase.DEGRADED,
    release=release(
        V1,
        BLUE,
        started=0,
        completed=600,
        result=ReleaseResult.FAILED,
        reason=Reason.PROGRESS_DEADLINE_EXCEEDED,
        message="0/2 replicas ready",
    ),
    conditions=[cond(ConditionType.DEGRADED, True, Reason.PROGRESS_DEADLINE_EXCEEDED, 600)],
)
REFUSED = healthy(V1).model_copy(
    update={
        "phase": Phase.DEGRADED,
        "message": "revision x failed before",
        "conditions": [cond(ConditionType.DEGRADED, True, Reason.REVISION_FAILED_BEFORE, 50)],
    }
)
REJECTED = DEPLOYING.model_copy(
    update={"conditions": [cond(ConditionType.DEGRADED, True, Reason.OBJECT_REJECTED, 12, "no")]}
)


@dataclass(frozen=True)
class Transition:
    name: str
    before: BlueGreenAppStatus
    after: BlueGreenAppStatus
    events: list[NotificationEvent]


TRANSITIONS = [
    Transition("first deploy starts", BlueGreenAppStatus(), status(Phase.PENDING, release=release(V1, BLUE)), [E.STARTED]),
    Transition("a release starts", healthy(V1), DEPLOYING, [E.STARTED]),
    Transition("deploying goes on", DEPLOYING, ANALYZING, []),
    Transition("a manual gate pauses", ANALYZING, PAUSED_MANUAL, [E.PAUSED]),
    Transition("paused stays paused", PAUSED_MANUAL, PAUSED_MANUAL, []),
    Transition("the switch", ANALYZING, OBSERVING, []),
    Transition("promoted", OBSERVING, ended(OBSERVING, ReleaseResult.PROMOTED, Phase.HEALTHY), [E.PROMOTED]),
    Transition("promoted, seen again", ended(OBSERVING, ReleaseResult.PROMOTED, Phase.HEALTHY), ended(OBSERVING, ReleaseResult.PROMOTED, Phase.HEALTHY), []),
    Transition("rollback starts", OBSERVING, ROLLING_BACK, []),
    Transition("rolled back (not also Degraded)", ROLLING_BACK, ended(ROLLING_BACK, ReleaseResult.ROLLED_BACK, Phase.DEGRADED), [E.ROLLED_BACK]),
    Transition("aborted", ROLLING_BACK, ended(ROLLING_BACK, ReleaseResult.ABORTED, Phase.DEGRADED, reason=Reason.ABORTED), [E.ABORTED]),
    Transition("superseded, then the next release starts", DEPLOYING, in_release(Phase.DEPLOYING, V1, started=20), [E.STARTED]),
    Transition("first deploy failed", status(Phase.PENDING, release=release(V1, BLUE)), FAILED_FIRST, [E.DEGRADED]),
    Transition("started and failed in one pass: only Degraded", healthy(V1), FAILED_FIRST, [E.DEGRADED]),
    Transition("a failed revision is refused", healthy(V1), REFUSED, [E.DEGRADED]),
    Transition("refused, seen again", REFUSED, REFUSED, []),
    Transition("an object is refused mid-release", DEPLOYING, REJECTED, [E.DEGRADED]),
    Transition("started and refused in one pass", healthy(V1), REJECTED, [E.STARTED, E.DEGRADED]),
    Transition("degraded, a retry starts", ended(ROLLING_BACK, ReleaseResult.ROLLED_BACK, Phase.DEGRADED), in_release(Phase.DEPLOYING, started=60), [E.STARTED]),
]  # fmt: skip


@pytest.mark.parametrize("case", TRANSITIONS, ids=lambda c: c.name)
def test_which_transitions_notify(case: Transition) -> None:
    app = make_app(image=V2, status=case.before)
    found = n.notices(app, case.before, case.after, at(45), target=R2)
    assert [x.event for x in found] == case.events


def test_a_rollback_notice_carries_the_release_and_its_analysis() -> None:
    after = ended(ROLLING_BACK, ReleaseResult.ROLLED_BACK, Phase.DEGRADED, rollback_seconds=0.4)
    after = after.model_copy(update={"active_color": BLUE})
    (notice,) = n.notices(
        make_app(image=V2, status=ROLLING_BACK), ROLLING_BACK, after, at(45), target=R2
    )
    assert (notice.namespace, notice.name, notice.uid) == (NAMESPACE, "shop", UID)
    assert (notice.revision, notice.image) == (R2, V2)
    assert (notice.from_color, notice.to_color, notice.active_color) == (BLUE, GREEN, BLUE)
    assert (notice.duration_seconds, notice.switch_latency_seconds) == (30.0, 0.2)
    assert notice.rollback_seconds == 0.4
    assert notice.reason == Reason.POST_PROMOTION_ANALYSIS_FAILED
    assert notice.analysis == RUN
    assert notice.at == stamp(40)
    assert notice.key == f"{UID}/{R2}/RolledBack/{stamp(40)}"


def test_a_pause_says_why_and_how_long_the_release_has_run() -> None:
    (notice,) = n.notices(make_app(image=V2), ANALYZING, PAUSED_MANUAL, at(45), target=R2)
    assert notice.reason == Reason.MANUAL_PROMOTION
    assert notice.message == "waiting for promote"
    assert notice.duration_seconds == 35.0  # started at 10, now 45
    assert notice.at == stamp(18)  # when the Paused condition turned True


def test_a_refused_revision_names_the_revision_the_spec_asks_for() -> None:
    (notice,) = n.notices(make_app(image=V2), healthy(V1), REFUSED, at(50), target=R2)
    assert (notice.revision, notice.image) == (R2, V2)
    assert notice.reason == Reason.REVISION_FAILED_BEFORE
    assert notice.to_color is None


# ----------------------------------------------------------------------------- routing


def sub(endpoint: str, *events: NotificationEvent) -> Subscription:
    return Subscription(endpoint=endpoint, events=list(events) or None)


def notice(event: NotificationEvent) -> Notice:
    return Notice(
        event=event, namespace=NAMESPACE, name="shop", uid=UID, at=stamp(0), phase=Phase.HEALTHY
    )


ROUTES = [
    ("app's own, every event", [sub("slack")], [], {"slack"}, E.STARTED, ["slack"]),
    ("app's own, other events", [sub("slack", E.ROLLED_BACK)], [], {"slack"}, E.STARTED, []),
    ("operator-wide default", [], [sub("audit", E.PROMOTED)], {"audit"}, E.PROMOTED, ["audit"]),
    ("both, one endpoint once", [sub("audit")], [sub("audit")], {"audit"}, E.ABORTED, ["audit"]),
    ("app's first, then defaults", [sub("slack")], [sub("audit")], {"slack", "audit"}, E.DEGRADED, ["slack", "audit"]),
    ("unknown endpoint: nothing", [sub("slak")], [], {"slack"}, E.STARTED, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("own", "defaults", "configured", "event", "expected"),
    [r[1:] for r in ROUTES],
    ids=[r[0] for r in ROUTES],
)
def test_where_a_notice_goes(
    own: list[Subscription],
    defaults: list[Subscription],
    configured: set[str],
    event: NotificationEvent,
    expected: list[str],
) -> None:
    app = make_app().model_copy(deep=True)
    app = app.model_copy(update={"spec": app.spec.model_copy(update={"notifications": own})})
    routing = n.Routing(endpoints=frozenset(configured), defaults=tuple(defaults))
    got = n.deliveries(app, [notice(event)], routing)
    assert [endpoint for endpoint, _ in got] == expected


def test_an_unknown_endpoint_is_a_condition_that_names_it() -> None:
    app = make_app()
    app = app.model_copy(
        update={"spec": app.spec.model_copy(update={"notifications": [sub("slak"), sub("ops")]})}
    )
    routing = n.Routing(endpoints=frozenset({"slack", "ops"}))
    st = n.with_readiness(app, app.status, routing, at(3))
    (ready,) = [c for c in st.conditions if c.type == ConditionType.NOTIFICATIONS_READY]
    assert (ready.status, ready.reason) == ("False", Reason.ENDPOINT_UNKNOWN)
    assert "slak is not configured" in ready.message and "configured: ops, slack" in ready.message
    fixed = n.Routing(endpoints=frozenset({"slak", "ops"}))
    st = n.with_readiness(app, app.status, fixed, at(3))
    (ready,) = [c for c in st.conditions if c.type == ConditionType.NOTIFICATIONS_READY]
    assert (ready.status, ready.reason) == ("True", Reason.ENDPOINTS_CONFIGURED)


def test_no_subscriptions_no_condition() -> None:
    app = make_app()
    assert n.with_readiness(app, app.status, n.Routing(), at(0)) == app.status


def test_subscriptions_are_validated_like_the_crd() -> None:
    with pytest.raises(ValidationError, match="must not name an event twice"):
        Subscription(endpoint="a", events=[E.STARTED, E.STARTED])
    body = make_app().model_dump(mode="json", by_alias=True)
    body["spec"]["notifications"] = [{"endpoint": "a"}, {"endpoint": "a"}]
    with pytest.raises(ValidationError, match="must not name an endpoint twice"):
        type(make_app()).model_validate(body)


# ----------------------------------------------------------------------------- messages

FULL = Notice(
    event=E.ROLLED_BACK,
    namespace="shop",
    name="web",
    uid=UID,
    at="2030-01-01T12:00:40.000000Z",
    phase=Phase.DEGRADED,
    reason="PostPromotionAnalysisFailed",
    message="error-rate Failed: 0.5 > max 0.05",
    revision="5d8c0e1a2b",
    image="shop:v2",
    from_color=BLUE,
    to_color=GREEN,
    active_color=BLUE,
    started_at="2030-01-01T12:00:10.000000Z",
    duration_seconds=30.0,
    switch_latency_seconds=0.2,
    rollback_seconds=0.4,
    analysis=RUN,
)
STARTED = Notice(
    event=E.STARTED,
    namespace="shop",
    name="web",
    uid=UID,
    at="2030-01-01T12:00:10.000000Z",
    phase=Phase.PENDING,
    revision="5d8c0e1a2b",
    to_color=BLUE,
)

TEXTS = [
    (FULL, [
        "Release rolled back: shop/web, revision 5d8c0e1a2b, blue -> green, after 30.0s, switch latency 0.200s",
        "PostPromotionAnalysisFailed: error-rate Failed: 0.5 > max 0.05",
        "analysis (post-promotion, Failed)",
        "  error-rate: 2 of 3 failed, last 0.6 (Failed)",
        "  latency: 0 of 2 failed, last no value (Inconclusive)",
    ]),
    (STARTED, ["Release started: shop/web, revision 5d8c0e1a2b, first deploy to blue"]),
    (FULL.__class__(event=E.DEGRADED, namespace="a", name="b", uid="u", at=STARTED.at, phase=Phase.DEGRADED, reason="ObjectRejected", message="bad"), [
        "App degraded: a/b",
        "ObjectRejected: bad",
    ]),
    (FULL.__class__(event=E.PROMOTED, namespace="a", name="b", uid="u", at=STARTED.at, phase=Phase.HEALTHY, revision="r", from_color=GREEN, to_color=BLUE, duration_seconds=12.25, switch_latency_seconds=0.0456), [
        "Release promoted: a/b, revision r, green -> blue, after 12.2s, switch latency 0.046s",
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("notice", "lines"), TEXTS, ids=lambda x: getattr(x, "event", ""))
def test_text(notice: Notice, lines: list[str]) -> None:
    assert text(notice).splitlines() == lines


def test_slack_message() -> None:
    body = slack_payload(FULL)
    assert body["text"] == "*Release rolled back*: shop/web revision 5d8c0e1a2b"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["fallback"] == text(FULL)
    assert attachment["ts"] == 1893499240
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {
        "App": "shop/web",
        "Revision": "5d8c0e1a2b",
        "Image": "shop:v2",
        "Colours": "blue -> green",
        "Serving": "blue",
        "Duration": "30.0s",
        "Switch latency": "0.200s",
        "Rollback": "0.400s",
        "Reason": "PostPromotionAnalysisFailed",
        "Message": "error-rate Failed: 0.5 > max 0.05",
        "Analysis": "\n".join(text(FULL).splitlines()[2:]),
    }
    assert {f["title"] for f in slack_payload(STARTED)["attachments"][0]["fields"]} == {
        "App",
        "Revision",
        "Colours",
    }
    assert slack_payload(STARTED)["attachments"][0]["color"] == "good"


def test_webhook_document() -> None:
    body = webhook_payload(FULL)
    assert body["apiVersion"] == "bluegreen.dev/v1alpha1" and body["kind"] == "Notification"
    assert body["id"] == FULL.key
    assert (body["event"], body["severity"], body["phase"]) == ("RolledBack", "error", "Degraded")
    assert body["app"] == {"namespace": "shop", "name": "web", "uid": UID}
    assert body["activeColor"] == "blue"
    assert body["release"] == {
        "revision": "5d8c0e1a2b",
        "image": "shop:v2",
        "fromColor": "blue",
        "toColor": "green",
        "startedAt": "2030-01-01T12:00:10.000000Z",
        "durationSeconds": 30.0,
        "switchLatencySeconds": 0.2,
        "rollbackSeconds": 0.4,
        "reason": "PostPromotionAnalysisFailed",
        "message": "error-rate Failed: 0.5 > max 0.05",
    }
    analysis = body["analysis"]
    assert (analysis["phase"], analysis["verdict"]) == ("post", "Failed")
    assert analysis["metrics"][0] == {
        "metric": "error-rate",
        "measurements": 3,
        "failed": 2,
        "lastValue": 0.6,
        "lastVerdict": "Failed",
    }
    assert len(analysis["measurements"]) == 5
    assert analysis["measurements"][1] == {
        "metric": "error-rate",
        "phase": "post",
        "at": stamp(1),
        "value": 0.5,
        "verdict": "Failed",
        "message": "",
    }
    assert webhook_payload(STARTED)["analysis"] is None


def test_a_long_window_is_summarized_in_full_and_listed_in_part() -> None:
    many = RUN.model_copy(
        update={"measurements": measurements("m", *[(1.0, F)] * (MAX_MEASUREMENTS + 20))}
    )
    body = webhook_payload(Notice(**{**FULL.__dict__, "analysis": many}))
    assert len(body["analysis"]["measurements"]) == MAX_MEASUREMENTS
    assert body["analysis"]["metrics"][0]["measurements"] == MAX_MEASUREMENTS + 20
    assert summarize(None) == ()


# ----------------------------------------------------------------------------- retries

SCHEDULES = [
    (RetryPolicy(attempts=1), ()),
    (RetryPolicy(attempts=4), (1.0, 2.0, 4.0)),
    (RetryPolicy(attempts=5, first_delay=0.5, factor=3), (0.5, 1.5, 4.5, 13.5)),
    (RetryPolicy(attempts=10, first_delay=10), (10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0)),
    (RetryPolicy(attempts=3, first_delay=0), (0.0, 0.0)),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "delays"), SCHEDULES, ids=str)
def test_retry_schedule(policy: RetryPolicy, delays: tuple[float, ...]) -> None:
    assert policy.delays() == delays
    assert policy.delay_after(policy.attempts) is None  # the last attempt: no more


@pytest.mark.parametrize(
    "bad", [{"attempts": 0}, {"first_delay": -1}, {"factor": 0.5}, {"max_delay": -1}]
)
def test_a_retry_policy_that_makes_no_sense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "again"),
    [(None, True), (500, True), (503, True), (429, True), (408, True), (425, True),
     (200, False), (301, False), (400, False), (403, False), (404, False), (410, False)],
)  # fmt: skip
def test_what_is_worth_another_attempt(status: int | None, again: bool) -> None:
    assert retryable(status) is again
