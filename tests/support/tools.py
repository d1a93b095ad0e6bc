"""The command-line tools tests run: helm (built into .cache/bin by `make setup`), promtool
(the Debian package's, beside Prometheus) and the Go programs of tools/gotools.py
(`go_tool("kstatus")`: built there if missing, its path returned).

    helm("lint", str(CHART), "--strict")
    helm("install", "bg", str(CHART), "--wait", kubeconfig=cluster.kubeconfig)
    docs = helm_template(CHART, "metrics.serviceMonitor.enabled=true")
    promtool("check", "rules", str(RULES))

Each returns the CompletedProcess (text). With `check` (the default) a non-zero exit fails
the test there, with the whole output; `check=False` is for tests of a failure.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from tools.gotools import build as build_go_tools
from tools.gotools import tool_bin
from tools.localcluster import helm_bin

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CHART_NAMESPACE = "bluegreen-system"


def run_tool(
    argv: Sequence[str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """helm, against `kubeconfig`'s cluster if given (`install --wait` takes minutes)."""
    options = ["--kubeconfig", str(kubeconfig)] if kubeconfig is not None else []
    return run_tool([str(helm_bin()), *options, *args], check=check, timeout=timeout)


def promtool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_tool([PROMTOOL, *args], check=check)


def helm_template(
    chart: Path, *sets: str, namespace: str = CHART_NAMESPACE
) -> list[dict[str, Any]]:
    """The documents `helm template` renders from `chart` with these `--set` values."""
    args = ["template", "bg", str(chart), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


@functools.cache
def go_tool(name: str) -> Path:
    """The binary of a tool of tools/gotools.py (registry, kstatus, argocd-lua, flux-health),
    built from the Go module proxy first if `make setup` has not built it yet."""
    build_go_tools([name])
    path = tool_bin(name)
    assert path.is_file(), f"tools/gotools.py built no {path}"
    return path
