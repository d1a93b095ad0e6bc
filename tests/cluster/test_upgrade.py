"""Upgrading the operator from the version that selected pods by `app.kubernetes.io/name`.

The previous version runs for real (its code taken from git, `tests/support/previous.py`)
and leaves an app as it would in a user's cluster: both colours' Deployments selecting
`app.kubernetes.io/name` + `bluegreen.dev/color`, green serving, blue scaled down. Then it
stops and this version starts on the same namespace. The app keeps serving: no Deployment
is written, the active Service keeps selecting green's pods as they are labelled, and the
next releases replace each old Deployment while its colour is idle, until every selector
is on `bluegreen.dev/app`. The first release after the upgrade also sets
`app.kubernetes.io/name` in the template, which the previous version refused.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.datapath import DataPath, data_path_app
from tests.support.operator import OperatorProcess
from tests.support.previous import operator_source
from tests.support.proxytraffic import TALLY, ProxyTraffic, settled_on, wait_until_served
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder, SelectorRecorder

pytestmark = pytest.mark.cluster

OLD = "app.kubernetes.io/name"
NEW = "bluegreen.dev/app"
COLOR = "bluegreen.dev/color"
USER_LABELS = {"app.kubernetes.io/name": "storefront", "app.kubernetes.io/instance": "prod"}


@dataclass
class Upgrade:
    ns: str
    apps: Apps
    previous: OperatorProcess
    current: OperatorProcess
    api_client: client.ApiClient

    def deployment(self, color: str) -> Any:
        return client.AppsV1Api(self.api_client).read_namespaced_deployment(
            f"shop-{color}", self.ns
        )

    def service(self, name: str) -> Any | None:
        try:
            return client.CoreV1Api(self.api_client).read_namespaced_service(name, self.ns)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def pods(self, color: str) -> list[Any]:
        return [
            p
            for p in client.CoreV1Api(self.api_client)
            .list_namespaced_pod(self.ns, label_selector=f"{COLOR}={color}")
            .items
            if p.metadata.deletion_timestamp is None
        ]

    def scaled_down(self, color: str) -> bool:
        st = self.apps.status("shop")
        return "scaleDown" not in st and self.deployment(color).spec.replicas == 0

    def release(self, image: str, labels: dict[str, str] | None = None) -> None:
        template = copy.deepcopy(self.apps.get("shop")["spec"]["template"])
        template["spec"]["containers"][0]["image"] = image
        template["metadata"]["labels"].update(labels or {})
        self.apps.patch_spec("shop", {"template": template})


@pytest.fixture
def upgrade(cluster: Cluster, crd: None, api_client: client.ApiClient) -> Iterator[Upgrade]:
    """A namespace of its own, the previous version's operator for it, and this one's
    (not started)."""
    ns = f"u{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
    previous = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces=ns,
        source=operator_source(),
        log_name=f"operator-{ns}-previous.log",
    )
    current = OperatorProcess(cluster.kubeconfig, OPERATOR_LOGS, namespaces=ns)
    yield Upgrade(ns, Apps(api_client, ns), previous, current, api_client)
    previous.stop()
    current.stop()
    client.CoreV1Api(api_client).delete_namespace(ns, propagation_policy="Background")


def left_by_the_previous_version(u: Upgrade, body: dict[str, Any], v2: str) -> dict[str, Any]:
    """v1 on blue, then v2 on green, with the previous operator; blue scaled down."""
    u.previous.start()
    u.apps.create(body)
    u.apps.wait_phase("shop", "Healthy", timeout=90)
    u.release(v2)
    u.apps.wait_release_done("shop", 2, timeout=90)
    wait_for("blue to be scaled down", lambda: u.scaled_down("blue"), timeout=60)
    st = u.apps.status("shop")
    assert st["activeColor"] == "green" and st["phase"] == "Healthy"
    # As that version made them: selected by app.kubernetes.io/name, no bluegreen.dev/app.
    for color in ("blue", "green"):
        dep = u.deployment(color)
        assert dep.spec.selector.match_labels == {OLD: "shop", COLOR: color}
    assert all(NEW not in p.metadata.labels for p in u.pods("green"))
    active = u.service("shop")
    assert active is not None and active.spec.selector == {OLD: "shop", COLOR: "green"}
    assert u.service("shop-legacy") is None
    return st


def upgrade_operator(u: Upgrade) -> None:
    """Stop the previous version, start this one; it takes the app over without touching
    a Deployment."""
    before = {c: u.deployment(c).metadata for c in ("blue", "green")}
    u.previous.stop()
    u.current.start()
    wait_for("the <app>-legacy Service", lambda: u.service("shop-legacy"), timeout=60)
    wait_for(
        "the status selector to name green's pods as they are",
        lambda: u.apps.status("shop").get("selector") == f"{OLD}=shop,{COLOR}=green",
        timeout=60,
    )
    for color, meta in before.items():
        now = u.deployment(color).metadata
        assert (now.uid, now.generation) == (meta.uid, meta.generation), f"{color} was written"
    active = u.service("shop")
    assert active is not None and active.spec.selector == {OLD: "shop", COLOR: "green"}
    assert active.metadata.labels[NEW] == "shop"
    assert u.apps.status("shop")["phase"] == "Healthy"


def migrate_through_two_releases(u: Upgrade, v3: str, v4: str) -> None:
    """v3 (with app.kubernetes.io/name in the template) replaces blue's old Deployment,
    then v4 replaces green's; <app>-legacy goes with the last old Deployment."""
    old_blue = u.deployment("blue").metadata.uid
    u.release(v3, USER_LABELS)
    st = u.apps.wait_release_done("shop", 3, timeout=120)
    assert st["activeColor"] == "blue" and st["release"]["result"] == "Promoted", st
    blue = u.deployment("blue")
    assert blue.metadata.uid != old_blue, "blue's old Deployment was not replaced"
    assert blue.spec.selector.match_labels == {NEW: "shop", COLOR: "blue"}
    for pod in u.pods("blue"):
        assert {**USER_LABELS, NEW: "shop"}.items() <= pod.metadata.labels.items()
    active = u.service("shop")
    assert active is not None and active.spec.selector == {NEW: "shop", COLOR: "blue"}
    assert st["selector"] == f"{NEW}=shop,{COLOR}=blue"
    assert u.service("shop-legacy") is not None, "green's old Deployment is still there"

    old_green = u.deployment("green").metadata.uid
    u.release(v4)
    st = u.apps.wait_release_done("shop", 4, timeout=120)
    assert st["activeColor"] == "green" and st["release"]["result"] == "Promoted", st
    green = u.deployment("green")
    assert green.metadata.uid != old_green, "green's old Deployment was not replaced"
    assert green.spec.selector.match_labels == {NEW: "shop", COLOR: "green"}
    wait_for("<app>-legacy to go", lambda: u.service("shop-legacy") is None, timeout=60)
    metrics = u.service("shop-metrics")
    assert metrics is not None and metrics.spec.selector == {NEW: "shop"}


