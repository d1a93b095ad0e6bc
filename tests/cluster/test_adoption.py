"""No adoption without consent: an object of a name the app would own, which is not the
app's, is never written; the app says whose it is. The annotation bluegreen.dev/adopt=true
lets the app take it over (a migration from hand-made manifests, as the seed's `shop`
Service would need)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps, app_manifest
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def hand_made_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"team": "web"}},
        "spec": {"selector": {"app": "shop", "slot": "blue"}, "ports": [{"port": 80}]},
    }


def degraded(apps: Apps, name: str) -> dict[str, Any] | None:
    st = apps.status(name)
    return next(
        (c for c in st.get("conditions", []) if c["type"] == "Degraded" and c["status"] == "True"),
        None,
    )


def test_a_hand_made_service_is_left_alone_and_named(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(namespace, hand_made_service("shop"))
    apps.create(app_manifest("shop"))
    cond = wait_for("Degraded", lambda: degraded(apps, "shop"), timeout=30)
    assert cond["reason"] == "ObjectConflict", cond
    assert "Service shop exists and is not this app's" in cond["message"]
    assert "managed by" in cond["message"]
    assert "bluegreen.dev/adopt=true" in cond["message"]
    svc = core.read_namespaced_service("shop", namespace)
    assert svc.spec.selector == {"app": "shop", "slot": "blue"}  # untouched
    assert not svc.metadata.owner_references
    reasons = [
        e["reason"]
        for e in client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            "events.k8s.io", "v1", namespace, "events"
        )["items"]
    ]
    assert reasons.count("ObjectConflict") == 1, reasons


def test_with_consent_the_app_adopts_it(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(namespace, hand_made_service("shop"))
    apps.create(app_manifest("shop"))
    wait_for("Degraded", lambda: degraded(apps, "shop"), timeout=30)
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        "bluegreen.dev",
        "v1alpha1",
        namespace,
        "bluegreenapps",
        "shop",
        {"metadata": {"annotations": {"bluegreen.dev/adopt": "true"}}},
    )
    st = apps.wait_phase("shop", "Healthy", timeout=30)
    assert not degraded(apps, "shop")
    svc = core.read_namespaced_service("shop", namespace)
    assert svc.spec.selector == {
        "bluegreen.dev/app": "shop",
        "bluegreen.dev/color": st["activeColor"],
    }
    assert [o.kind for o in svc.metadata.owner_references] == ["BlueGreenApp"]
