"""Building, applying and watching BlueGreenApps in tests, through the real API."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import REPO
from tests.support.crds import wait_crd_established
from tests.support.waiting import wait_for

GROUP, VERSION, PLURAL = "bluegreen.dev", "v1alpha1", "bluegreenapps"
CRD_PATH = REPO / "crds" / "bluegreen.dev_bluegreenapps.yaml"
NOT_READY = {"kwok.bluegreen.dev/ready": "false"}


def install_crd(api_client: client.ApiClient, path: Path = CRD_PATH) -> None:
    """Create or update the CRD and wait until it is served."""
    ext = client.ApiextensionsV1Api(api_client)
    body = yaml.safe_load(path.read_text())
    name = body["metadata"]["name"]
    try:
        current = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except ApiException as err:
        if err.status != 404:
            raise
        ext.create_custom_resource_definition(body)
    wait_crd_established(api_client, name, timeout=30)


def install_crds(api_client: client.ApiClient) -> None:
    """Every CRD of the operator (crds/): BlueGreenApp and the analysis templates."""
    for path in sorted((REPO / "crds").glob(f"{GROUP}_*.yaml")):
        install_crd(api_client, path)


def app_manifest(
    name: str,
    image: str = "registry.example/shop:v1",
    replicas: int = 2,
    labels: dict[str, str] | None = None,
    **strategy: Any,
) -> dict[str, Any]:
    defaults = {"scaleDownDelaySeconds": 2, "abortScaleDownDelaySeconds": 2}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BlueGreenApp",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "strategy": {**defaults, **strategy},
            "template": {
                "metadata": {"labels": {"tier": "web", **(labels or {})}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 3000}],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                        }
                    ]
                },
            },
        },
    }


class Apps:
    """BlueGreenApps of one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def set_image(self, name: str, image: str, labels: dict[str, str] | None = None) -> None:
        body = self.get(name)
        template = copy.deepcopy(body["spec"]["template"])
        template["spec"]["containers"][0]["image"] = image
        if labels is not None:
            template["metadata"]["labels"] = {"tier": "web", **labels}
        self.patch_spec(name, {"template": template})

    def request(self, name: str, what: str) -> None:
        """What `kubectl bluegreen <what>` does: annotate the app."""
        self.api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"metadata": {"annotations": {"bluegreen.dev/request": what}}},
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        """The operator's Events about the app (events.k8s.io), oldest first."""
        items = self.api.list_namespaced_custom_object(
            "events.k8s.io", "v1", self.namespace, "events"
        )["items"]
        mine = [e for e in items if (e.get("regarding") or {}).get("name") == name]
        return sorted(mine, key=lambda e: e.get("eventTime") or "")

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def wait_phase(
        self, name: str, phase: str, timeout: float = 60, revision: str | None = None
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            st = self.status(name)
            if st.get("phase") != phase:
                return None
            if revision is not None and st.get("stableRevision") != revision:
                return None
            return st

        return wait_for(f"{name} to reach {phase}", probe, timeout=timeout)

    def wait_release_done(
        self, name: str, revision_count: int, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the history holds `revision_count` entries and the app is settled."""

        def probe() -> dict[str, Any] | None:
            st = self.status(name)
            settled = st.get("phase") in ("Healthy", "Degraded")
            return st if settled and len(st.get("history", [])) >= revision_count else None

        return wait_for(f"{name} to finish release #{revision_count}", probe, timeout=timeout)
