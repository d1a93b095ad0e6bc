"""The benchmark peer builds and runs, and the external harness times both controllers.

One app per controller: created, then released once, through tests/bench/harness.py, on
the test's control plane. Nothing here asserts a duration: the timings are printed (the
speed targets are checked by `make bench`), only that each was recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.bench.harness import ArgoPeer, BlueGreenPeer, Peer, Session
from tests.support import argo_rollouts
from tests.support.cluster import REPO, Cluster

LOGS = REPO / ".cache" / "test-logs"


@pytest.fixture(scope="module")
def argo_crds(api_client: client.ApiClient) -> list[str]:
    return argo_rollouts.install_crds(api_client)


@pytest.fixture
def session(
    request: pytest.FixtureRequest,
    cluster: Cluster,
    api_client: client.ApiClient,
    crd: None,
    argo_crds: list[str],
) -> Iterator[Session]:
    peer: Peer = request.param()
    s = Session(
        peer,
        api_client,
        kubeconfig=cluster.kubeconfig,
        controller_kubeconfig=cluster.kubeconfig,
        namespace=f"peer-{peer.name}-{uuid.uuid4().hex[:8]}",
        log_dir=LOGS,
    )
    s.start()
    yield s
    s.cleanup(timeout=60, wait_namespace=False)


def test_the_peer_binary_is_the_pinned_release() -> None:
    out = argo_rollouts.binary()
    assert out.parent.name == f"argo-rollouts-{argo_rollouts.version()}"


@pytest.mark.parametrize("session", [ArgoPeer, BlueGreenPeer], indirect=True, ids=["argo", "ours"])
def test_one_release_is_timed_to_traffic_and_to_rest(session: Session) -> None:
    created = session.create(["shop"])
    assert session.wait(created, timeout=90), f"{session.peer.name}: creation never settled"
    first_stable = session.tracker.stable("shop")
    assert first_stable

    released = session.release(["shop"])
    assert session.wait(released, timeout=90), f"{session.peer.name}: the release never settled"
    rec = released[0].record()
    print(f"\n{session.peer.name}: {rec}")
    assert rec["patch_to_traffic"] is not None
    assert rec["patch_to_rest"] is not None
    # Traffic moved by flipping the active Service's selector, to pods of the new release.
    assert rec["patch_to_flip"] is not None
    assert session.tracker.stable("shop") not in (None, first_stable)
    with session.tracker.cond:
        app = session.tracker.apps["shop"]
        ready = session.tracker.ready_pods("shop")
        assert ready
        assert {session.tracker.pods[p] for p in ready} == {1}
    assert (app.get("status") or {}).get("phase") == "Healthy"
