"""The notifier as the running operator wires it: the administrator's endpoints from
BLUEGREEN_NOTIFICATIONS_FILE, metrics for what was sent, failed or dropped, and a Warning
Event (NotificationFailed) on the app for every notification it did not get."""

from __future__ import annotations

import logging

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.notify import Notifier
from bluegreen.adapters.notifyconfig import load_config
from bluegreen.api.reasons import Reason
from bluegreen.core.notify import Notice, RetryPolicy
from bluegreen.core.ports import EventSink
from bluegreen.release.notices import Routing
from bluegreen.runtime import telemetry
from bluegreen.runtime.settings import Settings

log = logging.getLogger("bluegreen")

STOP_SECONDS = 5.0
"""On a graceful stop, how long queued notifications may still take."""


def build(
    settings: Settings, policy: EndpointPolicy, events: EventSink
) -> tuple[Notifier, Routing]:
    """The notifier and what the passes route by. NotificationConfigError when the file is
    wrong (the operator does not start)."""
    config = load_config(settings.notifications_file, policy)
    log.info(config.describe())

    def sent(endpoint: str, notice: Notice, attempts: int) -> None:
        telemetry.NOTIFICATIONS_SENT.labels(endpoint, notice.event.value).inc()

    def failed(endpoint: str, notice: Notice, attempts: int, why: str) -> None:
        telemetry.NOTIFICATIONS_FAILED.labels(endpoint, notice.event.value).inc()
        how = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        _tell(events, notice, f"notification {notice.event.value} to {endpoint} failed{how}: {why}")

    def dropped(endpoint: str, notice: Notice) -> None:
        telemetry.NOTIFICATIONS_DROPPED.labels(endpoint).inc()
        _tell(
            events,
            notice,
            f"notification {notice.event.value} to {endpoint} dropped: the operator's "
            "notification queue is full",
        )

    notifier = Notifier(
        config.endpoints,
        policy,
        timeout=settings.notifications_timeout_seconds,
        retry=RetryPolicy(
            attempts=settings.notifications_attempts,
            first_delay=settings.notifications_retry_seconds,
        ),
        size=settings.notifications_queue_size,
        on_sent=sent,
        on_failed=failed,
        on_dropped=dropped,
    )
    routing = Routing(endpoints=frozenset(config.endpoints), defaults=config.subscriptions)
    return notifier, routing


def _tell(events: EventSink, notice: Notice, message: str) -> None:
    app = {"metadata": {"namespace": notice.namespace, "name": notice.name, "uid": notice.uid}}
    try:
        events.emit_event(app, "Warning", Reason.NOTIFICATION_FAILED, message)
    except Exception:  # Events are best effort
        log.exception("could not post the NotificationFailed event")
