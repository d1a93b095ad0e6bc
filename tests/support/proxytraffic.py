"""Real traffic through the data path's proxy: N requests at a rate, every answer kept.

    with ProxyTraffic(data_path.ingress, "shop.example.com", requests=2000, rate=100) as t:
        ...                                   # release, canary step, delete a pod...
    t.failures()                              # connection failures and 5xx answers
    t.colors()                                # Counter({"blue": 1200, "green": 800})

Each answer records when its request was sent and answered, its status (0 when the
connection failed) and the colour the demo app put in its `X-App-Color` header. Requests
are sent on schedule (request i at start + i / rate) by `concurrency` workers; with one
worker, answers come back in the order they were sent. Every run is bounded in count and
time, and only goes to loopback or kwok's pod range (10.244.0.0/16): the addresses of the
test's own network namespace.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

from tests.support.demo_app import http_request

ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.244.0.0/16"))
SLACK_SECONDS = 30.0
"""How much longer than requests / rate a run may take before it stops by itself."""


@dataclass(frozen=True)
class Answer:
    sent_at: float
    """time.time() when the request was sent."""
    done_at: float
    status: int
    """HTTP status; 0 when the connection failed or timed out."""
    color: str
    """The X-App-Color header of the answer ("" if none)."""
    version: str

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


def check_target(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        raise ValueError(f"traffic goes to an IP address, not {url}") from None
    if not any(address in network for network in ALLOWED_NETWORKS):
        raise ValueError(f"traffic goes to loopback or 10.244.0.0/16 only, not {url}")


def request_once(url: str, host: str, timeout: float) -> tuple[int, str, str]:
    """(status, colour, version) of one GET; status 0 if the connection failed."""
    try:
        response = http_request("GET", url, headers={"Host": host}, timeout=timeout)
    except OSError:
        return 0, "", ""
    return (
        response.status,
        response.headers.get("x-app-color", ""),
        response.headers.get("x-app-version", ""),
    )


class ProxyTraffic:
    def __init__(
        self,
        base_url: str,
        host: str,
        *,
        requests: int,
        rate: float,
        concurrency: int = 1,
        path: str = "/",
        timeout: float = 5.0,
    ) -> None:
        check_target(base_url)
        if requests < 1 or rate <= 0 or concurrency < 1:
            raise ValueError("requests and concurrency must be >= 1, rate > 0")
        self.url = base_url.rstrip("/") + path
        self.host = host
        self.requests = requests
        self.rate = rate
        self.timeout = timeout
        self.max_seconds = requests / rate + SLACK_SECONDS
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._next = 0
        self._started = 0.0
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"traffic-{i}", daemon=True)
            for i in range(concurrency)
        ]

    # running ---------------------------------------------------------------

    def start(self) -> ProxyTraffic:
        self._started = time.monotonic()
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        """Send no more requests; wait for those in flight."""
        self._stop.set()
        self._join(self.timeout + 5)

    def wait(self) -> None:
        """Wait until every request is answered (or the time bound stopped the run)."""
        self._join(self.max_seconds + self.timeout + 5)

    def __enter__(self) -> ProxyTraffic:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in self._workers):
            raise TimeoutError(f"traffic to {self.url} still running after {timeout:.0f} s")

    def _claim(self) -> int | None:
        with self._lock:
            if self._next >= self.requests:
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        while not self._stop.is_set():
            index = self._claim()
            if index is None or time.monotonic() - self._started > self.max_seconds:
                return
            delay = self._started + index / self.rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            sent = time.time()
            status, color, version = request_once(self.url, self.host, self.timeout)
            with self._lock:
                self._answers.append(Answer(sent, time.time(), status, color, version))

    # reading ---------------------------------------------------------------

    def answers(self) -> list[Answer]:
        """Every answer so far, in the order the requests were sent."""
        with self._lock:
            return sorted(self._answers, key=lambda a: a.sent_at)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers() if a.failed]

    def colors(self, answers: Iterable[Answer] | None = None) -> Counter[str]:
        return Counter(a.color for a in (self.answers() if answers is None else answers))

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers())

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers() if start <= a.sent_at < end]

    def summary(self) -> str:
        answers = self.answers()
        failed = sum(a.failed for a in answers)
        colors = dict(Counter(a.color or "-" for a in answers if not a.failed))
        return f"{len(answers)} requests, {failed} failed, by colour {colors}"


@dataclass
class TrafficTally:
    """What every run of a test session sent, for the session's summary."""

    lines: list[str] = field(default_factory=list)
    requests: int = 0
    failed: int = 0

    def add(
        self, what: str, traffic: ProxyTraffic, detail: str = "", *, app_errors: bool = False
    ) -> None:
        """`app_errors`: the app answers errors on purpose in this run (a faulty candidate);
        those answers, which carry the app's colour, are not failed requests."""
        answers = traffic.answers()
        self.requests += len(answers)
        failed = [a for a in answers if a.failed and not (app_errors and a.color)]
        self.failed += len(failed)
        text = traffic.summary()
        if app_errors:
            own = sum(1 for a in answers if a.failed and a.color)
            text = (
                f"{len(answers)} requests, {len(failed)} failed, {own} answered with an error "
                "by the faulty candidate"
            )
        self.note(what, text + (f"; {detail}" if detail else ""))

    def note(self, what: str, text: str) -> None:
        self.lines.append(f"{what}: {text}")
        print(f"\n[data path] {what}: {text}")


TALLY = TrafficTally()


def all_moved_at(answers: list[Answer], color: str) -> float | None:
    """When every later request got `color`: the send time of the first answer after the
    last one of another colour (or failed). None if the traffic never settled on it."""
    settled: float | None = None
    for answer in answers:
        if answer.color == color and not answer.failed:
            if settled is None:
                settled = answer.sent_at
        else:
            settled = None
    return settled


def settled_on(traffic: ProxyTraffic, color: str, seconds: float) -> bool:
    """True once every request of the last `seconds` (at least) got `color`."""
    moved = all_moved_at(traffic.answers(), color)
    return moved is not None and time.time() - moved >= seconds


def wait_until_served(
    base_url: str, host: str, accept: Callable[[int, str], bool], timeout: float = 30.0
) -> None:
    """Send single requests until one answer satisfies accept(status, colour)."""
    check_target(base_url)
    deadline = time.monotonic() + timeout
    last: tuple[int, str, str] = (0, "", "")
    while time.monotonic() < deadline:
        last = request_once(base_url.rstrip("/") + "/", host, 2.0)
        if accept(last[0], last[1]):
            return
        time.sleep(0.1)
    raise AssertionError(f"{host} via {base_url} not served as expected in {timeout}s: {last}")
