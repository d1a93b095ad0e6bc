"""Which Prometheus credentials go to which address: the administrator's profiles, matched by
the most specific rule, and nothing for an address no rule names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from bluegreen.adapters.promauth import (
    AddressRule,
    AuthConfigError,
    Profile,
    amp_region,
    load_profiles,
    select,
)
from bluegreen.runtime.operator import prometheus_profiles
from bluegreen.runtime.settings import Settings


def profile(name: str, *rules: str) -> Profile:
    return Profile(
        source=name, rules=tuple(AddressRule.parse(r) for r in rules), bearer_token_file=name
    )


PROFILES = (
    profile("main", "https://prometheus.monitoring.svc:9090"),
    profile("tenant-a", "https://gateway.monitoring.svc/tenants/a"),
    profile("tenant-a-team-1", "https://gateway.monitoring.svc/tenants/a/team-1"),
    profile("amp", "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1"),
    profile("thanos-host", "thanos.monitoring.svc"),
    profile("monitoring", "*.monitoring.svc"),
    profile("cluster", "*.svc"),
)


@pytest.mark.parametrize(
    ("url", "chosen"),
    [
        # A URL rule: scheme, host and port equal, the path below the rule's path.
        ("https://prometheus.monitoring.svc:9090/api/v1/query?query=up", "main"),
        ("https://PROMETHEUS.monitoring.svc:9090/api/v1/query", "main"),
        ("https://prometheus.monitoring.svc:9090", "main"),
        # Another port, or plain http, is another origin: the pattern's profile, not main's.
        ("https://prometheus.monitoring.svc:9091/api/v1/query", "monitoring"),
        ("http://prometheus.monitoring.svc:9090/api/v1/query", "monitoring"),
        # The default port is the port.
        ("https://gateway.monitoring.svc:443/tenants/a/api/v1/query", "tenant-a"),
        # The longest path wins; a path is matched segment by segment.
        ("https://gateway.monitoring.svc/tenants/a/team-1/api/v1/query", "tenant-a-team-1"),
        ("https://gateway.monitoring.svc/tenants/a/team-10/api/v1/query", "tenant-a"),
        ("https://gateway.monitoring.svc/tenants/ab/api/v1/query", "monitoring"),
        ("https://gateway.monitoring.svc/tenants/b/api/v1/query", "monitoring"),
        # A path a server may read as another one never matches a path rule.
        ("https://gateway.monitoring.svc/tenants/a/../b/api/v1/query", "monitoring"),
        ("https://gateway.monitoring.svc/tenants/a/%2e%2e/b/api/v1/query", "monitoring"),
        ("https://gateway.monitoring.svc/tenants/a%2f..%2fb/api/v1/query", "monitoring"),
        ("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/query", "amp"),
        ("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-12/api/v1/query", None),
        # An exact host beats a pattern; a longer pattern beats a shorter one.
        ("http://thanos.monitoring.svc:10902/api/v1/query", "thanos-host"),
        ("https://other.monitoring.svc/api/v1/query", "monitoring"),
        ("http://prometheus.shop.svc:9090/api/v1/query", "cluster"),
        # No rule: no credentials.
        ("http://prometheus.shop.svc.cluster.local:9090/api/v1/query", None),
        ("https://prometheus.monitoring.svc.evil.example:9090/api/v1/query", None),
        ("https://monitoring.svc/api/v1/query", "cluster"),
        ("https://svc/api/v1/query", None),
        ("https://user@prometheus.monitoring.svc:9090/api/v1/query", None),
        ("ftp://prometheus.monitoring.svc:9090/", None),
        ("not a url", None),
    ],
)
def test_the_most_specific_rule_chooses_the_credentials(url: str, chosen: str | None) -> None:
    found = select(PROFILES, url)
    assert (found.source if found else None) == chosen


def test_an_address_named_by_no_profile_gets_no_credentials_at_all() -> None:
    only = (profile("main", "https://prometheus.monitoring.svc:9090"),)
    assert select(only, "http://prometheus.attacker.svc:9090/api/v1/query") is None
    assert select((), "https://prometheus.monitoring.svc:9090/api/v1/query") is None


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("ftp://prometheus.monitoring.svc", "only http(s)://host URLs"),
        ("https://", "only http(s)://host URLs"),
        ("https://user:pw@prometheus.monitoring.svc", "no user info"),
        ("https://prometheus.monitoring.svc/?tenant=a", "no query or fragment"),
        ("https://prometheus.monitoring.svc/#a", "no query or fragment"),
        ("https://prometheus.monitoring.svc/a/../b", "no '.', '..' or %-escapes"),
        ("https://prometheus.monitoring.svc/a%2fb", "no '.', '..' or %-escapes"),
        ("https://prometheus.monitoring.svc:99999", "is not a URL"),
        ("*", "expected a URL"),
        ("prometheus.*.svc", "expected a URL"),
        ("prometheus.monitoring.svc:9090", "expected a URL"),
        ("", "expected a URL"),
    ],
)
def test_a_wrong_rule_is_refused_with_the_reason(rule: str, says: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        AddressRule.parse(rule)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1", "us-east-1"),
        ("https://APS-WORKSPACES.eu-west-1.amazonaws.com/workspaces/ws-1", "eu-west-1"),
        ("https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-1", "cn-north-1"),
        ("https://aps-workspaces.us-east-1.amazonaws.com.evil.example/", None),
        ("https://prometheus.monitoring.svc:9090", None),
        ("https://aps.us-east-1.amazonaws.com/workspaces/ws-1", None),
    ],
)
def test_the_region_of_an_amazon_managed_prometheus_address(url: str, region: str | None) -> None:
    assert amp_region(url) == region


# ----------------------------------------------------------------------------- loading


def test_the_settings_make_one_profile() -> None:
    token_file = "/var/run/secrets/token"  # noqa: S105 - a path
    (loaded,) = load_profiles(
        addresses=("https://prometheus.monitoring.svc:9090",),
        bearer_token_file=token_file,
        ca_file="/etc/ca.crt",
    )
    assert loaded.bearer_token_file == token_file
    assert loaded.ca_file == "/etc/ca.crt"
    assert not loaded.sigv4
    assert "bearer token + CA for https://prometheus.monitoring.svc:9090" in loaded.describe()


def test_the_profiles_file_adds_profiles(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        """
- addresses: [https://thanos.monitoring.svc:9091]
  bearerTokenFile: /var/run/secrets/thanos/token
  caFile: /etc/thanos-ca/ca.crt
  headers:
    X-Scope-OrgID: platform
    X-Api-Key: {file: /var/run/secrets/key/key}
- addresses: [https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1234]
  sigv4: {}
- addresses: ["*.observability.svc"]
  sigv4: {region: us-east-2}
"""
    )
    settings, thanos, amp, pattern = load_profiles(
        addresses=("https://prometheus.monitoring.svc:9090",),
        sigv4=True,
        sigv4_region="us-west-2",
        auth_file=str(path),
    )
    assert settings.sigv4 and settings.sigv4_region == "us-west-2"
    assert thanos.source == f"profile 1 of {path}"
    assert [(h.name, h.value, h.file) for h in thanos.headers] == [
        ("X-Scope-OrgID", "platform", None),
        ("X-Api-Key", None, "/var/run/secrets/key/key"),
    ]
    assert amp.sigv4 and amp.sigv4_region is None
    assert pattern.sigv4_region == "us-east-2"
    # JSON is YAML too.
    path.write_text('[{"addresses": ["https://t.monitoring.svc"], "caFile": "/ca.crt"}]')
    (only,) = load_profiles(auth_file=str(path))
    assert only.ca_file == "/ca.crt"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"bearer_token_file": "/token"},
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES must name the addresses",
        ),
        ({"ca_file": "/ca.crt"}, "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES must name the addresses"),
        ({"sigv4": True}, "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES must name the addresses"),
        (
            {"addresses": ("https://p.monitoring.svc",)},
            "no credentials for them",
        ),
        (
            {"addresses": ("https://p.svc",), "sigv4_region": "us-east-1"},
            "BLUEGREEN_PROMETHEUS_SIGV4 is not true",
        ),
        (
            {"addresses": ("https://p.monitoring.svc:9090",), "sigv4": True},
            "needs a region",
        ),
        (
            {"addresses": ("https://p.svc",), "bearer_token_file": "/t", "sigv4": True},
            "choose one",
        ),
        (
            {"addresses": ("https://p.svc", "https://p.svc:443/"), "bearer_token_file": "/t"},
            "is in two profiles",
        ),
        (
            {"addresses": ("https://p.svc/../x",), "bearer_token_file": "/t"},
            "no '.', '..'",
        ),
    ],
)
def test_wrong_settings_are_refused_with_the_reason(settings: dict[str, object], says: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        load_profiles(**settings)  # type: ignore[arg-type]
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{addresses: [a.svc]}", "expected a list of profiles"),
        ("- {addresses: [], caFile: /ca}", "addresses: List should have at least 1 item"),
        ("- {addresses: [a.svc]}", "no credentials"),
        ("- {addresses: [a.svc], token: /t}", "token: Extra inputs are not permitted"),
        ("- {addresses: [a.svc], headers: {Authorization: x}}", "set by the operator itself"),
        ("- {addresses: [a.svc], headers: {X-Amz-Date: x}}", "set by the operator itself"),
        ("- {addresses: [a.svc], headers: {'bad name': x}}", "is not a header name"),
        ('- {addresses: [a.svc], headers: {X-A: "1\\r\\nX-B: 2"}}', "has a line break"),
        ("- {addresses: [a.svc], sigv4: {region: Moon}}", "sigv4.region"),
        ("- [", "is not YAML or JSON"),
        (
            "- {addresses: [a.svc], caFile: /a}\n- {addresses: [A.svc], caFile: /b}",
            "is in two profiles",
        ),
    ],
)
def test_a_wrong_profiles_file_is_refused_with_the_reason(
    tmp_path: Path, content: str, says: str
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(content)
    with pytest.raises(AuthConfigError) as caught:
        load_profiles(auth_file=str(path))
    assert says in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_profiles_file_is_refused() -> None:
    with pytest.raises(AuthConfigError, match="cannot read the profiles file /nonexistent"):
        load_profiles(auth_file="/nonexistent/profiles.yaml")


# ----------------------------------------------------------------------------- environment


def from_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[Profile, ...]:
    """The profiles the operator builds at start from these BLUEGREEN_* variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return prometheus_profiles(Settings())


def test_the_environment_is_parsed_into_the_settings_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (loaded,) = from_environment(
        monkeypatch,
        {
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": (
                " https://prometheus.monitoring.svc:9090 ,*.thanos.svc,"
            ),
            "BLUEGREEN_PROMETHEUS_SIGV4": "true",
            "BLUEGREEN_PROMETHEUS_SIGV4_REGION": "eu-west-1",
        },
    )
    assert [rule.text for rule in loaded.rules] == [
        "https://prometheus.monitoring.svc:9090",
        "*.thanos.svc",
    ]
    assert loaded.sigv4 and loaded.sigv4_region == "eu-west-1"
    assert loaded.bearer_token_file is None and loaded.ca_file is None
    assert loaded.source == "BLUEGREEN_PROMETHEUS_* settings"


