"""The real operator, run as its own process (`kopf run`), as tests drive it.

Tests never import the handlers into their own process: they start `kopf run -m
bluegreen.runtime.handlers` with the cluster's kubeconfig, and may SIGKILL and restart it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.support.cluster import REPO
from tests.support.process import LOOPBACK, BackgroundProcess, free_port

TEST_HOST = "localhost"
"""The name the tests' operators reach loopback servers by (Prometheus, demo apps, the
proxy). The operator refuses loopback IP addresses whatever its policy says; a name is
checked against the policy like any other, and the tests' operators allow this one."""
ANALYSIS_POLICY = {
    "BLUEGREEN_ANALYSIS_PROMETHEUS_ALLOWED": f"{TEST_HOST},*.svc,*.svc.cluster.local",
    "BLUEGREEN_ANALYSIS_WEB_ALLOWED": f"{TEST_HOST},*.svc,*.svc.cluster.local",
}

INGRESS_POLICY = {
    "BLUEGREEN_INGRESS_ALLOWED_CLASSES": "nginx",
    "BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS": "nginx.ingress.kubernetes.io/proxy-next-upstream",
}
"""What the tests' apps put into their Ingresses (the data path's class, and no retries:
tests/support/datapath.py), allowed as an administrator would; tests of the Ingress guard
start operators with other settings."""


def for_operator(url: str) -> str:
    """A loopback URL as the tests' operators are allowed to reach it (by name)."""
    return url.replace(f"//{LOOPBACK}:", f"//{TEST_HOST}:", 1)


class OperatorProcess:
    """One `kopf run` process watching the namespaces that match `namespaces` (empty: no
    `--namespace` of its own; `kopf_args` say which, e.g. a chart's `--namespace` flags).

    `env` is added to this process's environment; `kopf_args` say how it runs beside
    other operators (`--standalone`: alone, no peering); `log_name` is its log's file name
    in `log_dir` (by default, named after `namespaces`); `source` is a directory holding
    the `bluegreen` package to run instead of this checkout's (a previous version's, as
    `tests/support/previous.py` extracts it from git).
    """

    stop_timeout = 15.0
    """Seconds from SIGTERM to SIGKILL in `stop`."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        namespaces: str,
        env: dict[str, str] | None = None,
        *,
        kopf_args: Sequence[str] = ("--standalone",),
        log_name: str | None = None,
        source: Path | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        if source is not None:
            # Ahead of the editable install of this checkout on sys.path.
            self.extra_env["PYTHONPATH"] = str(source)
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.namespaces = namespaces
        self.kopf_args = list(kopf_args)
        self.log_name = log_name or f"operator-{namespaces.strip('*-') or 'all'}.log"
        self.starts = 0
        self.metrics_port = 0
        self._process = BackgroundProcess("the operator", self.log_path)

    @property
    def log_path(self) -> Path:
        return self.log_dir / self.log_name

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self._process.popen

    def start(self, timeout: float = 90.0) -> None:
        """Start it and wait until kopf's liveness endpoint answers."""
        liveness = f"http://{LOOPBACK}:{free_port()}/healthz"
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BLUEGREEN_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            **ANALYSIS_POLICY,
            **INGRESS_POLICY,
            **self.extra_env,
        }
        self._process.start(
            [
                *(sys.executable, "-m", "kopf", "run", "-m", "bluegreen.runtime.handlers"),
                *self.kopf_args,
                *([f"--namespace={self.namespaces}"] if self.namespaces else []),
                f"--liveness={liveness}",
            ],
            cwd=REPO,
            env=env,
            banner=f"\n=== start #{self.starts + 1} at {time.time():.3f}\n",
        )
        self.starts += 1
        self._process.wait_ready(lambda: _answers(liveness), timeout, interval=0.1)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no last status write."""
        self._process.kill()

    def stop(self) -> None:
        """SIGTERM (kopf's graceful shutdown), SIGKILL after `stop_timeout` s."""
        self._process.stop(self.stop_timeout)

    def tail(self, lines: int = 60) -> str:
        return self._process.tail(lines)


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1):
        return True
