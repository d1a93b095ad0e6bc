"""CustomResourceDefinitions a test installs itself, through the real API.

    create_crd(api_client, crd_manifest("example.dev", {"plural": "widgets", ...}, schema))

A CRD is usable once the API server reports it Established: until then, creating one of
its objects fails with a 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.waiting import wait_for


def crd_manifest(group: str, names: Mapping[str, str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A namespaced CRD `<plural>.<group>` of one version, v1 (served and stored), whose
    objects follow `schema` (the openAPIV3Schema)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names['plural']}.{group}"},
        "spec": {
            "group": group,
            "names": dict(names),
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def create_crd(api_client: client.ApiClient, body: Mapping[str, Any]) -> str:
    """Create the CRD unless one of its name exists, wait until it is established; returns
    its name."""
    name: str = body["metadata"]["name"]
    try:
        client.ApiextensionsV1Api(api_client).create_custom_resource_definition(body)
    except ApiException as err:
        if err.status != 409:
            raise
    wait_crd_established(api_client, name)
    return name


def wait_crd_established(api_client: client.ApiClient, name: str, timeout: float = 60.0) -> None:
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])
        )

    wait_for(f"the CRD {name} to be established", established, timeout=timeout)
