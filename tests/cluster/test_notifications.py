"""Notifications from real releases: the operator process, configured as an administrator
configures it (a notifications file, an allow-list), releases a BlueGreenApp on the local
control plane and posts to real HTTP receivers on loopback, reached by the name
`localhost`. A post-promotion web check against one of them decides whether a release is
kept or rolled back by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.test_operator_metrics import scrape, value
from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import REPO, Cluster
from tests.support.operator import TEST_HOST, OperatorProcess, for_operator
from tests.support.process import ProcessExitedError
from tests.support.receiver import Receiver
from tests.support.tools import helm_template
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@dataclass
class World:
    apps: Apps
    operator: OperatorProcess
    team: Receiver  # a Slack-compatible webhook, and the web check's /health
    pager: Receiver  # a JSON webhook that answers 500

    def events(self, receiver: Receiver, name: str = "shop") -> list[str]:
        out = []
        for body in receiver.bodies():
            if "event" in body:  # the JSON document
                out.append(body["event"] if body["app"]["name"] == name else "")
            else:  # Slack's message: "*Release promoted*: ns/shop ..."
                out.append(body["text"].split("*")[1])
        return out


@pytest.fixture
def world(
    cluster: Cluster, crd: None, api_client: client.ApiClient, tmp_path: Path
) -> Iterator[World]:
    core = client.CoreV1Api(api_client)
    ns = f"n{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    with Receiver() as team, Receiver() as pager:
        config = tmp_path / "notifications.yaml"
        url_file = tmp_path / "team-url"  # as a mounted Secret would hold it
        url_file.write_text(for_operator(team.url) + "/services/T0/B0/secret\n")
        config.write_text(
            "endpoints:\n"
            f"  - {{name: team, type: slack, urlFile: {url_file}}}\n"
            f"  - {{name: pager, type: webhook, url: '{for_operator(pager.url)}/alerts'}}\n"
            "subscriptions:\n"
            "  - {endpoint: pager, events: [RolledBack, Degraded]}\n"
        )
        env = {
            "BLUEGREEN_NOTIFICATIONS_FILE": str(config),
            "BLUEGREEN_NOTIFICATIONS_ALLOWED": TEST_HOST,
            "BLUEGREEN_NOTIFICATIONS_ATTEMPTS": "2",
            "BLUEGREEN_NOTIFICATIONS_RETRY_SECONDS": "0.1",
        }
        op = OperatorProcess(
            cluster.kubeconfig, OPERATOR_LOGS, namespaces=ns, env=env, log_name=f"operator-{ns}.log"
        )
        op.start()
        pager.answer = 500
        try:
            yield World(Apps(api_client, ns), op, team, pager)
        finally:
            op.stop()
            core.delete_namespace(ns, propagation_policy="Background")


def app(world: World) -> dict[str, Any]:
    body = app_manifest("shop")
    check = {"interval": "1s", "count": 3, "failureLimit": 0}
    body["spec"]["analysis"] = {
        "postPromotion": [
            {"name": "smoke", "url": for_operator(world.team.url) + "/health", **check}
        ]
    }
    body["spec"]["notifications"] = [{"endpoint": "team"}]
    return body


def settled(apps: Apps, releases: int) -> dict[str, Any]:
    """The release is done and the old colour scaled down: a pass wrote status after the
    one that ended the release (a notice sent again then would show)."""
    apps.wait_release_done("shop", releases, timeout=90)
    return wait_for(
        f"release #{releases} to settle",
        lambda: (st := apps.status("shop")) and "scaleDown" not in st and st,
        timeout=30,
    )


def test_a_release_and_an_automatic_rollback_notify_each_transition_once(world: World) -> None:
    apps, team = world.apps, world.team
    apps.create(app(world))
    first = settled(apps, 1)
    ready = next(c for c in first["conditions"] if c["type"] == "NotificationsReady")
    assert (ready["status"], ready["reason"]) == ("True", "EndpointsConfigured")

    apps.set_image("shop", "registry.example/shop:v2")
    promoted = settled(apps, 2)
    assert promoted["phase"] == "Healthy" and promoted["activeColor"] == "green"
    team.wait_for(4)

    team.health = 500  # the next release fails its post-promotion check
    apps.set_image("shop", "registry.example/shop:v3")
    rolled = settled(apps, 3)
    assert rolled["phase"] == "Degraded" and rolled["release"]["result"] == "RolledBack"
    team.wait_for(6)

    # The pager answers 500: two attempts, then an Event on the app and a metric.
    world.pager.wait_for(2)
    failed = wait_for(
        "the NotificationFailed Event",
        lambda: [e for e in apps.events("shop") if e.get("reason") == "NotificationFailed"],
        timeout=30,
    )
    assert "notification RolledBack to pager failed after 2 attempts: HTTP 500" in failed[0]["note"]
    assert "secret" not in failed[0]["note"]
    samples = scrape(world.operator.metrics_port)
    assert (
        value(samples, "bluegreen_notifications_failed_total", endpoint="pager", event="RolledBack")
        == 1
    )
    assert value(samples, "bluegreen_notifications_sent_total", endpoint="team") == 6

    # A restarted operator starts from the status: nothing is sent again. A new release
    # afterwards is: whatever a restart had queued would have arrived before it.
    world.operator.kill()
    world.operator.start()
    team.health = 200
    apps.set_image("shop", "registry.example/shop:v4")
    settled(apps, 4)
    team.wait_for(8)
    assert world.events(team) == [
        *("Release started", "Release promoted"),  # the first deploy
        *("Release started", "Release promoted"),  # v2
        *("Release started", "Release rolled back"),  # v3
        *("Release started", "Release promoted"),  # v4, after the restart
    ]
    assert world.events(world.pager) == ["RolledBack", "RolledBack"]  # one notice, 2 attempts
    assert len(world.pager.received) == 2

    # What the rollback said, in Slack's format and in the JSON document.
    slack = team.bodies()[5]
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    release = rolled["release"]
    assert fields["Revision"] == release["revision"]
    assert fields["Colours"] == "green -> blue"
    assert fields["Serving"] == "green"
    assert fields["Reason"] == "PostPromotionAnalysisFailed"
    assert fields["Switch latency"] == f"{release['switchLatencySeconds']:.3f}s"
    assert "smoke: 1 of 1 failed, last 0 (Failed)" in fields["Analysis"]
    doc = world.pager.bodies()[0]
    assert doc["id"].startswith(f"{apps.get('shop')['metadata']['uid']}/{release['revision']}/")
    assert doc["release"]["durationSeconds"] == release["durationSeconds"]
    assert doc["release"]["rollbackSeconds"] == release["rollbackSeconds"]
    assert doc["analysis"]["measurements"][0]["value"] == 0.0
    print("\n" + slack["attachments"][0]["fallback"])
    print(
        f"\nrelease v3: {release['durationSeconds']:.1f}s, switch latency "
        f"{release['switchLatencySeconds']:.3f}s, rollback {release['rollbackSeconds']:.3f}s"
    )


def test_an_endpoint_the_administrator_did_not_configure_is_a_condition(world: World) -> None:
    body = app(world)
    body["spec"]["notifications"] = [{"endpoint": "teem", "events": ["Promoted"]}]
    world.apps.create(body)
    st = world.apps.wait_phase("shop", "Healthy", timeout=60)
    ready = next(c for c in st["conditions"] if c["type"] == "NotificationsReady")
    assert (ready["status"], ready["reason"]) == ("False", "EndpointUnknown")
    assert "teem is not configured" in ready["message"] and "pager, team" in ready["message"]
    assert world.team.received == []


def test_a_wrong_notifications_file_stops_the_operator_with_the_reason(
    cluster: Cluster, crd: None, tmp_path: Path
) -> None:
    config = tmp_path / "notifications.yaml"
    config.write_text(
        "endpoints:\n  - {name: team, type: slack, url: 'https://hooks.slack.com/services/x'}\n"
        "subscriptions:\n  - {endpoint: teem}\n"
    )
    op = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces="bad-notification-settings",
        env={"BLUEGREEN_NOTIFICATIONS_FILE": str(config)},
        log_name="operator-bad-notification-settings.log",
    )
    with pytest.raises(ProcessExitedError) as exited:
        op.start(timeout=60)
    assert "invalid notification settings" in exited.value.output
    assert "subscription to teem, which is not an endpoint" in exited.value.output


def test_the_api_server_accepts_the_charts_notification_objects(
    api_client: client.ApiClient, namespace: str
) -> None:
    """The chart's Deployment and notifications ConfigMap, created in dry-run mode: the API
    server validates the volumes and mounts in full without running anything."""
    docs = helm_template(
        REPO / "charts" / "bluegreen-operator",
        "notifications.secretName=bluegreen-notifications",
        "notifications.endpoints[0].name=team-slack",
        "notifications.endpoints[0].type=slack",
        "notifications.endpoints[0].urlFile=/var/run/secrets/bluegreen/notifications/team-slack",
        "notifications.subscriptions[0].endpoint=team-slack",
        namespace=namespace,
    )
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    client.CoreV1Api(api_client).create_namespaced_config_map(namespace, config_map, dry_run="All")
    client.AppsV1Api(api_client).create_namespaced_deployment(namespace, deployment, dry_run="All")
