"""Where analysis may send requests: the administrator's allow-lists, never the app author's.

App authors write `analysis.prometheus.address` and web-check `url`s, but the operator
sends the requests, from inside the cluster, with its own network reach. So every address
is checked before any request leaves, against rules the operator's administrator sets
(chart values -> BLUEGREEN_ANALYSIS_* settings):

    policy = EndpointPolicy(prometheus=("http://prometheus-operated.monitoring.svc:9090",),
                            web=("*.svc", "*.svc.cluster.local"))
    policy.check_web("http://shop-preview.shop.svc/health")      # None: allowed
    policy.check_web("http://169.254.169.254/latest/meta-data")  # "... never allowed"

A rule is either a URL (`http://prometheus.monitoring.svc:9090`: scheme, host and port must
match and the path must start with its path) or a host pattern (`*.svc` for any name
ending in `.svc`, or an exact host name), any port. Whatever the rules say, addresses
that are loopback, link-local (cloud metadata included) or unspecified are always refused,
and so is a URL with user info or a fragment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

DEFAULT_RULES = ("*.svc", "*.svc.cluster.local")
"""In-cluster Service names only, unless the administrator says more."""
NOTIFICATION_RULES = ("hooks.slack.com", *DEFAULT_RULES)
"""Slack's incoming webhooks and in-cluster receivers, unless the administrator says more."""

_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.169.254/32"),  # cloud instance metadata
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS instance metadata over IPv6
)


@dataclass(frozen=True)
class EndpointPolicy:
    prometheus: tuple[str, ...] = DEFAULT_RULES
    """Allowed `analysis.prometheus.address`es."""
    web: tuple[str, ...] = DEFAULT_RULES
    """Allowed web-check `url`s."""
    notifications: tuple[str, ...] = NOTIFICATION_RULES
    """Allowed notification endpoint URLs (the administrator's own, checked all the same:
    a URL read from a mounted file is someone's input too)."""

    def check_prometheus(self, address: str) -> str | None:
        """None when allowed, else why not (the rule that refused it)."""
        return _check("Prometheus address", address, self.prometheus)

    def check_web(self, url: str) -> str | None:
        return _check("web check URL", url, self.web)

    def check_notification(self, url: str) -> str | None:
        return _check("notification URL", url, self.notifications)


def _check(what: str, url: str, rules: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return f"{what} {url!r} is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{what} {url!r}: only http(s)://host URLs are allowed"
    if parts.username is not None or parts.password is not None:
        return f"{what} {url!r}: user info in a URL is not allowed"
    if "#" in url:
        return f"{what} {url!r}: a fragment (#) is not allowed"
    never = _never(host)
    if never is not None:
        return f"{what} {url!r}: {never} addresses are never allowed"
    if any(_matches(rule, parts, host, port) for rule in rules):
        return None
    return f"{what} {url!r}: host {host} is not allowed (allowed: {', '.join(rules) or 'none'})"


def _never(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if any(ip in net for net in _ALWAYS_REFUSED):
        return "instance metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    return None


def _matches(rule: str, parts: SplitResult, host: str, port: int | None) -> bool:
    rule = rule.strip().lower()
    if "://" in rule:
        want = urlsplit(rule)
        return (
            want.scheme == parts.scheme
            and (want.hostname or "") == host
            and _port(want) == _port(parts, port)
            and parts.path.startswith(want.path.rstrip("/"))
        )
    if rule.startswith("*."):
        return host.endswith(rule[1:])
    return host == rule


def _port(parts: SplitResult, port: int | None = None) -> int:
    given = port if port is not None else parts.port
    if given is not None:
        return given
    return 443 if parts.scheme == "https" else 80
