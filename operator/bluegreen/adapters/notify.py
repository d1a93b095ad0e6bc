"""Sends notifications to the administrator's endpoints, out of every release's way.

A pass hands each (endpoint, notice) to `Notifier.send`, which only queues it and returns.
Worker threads of the notifier POST it; a failed attempt that may succeed later (no answer,
a timeout, 408/425/429, a 5xx) is queued again after the retry policy's wait, and the
others (a 4xx, a redirect, which is never followed, a URL the policy refuses) fail at once.
The queue is bounded: a notice that finds it full is dropped and counted, never waited for.

    notifier = Notifier(config.endpoints, policy, on_sent=..., on_failed=..., on_dropped=...)
    notifier.start()
    notifier.send("team-slack", notice)      # returns at once
    notifier.stop(timeout=5)                 # tries what is queued, for at most 5 s

Only the status line of an answer is read (and at most MAX_ERROR_BYTES of a failure's
body, for the message). URLs are never logged or reported: a webhook's path is its secret.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.notifyconfig import Endpoint, EndpointKind, redact_in
from bluegreen.core.notify import Notice, RetryPolicy, retryable, slack_payload, webhook_payload

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY = RetryPolicy()
MAX_ERROR_BYTES = 512
_HEADERS = {"Content-Type": "application/json", "User-Agent": "bluegreen-operator"}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other (a 3xx, a failure), never followed: an allowed
    URL must not lead the operator to one that is not."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)

SentHook = Callable[[str, Notice, int], None]
"""(endpoint, notice, attempts) once delivered."""
FailedHook = Callable[[str, Notice, int, str], None]
"""(endpoint, notice, attempts, why) once given up."""
DroppedHook = Callable[[str, Notice], None]
"""(endpoint, notice) when the queue was full: never sent."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: `status` None when nothing answered."""

    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status <= 299


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    endpoint: str = field(compare=False)
    notice: Notice = field(compare=False)
    attempt: int = field(default=1, compare=False)


