"""Notification delivery on real parts: the operator's notifier posting to a real HTTP
receiver on loopback (tests/support/receiver.py), reached by the name `localhost` as the
tests' operators reach loopback servers; the administrator's file as the operator reads it;
the runtime's wiring, with its metrics and its NotificationFailed Event.

A receiver that hangs or fails never holds up a pass: delivery runs on the notifier's
threads, and the pass has returned before any attempt ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.notify import Notifier
from bluegreen.adapters.notifyconfig import (
    Endpoint,
    EndpointKind,
    Header,
    NotificationConfigError,
    load_config,
    parse_config,
)
from bluegreen.api import Color, NotificationEvent, Phase
from bluegreen.api.reasons import Reason
from bluegreen.core.notify import Notice, RetryPolicy, slack_payload, webhook_payload
from bluegreen.release.notices import Routing
from bluegreen.runtime import notifications, reconcile, telemetry
from bluegreen.runtime.settings import Settings
from tests.support.operator import TEST_HOST, for_operator
from tests.support.receiver import Receiver
from tests.unit.factories import NAME, NAMESPACE, UID, V1, app_body, stamp
from tests.unit.fake_cluster import FakeClock, FakeCluster

pytestmark = pytest.mark.timeout(120)

POLICY = EndpointPolicy(notifications=(TEST_HOST,))
FAST = RetryPolicy(attempts=3, first_delay=0.05)
SECRET_PATH = "/services/T000/B000/s3cr3t-token"  # noqa: S105 - a made-up webhook path


def notice(event: NotificationEvent, **kw: Any) -> Notice:
    return Notice(
        event=event,
        namespace=NAMESPACE,
        name=NAME,
        uid=UID,
        at=stamp(10),
        phase=Phase.OBSERVING,
        revision="5d8c0e1a2b",
        from_color=Color.BLUE,
        to_color=Color.GREEN,
        **kw,
    )


class Hooks:
    """What the notifier reported, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.failed: list[tuple[str, str, int, str]] = []
        self.dropped: list[tuple[str, str]] = []

    def on_sent(self, endpoint: str, n: Notice, attempts: int) -> None:
        self.sent.append((endpoint, n.event.value, attempts))

    def on_failed(self, endpoint: str, n: Notice, attempts: int, why: str) -> None:
        self.failed.append((endpoint, n.event.value, attempts, why))

    def on_dropped(self, endpoint: str, n: Notice) -> None:
        self.dropped.append((endpoint, n.event.value))

    def done(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.dropped)


class Events:
    """The EventSink port, recording."""

    def __init__(self) -> None:
        self.posted: list[tuple[dict[str, Any], str, str, str]] = []

    def emit_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.posted.append((dict(app), type_, reason, message))


def wait_until(what: str, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.01)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def endpoint(name: str, kind: EndpointKind, url: str, **kw: Any) -> Endpoint:
    return Endpoint(name=name, kind=kind, url_value=for_operator(url), **kw)


def notifier(endpoints: list[Endpoint], hooks: Hooks, **kw: Any) -> Notifier:
    n = Notifier(
        {e.name: e for e in endpoints},
        POLICY,
        on_sent=hooks.on_sent,
        on_failed=hooks.on_failed,
        on_dropped=hooks.on_dropped,
        **{"timeout": 5.0, "retry": FAST, **kw},
    )
    n.start()
    return n


# ----------------------------------------------------------------------------- delivery


