"""A user of its own for a controller under test, so the API server counts its requests.

`apiserver_request_total` has no label for who asked. API Priority and Fairness does: every
request it dispatches counts in `apiserver_flowcontrol_dispatched_requests_total` under the
FlowSchema that matched it. So each controller gets a client certificate of its own (signed
by the local control plane's CA, which tools/localcluster.py keeps in its pki folder), a
ClusterRoleBinding to cluster-admin, and a FlowSchema that matches only that user and sends
it to the `exempt` priority level: the same treatment as the admin user it would otherwise
run as (system:masters is exempt), so counting changes nothing about how it is served.

Only the local control plane's CA is at hand; on another cluster `client_kubeconfig`
returns None and callers fall back to the controller's own counters.
"""

from __future__ import annotations

import base64
import collections
import os
import re
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import REPO

CLUSTER_DIR = Path(os.environ.get("BLUEGREEN_CLUSTER_DIR", REPO / ".cache" / "cluster"))
GROUP = "bench:controllers"
FLOW_PREFIX = "bench-"
_SERIES = re.compile(r"^apiserver_flowcontrol_dispatched_requests_total\{([^}]*)\}\s+(\S+)", re.M)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def client_kubeconfig(cluster_kubeconfig: Path, user: str, out_dir: Path) -> Path | None:
    """A kubeconfig for `user` (group bench:controllers) with a fresh client certificate,
    or None when the cluster's CA key is not at hand."""
    pki = CLUSTER_DIR / "pki"
    if not (pki / "ca.key").exists():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        key, csr, crt = (Path(tmp) / n for n in ("client.key", "client.csr", "client.crt"))
        _openssl("genrsa", "-out", str(key), "2048")
        _openssl(
            "req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={user}/O={GROUP}"
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")),
            "-days",
            "2",
            "-out",
            str(crt),
        )
        cert_data = base64.b64encode(crt.read_bytes()).decode()
        key_data = base64.b64encode(key.read_bytes()).decode()
    base = yaml.safe_load(cluster_kubeconfig.read_text())
    context = next(c for c in base["contexts"] if c["name"] == base["current-context"])
    cluster = next(c for c in base["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": cert_data, "client-key-data": key_data},
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path = out_dir / f"kubeconfig-{user}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def grant(api_client: client.ApiClient, user: str) -> str:
    """cluster-admin for `user`, and a FlowSchema of its own; returns the FlowSchema's name."""
    name = FLOW_PREFIX + user
    rbac = client.RbacAuthorizationV1Api(api_client)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    with suppress(ApiException):
        rbac.delete_cluster_role_binding(name)
    rbac.create_cluster_role_binding(binding)
    flow = client.FlowcontrolApiserverV1Api(api_client)
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "matchingPrecedence": 100,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": user}}],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "clusterScope": True,
                            "namespaces": ["*"],
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    with suppress(ApiException):
        flow.delete_flow_schema(name)
    flow.create_flow_schema(schema)
    return name


def revoke(api_client: client.ApiClient, user: str) -> None:
    name = FLOW_PREFIX + user
    with suppress(ApiException):
        client.RbacAuthorizationV1Api(api_client).delete_cluster_role_binding(name)
    with suppress(ApiException):
        client.FlowcontrolApiserverV1Api(api_client).delete_flow_schema(name)


def apiserver_metrics(api_client: client.ApiClient) -> str:
    method, url, headers, _, _ = api_client.param_serialize(
        method="GET",
        resource_path="/metrics",
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(method, url, header_params=headers, _request_timeout=60)
    return str(resp.read().decode())


def dispatched_by_flow_schema(metrics_text: str) -> dict[str, float]:
    """apiserver_flowcontrol_dispatched_requests_total summed per FlowSchema."""
    out: dict[str, float] = collections.defaultdict(float)
    for labels, value in _SERIES.findall(metrics_text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[found.get("flow_schema", "?")] += float(value)
    return dict(out)
