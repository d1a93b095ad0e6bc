"""Faults of AWS APIs on loopback, for the adapters' tests against moto (tests/support/moto.py).

moto answers like AWS but never throttles and never hangs. These stand-ins add what it
cannot do:

    with FaultProxy(moto, fail_first=2) as proxy:       # the first 2 requests: Throttling
        client = ...(endpoint_url=proxy.url)
        proxy.requests                                   # requests on the wire, retries included
    with silent_server() as url: ...                     # accepts, never answers
    isolated_aws_env(monkeypatch, tmp_path)              # dummy credentials, nothing else

An AWS error is written as the service's protocol writes it: `json` (ECR: awsJson1.1) or
`json-query` (CloudWatch: awsJson1.0, the protocol botocore picks among those CloudWatch
offers, with the header that carries its query-compatible error code).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest

from tests.support.process import LOOPBACK

Protocol = Literal["json", "json-query"]


def error_response(
    protocol: Protocol, error_type: str, message: str
) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body of an AWS error in `protocol`."""
    body = json.dumps({"__type": error_type, "message": message}).encode()
    if protocol == "json":
        return [("Content-Type", "application/x-amz-json-1.1")], body
    return [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-query-error", f"{error_type};Sender"),
    ], body


class FaultProxy:
    """A loopback HTTP proxy in front of `upstream` that counts every request and answers the
    first `fail_first` of them itself: HTTP `status` with an AWS error in `protocol`."""

    def __init__(
        self,
        upstream: str,
        fail_first: int = 0,
        error_type: str = "ThrottlingException",
        message: str = "Rate exceeded",
        status: int = 400,
        *,
        protocol: Protocol = "json",
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.fail_first = fail_first
        self.error_headers, self.error = error_response(protocol, error_type, message)
        self.status = status
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.requests += 1
                    fail = proxy.requests <= proxy.fail_first
                if fail:
                    self._answer(proxy.status, proxy.error_headers, proxy.error)
                else:
                    self._answer(*proxy._forward(self.command, self.path, dict(self.headers), body))

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.upstream.hostname or LOOPBACK, self.upstream.port, timeout=10
        )
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers; yields its URL."""
    listener = socket.create_server((LOOPBACK, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                accepted.append(connection)

    listener.settimeout(0.1)
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only: nothing from the developer's ~/.aws, no instance metadata,
    no region (tests name one where they need it)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
