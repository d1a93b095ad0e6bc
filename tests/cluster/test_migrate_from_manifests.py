"""docs/migrate-from-manifests.md, run as written against the real control plane and the
real operator.

The hand-made setup of the page (two Deployments and a Service whose selector CI patches)
is applied from the page's own YAML; then every command of its steps runs in order with
the real kubectl (tests.support.guides), and its CI step with a new image. Meanwhile a
watch records the Service's EndpointSlices: the Service must never be without a ready
endpoint, from the hand-made pods through the takeover to the release CI makes afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support import guides
from tests.support.apps import Apps
from tests.support.cluster import REPO, Cluster
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder, SelectorRecorder

pytestmark = pytest.mark.cluster

PAGE = REPO / "docs" / "migrate-from-manifests.md"
SERVICE = "bluegreen-service"
NEW_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bluegreen-app:v1.1.0"


def env_of(deployment: Any) -> dict[str, str]:
    return {e.name: e.value for e in deployment.spec.template.spec.containers[0].env or []}


def test_the_migration_guide_takes_over_the_service_without_a_dark_moment(
    cluster: Cluster,
    apps: Apps,
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    files = guides.files(PAGE)
    assert {"k8s/deployment-blue.yaml", "k8s/service.yaml", f"{SERVICE}.yaml"} <= set(files)
    kubeconfig = guides.workspace(PAGE, cluster.kubeconfig, namespace, tmp_path)

    def endpoints_now() -> set[str]:
        return guides.ready_endpoints(api_client, namespace, SERVICE)

    # What you have: the hand-made colours, the Service on blue.
    guides.run("kubectl apply -f k8s/", tmp_path, kubeconfig)
    hand_made = wait_for(
        "the hand-made blue pods behind the Service",
        lambda: (
            (eps := endpoints_now())
            and len(eps) == 2
            and all(p.startswith("bluegreen-blue-") for p in eps)
            and eps
        ),
        timeout=120,
    )

    endpoints = EndpointRecorder(api_client, namespace, SERVICE)
    selectors = SelectorRecorder(api_client, namespace, SERVICE)
    endpoints.start()
    selectors.start()
    try:
        steps = guides.steps(PAGE)
        (release,) = [s for s in steps if "$IMAGE" in s]
        # Steps 1 to 3: apply the app, wait, look, remove the hand-made parts.
        for step in steps[: steps.index(release)]:
            print(guides.run(step, tmp_path, kubeconfig))
        assert apps.status(SERVICE)["phase"] == "Healthy"
        taken_over = endpoints_now()
        assert taken_over and all(p.startswith(f"{SERVICE}-blue-") for p in taken_over)

        # Step 4: a release from CI, as the page writes it.
        print(guides.run(release, tmp_path, kubeconfig, IMAGE=NEW_IMAGE))
        st = apps.status(SERVICE)
        assert st["phase"] == "Healthy" and st["activeColor"] == "green", st
        assert st["release"]["image"] == NEW_IMAGE and st["release"]["result"] == "Promoted"
        wait_for(
            "every ready endpoint on green",
            lambda: (
                (eps := endpoints_now()) and all(p.startswith(f"{SERVICE}-green-") for p in eps)
            ),
            timeout=60,
        )
    finally:
        endpoints.stop()
        selectors.stop()

    # The Service was never without a ready endpoint: from the hand-made pods, through the
    # takeover, to the release.
    samples = endpoints.history()
    assert samples and samples[0].ready == hand_made, samples[:2]
    dark = [s for s in samples if not s.ready]
    assert dark == [], f"the Service had no ready endpoint at {dark}: {samples}"
    seen = {pod.rsplit("-", 2)[0] for s in samples for pod in s.ready}
    assert seen == {"bluegreen-blue", f"{SERVICE}-blue", f"{SERVICE}-green"}, seen
    assert selectors.selectors == [
        {"app": "bluegreen-app", "version": "blue"},
        {"bluegreen.dev/app": SERVICE, "bluegreen.dev/color": "blue"},
        {"bluegreen.dev/app": SERVICE, "bluegreen.dev/color": "green"},
    ]

    # The Service is the app's now, its port as before; the hand-made Deployments are gone;
    # each colour's pods are told their colour and version by the operator.
    core, apps_v1 = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    svc = core.read_namespaced_service(SERVICE, namespace)
    assert [(o.kind, o.name) for o in svc.metadata.owner_references] == [("BlueGreenApp", SERVICE)]
    assert [(p.name, p.port, p.target_port) for p in svc.spec.ports] == [("http", 80, 3000)]
    names = {d.metadata.name for d in apps_v1.list_namespaced_deployment(namespace).items}
    assert names == {f"{SERVICE}-blue", f"{SERVICE}-green"}
    green = apps_v1.read_namespaced_deployment(f"{SERVICE}-green", namespace)
    assert env_of(green) == {"APP_COLOR": "green", "APP_VERSION": "v1.1.0"}
    blue = apps_v1.read_namespaced_deployment(f"{SERVICE}-blue", namespace)
    assert env_of(blue)["APP_COLOR"] == "blue"
    assert "bluegreen.dev/adopt" not in (apps.get(SERVICE)["metadata"].get("annotations") or {})