def never_dark(rec: EndpointRecorder) -> int:
    """No instant without a ready endpoint behind the active Service once it had one;
    returns how many changes were seen."""
    history = rec.history()
    served = False
    for sample in history:
        if sample.ready:
            served = True
        else:
            assert not served, f"zero ready endpoints at {sample.at}"
    return len(history)


def test_an_app_of_the_previous_version_keeps_serving_and_migrates_at_its_releases(
    upgrade: Upgrade,
) -> None:
    u = upgrade
    left_by_the_previous_version(
        u, app_manifest("shop", image="registry.example/shop:v1"), "registry.example/shop:v2"
    )
    selectors = SelectorRecorder(u.api_client, u.ns, "shop")
    endpoints = EndpointRecorder(u.api_client, u.ns, "shop")
    selectors.start()
    endpoints.start()
    try:
        upgrade_operator(u)
        migrate_through_two_releases(u, "registry.example/shop:v3", "registry.example/shop:v4")
    finally:
        selectors.stop()
        endpoints.stop()
    assert selectors.selectors == [
        {OLD: "shop", COLOR: "green"},
        {NEW: "shop", COLOR: "blue"},
        {NEW: "shop", COLOR: "green"},
    ]
    changes = never_dark(endpoints)
    print(f"\n[upgrade] active Service: {changes} EndpointSlice changes, never without a ready one")


def test_the_upgrade_and_the_releases_after_it_drop_no_request(
    upgrade: Upgrade, data_path: DataPath
) -> None:
    u = upgrade
    host = "upgrade.example.com"
    body = data_path_app("shop", data_path, host)
    left_by_the_previous_version(u, body, data_path.image("v2"))
    wait_until_served(
        data_path.ingress, host, lambda status, color: status == 200 and color == "green"
    )
    traffic = ProxyTraffic(data_path.ingress, host, requests=15000, rate=100.0)
    with traffic:
        upgrade_operator(u)
        wait_for("traffic on green for 2s", lambda: settled_on(traffic, "green", 2.0))
        migrate_through_two_releases(u, data_path.image("v3"), data_path.image("v4"))
        wait_for("traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
    TALLY.add("operator upgrade, then two releases", traffic)
    answers = traffic.answers()
    versions = sorted({a.version for a in answers if a.version})
    print(f"\n[upgrade] versions answered through the upgrade: {versions}")
    assert not traffic.failures(), traffic.failures()[:10]
    assert {"v3", "v4"} <= set(versions), versions
