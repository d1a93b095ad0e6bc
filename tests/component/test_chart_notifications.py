"""The chart's `notifications` values, rendered by the real helm: the ConfigMap, settings and
Secret volume they give the operator, read back by the operator's own parsers, and the
values the schema (or the chart) refuses."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.notifyconfig import EndpointKind, load_config
from bluegreen.runtime.settings import Settings
from tests.support.cluster import REPO
from tests.support.tools import helm

CHART = REPO / "charts" / "bluegreen-operator"
SECRETS = "/var/run/secrets/bluegreen/notifications"
ENDPOINTS = [
    {"name": "team-slack", "type": "slack", "urlFile": f"{SECRETS}/team-slack"},
    {
        "name": "audit",
        "type": "webhook",
        "url": "http://audit.platform.svc:8080/bluegreen",
        "headers": {"X-Source": "bluegreen", "Authorization": {"file": f"{SECRETS}/audit-token"}},
    },
]
SUBSCRIPTIONS = [{"endpoint": "audit", "events": ["RolledBack", "Aborted", "Degraded"]}]


def template(tmp_path: Path, values: dict[str, Any]) -> Any:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm(
        *("template", "bg", str(CHART), "--namespace", "bluegreen-system", "-f", str(path)),
        check=False,
    )


def render(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    result = template(tmp_path, values)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = kind(docs, "Deployment")
    result: dict[str, Any] = deployment["spec"]["template"]
    return result


def env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = pod(docs)["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def configured(secret_name: str = "bluegreen-notifications", **more: Any) -> dict[str, Any]:  # noqa: S107 - a Secret's name
    return {
        "notifications": {
            "endpoints": ENDPOINTS,
            "subscriptions": SUBSCRIPTIONS,
            "secretName": secret_name,
            **more,
        }
    }


def test_off_by_default(tmp_path: Path) -> None:
    docs = render(tmp_path, {})
    assert not [n for n in env(docs) if n.startswith("BLUEGREEN_NOTIFICATIONS_")]
    assert [v["name"] for v in pod(docs)["spec"]["volumes"]] == ["tmp"]
    assert "annotations" not in pod(docs)["metadata"]
    assert not kind(docs, "ConfigMap")


def test_the_operator_reads_what_the_chart_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(tmp_path, configured(allowed=["*.svc", "hooks.slack.com"], attempts=6))
    settings = env(docs)
    (config_map,) = kind(docs, "ConfigMap")
    copy = tmp_path / "notifications.yaml"
    copy.write_text(config_map["data"]["notifications.yaml"])
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BLUEGREEN_NOTIFICATIONS_FILE", str(copy))
    s = Settings()
    assert s.notifications_allowed == ("*.svc", "hooks.slack.com")
    assert (s.notifications_attempts, s.notifications_timeout_seconds) == (6, 5.0)
    policy = EndpointPolicy(notifications=s.notifications_allowed)
    config = load_config(s.notifications_file, policy)
    assert {n: e.kind for n, e in config.endpoints.items()} == {
        "team-slack": EndpointKind.SLACK,
        "audit": EndpointKind.WEBHOOK,
    }
    assert [(x.endpoint, x.events) for x in config.subscriptions] == [
        ("audit", ["RolledBack", "Aborted", "Degraded"])
    ]
    # The file the settings name is the ConfigMap's, mounted where they say.
    (container,) = pod(docs)["spec"]["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(docs)["spec"]["volumes"]}
    file = PurePosixPath(settings["BLUEGREEN_NOTIFICATIONS_FILE"])
    assert str(file.parent) == mounts["notifications"]["mountPath"]
    assert volumes["notifications"]["configMap"]["name"] == config_map["metadata"]["name"]
    # Every file an endpoint names is a key of the Secret, mounted whole (no subPath).
    assert mounts["notifications-secret"] == {
        "name": "notifications-secret",
        "mountPath": SECRETS,
        "readOnly": True,
    }
    assert volumes["notifications-secret"]["secret"] == {"secretName": "bluegreen-notifications"}
    annotation = pod(docs)["metadata"]["annotations"]["checksum/notifications"]
    changed = render(tmp_path, configured(subscriptions=[]))
    assert pod(changed)["metadata"]["annotations"]["checksum/notifications"] != annotation


def test_the_egress_rule_of_the_endpoints(tmp_path: Path) -> None:
    def rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        (policy,) = kind(render(tmp_path, values), "NetworkPolicy")
        return list(policy["spec"]["egress"])

    default = rules({})
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "audit"}}}]
    egress = {"to": peers, "cidrs": ["203.0.113.0/24"], "ports": [8080, 443]}
    with_rule = rules({"networkPolicy": {"egress": {"notifications": egress}}})
    assert with_rule[: len(default)] == default
    assert with_rule[len(default) :] == [
        {
            "to": [*peers, {"ipBlock": {"cidr": "203.0.113.0/24"}}],
            "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}],
        }
    ]


REFUSED = [
    (configured(subscriptions=[{"endpoint": "pager"}]), "pager is not one of notifications.endpoints"),
    (configured(secret_name=""), "is not a file of notifications.secretName"),
    ({"notifications": {"secretName": "s", "endpoints": [{"name": "a", "type": "slack", "urlFile": "/etc/a"}]}}, "/etc/a is not a file of"),
    ({"notifications": {"endpoints": [{"name": "a", "type": "slack", "url": "https://x.svc"}] * 2}}, "a is listed twice"),
    ({"notifications": {"endpoints": [{"name": "a", "type": "teams", "url": "https://x.svc"}]}}, "type"),
    ({"notifications": {"endpoints": [{"name": "a", "type": "slack"}]}}, "oneOf"),
    ({"notifications": {"endpoints": [{"name": "a", "type": "slack", "url": "https://x.svc", "urlFile": f"{SECRETS}/a"}]}}, "oneOf"),
    ({"notifications": {"endpoints": [{"name": "a", "type": "webhook", "url": "https://x.svc", "headers": {"Content-Type": "x"}}]}}, "Content-Type"),
    ({"notifications": {"subscriptions": [{"endpoint": "a", "events": ["Deployed"]}]}}, "events"),
    ({"notifications": {"attempts": 0}}, "attempts"),
    ({"notifications": {"allowed": ["a.svc,b.svc"]}}, "allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "error"), REFUSED, ids=[e for _, e in REFUSED])
def test_wrong_values_are_refused_with_the_reason(
    tmp_path: Path, values: dict[str, Any], error: str
) -> None:
    result = template(tmp_path, values)
    assert result.returncode != 0
    assert error in result.stderr, result.stderr
