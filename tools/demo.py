#!/usr/bin/env python3
"""`make demo`: the operator against the local control plane, a release and a rollback.

1. start (or reuse) the local control plane and install the CRD;
2. start the real operator process;
3. apply a BlueGreenApp at v1, release v2, and print the release's timeline with the
   measured switch latency;
4. release v3, whose pods never become ready (kwok is told so by a label): the operator
   gives up at the progress deadline and traffic never leaves v2;
5. clean up: the demo namespace, the operator, and the control plane if the demo started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402
from tests.support.apps import NOT_READY, Apps, app_manifest, install_crd  # noqa: E402
from tests.support.cluster import cluster_session  # noqa: E402
from tests.support.operator import OperatorProcess  # noqa: E402

NAMESPACE = "bluegreen-demo"
BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(kubeconfig: Path, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run(list(args), env=env, check=False)


def main() -> int:
    started = time.monotonic()
    with cluster_session() as cluster:
        kc = cluster.kubeconfig
        api_client = config.new_client_from_config(config_file=str(kc))
        core = client.CoreV1Api(api_client)
        install_crd(api_client)
        try:
            core.delete_namespace(NAMESPACE)
            while any(n.metadata.name == NAMESPACE for n in core.list_namespace().items):
                time.sleep(0.5)
        except client.ApiException:
            pass
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        op = OperatorProcess(kc, REPO / ".cache" / "demo-logs", namespaces=NAMESPACE)
        op.start()
        say(f"operator running (log: {op.log_path})")
        apps = Apps(api_client, NAMESPACE)
        try:
            say("apply shop v1 (2 replicas)")
            apps.create(
                app_manifest(
                    "shop",
                    image="registry.example/shop:v1",
                    replicas=2,
                    scaleDownDelaySeconds=3,
                    abortScaleDownDelaySeconds=3,
                    progressDeadlineSeconds=6,
                )
            )
            apps.wait_phase("shop", "Healthy")
            run(kc, str(BIN / "kubectl"), "-n", NAMESPACE, "get", "bga,deploy,svc")

            say("release v2: deploy to green, wait until saturated, switch, verify endpoints")
            apps.set_image("shop", "registry.example/shop:v2")
            apps.wait_release_done("shop", 2)
            run(kc, str(BIN / "kubectl-bluegreen"), "-n", NAMESPACE, "timeline", "shop")

            say("release v3: its pods never become ready; the deadline rolls it back")
            apps.set_image("shop", "registry.example/shop:v3", labels=NOT_READY)
            apps.wait_phase("shop", "Degraded", timeout=60)
            run(kc, str(BIN / "kubectl-bluegreen"), "-n", NAMESPACE, "timeline", "shop", "--events")
            run(kc, str(BIN / "kubectl-bluegreen"), "-n", NAMESPACE, "history", "shop")
            run(kc, str(BIN / "kubectl"), "-n", NAMESPACE, "get", "bga", "-o", "wide")
        finally:
            op.stop()
            core.delete_namespace(NAMESPACE)
    say(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
