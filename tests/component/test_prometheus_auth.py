"""The operator's Prometheus credentials on real parts: a real Prometheus (the Debian package)
serving its API over TLS with a certificate of a test CA (its web config), and loopback
servers in front of it that check a bearer token or recompute a SigV4 signature with
botocore (tests/support/authproxy.py), or check nothing and record what they got.

Credentials go only where the administrator's profiles say: an app author who names
another allowed address gets nothing of them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.promauth import load_profiles
from bluegreen.adapters.promcreds import PrometheusCredentials, SigV4Signer
from bluegreen.adapters.prometheus import HttpMetricsSource
from bluegreen.core.analysis import QueryResult
from tests.support.authproxy import AuthProxy, BearerCheck, SigV4Check
from tests.support.operator import TEST_HOST, for_operator
from tests.support.prometheus import PrometheusServer
from tests.support.tls import CertificateAuthority, make_ca

pytestmark = pytest.mark.timeout(120)

POLICY = EndpointPolicy(prometheus=(TEST_HOST,), web=(TEST_HOST,))
ONE = QueryResult(values=(1.0,))
# A query with what URL encoding gets wrong: spaces, quotes, a slash, a tilde, a plus.
AWKWARD = 'label_replace(vector(1), "x", "a b/c~d+e", "", "")'
ACCESS_KEY = "AKIDBLUEGREENTEST"
SECRET_KEY = "bluegreen-test-secret"  # noqa: S105 - the tests' own made-up credentials
REGION = "us-west-2"
SESSION_TOKEN = "session-1"  # noqa: S105


def source(**settings: object) -> HttpMetricsSource:
    """The operator's metrics source with these BLUEGREEN_PROMETHEUS_* settings."""
    profiles = load_profiles(**settings) if settings else ()  # type: ignore[arg-type]
    return HttpMetricsSource(
        timeout=5.0, policy=POLICY, credentials=PrometheusCredentials(profiles)
    )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def prometheus(ca: CertificateAuthority) -> Iterator[PrometheusServer]:
    server = PrometheusServer([], tls=ca.issue("prometheus"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """botocore's default chain sees only what a test puts in the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def write_token(path: Path, token: str) -> None:
    """Write a token file the way the kubelet updates a projected volume: the new content in
    a new directory, then one atomic rename of the `..data` symlink."""
    path.parent.mkdir(parents=True, exist_ok=True)
    version = path.parent / f"..{token}"
    version.mkdir()
    (version / path.name).write_text(token + "\n")
    link = path.parent / "..data_tmp"
    link.symlink_to(version.name)
    link.rename(path.parent / "..data")
    if not path.is_symlink():
        path.symlink_to(f"..data/{path.name}")


# ----------------------------------------------------------------------------- CA file


def test_a_ca_file_makes_the_tls_prometheus_trusted(
    prometheus: PrometheusServer, ca: CertificateAuthority, tmp_path: Path
) -> None:
    address = for_operator(prometheus.url)  # https://localhost:<port>
    assert address.startswith("https://")
    assert source(addresses=(address,), ca_file=str(ca.cert)).query(address, "vector(1)") == ONE

    # Without it: the system's CAs do not know the test CA, and the error says what to do.
    untrusted = source().query(address, "vector(1)")
    assert untrusted.error is not None and untrusted.values == ()
    assert untrusted.error.startswith("Prometheus TLS certificate not trusted ("), untrusted
    assert "BLUEGREEN_PROMETHEUS_CA_FILE" in untrusted.error
    # A CA configured for another address does not apply to this one.
    elsewhere = source(addresses=("https://localhost:1",), ca_file=str(ca.cert))
    assert elsewhere.query(address, "vector(1)").error == untrusted.error
    # Another CA is no better than none.
    other = make_ca(tmp_path / "other", name="another-ca")
    wrong = source(addresses=(address,), ca_file=str(other.cert)).query(address, "vector(1)")
    assert wrong.error == untrusted.error


def test_a_replaced_ca_file_is_read_again(
    prometheus: PrometheusServer, ca: CertificateAuthority, tmp_path: Path
) -> None:
    address = for_operator(prometheus.url)
    ca_file = tmp_path / "ca.crt"
    shutil.copy(make_ca(tmp_path / "old", name="old-ca").cert, ca_file)
    metrics = source(addresses=(address,), ca_file=str(ca_file))
    before = metrics.query(address, "vector(1)")
    assert before.error is not None and "not trusted" in before.error
    shutil.copy(ca.cert, tmp_path / "new.crt")
    (tmp_path / "new.crt").replace(ca_file)
    assert metrics.query(address, "vector(1)") == ONE


def test_an_unreadable_ca_file_is_an_error_and_no_request(prometheus: PrometheusServer) -> None:
    address = for_operator(prometheus.url)
    result = source(addresses=(address,), ca_file="/nonexistent/ca.crt").query(address, "up")
    assert result.error == (
        "Prometheus credentials of the operator: CA file /nonexistent/ca.crt: "
        "No such file or directory"
    )


# ----------------------------------------------------------------------------- bearer token


@pytest.fixture
def bearer(prometheus: PrometheusServer) -> Iterator[tuple[AuthProxy, BearerCheck]]:
    check = BearerCheck("token-1")
    with AuthProxy(prometheus.url, check, upstream_context=prometheus.context) as proxy:
        yield proxy, check


def test_a_bearer_token_file_authenticates_and_is_read_again_when_rotated(
    bearer: tuple[AuthProxy, BearerCheck], tmp_path: Path
) -> None:
    proxy, check = bearer
    address = for_operator(proxy.url)
    token = tmp_path / "token"
    write_token(token, "token-1")
    metrics = source(addresses=(address,), bearer_token_file=str(token))
    assert metrics.query(address, AWKWARD) == ONE
    assert proxy.requests()[-1].headers["authorization"] == "Bearer token-1"

    # The kubelet rotates the projected token; the proxy accepts only the new one.
    write_token(token, "token-2")
    check.accepted = {"token-2"}
    assert metrics.query(address, "vector(1)") == ONE
    assert proxy.requests()[-1].headers["authorization"] == "Bearer token-2"
    assert [s.refused for s in proxy.requests()] == [None, None]


def test_without_the_token_the_refusal_says_whose_credentials(
    bearer: tuple[AuthProxy, BearerCheck], tmp_path: Path
) -> None:
    proxy, _ = bearer
    address = for_operator(proxy.url)
    result = source().query(address, "vector(1)")
    assert result.error is not None
    assert result.error.startswith("Prometheus answered HTTP 401 Unauthorized"), result.error
    assert "the operator's credentials for this address are missing or refused" in result.error
    assert "authorization" not in proxy.requests()[-1].headers

    # A token file that is not there: no request at all, rather than one without it.
    asked = len(proxy.requests())
    missing = source(addresses=(address,), bearer_token_file=str(tmp_path / "nothing"))
    result = missing.query(address, "vector(1)")
    assert result.error == (
        f"Prometheus credentials of the operator: bearer token file {tmp_path / 'nothing'}: "
        "No such file or directory"
    )
    (tmp_path / "empty").write_text("\n")
    empty = source(addresses=(address,), bearer_token_file=str(tmp_path / "empty"))
    assert "the file is empty" in (empty.query(address, "vector(1)").error or "")
    assert len(proxy.requests()) == asked


def test_the_token_never_reaches_an_address_it_was_not_configured_for(
    prometheus: PrometheusServer, bearer: tuple[AuthProxy, BearerCheck], tmp_path: Path
) -> None:
    proxy, _ = bearer
    token = tmp_path / "token"
    write_token(token, "token-1")
    configured = for_operator(proxy.url)
    metrics = source(addresses=(configured,), bearer_token_file=str(token))
    with AuthProxy(prometheus.url, None, upstream_context=prometheus.context) as other:
        # An app author names another address the endpoint policy allows (the same host,
        # another port), or the configured one with a path below it.
        elsewhere = for_operator(other.url)
        assert metrics.query(elsewhere, "vector(1)") == ONE
        assert metrics.query(configured, "vector(1)") == ONE
        assert metrics.query(configured + "/", "vector(1)") == ONE
        seen = other.requests()
        assert len(seen) == 1
        assert not {"authorization", "x-amz-date", "x-amz-security-token"} & set(seen[0].headers)
        assert [s.headers.get("authorization") for s in proxy.requests()] == [
            "Bearer token-1",
            "Bearer token-1",
        ]


def test_a_profile_sends_its_headers_to_its_addresses_only(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    key = tmp_path / "api-key"
    key.write_text("key-1\n")
    with (
        AuthProxy(prometheus.url, None, upstream_context=prometheus.context) as tenant,
        AuthProxy(prometheus.url, None, upstream_context=prometheus.context) as other,
    ):
        profiles = tmp_path / "profiles.yaml"
        profiles.write_text(
            f"- addresses: [{for_operator(tenant.url)}]\n"
            "  headers:\n"
            "    X-Scope-OrgID: team-a\n"
            f"    X-Api-Key: {{file: {key}}}\n"
        )
        metrics = source(auth_file=str(profiles))
        assert metrics.query(for_operator(tenant.url), "vector(1)") == ONE
        key.write_text("key-2\n")
        assert metrics.query(for_operator(tenant.url), "vector(1)") == ONE
        assert metrics.query(for_operator(other.url), "vector(1)") == ONE
        first, second = tenant.requests()
        assert (first.headers["x-scope-orgid"], first.headers["x-api-key"]) == ("team-a", "key-1")
        assert second.headers["x-api-key"] == "key-2"
        (elsewhere,) = other.requests()
        assert "x-scope-orgid" not in elsewhere.headers and "x-api-key" not in elsewhere.headers


# ----------------------------------------------------------------------------- SigV4


@pytest.fixture
def amp(prometheus: PrometheusServer) -> Iterator[tuple[AuthProxy, str]]:
    """An Amazon Managed Prometheus look-alike: /workspaces/<id>/api/v1/query, SigV4 checked."""
    check = SigV4Check(ACCESS_KEY, SECRET_KEY, region=REGION)
    with AuthProxy(
        prometheus.url,
        check,
        upstream_context=prometheus.context,
        strip_prefix="/workspaces/ws-test",
    ) as proxy:
        yield proxy, f"{for_operator(proxy.url)}/workspaces/ws-test"


def test_sigv4_signs_with_the_default_credential_chain(
    amp: tuple[AuthProxy, str], aws_env: pytest.MonkeyPatch
) -> None:
    proxy, address = amp
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    metrics = source(addresses=(address,), sigv4=True, sigv4_region=REGION)
    assert metrics.query(address, AWKWARD) == ONE
    assert metrics.query(address, "vector(1)") == ONE
    seen = proxy.requests()
    assert [s.refused for s in seen] == [None, None]
    assert seen[0].headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/aps/aws4_request" in seen[0].headers["authorization"]


def test_sigv4_with_temporary_credentials_signs_the_session_token(
    prometheus: PrometheusServer, aws_env: pytest.MonkeyPatch
) -> None:
    check = SigV4Check(ACCESS_KEY, SECRET_KEY, region=REGION, session_token=SESSION_TOKEN)
    with AuthProxy(prometheus.url, check, upstream_context=prometheus.context) as proxy:
        address = for_operator(proxy.url)
        aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        aws_env.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
        metrics = source(addresses=(address,), sigv4=True, sigv4_region=REGION)
        assert metrics.query(address, "vector(1)") == ONE
        assert proxy.requests()[-1].headers["x-amz-security-token"] == SESSION_TOKEN


def test_a_wrong_signature_or_no_aws_credentials_is_a_clear_error(
    amp: tuple[AuthProxy, str], aws_env: pytest.MonkeyPatch
) -> None:
    proxy, address = amp
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = source(addresses=(address,), sigv4=True, sigv4_region=REGION).query(
        address, "vector(1)"
    )
    assert refused.error is not None
    assert refused.error.startswith("Prometheus answered HTTP 403 Forbidden"), refused.error
    assert "missing or refused" in refused.error
    assert proxy.requests()[-1].refused is not None
    assert "signature we calculated does not match" in (proxy.requests()[-1].refused or "")

    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    asked = len(proxy.requests())
    none = source(addresses=(address,), sigv4=True, sigv4_region=REGION).query(address, "up")
    assert none.error is not None
    assert none.error.startswith("Prometheus credentials of the operator: no AWS credentials")
    assert len(proxy.requests()) == asked


def test_sigv4_takes_the_region_from_an_amazon_managed_prometheus_address(
    aws_env: pytest.MonkeyPatch,
) -> None:
    # No request: the AMP host is not on loopback. The signature alone is checked, by the
    # same verifier, for the region in the address.
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    host = "aps-workspaces.eu-central-1.amazonaws.com"
    target = "/workspaces/ws-1/api/v1/query?query=sum%28up%29"
    headers = SigV4Signer(region=None).sign("GET", f"https://{host}{target}", {"Accept": "x"})
    lowered = {name.lower(): value for name, value in headers.items()}
    assert (
        SigV4Check(ACCESS_KEY, SECRET_KEY, region="eu-central-1")(
            "GET", target, {**lowered, "host": host}
        )
        is None
    )
    wrong_region = SigV4Check(ACCESS_KEY, SECRET_KEY, region=REGION)
    assert wrong_region("GET", target, {**lowered, "host": host}) is not None
