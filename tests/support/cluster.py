"""Access to the cluster the tests run against.

`KUBECONFIG` given: that cluster (kind, EKS, anything). Otherwise the local control plane
of tools/localcluster.py is started once per test session, and stopped at the end if this
session started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCALCLUSTER = REPO / "tools" / "localcluster.py"
CLUSTER_DIR = Path(os.environ.get("BLUEGREEN_CLUSTER_DIR", REPO / ".cache" / "cluster"))
"""The local control plane's state; in the data path's namespace, tools/netns.py moves it."""
LOG_DIR = CLUSTER_DIR / "logs"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    local: bool  # True when this is the local control plane (its logs are in LOG_DIR)


def _localcluster(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOCALCLUSTER), command],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def cluster_session() -> Iterator[Cluster]:
    given = os.environ.get("KUBECONFIG")
    if given:
        yield Cluster(kubeconfig=Path(given), local=False)
        return
    was_running = _localcluster("status").returncode == 0
    result = _localcluster("up")
    if result.returncode != 0:
        raise RuntimeError(
            "the local control plane did not start:\n" + result.stdout + result.stderr
        )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("export KUBECONFIG="))
    path = Path(line.split("=", 1)[1])
    try:
        yield Cluster(kubeconfig=path, local=True)
    finally:
        if not was_running and not os.environ.get("BLUEGREEN_KEEP_CLUSTER"):
            _localcluster("down")


def component_logs(tail: int = 40) -> str:
    """The last lines of every local component's log, for failure reports."""
    if not LOG_DIR.is_dir():
        return ""
    parts = []
    for log in sorted(LOG_DIR.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        parts.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts)
