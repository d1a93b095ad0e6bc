"""One program run in the background by a test, with its output in a log file.

    server = BackgroundProcess("moto server", workdir / "moto.log")
    server.start([sys.executable, "-m", "moto.server", "-p", str(port)], cwd=workdir)
    server.wait_ready(lambda: http_request("GET", url).status == 200, timeout=20)
    ...
    server.stop()                    # SIGTERM, then SIGKILL if it has not exited in time

Every process a test starts goes through this class: the moto server, Prometheus, the demo
app and the operator (`kopf run`). One object may be started again after it stopped (an
operator restart, a Prometheus outage); the log then grows, each start appending to it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port that was free a moment ago (another process may take it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def other_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (iproute2's JSON), if any: what
    a server bound to loopback only must not answer on."""
    ip = shutil.which("ip")
    if ip is None:
        return None
    out = subprocess.run([ip, "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    for link in json.loads(out.stdout):
        for addr in link.get("addr_info") or []:
            if addr.get("scope") == "global":
                return str(addr["local"])
    return None


def connects(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def on_a_free_port(
    start: Callable[[int], None], attempts: int = 3, *, first: int | None = None
) -> int:
    """Call `start(port)` with a free port (`first`, if given), and again with another one
    while what it started exits because the port was taken meanwhile (ProcessExitedError,
    "address already in use" in its output); returns the port it started on."""
    port = first or free_port()
    for _ in range(attempts - 1):
        try:
            start(port)
        except ProcessExitedError as exited:
            if "address already in use" not in exited.output.lower():
                raise
            port = free_port()
        else:
            return port
    start(port)
    return port


class ProcessExitedError(RuntimeError):
    """The process exited before it was ready."""

    def __init__(self, message: str, code: int, output: str) -> None:
        super().__init__(message)
        self.code = code
        self.output = output
        """What the process wrote to its log since this start."""


class BackgroundProcess:
    """A subprocess whose stdout and stderr go to `log_path`; `name` is for messages."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the output of the latest start begins in the log

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str,
        env: Mapping[str, str] | None = None,
        fresh_log: bool = False,
        banner: str = "",
    ) -> subprocess.Popen[bytes]:
        """Start `argv`; its output is appended to the log (`fresh_log`: replaces the log),
        after `banner`. `env` is the whole environment (None: this process's)."""
        assert not self.running, f"{self.name} is already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb" if fresh_log else "ab") as log:
            log.write(banner.encode())
            log.flush()
            self._log_offset = log.tell()
            self.popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.popen

    def wait_ready(
        self, ready: Callable[[], object], timeout: float, *, interval: float = 0.05
    ) -> None:
        """Call `ready` until it returns something truthy (an OSError counts as not yet).

        ProcessExitedError if the process exits first; RuntimeError after `timeout` seconds,
        with the process killed. Both messages end with the log's tail.
        """
        assert self.popen is not None, f"{self.name} was never started"
        deadline = time.monotonic() + timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                raise ProcessExitedError(
                    f"{self.name} exited with {code} during startup; see {self.log_path}:\n"
                    + self.tail(),
                    code,
                    self.output(),
                )
            with contextlib.suppress(OSError):
                if ready():
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"{self.name} not ready after {timeout} s; see {self.log_path}:\n" + self.tail()
                )
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout` s for the exit, then SIGKILL. The exit code (negative:
        the signal that ended it), None if it was never started."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def log(self) -> str:
        """The whole log ("" before the first start)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output(self) -> str:
        """The log written since the latest start."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def tail(self, lines: int = 60) -> str:
        """The last `lines` lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:])
