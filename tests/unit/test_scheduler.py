"""The scheduler: one pass per app at a time, bursts collapse, timers only when asked for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bluegreen.runtime.scheduler import AppKey, Next, Scheduler

KEY: AppKey = ("ns", "shop")


class Recorder:
    """A pass that records its calls, can be held running, and answers from a script."""

    def __init__(self, answers: Iterator[Next] | None = None) -> None:
        self.calls: list[frozenset[str]] = []
        self.running = 0
        self.most_at_once = 0
        self.release = threading.Event()
        self.release.set()
        self.answers = answers
        self._lock = threading.Lock()

    def __call__(self, key: AppKey, reasons: frozenset[str]) -> Next:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.calls.append(reasons)
        self.release.wait(5)
        with self._lock:
            self.running -= 1
        return next(self.answers, Next()) if self.answers else Next()


def run(body: Callable[[Scheduler, Recorder], object], recorder: Recorder, **kw: object) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(4) as pool:
            scheduler = Scheduler(loop, pool, recorder, **kw)  # type: ignore[arg-type]
            result = body(scheduler, recorder)
            if asyncio.iscoroutine(result):
                await result

    asyncio.run(main())


async def settle(seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)


def test_a_burst_of_fifty_wake_ups_during_a_pass_is_one_follow_up() -> None:
    recorder = Recorder()

    async def body(s: Scheduler, r: Recorder) -> None:
        r.release.clear()
        s.wake(KEY, "app")
        await settle(0.05)
        for _ in range(50):
            s.wake(KEY, "object")
        await settle(0.05)
        r.release.set()
        await settle(0.2)

    run(body, recorder)
    assert len(recorder.calls) == 2
    assert "object" in recorder.calls[1]
    assert recorder.most_at_once == 1


def test_apps_run_side_by_side_but_each_one_alone() -> None:
    recorder = Recorder()

    async def body(s: Scheduler, r: Recorder) -> None:
        r.release.clear()
        for name in ("a", "b", "c"):
            s.wake(("ns", name), "app")
            s.wake(("ns", name), "object")
        await settle(0.1)
        r.release.set()
        await settle(0.2)

    run(body, recorder)
    assert recorder.most_at_once == 3
    assert len(recorder.calls) == 6  # each app: its pass and one follow-up


def test_a_pass_that_asks_for_nothing_is_not_run_again() -> None:
    recorder = Recorder(iter([Next(after=None)]))

    async def body(s: Scheduler, r: Recorder) -> None:
        s.wake(KEY, "app")
        await settle(0.3)

    run(body, recorder)
    assert recorder.calls == [frozenset({"app"})]


def test_timers_fire_once_at_the_earliest_time_asked() -> None:
    recorder = Recorder(iter([Next(after=0.15), Next(after=None)]))

    async def body(s: Scheduler, r: Recorder) -> None:
        s.wake(KEY, "app")
        s.wake(KEY, after=5.0)  # a later timer does not replace the earlier one
        await settle(0.4)

    run(body, recorder)
    assert recorder.calls == [frozenset({"app"}), frozenset({"timer"})]


def test_nothing_runs_before_the_caches_are_ready_nor_while_another_replica_acts() -> None:
    recorder = Recorder()
    state = {"ready": False, "active": True}

    async def body(s: Scheduler, r: Recorder) -> None:
        s.wake(KEY, "app")
        await settle()
        assert r.calls == []
        state["ready"] = True
        state["active"] = False
        s.resume()
        await settle()
        assert r.calls == []
        state["active"] = True
        s.resume()
        await settle()

    run(body, recorder, ready=lambda: state["ready"], active=lambda: state["active"])
    assert recorder.calls == [frozenset({"app", "resume"})]


def test_a_failed_pass_is_retried_by_its_timer_not_by_every_event() -> None:
    calls: list[frozenset[str]] = []

    def failing(key: AppKey, reasons: frozenset[str]) -> Next:
        calls.append(reasons)
        if len(calls) == 1:
            raise RuntimeError("API server unavailable")
        return Next()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool:
            s = Scheduler(loop, pool, failing, on_error=lambda key, err: 0.3)
            s.wake(KEY, "app")
            await settle(0.1)
            for _ in range(20):
                s.wake(KEY, "object")
            await settle(0.1)
            assert len(calls) == 1
            await settle(0.3)

    asyncio.run(main())
    assert calls == [frozenset({"app"}), frozenset({"timer"})]


def test_forgotten_apps_lose_their_timers() -> None:
    recorder = Recorder(iter([Next(after=0.1)]))

    async def body(s: Scheduler, r: Recorder) -> None:
        s.wake(KEY, "app")
        await settle(0.05)
        s.forget(KEY)
        await settle(0.2)

    run(body, recorder)
    assert len(recorder.calls) == 1


@pytest.mark.parametrize("after", [0.0, -1.0])
def test_a_next_step_at_once_runs_right_away(after: float) -> None:
    recorder = Recorder(iter([Next(after=after), Next()]))

    async def body(s: Scheduler, r: Recorder) -> None:
        s.wake(KEY, "app")
        await settle(0.1)

    run(body, recorder)
    assert recorder.calls == [frozenset({"app"}), frozenset({"again"})]


def test_a_hot_loop_is_held_to_the_app_s_budget_of_passes() -> None:
    """A pass that always asks for another at once (a spec that loops): after the burst,
    passes come at the budget's rate, whatever the pass asks."""
    calls: list[float] = []

    def looping(key: AppKey, reasons: frozenset[str]) -> Next:
        calls.append(0.0)
        return Next(after=0)

    throttled: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool:
            s = Scheduler(
                loop, pool, looping, burst=5, rate=10, on_throttled=lambda: throttled.append(1)
            )
            s.wake(KEY, "app")
            await asyncio.sleep(1.0)
            s.forget(KEY)

    asyncio.run(main())
    # 5 at once, then about 10 a second for a second: never the hundreds a loop would take.
    assert 5 <= len(calls) <= 17, len(calls)
    assert throttled


def test_when_the_api_server_answers_again_failed_passes_retry_at_once() -> None:
    calls: list[frozenset[str]] = []

    def failing(key: AppKey, reasons: frozenset[str]) -> Next:
        calls.append(reasons)
        if len(calls) == 1:
            raise RuntimeError("API server unavailable")
        return Next()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool:
            # A long backoff: without the recovery the retry would wait 60 s.
            s = Scheduler(loop, pool, failing, on_error=lambda key, err: 60.0)
            s.wake(KEY, "app")
            await settle(0.1)
            s.retry_failed()
            await settle(0.1)
            s.retry_failed()  # nothing waits out a backoff now: no further pass
            await settle(0.1)

    asyncio.run(main())
    assert calls == [frozenset({"app"}), frozenset({"recovered"})]
