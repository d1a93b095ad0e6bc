"""The endpoint policy: where analysis may send requests, decided by the administrator."""

from __future__ import annotations

import pytest

from bluegreen.adapters.endpoints import EndpointPolicy

DEFAULT = EndpointPolicy()
ADMIN = EndpointPolicy(
    prometheus=("http://prometheus-operated.monitoring.svc:9090", "*.svc"),
    web=("*.svc", "*.svc.cluster.local", "status.example.com", "10.0.0.5"),
)


@pytest.mark.parametrize(
    "url",
    [
        "http://shop-preview.shop.svc/health",
        "https://shop-preview.shop.svc.cluster.local:8443/health?color=green",
        "http://SHOP.shop.SVC/health",
    ],
)
def test_in_cluster_service_names_are_allowed_by_default(url: str) -> None:
    assert DEFAULT.check_web(url) is None
    assert DEFAULT.check_prometheus(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data/", "instance metadata addresses are never"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "instance metadata addresses are never"),
        ("http://127.0.0.1:9090", "loopback addresses are never allowed"),
        ("http://127.9.9.9:9090", "loopback addresses are never allowed"),
        ("http://[::1]:9090", "loopback addresses are never allowed"),
        ("http://169.254.10.1/", "link-local addresses are never allowed"),
        ("http://0.0.0.0:8080/", "unspecified addresses are never allowed"),
        ("http://shop.svc#@169.254.169.254/", "a fragment (#) is not allowed"),
        ("http://user:pass@shop.shop.svc/", "user info in a URL is not allowed"),
        ("http://admin.internal:8080/", "host admin.internal is not allowed"),
        ("http://kubernetes.default:443/", "host kubernetes.default is not allowed"),
        ("file:///etc/passwd", "only http(s)://host URLs are allowed"),
        ("gopher://shop.svc/", "only http(s)://host URLs are allowed"),
        ("http://shop.svc.evil.example/", "host shop.svc.evil.example is not allowed"),
        ("http://10.0.0.5/", "host 10.0.0.5 is not allowed"),
    ],
)
def test_the_default_policy_refuses_and_says_by_which_rule(url: str, says: str) -> None:
    refused = DEFAULT.check_web(url)
    assert refused is not None and says in refused, refused


def test_the_administrator_allows_exact_urls_hosts_and_patterns() -> None:
    assert ADMIN.check_prometheus("http://prometheus-operated.monitoring.svc:9090") is None
    assert ADMIN.check_prometheus("http://prometheus-operated.monitoring.svc:9090/") is None
    assert ADMIN.check_web("https://status.example.com/ok") is None
    assert ADMIN.check_web("http://10.0.0.5:8080/health") is None
    # The exact URL pins the scheme and the port too.
    assert (
        ADMIN.check_prometheus("https://prometheus-operated.monitoring.svc:9090") is None
    )  # *.svc
    only_url = EndpointPolicy(prometheus=("http://prom.example.com:9090/prometheus",))
    assert only_url.check_prometheus("http://prom.example.com:9090/prometheus") is None
    assert only_url.check_prometheus("http://prom.example.com:9091/prometheus") is not None
    assert only_url.check_prometheus("https://prom.example.com:9090/prometheus") is not None
    assert only_url.check_prometheus("http://prom.example.com:9090/admin") is not None


def test_never_means_never_whatever_the_administrator_allows() -> None:
    everything = EndpointPolicy(web=("127.0.0.1", "169.254.169.254", "*.svc"))
    assert everything.check_web("http://127.0.0.1/") is not None
    assert everything.check_web("http://169.254.169.254/") is not None