def test_every_event_reaches_a_slack_and_a_json_webhook(rx: Receiver, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer abc\n")

    slack = endpoint("slack", EndpointKind.SLACK, rx.url + SECRET_PATH)
    hook = endpoint(
        "hook",
        EndpointKind.WEBHOOK,
        rx.url + "/hook",
        header_list=(
            Header("X-Source", value="bluegreen"),
            Header("Authorization", file=str(token)),
        ),
    )
    hooks = Hooks()
    n = notifier([slack, hook], hooks)
    sent = [notice(e) for e in NotificationEvent]
    for item in sent:
        n.send("slack", item)
        n.send("hook", item)
    rx.wait_for(2 * len(sent))
    wait_until("all reported", lambda: hooks.done() == 2 * len(sent))
    n.stop()
    assert sorted(hooks.sent) == sorted(
        (e, item.event.value, 1) for item in sent for e in ("slack", "hook")
    )
    slack_bodies = rx.bodies(SECRET_PATH)
    hook_bodies = rx.bodies("/hook")
    assert sorted(slack_bodies, key=str) == sorted((slack_payload(i) for i in sent), key=str)
    assert sorted(hook_bodies, key=str) == sorted((webhook_payload(i) for i in sent), key=str)
    assert {b["event"] for b in hook_bodies} == {e.value for e in NotificationEvent}
    posted = [r for r in rx.received if r.path == "/hook"]
    assert all(r.headers["authorization"] == "Bearer abc" for r in posted)
    assert all(r.headers["x-source"] == "bluegreen" for r in posted)
    assert all(r.headers["content-type"] == "application/json" for r in rx.received)


def test_a_receiver_that_hangs_times_out_and_is_retried(rx: Receiver) -> None:
    rx.hang = True
    hooks = Hooks()
    n = notifier([endpoint("slow", EndpointKind.WEBHOOK, rx.url + "/slow")], hooks, timeout=0.3)
    n.send("slow", notice(NotificationEvent.PROMOTED))
    wait_until("given up", lambda: hooks.failed)
    n.stop()
    assert len(rx.received) == 3  # RetryPolicy(attempts=3)
    ((name, event, attempts, why),) = hooks.failed
    assert (name, event, attempts) == ("slow", "Promoted", 3)
    assert "no answer within 0.3s" in why
    gaps = [b.at - a.at for a, b in zip(rx.received, rx.received[1:], strict=False)]
    print(f"\nattempts {len(rx.received)}, gaps between them {[f'{g:.2f}s' for g in gaps]}")


def test_a_pass_returns_while_its_notification_hangs(rx: Receiver) -> None:
    """A real pass (the first deploy of an app, which starts a release) whose notification
    goes to a receiver that holds every request: the pass returns with the delivery still
    in flight; the notification arrives once the receiver answers."""
    rx.hang = True
    hooks = Hooks()
    n = notifier(
        [endpoint("team", EndpointKind.SLACK, rx.url + "/team")],
        hooks,
        timeout=30.0,
        retry=RetryPolicy(attempts=1),  # the one attempt ends when the receiver answers
    )
    cluster = FakeCluster()
    body = app_body(image=V1)
    body["spec"]["notifications"] = [{"endpoint": "team"}]
    cluster.create_app(body)
    started = time.monotonic()
    result = reconcile.reconcile(
        NAMESPACE,
        NAME,
        cluster,
        cluster,
        FakeClock(),
        events=cluster,
        defaults=reconcile.AppDefaults(notifications=Routing(endpoints=frozenset({"team"}))),
        notices=n,
    )
    returned = time.monotonic()
    assert result.status_written
    assert hooks.done() == 0 and rx.answered == 0  # the attempt has not ended
    assert sum(n.pending()) == 1
    (held,) = rx.wait_for(1)
    rx.release()
    wait_until("delivered", lambda: hooks.sent)
    delivered = time.monotonic()
    n.stop()
    assert hooks.sent == [("team", "Started", 1)]
    assert held.json["text"].startswith("*Release started*: default/shop")
    print(
        f"\npass {1000 * (returned - started):.1f} ms; the receiver answered "
        f"{1000 * (delivered - returned):.0f} ms after the pass returned"
    )


def test_a_4xx_is_not_retried_and_a_redirect_is_not_followed(rx: Receiver) -> None:
    with Receiver() as elsewhere:
        hooks = Hooks()
        n = notifier([endpoint("hook", EndpointKind.WEBHOOK, rx.url + "/hook")], hooks)
        rx.answer = 404
        n.send("hook", notice(NotificationEvent.STARTED))
        wait_until("given up", lambda: len(hooks.failed) == 1)
        rx.answer, rx.location = 302, elsewhere.url + "/catch"
        n.send("hook", notice(NotificationEvent.PROMOTED))
        wait_until("given up", lambda: len(hooks.failed) == 2)
        n.stop()
        assert len(rx.received) == 2 and elsewhere.received == []
        assert [(f[1], f[2]) for f in hooks.failed] == [("Started", 1), ("Promoted", 1)]
        assert "HTTP 404" in hooks.failed[0][3]
        assert "HTTP 302" in hooks.failed[1][3] and "not followed" in hooks.failed[1][3]


def test_a_full_queue_drops_instead_of_waiting(rx: Receiver) -> None:
    rx.hang = True
    hooks = Hooks()
    n = notifier(
        [endpoint("hook", EndpointKind.WEBHOOK, rx.url + "/hook")],
        hooks,
        size=1,
        workers=1,
        timeout=30.0,
    )
    for _ in range(5):
        n.send("hook", notice(NotificationEvent.STARTED))  # returns at once, every time
    assert len(hooks.dropped) >= 3  # at most one in flight and one queued
    rx.release()
    wait_until("the rest delivered", lambda: hooks.done() == 5)
    n.stop()
    assert len(hooks.sent) == 5 - len(hooks.dropped)


def test_the_url_file_is_read_at_each_delivery_and_never_shown(
    rx: Receiver, tmp_path: Path
) -> None:
    url_file = tmp_path / "url"
    url_file.write_text(for_operator(rx.url) + SECRET_PATH + "\n")
    hooks = Hooks()
    n = notifier([Endpoint(name="slack", kind=EndpointKind.SLACK, url_file=str(url_file))], hooks)
    n.send("slack", notice(NotificationEvent.STARTED))
    wait_until("delivered", lambda: hooks.sent)
    url_file.write_text(for_operator(rx.url) + "/rotated")  # the Secret changed
    n.send("slack", notice(NotificationEvent.PROMOTED))
    wait_until("delivered", lambda: len(hooks.sent) == 2)
    rx.answer = 500
    n.send("slack", notice(NotificationEvent.ABORTED))
    wait_until("given up", lambda: hooks.failed)
    url_file.write_text("http://127.0.0.1:9" + SECRET_PATH)  # refused by the policy
    n.send("slack", notice(NotificationEvent.DEGRADED))
    wait_until("refused", lambda: len(hooks.failed) == 2)
    n.stop()
    assert [r.path for r in rx.received] == [SECRET_PATH, "/rotated", *["/rotated"] * 3]
    assert "loopback addresses are never allowed" in hooks.failed[1][3]
    assert all("s3cr3t" not in why and "/rotated" not in why for *_, why in hooks.failed)


def test_stop_tries_what_is_queued_once_more(rx: Receiver) -> None:
    rx.answer = 503
    hooks = Hooks()
    n = notifier(
        [endpoint("hook", EndpointKind.WEBHOOK, rx.url + "/hook")],
        hooks,
        retry=RetryPolicy(attempts=5, first_delay=30),
    )
    n.send("hook", notice(NotificationEvent.PROMOTED))
    rx.wait_for(1)
    wait_until("waiting to retry", lambda: n.pending() == (1, 0))
    rx.answer = 200
    n.stop(timeout=10)  # does not wait out the 30 s
    assert hooks.sent == [("hook", "Promoted", 2)]


# ----------------------------------------------------------------------------- the wiring


def settings(tmp_path: Path, config: str, **env: Any) -> Settings:
    path = tmp_path / "notifications.yaml"
    path.write_text(config)
    return Settings(
        notifications_file=str(path),
        notifications_allowed=(TEST_HOST,),
        notifications_retry_seconds=0.05,
        **env,
    )


def sample(name: str, **labels: str) -> float:
    return telemetry.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_receiver_that_answers_500_gets_retries_then_an_event_and_a_metric(
    rx: Receiver, tmp_path: Path
) -> None:
    rx.answer = 500
    cfg = settings(
        tmp_path,
        f"endpoints:\n- name: ops\n  type: webhook\n  url: {for_operator(rx.url)}/ops\n"
        "subscriptions:\n- endpoint: ops\n  events: [RolledBack]\n",
        notifications_attempts=3,
    )
    events = Events()
    n, routing = notifications.build(cfg, POLICY, events)
    assert routing == Routing(endpoints=frozenset({"ops"}), defaults=routing.defaults)
    assert [s.endpoint for s in routing.defaults] == ["ops"]
    failed = ("bluegreen_notifications_failed_total", {"endpoint": "ops", "event": "RolledBack"})
    sent = ("bluegreen_notifications_sent_total", {"endpoint": "ops", "event": "RolledBack"})
    before_failed, before_sent = sample(failed[0], **failed[1]), sample(sent[0], **sent[1])
    n.start()
    n.send("ops", notice(NotificationEvent.ROLLED_BACK))
    wait_until("the Event", lambda: events.posted)
    assert len(rx.received) == 3
    ((app, type_, reason, message),) = events.posted
    assert app == {"metadata": {"namespace": NAMESPACE, "name": NAME, "uid": UID}}
    assert (type_, reason) == ("Warning", Reason.NOTIFICATION_FAILED)
    assert message.startswith("notification RolledBack to ops failed after 3 attempts: HTTP 500")
    assert sample(failed[0], **failed[1]) == before_failed + 1
    rx.answer = 200
    n.send("ops", notice(NotificationEvent.ROLLED_BACK))
    wait_until("sent", lambda: sample(sent[0], **sent[1]) == before_sent + 1)
    n.stop()
    assert len(events.posted) == 1


def test_a_full_queue_is_counted_and_told(rx: Receiver, tmp_path: Path) -> None:
    rx.hang = True
    cfg = settings(
        tmp_path,
        f"endpoints:\n- name: full\n  type: slack\n  url: {for_operator(rx.url)}/full\n",
        notifications_queue_size=1,
        notifications_timeout_seconds=30,
    )
    events = Events()
    n, _ = notifications.build(cfg, POLICY, events)
    before = sample("bluegreen_notifications_dropped_total", endpoint="full")
    n.start()
    for _ in range(8):
        n.send("full", notice(NotificationEvent.STARTED))
    dropped = sample("bluegreen_notifications_dropped_total", endpoint="full") - before
    # The receiver holds every request: what was taken is queued (at most 1) or being
    # sent (at most one per worker, 2); how many workers picked one up before the
    # sends is up to the scheduler, so the count is bounded, not exact.
    queued, sending = n.pending()
    assert queued <= 1 and sending <= 2
    assert dropped == 8 - queued - sending
    assert len(events.posted) == dropped
    assert all("queue is full" in e[3] for e in events.posted)
    rx.release()
    n.stop()


# ----------------------------------------------------------------------------- the file

GOOD = """
endpoints:
  - name: team-slack
    type: slack
    urlFile: /var/run/secrets/bluegreen/notifications/team-slack
  - name: audit
    type: webhook
    url: https://audit.platform.svc:8443/bluegreen/s3cr3t
    headers:
      X-Source: bluegreen
      Authorization: {file: /var/run/secrets/bluegreen/notifications/audit-token}
subscriptions:
  - endpoint: audit
    events: [RolledBack, Aborted, Degraded]
"""

BAD = [
    ("endpoints: [{name: a, type: slack}]", "exactly one of url or urlFile"),
    ("endpoints: [{name: a, type: teams, url: 'https://x.svc'}]", "endpoints.0.type"),
    ("endpoints: [{name: A_B, type: slack, url: 'https://x.svc'}]", "endpoints.0.name"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc', bogus: 1}]", "bogus"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc'}, {name: a, type: webhook, url: 'https://y.svc'}]", "listed twice"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc'}]\nsubscriptions: [{endpoint: b}]", "subscription to b, which is not an endpoint"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc'}]\nsubscriptions: [{endpoint: a}, {endpoint: a}]", "two subscriptions to a"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc', headers: {'Bad Name': v}}]", "not a header name"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc', headers: {Content-Type: text/plain}}]", "sets Content-Type itself"),
    ("endpoints: [{name: a, type: slack, url: 'http://127.0.0.1:8080/s3cr3t'}]", "loopback addresses are never allowed"),
    ("endpoints: [{name: a, type: slack, url: 'https://example.com/s3cr3t'}]", "host example.com is not allowed"),
    ("endpoints: [{name: a, type: slack, url: 'https://x.svc', ", "notifications file"),
]  # fmt: skip