def payload(endpoint: Endpoint, notice: Notice) -> bytes:
    body = slack_payload(notice) if endpoint.kind is EndpointKind.SLACK else webhook_payload(notice)
    return json.dumps(body, separators=(",", ":")).encode()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Attempt:
    """One POST; never raises for what the network or the receiver does."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the policy
        url, data=body, method="POST", headers={**headers, **_HEADERS}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Attempt(int(response.status))
    except urllib.error.HTTPError as error:
        with error:
            detail = _snippet(error)
        where = f" to {error.headers.get('Location', '?')}" if 300 <= error.code < 400 else ""
        moved = " (redirects are not followed)" if where else ""
        return Attempt(error.code, f"HTTP {error.code} {error.reason}{moved}{detail}")
    except TimeoutError:
        return Attempt(None, f"no answer within {timeout:g}s")
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return Attempt(None, f"no answer within {timeout:g}s")
        return Attempt(None, f"unreachable: {reason}")
    except (OSError, http.client.HTTPException) as error:
        return Attempt(None, f"unreachable: {error or type(error).__name__}")


def _snippet(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read(MAX_ERROR_BYTES).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    return f": {' '.join(text.split())[:200]}" if text else ""


class Notifier:
    """Implements the NoticeSink port: a bounded queue, worker threads, retries."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        policy: EndpointPolicy,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        size: int = 1000,
        workers: int = 2,
        on_sent: SentHook | None = None,
        on_failed: FailedHook | None = None,
        on_dropped: DroppedHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.policy = policy
        self.timeout = timeout
        self.retry = retry
        self.size = size
        self._on_sent = on_sent
        self._on_failed = on_failed
        self._on_dropped = on_dropped
        self._clock = clock
        self._cv = threading.Condition()
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._busy = 0
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"notify-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        self.attempts = 0
        """POSTs made so far (every attempt of every notice)."""

    # ------------------------------------------------------------------ the port

    def send(self, endpoint: str, notice: Notice) -> None:
        """Queue the notice for `endpoint`; never blocks. Full (or stopping): dropped."""
        with self._cv:
            full = self._closing or len(self._heap) >= self.size
            if not full:
                heapq.heappush(self._heap, _Item(self._clock(), next(self._seq), endpoint, notice))
                self._cv.notify()
        if full:
            log.warning(
                "notification %s of %s/%s to %s dropped: the queue is full",
                notice.event.value,
                notice.namespace,
                notice.name,
                endpoint,
            )
            if self._on_dropped is not None:
                self._on_dropped(endpoint, notice)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def pending(self) -> tuple[int, int]:
        """Notices (queued, being sent); a queued one may be waiting to be tried again."""
        with self._cv:
            return len(self._heap), self._busy

    def stop(self, timeout: float = 5.0) -> None:
        """Try what is queued now, once more each and without waiting out a retry's delay,
        for at most `timeout` seconds; then stop. What is left is reported as failed."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            left, self._heap = self._heap, []
        for item in left:
            self._failed(item.endpoint, item.notice, item.attempt - 1, "the operator stopped")

    # ------------------------------------------------------------------ workers

    def _take(self) -> _Item | None:
        with self._cv:
            while True:
                if self._heap and (self._closing or self._heap[0].due <= self._clock()):
                    self._busy += 1
                    return heapq.heappop(self._heap)
                if self._closing:
                    return None
                wait = self._heap[0].due - self._clock() if self._heap else None
                self._cv.wait(wait)

    def _run(self) -> None:
        while (item := self._take()) is not None:
            try:
                self._deliver(item)
            except Exception as err:  # a bug must not stop the worker, nor hide the notice
                log.exception("notification to %s failed unexpectedly", item.endpoint)
                self._failed(item.endpoint, item.notice, item.attempt, f"internal error: {err!r}")
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def _deliver(self, item: _Item) -> None:
        endpoint = self.endpoints.get(item.endpoint)
        if endpoint is None:
            self._failed(item.endpoint, item.notice, 0, "no such endpoint")
            return
        try:
            url, headers = endpoint.url(), endpoint.headers()
        except OSError as err:
            outcome = Attempt(None, f"cannot read the endpoint's files: {err.strerror}")
        else:
            refused = self.policy.check_notification(url)
            if refused is not None:
                why = f"{redact_in(refused, url)} (BLUEGREEN_NOTIFICATIONS_ALLOWED)"
                self._failed(item.endpoint, item.notice, item.attempt - 1, why)
                return
            with self._cv:
                self.attempts += 1
            outcome = post(url, payload(endpoint, item.notice), headers, self.timeout)
            outcome = Attempt(outcome.status, redact_in(outcome.error, url))
        if outcome.ok:
            if self._on_sent is not None:
                self._on_sent(item.endpoint, item.notice, item.attempt)
            return
        delay = self.retry.delay_after(item.attempt) if retryable(outcome.status) else None
        with self._cv:
            again = delay is not None and not self._closing
            if again and delay is not None:
                item.due, item.attempt = self._clock() + delay, item.attempt + 1
                heapq.heappush(self._heap, item)
                self._cv.notify()
        if again:
            log.info(
                "notification %s to %s: attempt %d failed (%s); trying again in %.1fs",
                item.notice.event.value,
                item.endpoint,
                item.attempt - 1,
                outcome.error,
                delay,
            )
            return
        self._failed(item.endpoint, item.notice, item.attempt, outcome.error)

    def _failed(self, endpoint: str, notice: Notice, attempts: int, why: str) -> None:
        log.warning(
            "notification %s of %s/%s to %s failed after %d attempt(s): %s",
            notice.event.value,
            notice.namespace,
            notice.name,
            endpoint,
            attempts,
            why,
        )
        if self._on_failed is not None:
            self._on_failed(endpoint, notice, attempts, why)
