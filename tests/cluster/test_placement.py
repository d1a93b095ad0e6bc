"""Placement and marks of the colours on the real control plane: anti-affinity honoured by
the real kube-scheduler, role metadata set on running pods (never restarted), a
PodDisruptionBudget per colour filled by the real disruption controller and enforced by the
Eviction API, and multi-port Services with their labels and annotations.

kwok plays the kubelets: a Node object with kwok's annotation becomes a Ready node. The
anti-affinity test adds nodes of its own, labelled with its namespace, and pins the app to
them with a nodeSelector, so what the scheduler may choose is exactly known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.apps import Apps, app_manifest, job_check
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

POOL = "placement.bluegreen.dev/pool"


def pods_of(api: client.ApiClient, ns: str, color: str | None = None) -> list[Any]:
    selector = "bluegreen.dev/app=shop" + (f",bluegreen.dev/color={color}" if color else "")
    items = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items
    return [p for p in items if p.metadata.deletion_timestamp is None]


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


@contextlib.contextmanager
def node_pool(api: client.ApiClient, pool: str) -> Iterator[Any]:
    """Nodes made by the test (`add(name)`), deleted at the end."""
    core = client.CoreV1Api(api)
    made: list[str] = []

    def add(name: str) -> None:
        core.create_node(
            {
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"kubernetes.io/hostname": name, "type": "kwok", POOL: pool},
                },
                "spec": {},
            }
        )
        made.append(name)

        def ready() -> bool:
            node = core.read_node(name)
            return any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            )

        wait_for(f"node {name} to be Ready", ready, timeout=60)

    try:
        yield add
    finally:
        for name in made:
            with contextlib.suppress(ApiException):
                core.delete_node(name)


def test_required_anti_affinity_keeps_the_candidate_off_the_active_nodes(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    pool = namespace
    body = app_manifest(
        "shop",
        replicas=1,
        antiAffinity={"requiredDuringSchedulingIgnoredDuringExecution": {}},
        progressDeadlineSeconds=600,
    )
    body["spec"]["template"]["spec"]["nodeSelector"] = {POOL: pool}
    with node_pool(api_client, pool) as add:
        add(f"{pool}-a")
        apps.create(body)
        first = apps.wait_phase("shop", "Healthy", timeout=90)
        assert first["activeColor"] == "blue"
        (blue,) = pods_of(api_client, namespace, "blue")
        assert blue.spec.node_name == f"{pool}-a"
        # The Deployment carries the term against the other colour.
        dep = client.AppsV1Api(api_client).read_namespaced_deployment("shop-blue", namespace)
        terms = dep.spec.template.spec.affinity.pod_anti_affinity
        (term,) = terms.required_during_scheduling_ignored_during_execution
        assert term.label_selector.match_labels == {
            "bluegreen.dev/app": "shop",
            "bluegreen.dev/color": "green",
        }
        assert term.topology_key == "kubernetes.io/hostname"

        # One node only: the candidate cannot be placed, and the release takes no traffic.
        apps.set_image("shop", "registry.example/shop:v2")
        wait_for(
            "the candidate to be Pending",
            lambda: any(
                p.status.phase == "Pending" and not p.spec.node_name
                for p in pods_of(api_client, namespace, "green")
            ),
            timeout=60,
        )
        st = apps.status("shop")
        assert st["phase"] == "Deploying", st
        assert st["activeColor"] == "blue"
        svc = client.CoreV1Api(api_client).read_namespaced_service("shop", namespace)
        assert svc.spec.selector["bluegreen.dev/color"] == "blue"

        # A second node: the candidate goes there, never next to the active pod.
        add(f"{pool}-b")
        done = apps.wait_release_done("shop", 2, timeout=120)
        assert done["activeColor"] == "green", done
        (green,) = pods_of(api_client, namespace, "green")
        assert green.spec.node_name == f"{pool}-b"
        blue_nodes = {p.spec.node_name for p in pods_of(api_client, namespace, "blue")}
        assert green.spec.node_name not in blue_nodes


def _marks(pod: Any) -> tuple[str | None, str | None]:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    return labels.get("stage"), annotations.get("example.com/role")


def _uids(api: client.ApiClient, ns: str, color: str) -> set[str]:
    return {p.metadata.uid for p in pods_of(api, ns, color)}


def _all_marked(
    api: client.ApiClient, ns: str, color: str, want: tuple[str | None, str | None]
) -> bool:
    pods = pods_of(api, ns, color)
    return bool(pods) and all(_marks(p) == want for p in pods)


def test_active_and_preview_metadata_follow_the_roles_without_restarting_pods(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    active = ("live", "active")
    preview = ("candidate", "preview")
    body = app_manifest(
        "shop",
        replicas=2,
        autoPromotion=False,
        scaleDownDelaySeconds=600,
        abortScaleDownDelaySeconds=600,
        activeMetadata={"labels": {"stage": "live"}, "annotations": {"example.com/role": "active"}},
        previewMetadata={
            "labels": {"stage": "candidate"},
            "annotations": {"example.com/role": "preview"},
        },
    )
    apps.create(body)
    apps.wait_phase("shop", "Healthy", timeout=90)
    wait_for("blue marked active", lambda: _all_marked(api_client, namespace, "blue", active))
    # The Deployment's template never carries them (that would restart the pods).
    dep = client.AppsV1Api(api_client).read_namespaced_deployment("shop-blue", namespace)
    assert "stage" not in (dep.spec.template.metadata.labels or {})
    blue_uids = _uids(api_client, namespace, "blue")

    # A post-promotion check that runs until the test aborts (its pod never exits): the
    # release stays in Observing, with the old colour warm, until then.
    watch = job_check(0, name="watch")
    del watch["job"]["template"]["metadata"]["labels"]["kwok.bluegreen.dev/exit"]
    watch["job"]["timeout"] = "10m"
    apps.patch_spec("shop", {"analysis": {"postPromotion": [watch]}})
    apps.set_image("shop", "registry.example/shop:v2")
    apps.wait_phase("shop", "Paused", timeout=90)
    wait_for("green marked preview", lambda: _all_marked(api_client, namespace, "green", preview))
    green_uids = _uids(api_client, namespace, "green")
    assert _all_marked(api_client, namespace, "blue", active)

    # The flip: green becomes active, blue (kept warm) loses the marks.
    apps.request("shop", "promote")
    apps.wait_phase("shop", "Observing", timeout=60)
    wait_for("green marked active", lambda: _all_marked(api_client, namespace, "green", active))
    wait_for("blue unmarked", lambda: _all_marked(api_client, namespace, "blue", (None, None)))
    assert _uids(api_client, namespace, "green") == green_uids
    assert _uids(api_client, namespace, "blue") == blue_uids

    # The rollback: blue is active again, with the same pods.
    apps.request("shop", "abort")
    apps.wait_phase("shop", "Degraded", timeout=60)
    wait_for("blue marked active", lambda: _all_marked(api_client, namespace, "blue", active))
    wait_for("green unmarked", lambda: _all_marked(api_client, namespace, "green", (None, None)))
    assert _uids(api_client, namespace, "blue") == blue_uids
    assert _uids(api_client, namespace, "green") <= green_uids

    # A new pod of the active colour is marked too.
    apps.patch_spec("shop", {"replicas": 3})

    def three_marked() -> bool:
        pods = pods_of(api_client, namespace, "blue")
        return len(pods) == 3 and all(_marks(p) == active for p in pods)

    wait_for("the new blue pod marked active", three_marked, timeout=60)
    assert blue_uids < _uids(api_client, namespace, "blue")


def _budget(api: client.ApiClient, ns: str, name: str) -> Any | None:
    try:
        return client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, ns)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def test_a_budget_per_colour_is_enforced_and_removed_with_the_field(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    body = app_manifest("shop", replicas=2, autoPromotion=False, scaleDownDelaySeconds=2)
    body["spec"]["podDisruptionBudget"] = {"minAvailable": 2}
    created = apps.create(body)
    apps.wait_phase("shop", "Healthy", timeout=90)

    def filled(name: str) -> Any | None:
        pdb = _budget(api_client, namespace, name)
        ok = pdb is not None and pdb.status is not None and pdb.status.current_healthy == 2
        return pdb if ok and pdb.status.observed_generation == pdb.metadata.generation else None

    blue = wait_for("the disruption controller to fill shop-blue", lambda: filled("shop-blue"))
    assert blue.spec.min_available == 2
    assert blue.spec.selector.match_labels == {
        "bluegreen.dev/app": "shop",
        "bluegreen.dev/color": "blue",
    }
    assert blue.status.disruptions_allowed == 0
    assert blue.metadata.owner_references[0].uid == created["metadata"]["uid"]

    # An eviction that would break the budget is refused.
    victim = pods_of(api_client, namespace, "blue")[0]
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api_client).create_namespaced_pod_eviction(
            victim.metadata.name,
            namespace,
            {"metadata": {"name": victim.metadata.name, "namespace": namespace}},
        )
    assert refused.value.status == 429, refused.value.body
    assert victim.metadata.uid in _uids(api_client, namespace, "blue")

    # During a release both colours have replicas, and each its budget.
    apps.set_image("shop", "registry.example/shop:v2")
    apps.wait_phase("shop", "Paused", timeout=90)
    green = wait_for("shop-green filled", lambda: filled("shop-green"))
    assert green.spec.selector.match_labels["bluegreen.dev/color"] == "green"

    # The old colour scaled to zero keeps no budget.
    apps.request("shop", "promote")
    apps.wait_release_done("shop", 2, timeout=90)
    wait_for("blue scaled down", lambda: not pods_of(api_client, namespace, "blue"), timeout=60)
    wait_for("shop-blue removed", lambda: _budget(api_client, namespace, "shop-blue") is None)
    assert _budget(api_client, namespace, "shop-green") is not None

    # Removed with the field.
    apps.patch_spec("shop", {"podDisruptionBudget": None})
    wait_for("shop-green removed", lambda: _budget(api_client, namespace, "shop-green") is None)


def test_multi_port_services_with_labels_and_annotations_survive_a_flip(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    body = app_manifest("shop", replicas=1, scaleDownDelaySeconds=600)
    body["spec"]["service"] = {
        "ports": [
            {"name": "grpc", "port": 9090, "targetPort": 9090, "appProtocol": "kubernetes.io/h2c"},
            {"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"},
        ],
        "labels": {"team": "checkout"},
        "annotations": {"example.com/owner": "checkout@example.com"},
    }
    apps.create(body)
    apps.wait_phase("shop", "Healthy", timeout=90)
    core = client.CoreV1Api(api_client)

    def as_wanted() -> bool:
        for name in ("shop", "shop-preview"):
            svc = core.read_namespaced_service(name, namespace)
            ports = {
                p.name: (p.port, str(p.target_port), p.protocol, p.app_protocol)
                for p in svc.spec.ports
            }
            if ports != {
                "grpc": (9090, "9090", "TCP", "kubernetes.io/h2c"),
                "http": (80, "http", "TCP", "http"),
            }:
                return False
            if (svc.metadata.labels or {}).get("team") != "checkout":
                return False
            annotations = svc.metadata.annotations or {}
            if annotations.get("example.com/owner") != "checkout@example.com":
                return False
        return True

    wait_for("both Services as the spec says", as_wanted)
    # The metrics Service keeps the primary port (the one named http), as the
    # ServiceMonitor scrapes it.
    metrics = core.read_namespaced_service("shop-metrics", namespace)
    assert [(p.name, p.port) for p in metrics.spec.ports] == [("http", 80)]

    apps.set_image("shop", "registry.example/shop:v2")
    done = apps.wait_release_done("shop", 2, timeout=90)
    assert done["activeColor"] == "green"
    assert as_wanted()

    # Taken out of the spec, the label and annotation go from the Services.
    apps.patch_spec("shop", {"service": {"labels": None, "annotations": None}})

    def unlabelled() -> bool:
        svc = core.read_namespaced_service("shop", namespace)
        return "team" not in (svc.metadata.labels or {}) and "example.com/owner" not in (
            svc.metadata.annotations or {}
        )

    wait_for("the Service label and annotation removed", unlabelled)
