"""Sanity checks of the control plane the suite runs against.

They prove etcd, kube-apiserver, kube-scheduler, kube-controller-manager and the
kubelet (kwok locally) are wired together, and that the API server behaviours later
tests rely on (CEL validation, RBAC, readiness) are real.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.crds import crd_manifest, create_crd
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

NOT_READY_LABEL = "kwok.bluegreen.dev/ready"


def _deployment(
    name: str, replicas: int, extra_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = {"app": name, **(extra_labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "example.invalid/web:1",
                            "ports": [{"name": "http", "containerPort": 3000}],
                        }
                    ]
                },
            },
        },
    }


def _ready_endpoints(api_client: client.ApiClient, namespace: str, service: str) -> list[bool]:
    slices = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return [
        bool(ep.conditions and ep.conditions.ready)
        for s in slices.items
        for ep in (s.endpoints or [])
    ]


def test_deployment_and_service_reach_ready_endpoints(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, _deployment("web", 2))
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    )

    def ready_replicas() -> int | None:
        return apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas

    assert wait_for("2 ready replicas", lambda: ready_replicas() == 2 or None)
    endpoints = wait_for(
        "2 ready endpoints in the EndpointSlice",
        lambda: (e := _ready_endpoints(api_client, namespace, "web")) == [True, True] and e,
    )
    assert endpoints == [True, True]
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in core.list_node().items}
    assert all(p.status.pod_ip for p in pods)


CRD_GROUP = "sanity.bluegreen.dev"


@pytest.fixture
def widget_crd(api_client: client.ApiClient) -> str:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "self.min <= self.max",
                        "message": "min must not exceed max",
                    }
                ],
            }
        },
    }
    names = {"plural": "widgets", "singular": "widget", "kind": "Widget"}
    return create_crd(api_client, crd_manifest(CRD_GROUP, names, schema))


def test_crd_cel_rule_rejects_bad_object(
    api_client: client.ApiClient, namespace: str, widget_crd: str
) -> None:
    objs = client.CustomObjectsApi(api_client)

    def create(lo: int, hi: int) -> None:
        objs.create_namespaced_custom_object(
            CRD_GROUP,
            "v1",
            namespace,
            "widgets",
            {
                "apiVersion": f"{CRD_GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": f"w-{lo}-{hi}"},
                "spec": {"min": lo, "max": hi},
            },
        )

    create(1, 2)
    with pytest.raises(ApiException) as info:
        create(5, 2)
    assert info.value.status == 422
    assert "min must not exceed max" in str(info.value.body)


def test_rbac_denies_what_the_role_does_not_grant(
    api_client: client.ApiClient, namespace: str, cluster: Any
) -> None:
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token

    cfg = client.Configuration()
    admin_cfg = api_client.configuration
    cfg.host = admin_cfg.host
    cfg.ssl_ca_cert = admin_cfg.ssl_ca_cert
    cfg.verify_ssl = admin_cfg.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    as_reader = client.CoreV1Api(client.ApiClient(cfg))

    # RoleBindings take effect through the authorizer's cache; wait for the grant itself.
    wait_for(
        "the RoleBinding to take effect",
        lambda: _allowed(lambda: as_reader.list_namespaced_pod(namespace)),
    )
    with pytest.raises(ApiException) as info:
        as_reader.list_namespaced_secret(namespace)
    assert info.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in str(info.value.body)
    with pytest.raises(ApiException) as info:
        as_reader.delete_collection_namespaced_pod(namespace)
    assert info.value.status == 403


def _allowed(call: Any) -> bool:
    try:
        call()
    except ApiException as err:
        if err.status == 403:
            return False
        raise
    return True


def test_pods_can_be_made_not_ready(api_client: client.ApiClient, namespace: str) -> None:
    """Two ways later tests make a release fail: a label kwok honours, and a status patch."""
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(
        namespace, _deployment("never", 2, {NOT_READY_LABEL: "false"})
    )
    apps.create_namespaced_deployment(namespace, _deployment("flaky", 1))
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "flaky"},
            "spec": {"selector": {"app": "flaky"}, "ports": [{"port": 80, "targetPort": 3000}]},
        },
    )

    def running_unready() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=never").items
        ok = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
        return ok if len(ok) == 2 else None

    for pod in wait_for("the never-ready pods to run", running_unready):
        ready = next(c for c in pod.status.conditions if c.type == "Ready")
        assert ready.status == "False"
    assert not apps.read_namespaced_deployment_status("never", namespace).status.ready_replicas

    wait_for(
        "flaky to be ready", lambda: _ready_endpoints(api_client, namespace, "flaky") == [True]
    )
    pod = core.list_namespaced_pod(namespace, label_selector="app=flaky").items[0]
    conditions = [
        {"type": c.type, "status": "False" if c.type in ("Ready", "ContainersReady") else c.status}
        for c in pod.status.conditions
    ]
    core.patch_namespaced_pod_status(
        pod.metadata.name, namespace, {"status": {"conditions": conditions}}
    )
    wait_for(
        "the EndpointSlice to mark it not ready",
        lambda: _ready_endpoints(api_client, namespace, "flaky") == [False],
    )
    wait_for(
        "the Deployment to count 0 ready",
        lambda: (
            not apps.read_namespaced_deployment_status("flaky", namespace).status.ready_replicas
        ),
    )
