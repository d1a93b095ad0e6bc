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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

APP_DIR = Path(__file__).resolve().parents[2] / "app"
LOOPBACK = "127.0.0.1"

# Variables the app reads; inherited values are dropped so the caller's shell cannot leak in.
_APP_VARIABLES = ("APP_COLOR", "APP_VERSION", "HOST", "PORT", "ACCESS_LOG")
_PORT_ATTEMPTS = 3


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
) -> Response:
    """One HTTP request; any status is returned (never raised), unlike urllib."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"expected an http:// URL, got {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
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


def free_port() -> int:
    """A port that was free a moment ago (start_demo_app retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


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
    process: subprocess.Popen[bytes]
    log_path: Path
    """stdout and stderr of the process (the JSON access log and any traceback)."""

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code (kills it after timeout)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


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
    log_path = Path(log_name)
    app: DemoApp | None = None
    try:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            app = _launch(color, version, port or free_port(), env, log_path)
            try:
                _wait_until_serving(app, startup_timeout)
                break
            except _PortTakenError:
                if port is not None or attempt == _PORT_ATTEMPTS:
                    raise RuntimeError(
                        f"demo app could not bind port {app.port}:\n{app.logs()}"
                    ) from None
        assert app is not None
        yield app
    finally:
        if app is not None and app.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                app.terminate()
        log_path.unlink(missing_ok=True)


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


class _PortTakenError(Exception):
    pass


def _launch(
    color: str, version: str, port: int, env: Mapping[str, str] | None, log_path: Path
) -> DemoApp:
    full_env = demo_app_env(color, version, port, env)
    with log_path.open("wb") as log:  # truncates the output of an earlier attempt
        process = subprocess.Popen(
            demo_app_command(),
            cwd=APP_DIR,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return DemoApp(
        url=f"http://{LOOPBACK}:{port}",
        port=port,
        color=full_env["APP_COLOR"].strip() or "blue",  # what the app will say it is
        version=full_env["APP_VERSION"].strip() or "dev",
        process=process,
        log_path=log_path,
    )


def _wait_until_serving(app: DemoApp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = app.process.poll()
        if code is not None:
            output = app.logs()
            if "Address already in use" in output:
                raise _PortTakenError
            raise RuntimeError(f"demo app exited with {code} during startup:\n{output}")
        try:
            response = http_request("GET", app.url + "/health", timeout=1.0)
        except OSError:
            pass
        else:
            # Any status will do, 503 included (failing health may be the injected fault),
            # but it must be this app answering, not another process that took the port.
            if response.headers.get("x-app-color") == app.color:
                return
        if time.monotonic() > deadline:
            app.process.kill()
            app.process.wait()
            raise RuntimeError(f"demo app not serving after {timeout} s:\n{app.logs()}")
        time.sleep(0.05)
