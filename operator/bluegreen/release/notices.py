"""Which notifications a pass sends, decided from the status it started from and the one it
wrote. Pure: the reconcile pass hands the result to the notifier after the status write.

Each notice is a transition of status, so it is sent once: the pass that makes the
transition writes it into status, and every later pass (in this process or in a restarted
one) starts from that status and sees no transition. A pass whose status write fails sends
nothing; its retry makes the same transition and sends it then.

    Started     a new release in status.release (not one that ended in the same pass)
    Paused      the phase became Paused
    Promoted    status.release.result became Promoted
    RolledBack  ... became RolledBack (traffic back on the stable colour, verified)
    Aborted     ... became Aborted (the same, on a person's request)
    Degraded    ... became Failed; or else the Degraded condition became True, or True for
                another reason (a revision that failed before, an object refused)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bluegreen.api import (
    BlueGreenApp,
    BlueGreenAppStatus,
    Condition,
    NotificationEvent,
    Phase,
    Release,
    ReleaseResult,
    Subscription,
)
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import render
from bluegreen.core.notify import Notice
from bluegreen.release.status import Wanted, condition

_ENDED = {
    ReleaseResult.PROMOTED: NotificationEvent.PROMOTED,
    ReleaseResult.ROLLED_BACK: NotificationEvent.ROLLED_BACK,
    ReleaseResult.ABORTED: NotificationEvent.ABORTED,
    ReleaseResult.FAILED: NotificationEvent.DEGRADED,
}
"""How an ended release is told; a superseded one is not (the next one's Started is)."""


@dataclass(frozen=True)
class Routing:
    """What the operator's administrator configured: the endpoints' names, and the
    subscriptions every app has besides its own (spec.notifications)."""

    endpoints: frozenset[str] = frozenset()
    defaults: tuple[Subscription, ...] = ()


def notices(
    app: BlueGreenApp,
    before: BlueGreenAppStatus,
    after: BlueGreenAppStatus,
    now: datetime,
    *,
    target: str,
) -> tuple[Notice, ...]:
    """The release events of the transition from `before` to `after`, in the order they
    happened. `target`: the revision the spec asks for as the pass computed it (config
    digests included), named by a Degraded notice without a release."""
    out: list[Notice] = []
    old, new = before.release, after.release
    same = old is not None and new is not None and _identity(old) == _identity(new)
    if new is not None and not same and new.result is None:
        out.append(
            _of_release(NotificationEvent.STARTED, app, after, new, at=new.started_at, now=now)
        )
    if after.phase is Phase.PAUSED and before.phase is not Phase.PAUSED and new is not None:
        paused = _condition(after.conditions, ConditionType.PAUSED)
        at = paused.last_transition_time if paused else ts.format(now)
        reason = paused.reason if paused else ""
        out.append(
            _of_release(
                NotificationEvent.PAUSED,
                app,
                after,
                new,
                at=at,
                now=now,
                reason=reason,
                message=after.message,
            )
        )
    ended = None
    if new is not None and new.result is not None and not (same and old and old.result):
        ended = _ENDED.get(new.result)
        if ended is not None:
            reason = new.reason if ended is not NotificationEvent.PROMOTED else Reason.PROMOTED
            at = new.completed_at or ts.format(now)
            out.append(
                _of_release(
                    ended, app, after, new, at=at, now=now, reason=reason, message=new.message
                )
            )
    degraded = _newly_degraded(before, after)
    if ended is None and degraded is not None:
        out.append(_degraded(app, after, degraded, now, target))
    return tuple(out)


def deliveries(
    app: BlueGreenApp, notices: Sequence[Notice], routing: Routing
) -> tuple[tuple[str, Notice], ...]:
    """(endpoint, notice) for each configured endpoint that the app's or the operator's
    subscriptions send the notice to, each endpoint once per notice."""
    subscriptions = [*app.spec.notifications, *routing.defaults]
    out: list[tuple[str, Notice]] = []
    for notice in notices:
        names = dict.fromkeys(
            s.endpoint
            for s in subscriptions
            if s.wants(notice.event) and s.endpoint in routing.endpoints
        )
        out += [(name, notice) for name in names]
    return tuple(out)


def with_readiness(
    app: BlueGreenApp, status: BlueGreenAppStatus, routing: Routing, now: datetime
) -> BlueGreenAppStatus:
    """The NotificationsReady condition, when the app subscribes to anything: False, with
    the names, while it names an endpoint the administrator did not configure."""
    wanted = readiness(app, routing)
    if wanted is None:
        return status
    made = condition(wanted, app.status.conditions, ts.format(now), app.metadata.generation)
    others = [c for c in status.conditions if c.type != wanted.type]
    return status.model_copy(update={"conditions": [*others, made]})


def readiness(app: BlueGreenApp, routing: Routing) -> Wanted | None:
    named = [s.endpoint for s in app.spec.notifications]
    if not named:
        return None
    unknown = [n for n in named if n not in routing.endpoints]
    if not unknown:
        return Wanted(
            ConditionType.NOTIFICATIONS_READY,
            True,
            Reason.ENDPOINTS_CONFIGURED,
            f"notifications go to {', '.join(named)}",
        )
    configured = ", ".join(sorted(routing.endpoints)) or "none"
    return Wanted(
        ConditionType.NOTIFICATIONS_READY,
        False,
        Reason.ENDPOINT_UNKNOWN,
        f"notification endpoint {', '.join(unknown)} is not configured by the operator's "
        f"administrator (configured: {configured}); nothing is sent to it",
    )


# ----------------------------------------------------------------------------- helpers


def _identity(release: Release) -> tuple[str, str]:
    return release.revision, release.started_at


def _condition(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def _newly_degraded(before: BlueGreenAppStatus, after: BlueGreenAppStatus) -> Condition | None:
    now = _condition(after.conditions, ConditionType.DEGRADED)
    if now is None or now.status != "True":
        return None
    was = _condition(before.conditions, ConditionType.DEGRADED)
    if was is not None and was.status == "True" and was.reason == now.reason:
        return None
    return now


def _of_release(
    event: NotificationEvent,
    app: BlueGreenApp,
    st: BlueGreenAppStatus,
    release: Release,
    *,
    at: str,
    now: datetime,
    reason: str = "",
    message: str = "",
) -> Notice:
    duration = release.duration_seconds
    if duration is None and event is not NotificationEvent.STARTED:
        duration = round(max(0.0, (now - ts.parse(release.started_at)).total_seconds()), 3)
    run = st.analysis
    return Notice(
        event=event,
        namespace=app.metadata.namespace,
        name=app.metadata.name,
        uid=app.metadata.uid,
        at=at,
        phase=st.phase,
        reason=reason,
        message=message,
        revision=release.revision,
        image=release.pinned_image or release.image or None,
        from_color=release.previous_color,
        to_color=release.color,
        active_color=st.active_color,
        started_at=release.started_at,
        duration_seconds=duration,
        switch_latency_seconds=release.switch_latency_seconds,
        rollback_seconds=release.rollback_seconds,
        analysis=run if run is not None and run.revision == release.revision else None,
    )


def _degraded(
    app: BlueGreenApp, st: BlueGreenAppStatus, degraded: Condition, now: datetime, target: str
) -> Notice:
    """Degraded without a release that ended: the revision the spec asks for is refused (it
    failed before), or an object built from it was refused. A release in flight, if any,
    gives the colours."""
    release = st.release if st.release is not None and st.release.result is None else None
    if release is not None:
        return _of_release(
            NotificationEvent.DEGRADED,
            app,
            st,
            release,
            at=degraded.last_transition_time,
            now=now,
            reason=degraded.reason,
            message=degraded.message,
        )
    return Notice(
        event=NotificationEvent.DEGRADED,
        namespace=app.metadata.namespace,
        name=app.metadata.name,
        uid=app.metadata.uid,
        at=degraded.last_transition_time,
        phase=st.phase,
        reason=degraded.reason,
        message=degraded.message,
        revision=target,
        image=render.primary_image(app),
        active_color=st.active_color,
    )
