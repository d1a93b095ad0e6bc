"""Acting as a ServiceAccount: a kubeconfig with a token from the TokenRequest API, and
`kubectl auth can-i` with it.

    path = token_kubeconfig(cluster.kubeconfig, api_client, "bluegreen-system", "op", tmp)
    can_i(path, "create", "deployments.apps", "-n", "shop")    # True / False
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

KUBECTL = Path(sys.executable).parent / "kubectl"


def token_kubeconfig(
    cluster_kubeconfig: Path,
    api_client: client.ApiClient,
    namespace: str,
    service_account: str,
    out_dir: Path,
) -> Path:
    """A kubeconfig that is `namespace`/`service_account`: the API server of
    `cluster_kubeconfig` and a one-hour token minted for that ServiceAccount."""
    token = (
        client.CoreV1Api(api_client)
        .create_namespaced_service_account_token(
            service_account, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    admin = client.Configuration()
    config.load_kube_config(config_file=str(cluster_kubeconfig), client_configuration=admin)
    entry: dict[str, Any] = {"server": admin.host}
    if admin.ssl_ca_cert:
        entry["certificate-authority-data"] = base64.b64encode(
            Path(admin.ssl_ca_cert).read_bytes()
        ).decode()
    elif not admin.verify_ssl:
        entry["insecure-skip-tls-verify"] = True
    user = f"system:serviceaccount:{namespace}:{service_account}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": user}}],
        "current-context": "sa",
    }
    path = out_dir / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def can_i(kubeconfig: Path, *args: str) -> bool:
    """`kubectl auth can-i ARGS` as the kubeconfig's user: the API server's own answer
    (a SelfSubjectAccessReview)."""
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


_DENIAL = re.compile(r"(?<![\d,.:])403(?!\d)|[Ff]orbidden|Not enough permissions")
"""A refusal by RBAC in an operator's log: HTTP 403 (not the digits of a log timestamp's
milliseconds, `...:06,403`), Forbidden, or kopf's own wording."""


def denials(log: str) -> list[str]:
    """The lines of `log` that show the API server refusing the operator something."""
    return [line for line in log.splitlines() if _DENIAL.search(line)]
