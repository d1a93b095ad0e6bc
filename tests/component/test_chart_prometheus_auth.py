"""The chart's `prometheusAuth` values: what they mount, the settings they give the operator,
and the values the schema (or the chart) refuses.

The rendered settings are fed to the operator's own parser (`Settings`,
`prometheus_profiles`): what the chart writes is what the operator accepts. Every file a
setting names must be in a volume of the pod, at the path the setting says.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bluegreen.adapters.promauth import AuthConfigError, load_profiles
from bluegreen.runtime.operator import prometheus_profiles
from bluegreen.runtime.settings import Settings
from tests.support.cluster import REPO
from tests.support.tools import helm

CHART = REPO / "charts" / "bluegreen-operator"
NAMESPACE = "bluegreen-system"

MIMIR = "https://mimir.monitoring.svc:8080/prometheus"
AMP = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1234"
PROFILES = [
    {
        "addresses": [MIMIR],
        "caFile": "/etc/bluegreen/mimir-ca/ca.crt",
        "headers": {
            "X-Scope-OrgID": "shop",
            "X-Api-Key": {"file": "/var/run/secrets/bluegreen/mimir/key"},
        },
    },
    {"addresses": [AMP], "sigv4": {}},
]
MIMIR_VOLUMES = {
    "volumes": [
        {"name": "mimir-key", "secret": {"secretName": "mimir-key"}},
        {"name": "mimir-ca", "configMap": {"name": "mimir-ca"}},
    ],
    "volumeMounts": [
        {"name": "mimir-key", "mountPath": "/var/run/secrets/bluegreen/mimir", "readOnly": True},
        {"name": "mimir-ca", "mountPath": "/etc/bluegreen/mimir-ca", "readOnly": True},
    ],
}


def render(tmp_path: Path, auth: dict[str, Any], **more: Any) -> list[dict[str, Any]]:
    result = template(tmp_path, auth, **more)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def template(tmp_path: Path, auth: dict[str, Any], **more: Any) -> Any:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"prometheusAuth": auth, **more}))
    return helm(
        *("template", "bg", str(CHART), "--namespace", NAMESPACE, "-f", str(values)),
        check=False,
    )


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod: dict[str, Any] = deployment["spec"]["template"]
    return pod


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def mounted_source(pod: dict[str, Any], file: str) -> tuple[dict[str, Any], str]:
    """The volume that holds `file` in the operator's container, and the file's path in it."""
    (container,) = pod["spec"]["containers"]
    path = PurePosixPath(file)
    (mount,) = [
        m for m in container["volumeMounts"] if path.is_relative_to(PurePosixPath(m["mountPath"]))
    ]
    assert "subPath" not in mount, "a subPath mount never sees a rotated file"
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    return volume, str(path.relative_to(mount["mountPath"]))


def item_key(source: dict[str, Any], path: str) -> str:
    """The key of a Secret or ConfigMap volume whose item is mounted at `path`."""
    (key,) = [item["key"] for item in source["items"] if item["path"] == path]
    return str(key)


def operator_profiles(
    env: dict[str, str], docs: list[dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> Any:
    """The profiles the operator builds from the rendered settings; the profiles file is
    the rendered ConfigMap's, written where the test can read it."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "BLUEGREEN_PROMETHEUS_AUTH_FILE" in env:
        (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
        copy = tmp_path / "profiles.yaml"
        copy.write_text(config_map["data"]["profiles.yaml"])
        monkeypatch.setenv("BLUEGREEN_PROMETHEUS_AUTH_FILE", str(copy))
    return prometheus_profiles(Settings())


# ----------------------------------------------------------------------------- rendering


def test_off_by_default_no_setting_no_volume_no_config_map(tmp_path: Path) -> None:
    docs = render(tmp_path, {})
    pod = pod_of(docs)
    assert not [name for name in env_of(pod) if name.startswith("BLUEGREEN_PROMETHEUS_")]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["tmp"]
    assert "annotations" not in pod["metadata"]
    assert not [d for d in docs if d["kind"] == "ConfigMap"]


def test_a_secrets_token_and_a_ca_are_mounted_where_the_settings_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = {
        "addresses": ["https://prometheus.monitoring.svc:9090"],
        "bearerToken": {"source": "secret", "secretName": "prom-token", "secretKey": "jwt"},
        "caConfigMap": {"name": "prom-ca", "key": "root.pem"},
    }
    docs = render(tmp_path, auth)
    pod = pod_of(docs)
    env = env_of(pod)
    assert env["BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES"] == "https://prometheus.monitoring.svc:9090"

    volume, path = mounted_source(pod, env["BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE"])
    assert volume["secret"]["secretName"] == "prom-token"
    assert item_key(volume["secret"], path) == "jwt"
    volume, path = mounted_source(pod, env["BLUEGREEN_PROMETHEUS_CA_FILE"])
    assert volume["configMap"]["name"] == "prom-ca"
    assert item_key(volume["configMap"], path) == "root.pem"

    (profile,) = operator_profiles(env, docs, tmp_path, monkeypatch)
    assert [rule.text for rule in profile.rules] == ["https://prometheus.monitoring.svc:9090"]
    assert profile.bearer_token_file == env["BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE"]
    assert profile.ca_file == env["BLUEGREEN_PROMETHEUS_CA_FILE"]


def test_a_service_account_token_is_projected_for_its_audience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = {
        "addresses": ["*.monitoring.svc"],
        "bearerToken": {
            "source": "serviceAccountToken",
            "audience": "prometheus",
            "expirationSeconds": 1800,
        },
    }
    docs = render(tmp_path, auth)
    pod = pod_of(docs)
    env = env_of(pod)
    volume, path = mounted_source(pod, env["BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE"])
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"] == {
        "path": path,
        "audience": "prometheus",
        "expirationSeconds": 1800,
    }
    (profile,) = operator_profiles(env, docs, tmp_path, monkeypatch)
    assert profile.bearer_token_file is not None and profile.ca_file is None


