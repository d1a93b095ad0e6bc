"""The demo app's HTTP server: a coloured page, a health check, metrics and fault injection.

Standard library only, apart from prometheus-client. One thread per request
(ThreadingHTTPServer); SIGTERM and SIGINT stop accepting connections, let in-flight
requests finish (injected latency is cut short) and exit with status 0.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Final, TextIO, cast
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from bluegreen_demo.faults import ConfigError, FaultInjector, FaultSettings, parse_bool

ROUTES: Final = frozenset({"/", "/health", "/metrics", "/admin/faults"})
"""Route templates. Any other path is counted under OTHER_ROUTE, never under its own name,
so a scanner hitting random URLs cannot blow up the number of time series."""
OTHER_ROUTE: Final = "other"

MAX_BODY_BYTES: Final = 16 * 1024
BACKGROUNDS: Final = {"blue": "#1d4ed8", "green": "#15803d"}
"""Page background per colour; any other colour name gets a neutral grey."""
FALLBACK_BACKGROUND: Final = "#4b5563"

DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104 - in a pod the app must listen on the pod IP


@dataclass(frozen=True)
class AppConfig:
    """Everything the app reads from its environment."""

    color: str = "blue"
    version: str = "dev"
    host: str = ALL_INTERFACES
    port: int = 3000
    faults: FaultSettings = field(default_factory=FaultSettings)
    access_log: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AppConfig:
        """Read APP_COLOR, APP_VERSION, HOST, PORT, ACCESS_LOG and the FAULT_* variables."""
        color = env.get("APP_COLOR", "").strip() or "blue"
        version = env.get("APP_VERSION", "").strip() or "dev"
        host = env.get("HOST", "").strip() or ALL_INTERFACES
        port_text = env.get("PORT", "").strip() or "3000"
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"PORT must be a number, got {port_text!r}") from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"PORT must be between 0 and 65535, got {port}")
        return cls(
            color=color,
            version=version,
            host=host,
            port=port,
            faults=FaultSettings.from_env(env),
            access_log=parse_bool("ACCESS_LOG", env.get("ACCESS_LOG", ""), default=True),
        )


class AppMetrics:
    """The app's Prometheus metrics, in a registry of their own."""

    def __init__(self, color: str, version: str) -> None:
        self.color = color
        self.version = version
        # No `_created` series: they double the series count and no dashboard here uses them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status", "color", "version"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route", "color", "version"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.environment = Gauge(
            "bluegreen_environment_info",
            "Always 1; its labels say which colour and version this process serves.",
            ["color", "version"],
            registry=self.registry,
        )
        self.environment.labels(color, version).set(1)
        # Export the page's success and error series from the start, at zero: an error-rate
        # query then finds 0 errors for a healthy new colour instead of no data at all.
        for status in (HTTPStatus.OK, HTTPStatus.INTERNAL_SERVER_ERROR):
            self.requests.labels("GET", "/", str(status.value), color, version)
        self.duration.labels("GET", "/", color, version)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status), self.color, self.version).inc()
        self.duration.labels(method, route, self.color, self.version).observe(seconds)


