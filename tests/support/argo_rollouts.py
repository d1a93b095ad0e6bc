"""The Argo Rollouts controller, the benchmark peer, run as its own process out of cluster.

The binary is built by `make setup` (tools/argorollouts.py, cached in .cache/bin); its CRDs
are read from the Go module cache (the module's manifests/crds/), never from this
repository. The controller runs namespaced (`--namespaced --namespace=NS`), without leader
election, with its metrics and healthz servers on free ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import REPO
from tests.support.operator import free_port
from tests.support.waiting import wait_for

TOOL = REPO / "tools" / "argorollouts.py"
GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"


def _tool(command: str) -> str:
    out = subprocess.run(
        [sys.executable, str(TOOL), command],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tools/argorollouts.py {command} failed:\n{out.stdout}{out.stderr}")
    return out.stdout.strip()


@cache
def binary() -> Path:
    path = Path(_tool("path"))
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: `make setup` builds it (python3 tools/argorollouts.py build)"
        )
    return path


@cache
def version() -> str:
    return _tool("version")


def install_crds(api_client: client.ApiClient) -> list[str]:
    """Create or update every CRD of the release (module cache) and wait until served."""
    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(Path(_tool("crds")).glob("*-crd.yaml")):
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        names.append(name)
        try:
            current = ext.read_custom_resource_definition(name)
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, body)
        except ApiException as err:
            if err.status != 404:
                raise
            ext.create_custom_resource_definition(body)

    def established() -> bool:
        for name in names:
            crd = ext.read_custom_resource_definition(name)
            if not any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            ):
                return False
        return True

    wait_for("the Argo Rollouts CRDs to be established", established, timeout=30)
    return names


class ArgoRolloutsProcess:
    """One rollouts-controller process acting on the Rollouts of one namespace."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        namespace: str,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.namespace = namespace
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.healthz_port = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"argo-rollouts-{self.namespace}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            str(binary()),
            f"--kubeconfig={self.kubeconfig}",
            "--namespaced",
            f"--namespace={self.namespace}",
            "--leader-elect=false",
            # Its servers listen on all interfaces (the address is fixed in its source):
            # free ports, so nothing collides with another process on this machine.
            f"--metricsPort={self.metrics_port}",
            f"--healthzPort={self.healthz_port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        self.healthz_port = free_port()
        log = self.log_path.open("ab")
        log.write(f"\n=== start at {time.time():.3f}: {' '.join(self.command())}\n".encode())
        log.flush()
        # Its notification settings are read from the namespace it runs in.
        env = {**os.environ, "POD_NAMESPACE": self.namespace}
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rollouts-controller exited at start:\n{self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.healthz_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"rollouts-controller was not healthy in {timeout}s:\n{self.tail()}")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