def test_without_any_setting_there_are_no_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BLUEGREEN_PROMETHEUS_"):
            monkeypatch.delenv(name)
    assert from_environment(monkeypatch, {}) == ()


def test_the_environment_adds_the_profiles_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("- {addresses: [https://mimir.monitoring.svc], headers: {X-Scope-OrgID: a}}")
    settings, mimir = from_environment(
        monkeypatch,
        {
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": "https://prometheus.monitoring.svc:9090",
            "BLUEGREEN_PROMETHEUS_CA_FILE": "/etc/bluegreen/prometheus-ca/ca.crt",
            "BLUEGREEN_PROMETHEUS_AUTH_FILE": str(path),
        },
    )
    assert settings.ca_file == "/etc/bluegreen/prometheus-ca/ca.crt"
    assert [(h.name, h.value) for h in mimir.headers] == [("X-Scope-OrgID", "a")]


@pytest.mark.parametrize(
    ("env", "error", "says"),
    [
        ({"BLUEGREEN_PROMETHEUS_SIGV4": "sometimes"}, ValidationError, "prometheus_sigv4"),
        (
            {"BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": ",", "BLUEGREEN_PROMETHEUS_SIGV4": "1"},
            AuthConfigError,
            "must name the addresses",
        ),
        (
            {"BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": "ftp://prometheus.svc"},
            AuthConfigError,
            "no credentials for them",
        ),
        (
            {
                "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES": "ftp://prometheus.svc",
                "BLUEGREEN_PROMETHEUS_CA_FILE": "/ca.crt",
            },
            AuthConfigError,
            "only http(s)://host URLs",
        ),
    ],
)
def test_a_wrong_environment_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        from_environment(monkeypatch, env)
    assert says in str(caught.value)
