"""docs/migrate-from-argo-rollouts.md, run as written: a blue-green Rollout, at rest under
the real Argo Rollouts controller (v1.10.1, built from its Go module), moves to a
BlueGreenApp served by the real operator, with the commands of the page's steps.

A watch records the active Service's EndpointSlices throughout: it is never without a
ready endpoint, though Argo rewrites the Services' selectors when its Rollout goes and the
app rewrites them again when it takes them over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.conftest import OPERATOR_LOGS
from tests.support import argo_rollouts, guides
from tests.support.apps import Apps
from tests.support.cluster import REPO, Cluster
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder, SelectorRecorder

pytestmark = pytest.mark.cluster

PAGE = REPO / "docs" / "migrate-from-argo-rollouts.md"
APP = "shop"
OURS = {"bluegreen.dev/app": APP, "bluegreen.dev/color": "blue"}
HASH = "rollouts-pod-template-hash"


@pytest.fixture
def argo(
    cluster: Cluster, api_client: client.ApiClient, namespace: str
) -> Iterator[argo_rollouts.ArgoRolloutsProcess]:
    """The Argo Rollouts controller, acting on the test's namespace only."""
    argo_rollouts.install_crds(api_client)
    proc = argo_rollouts.ArgoRolloutsProcess(cluster.kubeconfig, OPERATOR_LOGS, namespace)
    proc.start()
    yield proc
    proc.stop()


def rollout_phase(api_client: client.ApiClient, namespace: str) -> str | None:
    body = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        argo_rollouts.GROUP, argo_rollouts.VERSION, namespace, argo_rollouts.PLURAL, APP
    )
    st = body.get("status") or {}
    if st.get("observedGeneration") != str(body["metadata"]["generation"]):
        return None
    phase: str | None = st.get("phase")
    return phase


@pytest.mark.usefixtures("argo")
def test_a_rollout_moves_to_a_bluegreen_app_without_a_dark_moment(
    cluster: Cluster,
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    assert {"argo/rollout.yaml", "argo/services.yaml", f"{APP}.yaml"} <= set(guides.files(PAGE))
    kubeconfig = guides.workspace(PAGE, cluster.kubeconfig, namespace, tmp_path)
    core = client.CoreV1Api(api_client)

    def endpoints_now() -> set[str]:
        return guides.ready_endpoints(api_client, namespace, APP)

    # The Rollout at rest: Argo's hash in both Services' selectors, its pods behind them.
    guides.run("kubectl apply -f argo/", tmp_path, kubeconfig)
    wait_for(
        "the Rollout Healthy",
        lambda: rollout_phase(api_client, namespace) == "Healthy",
        timeout=180,
    )
    selector = core.read_namespaced_service(APP, namespace).spec.selector
    assert HASH in selector, selector
    argo_pods = wait_for(
        "the Rollout's pods behind the Service",
        lambda: (eps := endpoints_now()) and len(eps) == 2 and eps,
        timeout=60,
    )

    endpoints = EndpointRecorder(api_client, namespace, APP)
    selectors = SelectorRecorder(api_client, namespace, APP)
    endpoints.start()
    selectors.start()
    try:
        for step in guides.steps(PAGE):
            print(guides.run(step, tmp_path, kubeconfig))
        st = apps.status(APP)
        assert st["phase"] == "Healthy" and st["activeColor"] == "blue", st
        wait_for(
            "only the app's pods behind the Service",
            lambda: (eps := endpoints_now()) and all(p.startswith(f"{APP}-blue-") for p in eps),
            timeout=60,
        )
    finally:
        endpoints.stop()
        selectors.stop()

    samples = endpoints.history()
    print("selectors of the active Service:", *selectors.selectors, sep="\n  ")
    print("its ready endpoints:", *(sorted(s.ready) for s in samples), sep="\n  ")
    assert samples and samples[0].ready == argo_pods, samples[:2]
    dark = [s for s in samples if not s.ready]
    assert dark == [], f"the Service had no ready endpoint at {dark}: {samples}"
    assert HASH in selectors.selectors[0] and selectors.selectors[-1] == OURS, selectors.selectors

    # Both Services are the app's; nothing of the Rollout is left.
    for name in (APP, f"{APP}-preview"):
        svc = core.read_namespaced_service(name, namespace)
        assert svc.spec.selector == OURS, name
        assert [(o.kind, o.name) for o in svc.metadata.owner_references] == [
            ("BlueGreenApp", APP)
        ], name
    left = client.AppsV1Api(api_client).list_namespaced_replica_set(namespace, label_selector=HASH)
    assert left.items == []
    rollouts = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        argo_rollouts.GROUP, argo_rollouts.VERSION, namespace, argo_rollouts.PLURAL
    )
    assert rollouts["items"] == []
    assert "bluegreen.dev/adopt" not in (apps.get(APP)["metadata"].get("annotations") or {})
