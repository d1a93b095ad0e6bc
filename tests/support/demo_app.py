"""Run the demo app (app/bluegreen_demo) as a real process on a loopback port.

    with run_demo_app("blue", "v1") as url:          # url == "http://127.0.0.1:<port>"
        assert http_request("GET", url + "/").status == 200

`start_demo_app` is the same but yields a DemoApp, for tests that also need the process
(to signal it) or its log. Each call starts its own process, so a test can run one per
colour side by side.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.process import (  # noqa: F401 - free_port: tests imported it from here
    LOOPBACK,
    BackgroundProcess,
    free_port,
    on_a_free_port,
)

APP_DIR = Path(__file__).resolve().parents[2] / "app"

# Variables the app reads; inherited values are dropped so the caller's shell cannot leak in.
_APP_VARIABLES = ("APP_COLOR", "APP_VERSION", "HOST", "PORT", "ACCESS_LOG")


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> object:
        return json.loads(self.body)


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    *,
    context: ssl.SSLContext | None = None,
) -> Response:
    """One HTTP request; any status is returned (never raised), unlike urllib. An https://
    URL is asked with `context` (the CAs it trusts)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ValueError(f"expected an http(s):// URL, got {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Response(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=response.read(),
        )
    finally:
        connection.close()


def demo_app_env(
    color: str, version: str, port: int, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a demo app process: ours, minus app settings, plus the given ones."""
    result = {
        name: value
        for name, value in os.environ.items()
        if name not in _APP_VARIABLES and not name.startswith("FAULT_")
    }
    result.update(
        PYTHONPATH=str(APP_DIR),
        PYTHONDONTWRITEBYTECODE="1",  # like the image: no __pycache__ in the source tree
        PYTHONUNBUFFERED="1",
        APP_COLOR=color,
        APP_VERSION=version,
        HOST=LOOPBACK,
        PORT=str(port),
    )
    result.update(env or {})
    return result


def demo_app_command() -> list[str]:
    return [sys.executable, "-m", "bluegreen_demo"]


@dataclass
class DemoApp:
    """A running demo app process."""

    url: str
    port: int
    color: str
    version: str
    runner: BackgroundProcess
    """The process; its log is stdout and stderr (the JSON access log and any traceback)."""

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.runner.popen is not None
        return self.runner.popen

    @property
    def log_path(self) -> Path:
        return self.runner.log_path

    def logs(self) -> str:
        return self.runner.log()

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code (-9: it did not exit within
        `timeout` s and was killed)."""
        code = self.runner.stop(timeout)
        assert code is not None
        return code


@contextlib.contextmanager
def start_demo_app(
    color: str,
    version: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    *,
    startup_timeout: float = 20.0,
) -> Iterator[DemoApp]:
    """Start the app, wait until it answers /health (any status), yield it, stop it.

    Without a port, a free one is picked (and another one tried if it was taken by the time
    the app bound it). Startup failures raise RuntimeError with the app's output.
    """
    log_fd, log_name = tempfile.mkstemp(prefix=f"demo-app-{color}-", suffix=".log")
    os.close(log_fd)
    runner = BackgroundProcess("demo app", Path(log_name))
    app: DemoApp | None = None

    def start(port: int) -> None:
        nonlocal app
        full_env = demo_app_env(color, version, port, env)
        app = this = DemoApp(
            url=f"http://{LOOPBACK}:{port}",
            port=port,
            color=full_env["APP_COLOR"].strip() or "blue",  # what the app will say it is
            version=full_env["APP_VERSION"].strip() or "dev",
            runner=runner,
        )
        # A fresh log: the output of an earlier attempt goes.
        runner.start(demo_app_command(), cwd=APP_DIR, env=full_env, fresh_log=True)
        runner.wait_ready(lambda: _answers(this), startup_timeout)

    try:
        if port is None:
            on_a_free_port(start)
        else:
            start(port)
        assert app is not None
        yield app
    finally:
        runner.stop(timeout=5.0)
        runner.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def run_demo_app(
    color: str,
    version: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start the app as a process on 127.0.0.1 and yield its base URL (no trailing slash)."""
    with start_demo_app(color, version, port=port, env=env) as app:
        yield app.url


def _answers(app: DemoApp) -> bool:
    """Any status will do, 503 included (failing health may be the injected fault), but it
    must be this app answering, not another process that took the port."""
    response = http_request("GET", app.url + "/health", timeout=1.0)
    return response.headers.get("x-app-color") == app.color
