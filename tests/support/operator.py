"""The real operator, run as its own process (`kopf run`), as tests drive it.

Tests never import the handlers into their own process: they start `kopf run -m
bluegreen.runtime.handlers` with the cluster's kubeconfig, and may SIGKILL and restart it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.cluster import REPO


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """One `kopf run` process watching the namespaces that match `namespaces`."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        namespaces: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.namespaces = namespaces
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.namespaces.strip('*-') or 'all'}.log"

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        liveness = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BLUEGREEN_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        log.write(f"\n=== start #{self.starts + 1} at {time.time():.3f}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "-m",
                "bluegreen.runtime.handlers",
                "--standalone",
                f"--namespace={self.namespaces}",
                f"--liveness=http://127.0.0.1:{liveness}/healthz",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the operator exited at start; see {self.log_path}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the operator did not become live in {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no last status write."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
