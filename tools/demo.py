#!/usr/bin/env python3
"""`make demo`: the operator against the local control plane, a release and a rollback.

1. start (or reuse) the local control plane and install the CRD; start the real operator;
2. start the demo app as two real processes (blue and green) on loopback, a real
   Prometheus scraping them, and a router that sends requests to the colour the active
   Service selects (kwok runs no containers, so the router plays kube-proxy);
3. apply a BlueGreenApp at v1 with pre- and post-promotion analysis on the error rate;
4. release v2: analysed, switched, verified, promoted; print its timeline;
5. release v3, then make it answer half of its requests with errors once it takes
   traffic: the post-promotion analysis catches it and the operator rolls back by itself;
   print the timeline with the error rate that triggered it;
6. draw the request rate per colour across both switches to .cache/demo/switch.png;
7. clean up: the namespace, the processes, and the control plane if the demo started it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402
from tests.support.apps import Apps, app_manifest, install_crd  # noqa: E402
from tests.support.cluster import cluster_session  # noqa: E402
from tests.support.demo_app import http_request, start_demo_app  # noqa: E402
from tests.support.operator import OperatorProcess  # noqa: E402
from tests.support.prometheus import PrometheusServer  # noqa: E402
from tests.support.router import Router  # noqa: E402

NAMESPACE = "bluegreen-demo"
BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(kubeconfig: Path, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run(list(args), env=env, check=False)


SEL = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",route="/"'
ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SEL},status=~"5.."}}[4s]))'
    f" / sum(rate(http_requests_total{{{SEL}}}[4s]))"
)
REQUESTS = f"sum(increase(http_requests_total{{{SEL}}}[4s]))"


def demo_app(prometheus: str) -> dict[str, object]:
    body = app_manifest(
        "shop", image="registry.example/shop:v1", replicas=2, scaleDownDelaySeconds=5
    )
    check = {
        "name": "error-rate",
        "query": ERROR_RATE,
        "thresholdRange": {"max": 0.05},
        "interval": "1s",
        "failureLimit": 1,
        "minRequestsQuery": REQUESTS,
        "minRequests": 8,
    }
    body["spec"]["analysis"] = {
        "prometheus": {"address": prometheus},
        "prePromotion": [{**check, "count": 3}],
        "postPromotion": [{**check, "count": 8}],
    }
    return body


def faults(url: str, **values: object) -> None:
    http_request("POST", url + "/admin/faults", body=json.dumps(values).encode())


def main() -> int:
    started = time.monotonic()
    with cluster_session() as cluster:
        kc = cluster.kubeconfig
        api_client = config.new_client_from_config(config_file=str(kc))
        core = client.CoreV1Api(api_client)
        install_crd(api_client)
        namespace = f"{NAMESPACE}-{uuid.uuid4().hex[:5]}"
        core.create_namespace({"metadata": {"name": namespace}})
        op = OperatorProcess(kc, REPO / ".cache" / "demo-logs", namespaces=namespace)
        op.start()
        say(f"operator running in namespace {namespace} (log: {op.log_path})")
        try:
            story(api_client, kc, namespace)
        finally:
            op.stop()
            core.delete_namespace(namespace)
    say(f"done in {time.monotonic() - started:.1f}s")
    return 0


def story(api_client: client.ApiClient, kc: Path, namespace: str) -> None:
    apps = Apps(api_client, namespace)
    labels = {"namespace": namespace, "app": "shop"}
    plugin = str(BIN / "kubectl-bluegreen")
    with start_demo_app("blue", "v1") as blue, start_demo_app("green", "v2") as green:
        prom = PrometheusServer(
            [
                (f"127.0.0.1:{blue.port}", {**labels, "color": "blue"}),
                (f"127.0.0.1:{green.port}", {**labels, "color": "green"}),
            ]
        )
        prom.start()
        urls = {"blue": blue.url, "green": green.url}
        router = Router(api_client, namespace, "shop", urls, max_seconds=300).start()
        try:
            say(f"demo app: blue {blue.url}, green {green.url}; Prometheus {prom.url}")
            say("apply shop v1 (2 replicas, error-rate analysis before and after the switch)")
            apps.create(demo_app(prom.url))
            apps.wait_phase("shop", "Healthy", timeout=60)
            run(kc, str(BIN / "kubectl"), "-n", namespace, "get", "bga,deploy,svc")

            say("release v2: deploy to green, analyse, switch, verify endpoints, observe")
            apps.set_image("shop", "registry.example/shop:v2")
            apps.wait_release_done("shop", 2, timeout=120)
            run(kc, plugin, "-n", namespace, "timeline", "shop")

            say("release v3: half of its requests fail once it takes traffic")
            apps.set_image("shop", "registry.example/shop:v3")
            while apps.status("shop").get("phase") not in ("Observing", "Degraded"):
                time.sleep(0.05)
            faults(blue.url, errorRatio=0.5)
            apps.wait_phase("shop", "Degraded", timeout=120)
            run(kc, plugin, "-n", namespace, "timeline", "shop", "--events")
            run(kc, plugin, "-n", namespace, "history", "shop")
            run(kc, str(BIN / "kubectl"), "-n", namespace, "get", "bga", "-o", "wide")
            served = {
                f"{svc} {color} HTTP {code}": n for (svc, color, code), n in router.statuses.items()
            }
            say(f"requests the router sent, by Service, colour and answer: {served}")
            time.sleep(2)
            png = REPO / ".cache" / "demo" / "switch.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            run(
                kc,
                plugin,
                "-n",
                namespace,
                "graph",
                "shop",
                "--prometheus",
                prom.url,
                "--since",
                "5m",
                "-o",
                str(png),
            )
            apps.delete("shop")  # while the operator still runs
        finally:
            router.stop()
            prom.close()


if __name__ == "__main__":
    raise SystemExit(main())
