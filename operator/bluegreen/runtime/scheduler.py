"""Who runs a pass, and when: wake-ups from events, timers only for what is truly timed.

    scheduler.wake(("shop-ns", "shop"))          # something of the app changed: look now
    scheduler.wake(key, after=12.5)              # an analysis sample is due in 12.5 s

- One pass per app at a time. Wake-ups that arrive while a pass runs collapse into one
  follow-up pass; no worker ever waits on a lock.
- Each app has at most one timer: the earliest time any pass asked for. A wake-up for
  now cancels nothing; the timer still fires if it is still wanted then.
- Passes run in a thread pool of `workers` threads (the API client is synchronous).
- A pass that failed is retried by its timer (the runtime's backoff); events of the app's
  objects do not retry it sooner, so a failing API call is never stormed.
- Each app has a budget of the passes it asks for itself (follow-ups and timers: a token
  bucket, `burst` at once, `rate` per second after that), so no spec, valid or not, can
  loop faster than that. Passes woken by the cluster (the app's objects, its spec, a
  person's request) are paced by the cluster, not counted.
- Nothing runs before `ready()` (the watch caches have their first lists) or while
  `active()` is false (another operator replica is the active one); wake-ups that arrive
  meanwhile are kept and run once both hold (`resume()`).

Thread-safe: `wake` may be called from watch threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import KW_ONLY, dataclass, field

log = logging.getLogger(__name__)

AppKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Next:
    """What a pass asks of the scheduler."""

    after: float | None = None
    """Run again after this many seconds (0: at once); None: only when something changes."""
    forget: bool = False
    """The app is gone: drop its state and timers."""


@dataclass
class _App:
    running: bool = False
    again: bool = False
    timer: asyncio.TimerHandle | None = None
    timer_at: float = 0.0
    tokens: float = -1.0  # the pass budget (a token bucket); -1: not started yet
    refilled_at: float = 0.0
    backoff_until: float = 0.0
    """After a failed pass, object events wait for the retry (its timer) instead of
    retrying at once; a change of the app itself still runs at once."""
    passes: int = 0
    reasons: set[str] = field(default_factory=set)


Pass = Callable[[AppKey, frozenset[str]], Next]
"""One pass for one app (run in a worker thread); gets the reasons it was woken for."""


@dataclass(eq=False)
class Scheduler:
    loop: asyncio.AbstractEventLoop
    executor: Executor
    run: Pass
    _: KW_ONLY
    ready: Callable[[], bool] = lambda: True
    active: Callable[[], bool] = lambda: True
    on_error: Callable[[AppKey, BaseException], float] | None = None
    """A pass raised: the seconds until its retry."""
    burst: float = 20.0
    rate: float = 2.0
    on_throttled: Callable[[], None] | None = None
    passes: int = field(default=0, init=False)
    _apps: dict[AppKey, _App] = field(default_factory=dict, init=False, repr=False)
    _held: set[AppKey] = field(default_factory=set, init=False, repr=False)

    # ------------------------------------------------------------------ wake-ups

    def wake(self, key: AppKey, reason: str = "event", after: float = 0.0) -> None:
        """Ask for a pass of `key` now, or `after` seconds from now. Any thread."""
        self.loop.call_soon_threadsafe(self._wake, key, reason, after)

    def resume(self) -> None:
        """Run what was held back while not ready or not active. Any thread."""
        self.loop.call_soon_threadsafe(self._resume)

    def forget(self, key: AppKey) -> None:
        self.loop.call_soon_threadsafe(self._forget, key)

    def retry_failed(self) -> None:
        """The API server answers again (a watch listed after failing): the apps waiting out
        a failed pass's backoff get their pass now, not when the grown delay ends. Any
        thread."""
        self.loop.call_soon_threadsafe(self._retry_failed)

    def known(self) -> list[AppKey]:
        return list(self._apps)

    def _wake(self, key: AppKey, reason: str, after: float) -> None:
        app = self._apps.setdefault(key, _App())
        if after > 0:
            self._arm(key, app, after)
            return
        if reason == "object" and self.loop.time() < app.backoff_until:
            return  # the retry timer is armed
        app.reasons.add(reason)
        if app.running:
            app.again = True
            return
        if not (self.ready() and self.active()):
            self._held.add(key)
            return
        self._start(key, app)

    def _resume(self) -> None:
        if not (self.ready() and self.active()):
            return
        held, self._held = self._held, set()
        for key in held:
            self._wake(key, "resume", 0.0)

    def _retry_failed(self) -> None:
        now = self.loop.time()
        for key, app in list(self._apps.items()):
            if app.backoff_until > now:
                app.backoff_until = 0.0
                self._wake(key, "recovered", 0.0)

    def _forget(self, key: AppKey) -> None:
        app = self._apps.pop(key, None)
        self._held.discard(key)
        if app is not None and app.timer is not None:
            app.timer.cancel()

    def _arm(self, key: AppKey, app: _App, after: float) -> None:
        at = self.loop.time() + after
        if app.timer is not None and app.timer_at <= at:
            return  # an earlier timer is already set
        if app.timer is not None:
            app.timer.cancel()
        app.timer_at = at
        app.timer = self.loop.call_at(at, self._fire, key)

    def _fire(self, key: AppKey) -> None:
        app = self._apps.get(key)
        if app is None:
            return
        app.timer = None
        self._wake(key, "timer", 0.0)

    # ------------------------------------------------------------------ passes

    def _spend(self, key: AppKey, app: _App) -> bool:
        """Take one pass from the app's budget; when it is empty, come back when it has one."""
        now = self.loop.time()
        if app.tokens < 0:
            app.tokens, app.refilled_at = self.burst, now
        app.tokens = min(self.burst, app.tokens + (now - app.refilled_at) * self.rate)
        app.refilled_at = now
        if app.tokens >= 1:
            app.tokens -= 1
            return True
        if self.on_throttled is not None:
            self.on_throttled()
        self._arm(key, app, (1 - app.tokens) / self.rate)
        return False

    def _start(self, key: AppKey, app: _App) -> None:
        self_asked = app.reasons <= {"again", "timer"}
        if self_asked and not self._spend(key, app):
            return
        app.running = True
        app.again = False
        reasons, app.reasons = frozenset(app.reasons), set()
        task = self.loop.create_task(self._pass(key, reasons))
        task.add_done_callback(lambda _: None)

    async def _pass(self, key: AppKey, reasons: frozenset[str]) -> None:
        app = self._apps.get(key)
        try:
            result: Next = await self._call(key, reasons)
            if app is not None:
                app.backoff_until = 0.0
        except Exception as err:  # noqa: BLE001 - a failed pass is retried, never fatal
            delay = self.on_error(key, err) if self.on_error else 5.0
            result = Next(after=delay)
            if app is not None:
                app.backoff_until = self.loop.time() + delay
        finally:
            self.passes += 1
            if app is not None:
                app.running = False
                app.passes += 1
        if result.forget:
            self._forget(key)
            return
        if app is None or self._apps.get(key) is not app:
            return
        if result.after is not None:
            if result.after <= 0:
                app.again = True
            else:
                self._arm(key, app, result.after)
        if app.again:
            self._wake(key, "again", 0.0)

    def _call(self, key: AppKey, reasons: frozenset[str]) -> Awaitable[Next]:
        return self.loop.run_in_executor(self.executor, self.run, key, reasons)
