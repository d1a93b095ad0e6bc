"""Every release path that claims zero downtime, with real requests through the proxy.

A first deploy, a manual promotion, a rollback after the switch, an operator SIGKILLed in
the middle of a release, and the old colour's scale-down after its delay: a bounded
client sends requests through Traefik all along, and no request fails because of the
operator. (A candidate that answers 500 on purpose is the app's own error, counted apart.)
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from tests.support.apps import Apps
from tests.support.datapath import NO_RETRIES, DataPath, data_path_app
from tests.support.operator import OperatorProcess, for_operator
from tests.support.proxytraffic import (
    TALLY,
    Answer,
    ProxyTraffic,
    settled_on,
    wait_until_served,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

RATE = 100.0


def serving(data_path: DataPath, host: str, color: str) -> None:
    wait_until_served(
        data_path.ingress, host, lambda status, answer: status == 200 and answer == color
    )


def proxy_failures(answers: list[Answer]) -> list[Answer]:
    """Requests no app answered: connection failures and the proxy's own errors."""
    return [a for a in answers if a.failed and not a.color]


def test_first_deploy_serves_without_a_gap(apps: Apps, data_path: DataPath) -> None:
    host = "first.example.com"
    traffic = ProxyTraffic(data_path.ingress, host, requests=1500, rate=RATE)
    with traffic:
        apps.create(data_path_app("shop", data_path, host))
        apps.wait_phase("shop", "Healthy", timeout=60)
        wait_for("traffic on blue for 2s", lambda: settled_on(traffic, "blue", 2.0))
    answers = traffic.answers()
    TALLY.add("first deploy", traffic)
    first = next(i for i, a in enumerate(answers) if a.color == "blue")
    late = [a for a in answers[first:] if a.failed or a.color != "blue"]
    assert not late, f"{len(late)} not served by blue after it first answered: {late[:5]}"


def test_manual_promotion_moves_traffic_only_when_promoted(apps: Apps, data_path: DataPath) -> None:
    host = "manual.example.com"
    apps.create(data_path_app("shop", data_path, host, autoPromotion=False))
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    traffic = ProxyTraffic(data_path.ingress, host, requests=3000, rate=RATE)
    with traffic:
        apps.set_image("shop", data_path.image("v2"))
        apps.wait_phase("shop", "Paused", timeout=60)
        time.sleep(2)
        paused_until = time.time()
        apps.request("shop", "promote")
        apps.wait_release_done("shop", 2, timeout=60)
        wait_for("traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
    TALLY.add("manual promotion", traffic)
    assert not traffic.failures(), traffic.failures()[:10]
    waiting = traffic.between(0, paused_until)
    assert traffic.colors(waiting) == {"blue": len(waiting)}, "traffic moved before the promote"


def test_rollback_after_the_switch_fails_no_request_of_the_stable_colour(
    apps: Apps, api_client: client.ApiClient, namespace: str, data_path: DataPath
) -> None:
    """v2 answers 500 to every page: post-promotion analysis (a web check through the proxy)
    fails and traffic goes back to blue. Only v2's own answers are errors; no request falls
    between the colours."""
    host = "rollback.example.com"
    body = data_path_app("shop", data_path, host, scaleDownDelaySeconds=30)
    body["spec"]["analysis"] = {
        "postPromotion": [
            {
                "name": "pages",
                "url": for_operator(data_path.ingress.rstrip("/")) + "/",
                "interval": "1s",
                "count": 3,
            }
        ]
    }
    # The web check reaches the active colour through the proxy, by a host-less rule.
    client.NetworkingV1Api(api_client).create_namespaced_ingress(
        namespace, active_service_ingress(data_path)
    )
    apps.create(body)
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    traffic = ProxyTraffic(data_path.ingress, host, requests=3000, rate=RATE)
    with traffic:
        template = apps.get("shop")["spec"]["template"]
        container = template["spec"]["containers"][0]
        container["image"] = data_path.image("v2")
        container["env"] = [*container.get("env", []), {"name": "FAULT_ERROR_RATIO", "value": "1"}]
        apps.patch_spec("shop", {"template": template})
        done = apps.wait_phase("shop", "Degraded", timeout=90)
        wait_for("traffic back on blue for 1s", lambda: settled_on(traffic, "blue", 1.0))
    TALLY.add("rollback after the switch", traffic, app_errors=True)
    answers = traffic.answers()
    assert done["activeColor"] == "blue" and done["release"]["result"] == "RolledBack"
    assert not proxy_failures(answers), proxy_failures(answers)[:10]
    assert all(a.color == "green" for a in answers if a.failed), "blue failed a request"
    assert any(a.color == "green" for a in answers), "traffic never reached v2"


def active_service_ingress(data_path: DataPath) -> dict[str, Any]:
    """A rule without a host on the active Service, for the operator's web check."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "check", "annotations": dict(NO_RETRIES)},
        "spec": {
            "ingressClassName": data_path.ingress_class,
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "shop", "port": {"name": "http"}}},
                            }
                        ]
                    }
                }
            ],
        },
    }


def test_operator_sigkilled_mid_release_drops_no_request(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str], data_path: DataPath
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    host = "sigkill.example.com"
    apps.create(data_path_app("shop", data_path, host))
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    traffic = ProxyTraffic(data_path.ingress, host, requests=3000, rate=RATE)
    with traffic:
        apps.set_image("shop", data_path.image("v2"))
        wait_for("the release to start", lambda: apps.status("shop").get("phase") != "Healthy")
        op.kill()
        time.sleep(3)
        op.start()
        apps.wait_release_done("shop", 2, timeout=60)
        wait_for("traffic on green for 1s", lambda: settled_on(traffic, "green", 1.0))
    TALLY.add("operator SIGKILLed mid-release", traffic)
    assert not traffic.failures(), traffic.failures()[:10]


def test_the_old_colour_scales_down_after_its_delay_without_a_failed_request(
    apps: Apps, api_client: client.ApiClient, namespace: str, data_path: DataPath
) -> None:
    host = "scaledown.example.com"
    apps.create(data_path_app("shop", data_path, host, scaleDownDelaySeconds=3))
    apps.wait_phase("shop", "Healthy")
    serving(data_path, host, "blue")
    traffic = ProxyTraffic(data_path.ingress, host, requests=2000, rate=RATE)
    core = client.CoreV1Api(api_client)

    def blue_pods() -> int:
        pods = core.list_namespaced_pod(namespace, label_selector="bluegreen.dev/color=blue")
        return len(pods.items)

    with traffic:
        apps.set_image("shop", data_path.image("v2"))
        apps.wait_release_done("shop", 2, timeout=60)
        wait_for("blue's pods to go", lambda: blue_pods() == 0, timeout=60)
        time.sleep(1)
    TALLY.add("scale-down after the delay", traffic)
    assert not traffic.failures(), traffic.failures()[:10]
    assert "scaleDown" not in apps.status("shop")
