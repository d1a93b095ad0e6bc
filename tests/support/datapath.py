"""Where the data path is, and apps whose pods run on it.

On the local control plane, `make test` runs the tests in a private network namespace
(tools/netns.py) where `tools/localcluster.py up` starts Traefik and the kubelet stand-in,
and writes their addresses to <cluster dir>/datapath.json. Pods labelled
`kwok.bluegreen.dev/run: demo` then run the demo app as real processes on their pod IPs.

Against another cluster (KUBECONFIG set), point BLUEGREEN_DATA_PATH_FILE at a JSON file of
the same shape: `ingress` and `gateway` base URLs on loopback (for instance `kubectl
port-forward` to a Traefik v3 with the kubernetesIngressNGINX and kubernetesGateway
providers), `gatewayRef` ({namespace, name} of a Gateway accepting routes from every
namespace), `ingressClassName`, `demoImage` (the demo app's image, which the cluster can
pull, with tags v1, v2...) and `runLabel` ({} there: real kubelets run every pod).
Without it, tests that send real traffic fail and say so: they are never skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.apps import app_manifest
from tests.support.cluster import CLUSTER_DIR, Cluster

NO_RETRIES = {"nginx.ingress.kubernetes.io/proxy-next-upstream": "off"}
"""ingress-nginx (and Traefik's provider for its annotations) retries a failed upstream on
another one by default; the tests turn that off, so that no failed request is hidden."""


@dataclass(frozen=True)
class DataPath:
    ingress: str
    """Base URL of the proxy's entrypoint for Ingresses (the Host header picks the app)."""
    gateway: str
    """Base URL of the proxy's entrypoint for HTTPRoutes attached to `gateway_ref`."""
    gateway_namespace: str
    gateway_name: str
    ingress_class: str
    run_label: dict[str, str]
    """Labels that make a pod run as a real process."""
    demo_image: str

    def image(self, version: str) -> str:
        return f"{self.demo_image}:{version}"


class DataPathMissingError(RuntimeError):
    pass


def _local_file(cluster: Cluster) -> Path:
    path = CLUSTER_DIR / "datapath.json"
    if not path.exists():
        raise DataPathMissingError(
            "this test sends real traffic through the local data path, which lives in a "
            "private network namespace: run the tests through `make test`, or "
            "`python3 tools/netns.py run -- .venv/bin/pytest ...` (no "
            f"{path} was written: the control plane at {cluster.kubeconfig} was started "
            "without it)"
        )
    return path


def _given_file() -> Path:
    given = os.environ.get("BLUEGREEN_DATA_PATH_FILE")
    if not given:
        raise DataPathMissingError(
            "this test sends real traffic through a proxy to real pods. Against another "
            "cluster (KUBECONFIG is set), set BLUEGREEN_DATA_PATH_FILE to a JSON file that "
            "says where they are: see tests/support/datapath.py"
        )
    return Path(given)


def load_data_path(cluster: Cluster) -> DataPath:
    path = _local_file(cluster) if cluster.local else _given_file()
    info: dict[str, Any] = json.loads(path.read_text())
    ref = info["gatewayRef"]
    return DataPath(
        ingress=info["ingress"],
        gateway=info["gateway"],
        gateway_namespace=ref["namespace"],
        gateway_name=ref["name"],
        ingress_class=info.get("ingressClassName", "nginx"),
        run_label=dict(info.get("runLabel") or {}),
        demo_image=info["demoImage"],
    )


def pod_lifecycle(container: dict[str, Any], pre_stop_seconds: int) -> None:
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(pre_stop_seconds)]}}}


def data_path_app(
    name: str,
    data_path: DataPath,
    host: str,
    *,
    version: str = "v1",
    replicas: int = 2,
    grace_seconds: int = 5,
    pre_stop_seconds: int = 1,
    env: dict[str, str] | None = None,
    **strategy: Any,
) -> dict[str, Any]:
    """A BlueGreenApp whose pods run the demo app, reachable through the proxy at `host`."""
    body = app_manifest(
        name,
        image=data_path.image(version),
        replicas=replicas,
        labels=data_path.run_label,
        **strategy,
    )
    pod = body["spec"]["template"]["spec"]
    pod["terminationGracePeriodSeconds"] = grace_seconds
    container = pod["containers"][0]
    pod_lifecycle(container, pre_stop_seconds)
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    body["spec"]["ingress"] = {
        "host": host,
        "className": data_path.ingress_class,
        "annotations": dict(NO_RETRIES),
    }
    return body


def demo_deployment(
    name: str, data_path: DataPath, color: str, version: str = "v1", replicas: int = 1
) -> dict[str, Any]:
    """A plain Deployment of the demo app in one colour (no operator involved)."""
    labels = {"app": name, **data_path.run_label}
    container = {
        "name": "app",
        "image": data_path.image(version),
        "ports": [{"name": "http", "containerPort": 3000}],
        "env": [{"name": "APP_COLOR", "value": color}, {"name": "APP_VERSION", "value": version}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    }
    pod_lifecycle(container, 1)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def http_route(
    name: str, data_path: DataPath, host: str, weights: dict[str, int]
) -> dict[str, Any]:
    """An HTTPRoute on the data path's Gateway, splitting `host` over Services by weight."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [
                {"name": data_path.gateway_name, "namespace": data_path.gateway_namespace}
            ],
            "hostnames": [host],
            "rules": [
                {
                    "backendRefs": [
                        {"name": svc, "port": 80, "weight": weight}
                        for svc, weight in weights.items()
                    ]
                }
            ],
        },
    }