def test_sigv4_is_a_setting_and_mounts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(tmp_path, {"addresses": [AMP], "sigv4": {"enabled": True}})
    pod = pod_of(docs)
    env = env_of(pod)
    assert env["BLUEGREEN_PROMETHEUS_SIGV4"] == "true"
    assert "BLUEGREEN_PROMETHEUS_SIGV4_REGION" not in env
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["tmp"]
    (profile,) = operator_profiles(env, docs, tmp_path, monkeypatch)
    assert profile.sigv4 and profile.sigv4_region is None

    env = env_of(
        pod_of(
            render(
                tmp_path,
                {
                    "addresses": ["https://prometheus.example.com/"],
                    "sigv4": {"enabled": True, "region": "us-east-2"},
                },
            )
        )
    )
    assert env["BLUEGREEN_PROMETHEUS_SIGV4_REGION"] == "us-east-2"


def test_inline_profiles_with_headers_become_the_operators_profiles_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(tmp_path, {"profiles": PROFILES, **MIMIR_VOLUMES})
    pod = pod_of(docs)
    env = env_of(pod)
    volume, path = mounted_source(pod, env["BLUEGREEN_PROMETHEUS_AUTH_FILE"])
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["namespace"] == NAMESPACE
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert item_key(volume["configMap"], path) in config_map["data"]
    # The files the profiles name are in the volumes mounted beside them.
    assert mounted_source(pod, "/var/run/secrets/bluegreen/mimir/key")[0]["name"] == "mimir-key"
    assert mounted_source(pod, "/etc/bluegreen/mimir-ca/ca.crt")[0]["name"] == "mimir-ca"

    mimir, amp = operator_profiles(env, docs, tmp_path, monkeypatch)
    assert {h.name: (h.value, h.file) for h in mimir.headers} == {
        "X-Scope-OrgID": ("shop", None),
        "X-Api-Key": (None, "/var/run/secrets/bluegreen/mimir/key"),
    }
    assert [rule.text for rule in amp.rules] == [AMP] and amp.sigv4


def test_a_change_of_the_inline_profiles_rolls_the_operator(tmp_path: Path) -> None:
    def checksum(profiles: list[dict[str, Any]]) -> str:
        pod = pod_of(render(tmp_path, {"profiles": profiles}, podAnnotations={"team": "a"}))
        assert pod["metadata"]["annotations"]["team"] == "a"
        return str(pod["metadata"]["annotations"]["checksum/prometheus-auth"])

    changed = [{**PROFILES[0], "headers": {"X-Scope-OrgID": "other"}}, PROFILES[1]]
    assert checksum(PROFILES) == checksum(PROFILES)
    assert checksum(PROFILES) != checksum(changed)


