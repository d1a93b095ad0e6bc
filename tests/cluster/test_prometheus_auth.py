"""Releases whose analysis needs the operator's Prometheus credentials, on real parts.

A real Prometheus (Debian's) serves its API over TLS with a certificate of a test CA and
scrapes real demo app processes, labelled as the operator's ServiceMonitor labels pods. In
front of it on loopback: a server that wants a bearer token, and one that checks nothing
and records what it got. The real operator runs as its own process, first without
credentials, then with them in its settings (env and a profiles file), as an
administrator configures it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.authproxy import AuthProxy, BearerCheck
from tests.support.cluster import REPO, Cluster
from tests.support.demo_app import start_demo_app
from tests.support.operator import OperatorProcess, for_operator
from tests.support.process import ProcessExitedError
from tests.support.prometheus import PrometheusServer
from tests.support.tls import make_ca
from tests.support.tools import helm_template
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

TOKEN = "prometheus-token-of-the-operator"  # noqa: S105 - the test's own
NAMES = ("tls", "bearer", "plain")
UP = 'sum(up{namespace="{{namespace}}",app="{{name}}",color="{{color}}"})'


def analysis(address: str) -> dict[str, Any]:
    check = {"name": "up", "query": UP, "thresholdRange": {"min": 1}, "interval": "1s"}
    return {"prometheus": {"address": address}, "prePromotion": [{**check, "count": 2}]}


@dataclass
class World:
    apps: Apps
    operator: OperatorProcess
    prometheus: PrometheusServer
    bearer: AuthProxy
    plain: AuthProxy
    auth_env: dict[str, str]

    def addresses(self) -> dict[str, str]:
        return {
            "tls": for_operator(self.prometheus.url),  # https://localhost:<port>
            "bearer": for_operator(self.bearer.url),
            "plain": for_operator(self.plain.url),
        }


@pytest.fixture
def world(
    own_operator: tuple[OperatorProcess, str], api_client: client.ApiClient, tmp_path: Path
) -> Iterator[World]:
    op, ns = own_operator  # started without Prometheus credentials
    ca = make_ca(tmp_path / "ca")
    with start_demo_app("blue", "v1") as blue, start_demo_app("green", "v2") as green:
        targets = [
            (f"127.0.0.1:{app.port}", {"namespace": ns, "app": name, "color": color})
            for name in NAMES
            for color, app in (("blue", blue), ("green", green))
        ]
        prom = PrometheusServer(targets, tls=ca.issue("prometheus"))
        prom.start()
        bearer = AuthProxy(prom.url, BearerCheck(TOKEN), upstream_context=prom.context).start()
        plain = AuthProxy(prom.url, None, upstream_context=prom.context).start()
        token = tmp_path / "token"
        token.write_text(TOKEN + "\n")
        profiles = tmp_path / "profiles.yaml"
        profiles.write_text(
            f"- addresses: [{for_operator(prom.url)}]\n  caFile: {ca.cert}\n",
        )
        env = {
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": for_operator(bearer.url),
            "BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE": str(token),
            "BLUEGREEN_PROMETHEUS_AUTH_FILE": str(profiles),
        }
        try:
            yield World(Apps(api_client, ns), op, prom, bearer, plain, env)
        finally:
            bearer.stop()
            plain.stop()
            prom.close()


def paused(apps: Apps, name: str) -> dict[str, Any] | None:
    st = apps.status(name)
    cond = next((c for c in st.get("conditions", []) if c["type"] == "Paused"), None)
    return cond if st.get("phase") == "Paused" and cond and cond["status"] == "True" else None


def test_analysis_passes_with_the_administrators_credentials_and_says_why_without(
    world: World,
) -> None:
    apps = world.apps
    for name, address in world.addresses().items():
        body = app_manifest(name)
        body["spec"]["analysis"] = analysis(address)
        apps.create(body)
    for name in NAMES:
        apps.wait_phase(name, "Healthy", timeout=60)  # the first deploy has no analysis
        apps.set_image(name, "registry.example/shop:v2")

    # Without credentials: a Prometheus that needs none passes; the others pause, and say why.
    done = apps.wait_release_done("plain", 2, timeout=90)
    assert done["phase"] == "Healthy" and done["activeColor"] == "green"
    tls = wait_for("tls to pause", lambda: paused(apps, "tls"), timeout=60)
    assert tls["reason"] == "AnalysisInconclusive", tls
    assert "Prometheus TLS certificate not trusted" in tls["message"], tls["message"]
    assert "BLUEGREEN_PROMETHEUS_CA_FILE" in tls["message"]
    bearer = wait_for("bearer to pause", lambda: paused(apps, "bearer"), timeout=60)
    assert "Prometheus answered HTTP 401 Unauthorized" in bearer["message"], bearer["message"]
    assert "credentials for this address are missing or refused" in bearer["message"]
    for name in ("tls", "bearer"):
        assert apps.status(name)["activeColor"] == "blue"  # never a switch without a pass
    print(f"\ntls paused: {tls['message']}\nbearer paused: {bearer['message']}")

    # The administrator configures the credentials; the paused releases go on by themselves.
    world.operator.stop()
    world.operator.extra_env.update(world.auth_env)
    world.operator.start()
    for name in ("tls", "bearer"):
        done = apps.wait_release_done(name, 2, timeout=90)
        assert done["phase"] == "Healthy" and done["activeColor"] == "green", done
        run = done["analysis"]
        assert run["phase"] == "pre" and run["verdict"] == "Successful", run

    # With the token configured, another allowed address still gets none of it.
    apps.set_image("plain", "registry.example/shop:v3")
    done = apps.wait_release_done("plain", 3, timeout=90)
    assert done["phase"] == "Healthy" and done["activeColor"] == "blue"
    plain_seen = world.plain.requests()
    assert plain_seen, "the plain Prometheus was never asked"
    assert not [s for s in plain_seen if "authorization" in s.headers]
    accepted = [s for s in world.bearer.requests() if s.refused is None]
    assert accepted, "the bearer proxy never let a query through"
    assert {s.headers["authorization"] for s in accepted} == {f"Bearer {TOKEN}"}
    print(
        f"\nqueries: {len(plain_seen)} to the plain address (no Authorization), "
        f"{len(accepted)} with the token, "
        f"{len(world.bearer.requests()) - len(accepted)} refused before it was configured"
    )


def test_credentials_without_addresses_stop_the_operator_with_the_reason(
    cluster: Cluster, crd: None, tmp_path: Path
) -> None:
    op = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces="bad-auth-settings",
        env={"BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE": str(tmp_path / "token")},
        log_name="operator-bad-auth-settings.log",
    )
    with pytest.raises(ProcessExitedError) as exited:
        op.start(timeout=60)
    assert "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES must name the addresses" in exited.value.output


CHART_CREDENTIALS = (
    "prometheusAuth.addresses[0]=https://prometheus.monitoring.svc:9090",
    "prometheusAuth.bearerToken.source=serviceAccountToken",
    "prometheusAuth.bearerToken.audience=prometheus",
    "prometheusAuth.caConfigMap.name=prometheus-ca",
    "prometheusAuth.profiles[0].addresses[0]=https://mimir.monitoring.svc:8080",
    "prometheusAuth.profiles[0].headers.X-Api-Key.file=/var/run/secrets/bluegreen/mimir/key",
    "prometheusAuth.volumes[0].name=mimir-key",
    "prometheusAuth.volumes[0].secret.secretName=mimir-key",
    "prometheusAuth.volumeMounts[0].name=mimir-key",
    "prometheusAuth.volumeMounts[0].mountPath=/var/run/secrets/bluegreen/mimir",
)


def test_the_api_server_accepts_the_charts_credential_volumes(
    api_client: client.ApiClient, namespace: str
) -> None:
    """The chart's Deployment and profiles ConfigMap with every kind of credential volume,
    created in dry-run mode: the API server validates them in full (a projected token's
    lifetime and path, volume names, mounts) without running anything."""
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)

    def create(*sets: str) -> None:
        docs = helm_template(REPO / "charts" / "bluegreen-operator", *sets, namespace=namespace)
        (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        core.create_namespaced_config_map(namespace, config_map, dry_run="All")
        apps.create_namespaced_deployment(namespace, deployment, dry_run="All")

    create(*CHART_CREDENTIALS)
    # The same check refuses a pod the kubelet could not start: an own volume named like
    # one of the chart's.
    with pytest.raises(ApiException) as refused:
        create(
            *CHART_CREDENTIALS,
            "prometheusAuth.volumes[0].name=prometheus-ca",
            "prometheusAuth.volumeMounts[0].name=prometheus-ca",
        )
    assert refused.value.status == 422
    assert "prometheus-ca" in str(refused.value.body)
