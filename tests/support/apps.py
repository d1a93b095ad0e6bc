"""Building, applying and watching BlueGreenApps in tests, through the real API."""

from __future__ import annotations

import copy
import json
import os
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


INSTALL_CRD_ENV = "BLUEGREEN_TEST_INSTALL_CRD"


class CrdDiffersError(RuntimeError):
    """The cluster has the CRD with another spec, and replacing it was not allowed."""


def crd_may_be_replaced(local: bool) -> bool:
    """The tests replace a CRD that differs from the project's only on the local control
    plane (theirs), or where BLUEGREEN_TEST_INSTALL_CRD=1 says so: on a cluster KUBECONFIG
    names, the CRD may serve someone's apps, and a replaced schema changes them all."""
    return local or os.environ.get(INSTALL_CRD_ENV) == "1"


def install_crd(
    api_client: client.ApiClient, path: Path = CRD_PATH, *, replace: bool = True
) -> str:
    """Create the CRD of `path`, or bring the cluster's to it, and wait until it is served.

    Returns "created", "unchanged" (the cluster's spec is already what the API server makes
    of `path`: compared after a server-side dry run, so defaulted fields do not count) or
    "replaced". A CRD whose spec differs is replaced only with `replace`; otherwise
    CrdDiffersError says which fields differ and how to allow it."""
    ext = client.ApiextensionsV1Api(api_client)
    body = yaml.safe_load(path.read_text())
    name = body["metadata"]["name"]
    try:
        current = _raw(ext.read_custom_resource_definition(name, _preload_content=False))
    except ApiException as err:
        if err.status != 404:
            raise
        ext.create_custom_resource_definition(body)
        outcome = "created"
    else:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        wanted = _raw(
            ext.replace_custom_resource_definition(
                name, body, dry_run="All", _preload_content=False
            )
        )
        differences = _differences(current["spec"], wanted["spec"])
        if not differences:
            outcome = "unchanged"
        elif not replace:
            shown = "\n".join(f"  {d}" for d in differences[:10])
            more = f"\n  ... and {len(differences) - 10} more" if len(differences) > 10 else ""
            raise CrdDiffersError(
                f"the cluster's CRD {name} differs from {path.relative_to(REPO)}:\n"
                f"{shown}{more}\n"
                "The tests do not replace it on a cluster they did not start: it may serve "
                "other BlueGreenApps, and a new schema applies to them all. Set "
                f"{INSTALL_CRD_ENV}=1 to let the tests replace it, or point KUBECONFIG at a "
                "cluster of your own."
            )
        else:
            ext.replace_custom_resource_definition(name, body)
            outcome = "replaced"
    wait_crd_established(api_client, name, timeout=30)
    return outcome


def _raw(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def _differences(have: Any, want: Any, where: str = "spec") -> list[str]:
    """The paths at which two JSON values differ, as `spec.versions[0].schema...: why`."""
    if isinstance(have, dict) and isinstance(want, dict):
        out: list[str] = []
        for key in sorted(set(have) | set(want)):
            if key not in want:
                out.append(f"{where}.{key}: only in the cluster")
            elif key not in have:
                out.append(f"{where}.{key}: only in the project's CRD")
            else:
                out += _differences(have[key], want[key], f"{where}.{key}")
        return out
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        return [
            d
            for i, (a, b) in enumerate(zip(have, want, strict=True))
            for d in _differences(a, b, f"{where}[{i}]")
        ]
    return [] if have == want else [f"{where}: differs"]


def install_crds(api_client: client.ApiClient, *, replace: bool = True) -> None:
    """Every CRD of the operator (crds/): BlueGreenApp and the analysis templates, each as
    `install_crd` installs it."""
    for path in sorted((REPO / "crds").glob(f"{GROUP}_*.yaml")):
        install_crd(api_client, path, replace=replace)


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


def job_check(exit_code: int, name: str = "smoke") -> dict[str, Any]:
    """A job metric whose Job's one container prints what it checks and exits with
    `exit_code`. On the local control plane kwok ends its pod with that code (the label
    `kwok.bluegreen.dev/exit`, tools/kwok-stages.yaml); a real kubelet runs the command."""
    script = f'echo "checking $PREVIEW_URL ($CANDIDATE_COLOR)"; exit {exit_code}'
    return {
        "name": name,
        "count": 1,
        "interval": "1s",
        "job": {
            "timeout": "1m",
            "template": {
                "metadata": {"labels": {"kwok.bluegreen.dev/exit": str(exit_code)}},
                "spec": {
                    "containers": [
                        {"name": "check", "image": "busybox:1.36", "command": ["sh", "-c", script]}
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