def test_an_own_profiles_config_map_is_mounted(tmp_path: Path) -> None:
    auth = {"profilesConfigMap": {"name": "prom-profiles", "key": "auth.yaml"}}
    docs = render(tmp_path, auth)
    pod = pod_of(docs)
    volume, path = mounted_source(pod, env_of(pod)["BLUEGREEN_PROMETHEUS_AUTH_FILE"])
    assert volume["configMap"]["name"] == "prom-profiles"
    assert item_key(volume["configMap"], path) == "auth.yaml"
    assert not [d for d in docs if d["kind"] == "ConfigMap"]


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({"bearerToken": {"source": "vault"}}, "source"),
        ({"addresses": ["a.svc"], "bearerToken": {"source": "serviceAccountToken",
          "expirationSeconds": 60}}, "expirationSeconds"),
        ({"addresses": ["a.svc"], "caConfigMap": {"name": "Not_A_Name"}}, "name"),
        ({"addresses": ["a.svc,b.svc"], "sigv4": {"enabled": True}}, "addresses"),
        ({"addresses": [AMP], "sigv4": {"enabled": True, "region": "EU"}}, "region"),
        ({"sigv4": {"enabled": "yes"}}, "enabled"),
        ({"token": "s3cret"}, "token"),
        ({"profiles": [{"addresses": [MIMIR]}]}, "profiles"),
        ({"profiles": [{"addresses": [], "sigv4": {}}]}, "addresses"),
        ({"profiles": [{"addresses": [MIMIR], "password": "x"}]}, "password"),
        ({"profiles": [{"addresses": [MIMIR], "headers": {"X Bad": "1"}}]}, "X Bad"),
        ({"profiles": [{"addresses": [MIMIR], "headers": {"X-A": "1\r\nX-B: 2"}}]}, "headers"),
        ({"profiles": [{"addresses": [MIMIR], "caFile": "ca.crt"}]}, "caFile"),
        ({"volumeMounts": [{"name": "x"}]}, "mountPath"),
        # Rules that involve several values: the chart says so when it renders.
        ({"bearerToken": {"source": "serviceAccountToken"}}, "prometheusAuth.addresses must"),
        ({"addresses": ["a.svc"]}, "no credentials for them"),
        ({"addresses": ["a.svc"], "bearerToken": {"source": "secret"}}, "secretName is required"),
        (
            {"addresses": [AMP], "bearerToken": {"source": "secret", "secretName": "t"},
             "sigv4": {"enabled": True}},
            "choose one",
        ),
        (
            {"profiles": PROFILES, "profilesConfigMap": {"name": "prom-profiles"}},
            "not both",
        ),
    ],
)  # fmt: skip
def test_wrong_values_are_refused_with_the_reason(
    tmp_path: Path, auth: dict[str, Any], says: str
) -> None:
    result = template(tmp_path, auth)
    assert result.returncode != 0, f"{auth} was accepted"
    assert says in result.stderr, result.stderr


@pytest.mark.parametrize(
    "profile",
    [
        {"addresses": [MIMIR]},
        {"addresses": [MIMIR], "headers": {"X Bad": "1"}},
        {"addresses": [MIMIR], "headers": {"authorization": "Basic eDp5"}},
        {"addresses": [MIMIR], "headers": {"X-Amz-Date": "20250101T000000Z"}},
        {"addresses": [MIMIR], "headers": {"X-A": "line\nbreak"}},
        {"addresses": [MIMIR], "sigv4": {"region": "Europe"}},
        {"addresses": [MIMIR], "headers": {"X-A": {"path": "/x"}}},
        {"addresses": MIMIR, "sigv4": {}},
    ],
)
def test_the_schema_and_the_operator_refuse_the_same_profiles(
    tmp_path: Path, profile: dict[str, Any]
) -> None:
    """The chart refuses at install what the operator would refuse at start."""
    assert template(tmp_path, {"profiles": [profile]}).returncode != 0
    file = tmp_path / "profiles.yaml"
    file.write_text(yaml.safe_dump([profile]))
    with pytest.raises(AuthConfigError):
        load_profiles(auth_file=str(file))
