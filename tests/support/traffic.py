"""A bounded traffic generator: one thread sends N requests at a fixed rate, then stops.

    with Traffic([green_url], requests=100, rate=50) as traffic:   # starts sending
        ...
    traffic.statuses          # Counter({200: 50, 500: 50}); the with-block waits for the end

Requests go round-robin over the given base URLs, one at a time, on schedule (request i is
sent at start + i / rate, or as soon as the previous one has answered if it is late). Only
loopback URLs are accepted: tests never send traffic anywhere else.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import urlsplit

from tests.support.demo_app import http_request

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class Traffic:
    def __init__(self, urls: Sequence[str], requests: int, rate: float, path: str = "/") -> None:
        if not urls:
            raise ValueError("no URL to send traffic to")
        for url in urls:
            if urlsplit(url).hostname not in LOOPBACK_HOSTS:
                raise ValueError(f"traffic goes to loopback only, not {url}")
        if requests < 0 or rate <= 0:
            raise ValueError("requests must be >= 0 and rate > 0")
        self.urls = list(urls)
        self.requests = requests
        self.rate = rate
        self.path = path
        self.statuses: Counter[int] = Counter()
        """Answers by HTTP status; connection failures count under 0."""
        self.finished_at: float | None = None
        """Unix time when the last request had its answer."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Counter[int]:
        """Wait until every request is sent (or stop() was called); the statuses."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"traffic still running after {timeout} s")
        return self.statuses

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.wait()
        else:
            self.stop()

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.requests):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            if self._stop.is_set():
                break
            url = self.urls[i % len(self.urls)] + self.path
            try:
                status = http_request("GET", url, timeout=5.0).status
            except OSError:
                status = 0
            self.statuses[status] += 1
        self.finished_at = time.time()


def send(urls: Sequence[str], requests: int, rate: float, path: str = "/") -> Traffic:
    """Send the traffic and return once it is all answered."""
    traffic = Traffic(urls, requests, rate, path).start()
    traffic.wait(timeout=requests / rate + 30)
    return traffic
