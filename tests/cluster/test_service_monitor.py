"""The ServiceMonitor exists exactly when Prometheus Operator's CRD is served; otherwise a
condition says why there is none."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.crds import crd_manifest, create_crd
from tests.support.operator import OperatorProcess
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
        "bluegreen.dev/app": "mon",
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


def test_operator_wide_labels_for_every_service_monitor(
    cluster: Cluster, crd: None, api_client: client.ApiClient
) -> None:
    """kube-prometheus-stack selects ServiceMonitors by label (`release: <its release>`): the
    administrator sets it once for every app; an app's own label of the same key wins."""
    if not _served(api_client):
        _install_minimal_crd(api_client)
    ns = f"sml-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": ns}})
    op = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces=ns,
        env={"BLUEGREEN_SERVICE_MONITOR_LABELS": "release=monitoring, team=platform"},
    )
    op.start()
    try:
        apps = Apps(api_client, ns)
        body = app_manifest("mon")
        body["spec"]["monitoring"] = {"serviceMonitor": {"labels": {"team": "shop"}}}
        apps.create(body)
        apps.wait_phase("mon", "Healthy")
        objects = client.CustomObjectsApi(api_client)

        def labels() -> dict[str, str] | None:
            try:
                sm = objects.get_namespaced_custom_object(
                    "monitoring.coreos.com", "v1", ns, "servicemonitors", "mon"
                )
            except ApiException as err:
                if err.status == 404:
                    return None
                raise
            return dict(sm["metadata"]["labels"])

        got = wait_for("the ServiceMonitor", labels, timeout=60)
        assert got["release"] == "monitoring", got
        assert got["team"] == "shop", got  # the app's own wins
    finally:
        op.stop()
        core.delete_namespace(ns, propagation_policy="Background")
