"""The published chart's path, end to end on this machine: an OCI registry, helm push,
helm install oci://, and a release run through the installed chart's RBAC.

The registry is CNCF distribution's (tools/registry, built from the Go module proxy) on a
loopback port with plain HTTP. The chart is packaged the way the release workflow packages
it (tools/package_chart.py: the release's image digest baked into values.yaml), so the
installed Deployment runs `repository@digest` with no value set at install time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tools.package_chart import package

from tests.support.chart import (
    Release,
    install_chart,
    new_namespace,
    release_as_service_account,
    service_account_kubeconfig,
    uninstall_chart,
)
from tests.support.cluster import REPO, Cluster
from tests.support.process import LOOPBACK, BackgroundProcess, on_a_free_port
from tests.support.tools import go_tool, helm, helm_bin

pytestmark = pytest.mark.cluster

LOGS = REPO / ".cache" / "test-logs"
VERSION = "0.1.0"
# The image as a release names it; kwok runs the pods without pulling anything.
IMAGE = "ghcr.io/bluegreen-dev/bluegreen-operator"
DIGEST = "sha256:" + hashlib.sha256(b"bluegreen-operator " + VERSION.encode()).hexdigest()


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            f"http://{self.host}{path}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    process = BackgroundProcess("the OCI registry", LOGS / "oci-registry.log")

    def start(port: int) -> None:
        cfg = root / "config.yml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
                    "http": {"addr": f"{LOOPBACK}:{port}"},
                }
            )
        )
        process.start(
            [str(go_tool("registry")), "serve", str(cfg)],
            cwd=root,
            # No trace exporter: nothing leaves the machine, not even to a local collector.
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
            fresh_log=True,
        )
        process.wait_ready(lambda: Registry(f"{LOOPBACK}:{port}").get("/v2/")[0] == 200, 20)

    port = on_a_free_port(start)
    yield Registry(f"{LOOPBACK}:{port}")
    process.stop()


@dataclass(frozen=True)
class Pushed:
    ref: str  # oci://127.0.0.1:PORT/charts/bluegreen-operator
    digest: str  # of the chart's OCI manifest


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """The chart, packaged with the image digest and pushed."""
    out = tmp_path_factory.mktemp("chart")
    tgz = package(version=VERSION, repository=IMAGE, digest=DIGEST, out=out, helm=str(helm_bin()))
    push = helm("push", str(tgz), f"oci://{registry.host}/charts", "--plain-http")
    text = push.stdout + push.stderr
    assert f"Pushed: {registry.host}/charts/bluegreen-operator:{VERSION}" in text, text
    chart_digest = re.search(r"Digest: (sha256:[a-f0-9]{64})", text)
    assert chart_digest, text
    # The registry serves it as an OCI artifact of Helm's media types.
    status, headers, body = registry.get(f"/v2/charts/bluegreen-operator/manifests/{VERSION}")
    assert status == 200 and headers["Docker-Content-Digest"] == chart_digest.group(1)
    manifest = json.loads(body)
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    ]
    return Pushed(f"oci://{registry.host}/charts/bluegreen-operator", chart_digest.group(1))


def test_the_pushed_chart_carries_the_image_digest(pushed: Pushed) -> None:
    shown = helm("show", "values", pushed.ref, "--version", VERSION, "--plain-http").stdout
    image = yaml.safe_load(shown)["image"]
    assert image == {
        "repository": IMAGE,
        "tag": "",
        "digest": DIGEST,
        "pullPolicy": "IfNotPresent",
    }
    chart = yaml.safe_load(
        helm("show", "chart", pushed.ref, "--version", VERSION, "--plain-http").stdout
    )
    assert chart["version"] == chart["appVersion"] == VERSION
    # Named by its digest (docs/install.md pins the chart that way), the same chart renders.
    rendered = helm(
        "template", "bluegreen-operator", f"{pushed.ref}@{pushed.digest}", "--plain-http"
    ).stdout
    assert f'image: "{IMAGE}@{DIGEST}"' in rendered


@pytest.fixture(scope="module")
def installed(
    pushed: Pushed, cluster: Cluster, api_client: client.ApiClient, crd: None
) -> Iterator[Release]:
    ns = new_namespace(api_client, "oci")
    release = install_chart(
        cluster,
        pushed.ref,
        ns,
        peering=f"bluegreen-{ns}",
        replicas=1,
        options=["--version", VERSION, "--plain-http"],
    )
    yield release
    uninstall_chart(cluster, api_client, release)


def test_helm_install_from_the_registry_runs_the_pinned_image_and_releases(
    installed: Release, cluster: Cluster, api_client: client.ApiClient, tmp_path: Path
) -> None:
    deploy = next(
        d for d in yaml.safe_load_all(installed.manifest) if d and d["kind"] == "Deployment"
    )
    live = client.AppsV1Api(api_client).read_namespaced_deployment(
        deploy["metadata"]["name"], installed.namespace
    )
    (container,) = live.spec.template.spec.containers
    assert container.image == f"{IMAGE}@{DIGEST}"
    assert container.image_pull_policy == "IfNotPresent"
    assert live.status.ready_replicas == 1
    history = json.loads(
        helm(
            *("history", installed.name, "--namespace", installed.namespace, "-o", "json"),
            kubeconfig=cluster.kubeconfig,
        ).stdout
    )
    assert [(h["chart"], h["status"]) for h in history] == [
        (f"bluegreen-operator-{VERSION}", "deployed")
    ]

    # The installed chart's ServiceAccount and ClusterRole carry a whole release.
    kubeconfig = service_account_kubeconfig(api_client, cluster, installed, tmp_path / "kubeconfig")
    done = release_as_service_account(kubeconfig, api_client, LOGS, prefix="ocirbac")
    assert (done["phase"], done["activeColor"]) == ("Healthy", "green")
