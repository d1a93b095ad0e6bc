"""The ServiceMonitor exists exactly when Prometheus Operator's CRD is served; otherwise a
condition says why there is none."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.apps import Apps, app_manifest
from tests.support.crds import crd_manifest, create_crd
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

SM_CRD = "servicemonitors.monitoring.coreos.com"


def _served(api_client: client.ApiClient) -> bool:
    try:
        client.ApiextensionsV1Api(api_client).read_custom_resource_definition(SM_CRD)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def _install_minimal_crd(api_client: client.ApiClient) -> None:
    """The group, version and kind the operator needs; Prometheus Operator's own CRD
    carries the full schema, which a cluster with it installed already has."""
    names = {
        "plural": "servicemonitors",
        "singular": "servicemonitor",
        "kind": "ServiceMonitor",
        "listKind": "ServiceMonitorList",
    }
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    create_crd(api_client, crd_manifest("monitoring.coreos.com", names, schema))


def _condition(apps: Apps, name: str) -> dict[str, Any] | None:
    for c in apps.status(name).get("conditions", []):
        if c["type"] == "ServiceMonitorReady":
            return dict(c)
    return None


def test_service_monitor_follows_the_crd(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    objects = client.CustomObjectsApi(api_client)
    if not _served(api_client):
        apps.create(app_manifest("mon"))
        apps.wait_phase("mon", "Healthy")
        cond = wait_for("the condition", lambda: _condition(apps, "mon"))
        assert (cond["status"], cond["reason"]) == ("False", "CRDNotInstalled")
        assert "Prometheus Operator" in cond["message"]
        _install_minimal_crd(api_client)  # and wait until it is served
        # A spec change (or any pass) after the CRD appears creates the ServiceMonitor.
        apps.patch_spec("mon", {"replicas": 3})
    else:
        apps.create(app_manifest("mon"))

    def service_monitor() -> dict[str, Any] | None:
        try:
            return dict(
                objects.get_namespaced_custom_object(
                    "monitoring.coreos.com", "v1", namespace, "servicemonitors", "mon"
                )
            )
        except ApiException as err:
            if err.status == 404:
                apps.patch_spec(
                    "mon", {"replicas": 3 if apps.get("mon")["spec"]["replicas"] == 2 else 2}
                )
                return None
            raise

    sm = wait_for("the ServiceMonitor", service_monitor, timeout=60, interval=2)
    spec = sm["spec"]
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mon",
        "bluegreen.dev/role": "metrics",
    }
    endpoint = spec["endpoints"][0]
    assert endpoint["port"] == "http"
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert {"color", "app"} <= targets
    assert [o["name"] for o in sm["metadata"]["ownerReferences"]] == ["mon"]
    cond = wait_for(
        "the condition to turn True",
        lambda: (c := _condition(apps, "mon")) and c["status"] == "True" and c,
    )
    assert cond["reason"] == "Applied"
