"""`KUBECONFIG=... make test`: the tests on a cluster of someone else's.

- `make setup` builds nothing of the local control plane (etcd, the kube binaries, kwok),
  only the tools the tests run (helm, the registry, kstatus, gopher-lua, ...);
- the `crd` fixture does not replace a BlueGreenApp CRD that differs from the project's,
  unless BLUEGREEN_TEST_INSTALL_CRD=1. Proven against the local control plane, reached the
  way another cluster is: through KUBECONFIG.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tools.argorollouts import VERSION as ARGO_ROLLOUTS_VERSION
from tools.gotools import TOOLS
from tools.localcluster import HELM_VERSION, bin_dir

from tests.support.apps import (
    CRD_PATH,
    INSTALL_CRD_ENV,
    CrdDiffersError,
    crd_may_be_replaced,
    install_crd,
)
from tests.support.cluster import REPO, Cluster, cluster_session

CONTROL_PLANE = ("k8s-", "etcd-", "kwok-")


def test_make_setup_with_kubeconfig_builds_no_control_plane(tmp_path: Path) -> None:
    """`make binaries` (what `make setup`, and so `make test`, runs) with KUBECONFIG set, in a
    cache that holds the other tools and nothing of the control plane: it succeeds and the
    cache still holds nothing of the control plane."""
    cache = tmp_path / "cache"
    (cache / "bin").mkdir(parents=True)
    tools = [("helm", HELM_VERSION), ("argo-rollouts", ARGO_ROLLOUTS_VERSION)]
    for name, version in tools + [(t.name, t.version) for t in TOOLS.values()]:
        built = bin_dir(name, version)
        assert built.is_dir(), f"{built} is missing: run `make setup` first"
        (cache / "bin" / built.name).symlink_to(built)
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "someone-elses-kubeconfig"),
        "BLUEGREEN_CACHE": str(cache),
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "binaries"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the local control plane is not built" in result.stdout
    made = sorted(p.name for p in (cache / "bin").iterdir())
    assert not [m for m in made if m.startswith(CONTROL_PLANE)], made
    assert "go build" not in result.stderr, result.stderr


def test_make_setup_without_kubeconfig_builds_the_control_plane() -> None:
    """The other branch, as make prints it: the local control plane's build is still there."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "binaries"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "tools/localcluster.py build" in dry
    assert "tools/gotools.py build" in dry


# --------------------------------------------------------------------------- the CRD


@pytest.fixture
def through_kubeconfig(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The local control plane, as the tests see a cluster that KUBECONFIG names."""
    assert cluster.local
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv(INSTALL_CRD_ENV, raising=False)
    with cluster_session() as other:
        assert not other.local and other.kubeconfig == cluster.kubeconfig
        return other


def _categories(api_client: client.ApiClient) -> list[str]:
    crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(
        "bluegreenapps.bluegreen.dev"
    )
    return list(crd.spec.names.categories or [])


@pytest.mark.cluster
def test_a_differing_crd_is_replaced_only_when_asked(
    through_kubeconfig: Cluster, api_client: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = yaml.safe_load(CRD_PATH.read_text())["spec"]["names"]["categories"]
    install_crd(api_client)  # the project's, as the session's fixture left it
    assert not crd_may_be_replaced(through_kubeconfig.local)
    assert install_crd(api_client, replace=False) == "unchanged"

    # Someone else's version of the CRD: one more category (harmless to the other tests).
    ext = client.ApiextensionsV1Api(api_client)
    ext.patch_custom_resource_definition(
        "bluegreenapps.bluegreen.dev",
        [{"op": "add", "path": "/spec/names/categories/-", "value": "theirs"}],
    )
    try:
        with pytest.raises(CrdDiffersError) as refused:
            install_crd(api_client, replace=crd_may_be_replaced(through_kubeconfig.local))
        message = str(refused.value)
        assert "spec.names.categories: differs" in message
        assert f"{INSTALL_CRD_ENV}=1" in message
        assert _categories(api_client) == [*ours, "theirs"], "the CRD was replaced"

        monkeypatch.setenv(INSTALL_CRD_ENV, "1")
        assert crd_may_be_replaced(through_kubeconfig.local)
        assert install_crd(api_client, replace=True) == "replaced"
        assert _categories(api_client) == ours
        assert install_crd(api_client, replace=False) == "unchanged"
    finally:
        install_crd(api_client)