class JsonLog:
    """One JSON object per line, for people and for log collectors alike."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def event(self, event: str, **fields: object) -> None:
        record: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
        }
        record.update(fields)
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # nowhere to log to (closed or broken stdout): serving matters more


class DemoServer(ThreadingHTTPServer):
    """The HTTP server with the app's state: config, faults, metrics and log."""

    daemon_threads = False
    """server_close() waits for in-flight requests, so a shutdown finishes them."""
    block_on_close = True

    def __init__(self, config: AppConfig, log_stream: TextIO | None = None) -> None:
        self.config = config
        self.faults = FaultInjector(config.faults)
        self.metrics = AppMetrics(config.color, config.version)
        self.log = JsonLog(log_stream if log_stream is not None else sys.stdout)
        self.stopping = threading.Event()
        """Set when shutdown begins; cuts injected latency short."""
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        super().__init__((config.host, config.port), DemoRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class DemoRequestHandler(BaseHTTPRequestHandler):
    server_version = "bluegreen-demo"
    timeout = 30
    """Socket timeout: an idle or slow client cannot hold a thread, or a shutdown, forever."""

    _status: int = 0

    def version_string(self) -> str:
        return self.server_version

    @property
    def app(self) -> DemoServer:
        return cast(DemoServer, self.server)

    # Every method goes through one dispatcher, so every answer is counted. The method
    # label stays bounded: only these methods reach it (others get 501 from http.server).
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        route = path if path in ROUTES else OTHER_ROUTE
        self._status = 0
        try:
            self._route(route)
        except OSError:
            pass  # the client went away; what was decided is still counted below
        except Exception as error:  # noqa: BLE001 - any handler failure becomes a 500
            self.app.log.event("error", path=self.path, error=repr(error))
            if not self._status:
                with contextlib.suppress(OSError):
                    self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")
        finally:
            seconds = time.perf_counter() - started
            status = self._status or HTTPStatus.INTERNAL_SERVER_ERROR.value
            self.app.metrics.observe(self.command, route, status, seconds)
            if self.app.config.access_log:
                self.app.log.event(
                    "request",
                    method=self.command,
                    path=self.path[:256],
                    route=route,
                    status=status,
                    durationMs=round(seconds * 1000, 3),
                    remote=self.client_address[0],
                )

    def _route(self, route: str) -> None:
        method = self.command
        read_only = method in {"GET", "HEAD"}
        if route == "/" and read_only:
            self._page()
        elif route == "/health" and read_only:
            self._health()
        elif route == "/metrics" and read_only:
            self._metrics()
        elif route == "/admin/faults" and read_only:
            self._send_json(HTTPStatus.OK, self.app.faults.settings.to_json())
        elif route == "/admin/faults" and method == "POST":
            self._change_faults()
        elif route == OTHER_ROUTE:
            self._send_text(HTTPStatus.NOT_FOUND, "not found\n")
        else:
            allow = "GET, HEAD, POST" if route == "/admin/faults" else "GET, HEAD"
            self._send_text(
                HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n", headers={"Allow": allow}
            )

    def _page(self) -> None:
        app = self.app
        fails = app.faults.next_request_fails()
        latency_ms = app.faults.settings.latency_ms
        if latency_ms:
            app.stopping.wait(latency_ms / 1000)
        if fails:
            self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR, "injected fault: error\n")
            return
        body = render_page(app.config.color, app.config.version)
        self._send(HTTPStatus.OK, body.encode(), "text/html; charset=utf-8")

    def _health(self) -> None:
        if self.app.faults.settings.health_fail:
            self._send_text(HTTPStatus.SERVICE_UNAVAILABLE, "unhealthy: injected fault\n")
        else:
            self._send_text(HTTPStatus.OK, "ok\n")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._send(HTTPStatus.OK, encoder(self.app.metrics.registry), content_type)

    def _change_faults(self) -> None:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._send_json(
                HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length header is required"}
            )
            return
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "invalid Content-Length"})
            return
        if length > MAX_BODY_BYTES:
            self._send_json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"body larger than {MAX_BODY_BYTES} bytes"},
            )
            return
        raw = self.rfile.read(length)
        try:
            payload: object = json.loads(raw)
        except ValueError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"body is not valid JSON: {error}"})
            return
        try:
            settings = self.app.faults.update(payload)
        except ConfigError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self.app.log.event("faults", remote=self.client_address[0], **settings.to_json())
        self._send_json(HTTPStatus.OK, settings.to_json())

    def _send_text(
        self, status: HTTPStatus, text: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers)

    def _send_json(self, status: HTTPStatus, document: Mapping[str, object]) -> None:
        body = (json.dumps(document) + "\n").encode()
        self._send(status, body, "application/json")

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._status = status.value
        config = self.app.config
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # Load generators and switch benchmarks read these instead of parsing the page.
        self.send_header("X-App-Color", config.color)
        self.send_header("X-App-Version", config.version)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log is written by _dispatch, with the route and the duration."""

    def log_message(self, format: str, *args: object) -> None:
        # Reached for protocol errors answered by http.server itself (bad request line...).
        self.app.log.event("http", message=format % args, remote=self.client_address[0])


def render_page(color: str, version: str) -> str:
    """The HTML page: the colour's name and the version, on the colour's background."""
    background = BACKGROUNDS.get(color.lower(), FALLBACK_BACKGROUND)
    color_html = html.escape(color)
    version_html = html.escape(version)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{color_html} {version_html} - bluegreen demo</title>
<style>
  body {{ margin: 0; min-height: 100vh; display: flex; align-items: center;
         justify-content: center; background: {background}; color: #fff;
         font-family: system-ui, sans-serif; text-align: center; }}
  h1 {{ font-size: 5rem; margin: 0; text-transform: uppercase; letter-spacing: .1em; }}
  p {{ font-size: 1.5rem; }}
</style>
</head>
<body data-color="{color_html}" data-version="{version_html}">
<main>
<h1>{color_html}</h1>
<p>version <code>{version_html}</code></p>
</main>
</body>
</html>
"""


class _StopFlag:
    """Set from a signal handler. Only a plain assignment happens there: taking a lock in a
    signal handler can deadlock against the very thread it interrupted."""

    def __init__(self) -> None:
        self.signal_name = ""

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name


def serve(config: AppConfig) -> int:
    """Serve until SIGTERM or SIGINT, then shut down gracefully. Returns the exit status."""
    server = DemoServer(config)
    stop = _StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, name="http-server")
    thread.start()
    server.log.event(
        "listening",
        host=config.host,
        port=server.port,
        color=config.color,
        version=config.version,
        faults=config.faults.to_json(),
    )
    try:
        while not stop.signal_name and thread.is_alive():
            time.sleep(0.05)
    finally:
        server.stopping.set()
        server.shutdown()  # stop accepting; returns once serve_forever has returned
        server.server_close()  # waits for the requests still being answered
        thread.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stop.signal_name:
        server.log.event("stopped", reason="server thread ended unexpectedly")
        return 1
    server.log.event("stopped", reason=stop.signal_name)
    return 0


def main() -> int:
    try:
        config = AppConfig.from_env(os.environ)
    except ConfigError as error:
        print(f"bluegreen-demo: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        return serve(config)
    except OSError as error:
        print(
            f"bluegreen-demo: cannot serve on {config.host}:{config.port}: {error}",
            file=sys.stderr,
        )
        return 1
