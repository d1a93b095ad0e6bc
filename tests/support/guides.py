"""Running a guide of docs/ as written: its files, and the commands of its steps, with the
real kubectl (and kubectl-bluegreen) of the virtualenv against the test's namespace.

A guide's YAML blocks that name a file on their first line (`# k8s/service.yaml`) are its
files; the sh blocks under its `## Step ...` headings are its steps, run in order by bash
in a folder that holds those files, with a kubeconfig whose namespace is the test's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client

from tests.support import docs

BIN = Path(sys.executable).parent


def files(page: Path) -> dict[str, str]:
    """The page's YAML blocks that name their file on their first line."""
    out = {}
    for block in docs.blocks(page, "yaml"):
        if match := re.fullmatch(r"# (\S+\.yaml)", block.splitlines()[0]):
            out[match.group(1)] = block
    return out


def steps(page: Path) -> list[str]:
    """The sh blocks under the page's `## Step` headings, in order."""
    text = page.read_text()
    headings = re.findall(r"^(## Step [^\n]+)$", text, re.M)
    return [
        b for h in headings for b in re.findall(r"```sh\n(.*?)```", docs.section(text, h), re.S)
    ]


def workspace(page: Path, kubeconfig: Path, namespace: str, folder: Path) -> Path:
    """`folder` with the page's files in it and a kubeconfig of the test's namespace; that
    kubeconfig's path is returned."""
    for name, body in files(page).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body)
    config = yaml.safe_load(kubeconfig.read_text())
    for ctx in config["contexts"]:
        if ctx["name"] == config["current-context"]:
            ctx["context"]["namespace"] = namespace
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def run(script: str, folder: Path, kubeconfig: Path, **env: str) -> str:
    """Run a step's commands with bash (stopping at the first that fails)."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env={
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"{script}\nexited with {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def ready_endpoints(api_client: client.ApiClient, namespace: str, service: str) -> set[str]:
    """The pods behind the Service's ready endpoints, now."""
    slices = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return {
        ep.target_ref.name
        for s in slices.items
        for ep in s.endpoints or []
        if ep.conditions is None or ep.conditions.ready is not False
    }