def test_the_administrators_file(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(GOOD)
    config = load_config(str(path), EndpointPolicy())
    assert list(config.endpoints) == ["team-slack", "audit"]
    audit = config.endpoints["audit"]
    assert (
        audit.kind is EndpointKind.WEBHOOK
        and audit.url() == "https://audit.platform.svc:8443/bluegreen/s3cr3t"
    )
    assert [h.name for h in audit.header_list] == ["X-Source", "Authorization"]
    assert [s.endpoint for s in config.subscriptions] == ["audit"]
    assert "s3cr3t" not in config.describe() and "team-slack (slack)" in config.describe()
    assert load_config(None, EndpointPolicy()).endpoints == {}
    json_config = parse_config(
        '{"endpoints": [{"name": "a", "type": "slack", "url": "https://hooks.slack.com/x"}]}',
        EndpointPolicy(),
    )
    assert list(json_config.endpoints) == ["a"]


@pytest.mark.parametrize(("text", "error"), BAD, ids=[e for _, e in BAD])
def test_a_wrong_file_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(NotificationConfigError, match=error) as caught:
        parse_config(text, EndpointPolicy(), source="/etc/n.yaml")
    assert "s3cr3t" not in str(caught.value)


def test_a_missing_file_stops_the_operator_with_its_path() -> None:
    with pytest.raises(NotificationConfigError, match=r"/nonexistent/n\.yaml"):
        load_config("/nonexistent/n.yaml", EndpointPolicy())
