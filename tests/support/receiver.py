"""A webhook receiver on loopback: a real HTTP server (threads) that records every POST and
answers as the test says: 200, another status, a redirect, or nothing at all for a while.

    with Receiver() as rx:
        rx.url + "/slack"                     # http://127.0.0.1:<port>/slack
        rx.answer = 500                       # every request from now on
        rx.hang = True                        # hold each request until released (or closed)
        rx.release()                          # let the held requests go (answered `answer`)
        rx.wait_for(3)                        # at least 3 requests arrived
        rx.received[0].json                   # path, headers, body of each, in order

A GET answers `health` (200 by default): the same server serves a web check in the cluster
tests. Nothing here sleeps for a fixed time; every wait has a bound.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.support.process import LOOPBACK

HANG_LIMIT = 60.0
"""A held request is answered after this long at most, released or not."""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    at: float
    """time.monotonic() when it arrived."""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.answer = 200
        self.location: str | None = None  # with a 3xx answer
        self.hang = False
        self.health = 200
        self.received: list[Received] = []
        self.answered = 0
        self._released = threading.Event()
        self._cv = threading.Condition()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def release(self) -> None:
        """Answer every held request now, and the ones to come at once."""
        self.hang = False
        self._released.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received)} requests arrived within {timeout}s, not {count}"
                    )
                self._cv.wait(left)
            return list(self.received)

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._cv:
            return [r.json for r in self.received if path is None or r.path == path]

    def _record(self, item: Received) -> None:
        with self._cv:
            self.received.append(item)
            self._cv.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(receiver.health, b"ok")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(Received(self.path, headers, body, time.monotonic()))
                if receiver.hang:
                    receiver._released.wait(HANG_LIMIT)
                status = receiver.answer
                self._send(status, b"ok" if status < 300 else b"receiver says no")
                with receiver._cv:
                    receiver.answered += 1

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    if 300 <= status < 400 and receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout): nothing to answer

        return Handler
