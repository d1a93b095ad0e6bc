"""Which credentials go to which Prometheus: the administrator's profiles, matched to addresses.

App authors name `analysis.prometheus.address`; they never say how the operator
authenticates. The operator's administrator does, with profiles: addresses plus what to
send there (a bearer token file, a CA file, SigV4 signing, more headers). Every file is
mounted into the operator's pod; the operator reads no Kubernetes Secrets.

    profiles = load_profiles(addresses=("https://prometheus.monitoring.svc:9090",),
                             bearer_token_file="/var/run/secrets/bluegreen/prometheus/token")
    select(profiles, "https://prometheus.monitoring.svc:9090/api/v1/query?query=up")  # the profile
    select(profiles, "http://other-prometheus.shop.svc:9090/api/v1/query")           # None

An address rule is a URL prefix (`https://prometheus.monitoring.svc:9090`: scheme, host
and port must be equal, the path must be the rule's path or below it, segment by
segment) or a host (`prometheus.monitoring.svc` exactly, or `*.monitoring.svc` for any
name ending in `.monitoring.svc`, any scheme and port). For one request URL the most
specific matching rule wins, and only its profile applies: a URL prefix before a host, a
longer path before a shorter one, an exact host before a pattern, a longer pattern before
a shorter one. A URL no rule matches gets no credentials at all. Two profiles may not name
the same rule.

A profile comes from the BLUEGREEN_PROMETHEUS_* settings (one), or from a profiles file
(`BLUEGREEN_PROMETHEUS_AUTH_FILE`, YAML or JSON, a list):

    - addresses: [https://thanos.monitoring.svc:9091]
      bearerTokenFile: /var/run/secrets/bluegreen/thanos/token
      caFile: /etc/bluegreen/thanos-ca/ca.crt
      headers:
        X-Scope-OrgID: platform                                # a value
        X-Api-Key: {file: /var/run/secrets/bluegreen/key/key}  # a mounted file's content
    - addresses: [https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1234]
      sigv4: {}                           # region from the address; or {region: eu-west-1}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_AMP_HOST = re.compile(r"^aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_SIGNED = frozenset({"authorization", "host", "x-amz-date", "x-amz-security-token"})
"""Headers that a bearer token or a SigV4 signature set: no profile header may replace them."""


class AuthConfigError(ValueError):
    """The administrator's Prometheus credentials settings are wrong; the message says how."""


@dataclass(frozen=True)
class AddressRule:
    """One address rule, parsed (see the module's docstring)."""

    text: str
    scheme: str | None
    """None for a host rule."""
    host: str
    """The host; for a pattern, the suffix with its leading dot (`.monitoring.svc`)."""
    pattern: bool = False
    port: int | None = None
    path: str = ""
    """URL rules: the path without its trailing slash ("" for the root)."""

    @classmethod
    def parse(cls, text: str) -> AddressRule:
        rule = text.strip()
        if "://" in rule:
            return _url_rule(rule)
        host = rule.lower()
        if not _HOST.match(host):
            raise AuthConfigError(
                f"address rule {text!r}: expected a URL (https://host:port/path) or a host "
                "(name, or *.suffix)"
            )
        if host.startswith("*."):
            return cls(text=rule, scheme=None, host=host[1:], pattern=True)
        return cls(text=rule, scheme=None, host=host)

    @property
    def key(self) -> tuple[object, ...]:
        """Equal for two rules that say the same thing (`https://h` and `https://h:443/`)."""
        return (self.scheme, self.host, self.pattern, self.port, self.path)

    @property
    def specificity(self) -> tuple[int, int, int]:
        if self.scheme is not None:
            return (2, self.path.count("/"), len(self.path))
        if not self.pattern:
            return (1, 0, 0)
        return (0, self.host.count("."), len(self.host))

    def matches(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = _port(parts)
        except ValueError:
            return False
        if not host or parts.scheme not in ("http", "https"):
            return False
        if parts.username is not None or parts.password is not None:
            return False
        if self.scheme is None:
            return host.endswith(self.host) if self.pattern else host == self.host
        if (parts.scheme, host, port) != (self.scheme, self.host, self.port):
            return False
        if not self.path:
            return True
        path = parts.path
        # A path a server could read as another one ("..", "%2e%2e", "%2f") never matches a
        # path rule: the credentials of /tenant-a must not reach /tenant-a/../tenant-b.
        if "%" in path or any(segment in (".", "..") for segment in path.split("/")):
            return False
        return path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True)
class Header:
    """One header a profile sends: a value, or the content of a mounted file."""

    name: str
    value: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class Profile:
    """What the operator sends to the addresses its rules match."""

    source: str
    """Where it was configured, for messages: "BLUEGREEN_PROMETHEUS_* settings", "profile 2
    of /etc/bluegreen/prometheus-auth/profiles.yaml"."""
    rules: tuple[AddressRule, ...]
    bearer_token_file: str | None = None
    ca_file: str | None = None
    sigv4: bool = False
    sigv4_region: str | None = None
    headers: tuple[Header, ...] = ()

    def describe(self) -> str:
        """What it sends, and where, without any secret (for the operator's log)."""
        parts = [
            name
            for name, on in (
                ("bearer token", self.bearer_token_file),
                ("CA", self.ca_file),
                (f"SigV4 ({self.sigv4_region or 'region from the address'})", self.sigv4),
                (f"headers {', '.join(h.name for h in self.headers)}", self.headers),
            )
            if on
        ]
        where = ", ".join(r.text for r in self.rules)
        return f"{' + '.join(parts)} for {where} ({self.source})"


def select(profiles: Iterable[Profile], url: str) -> Profile | None:
    """The profile of the most specific rule that matches `url`; None: no credentials."""
    best: tuple[tuple[int, int, int], Profile] | None = None
    for profile in profiles:
        for rule in profile.rules:
            if rule.matches(url) and (best is None or rule.specificity > best[0]):
                best = (rule.specificity, profile)
    return best[1] if best is not None else None


def amp_region(url: str) -> str | None:
    """The region of an Amazon Managed Prometheus URL (aps-workspaces.<region>.amazonaws.com)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    found = _AMP_HOST.match(host)
    return found.group(1) if found else None


# ----------------------------------------------------------------------------- loading

SETTINGS_SOURCE = "BLUEGREEN_PROMETHEUS_* settings"


def load_profiles(
    *,
    addresses: Sequence[str] = (),
    bearer_token_file: str | None = None,
    ca_file: str | None = None,
    sigv4: bool = False,
    sigv4_region: str | None = None,
    auth_file: str | None = None,
) -> tuple[Profile, ...]:
    """The profiles of the settings (the keyword arguments, as BLUEGREEN_PROMETHEUS_* name
    them) and of the profiles file. AuthConfigError when they are wrong."""
    profiles: list[Profile] = []
    if sigv4_region and not sigv4:
        raise AuthConfigError(
            "BLUEGREEN_PROMETHEUS_SIGV4_REGION is set but BLUEGREEN_PROMETHEUS_SIGV4 is not true"
        )
    credentials = bearer_token_file or ca_file or sigv4
    if credentials and not addresses:
        raise AuthConfigError(
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES must name the addresses the Prometheus "
            "credentials are for (URL prefixes or hosts): they are sent nowhere else"
        )
    if addresses and not credentials:
        raise AuthConfigError(
            "BLUEGREEN_PROMETHEUS_AUTH_ADDRESSES is set, but no credentials for them "
            "(BLUEGREEN_PROMETHEUS_BEARER_TOKEN_FILE, _CA_FILE or _SIGV4)"
        )
    if credentials:
        spec = {
            "addresses": list(addresses),
            "bearerTokenFile": bearer_token_file,
            "caFile": ca_file,
            "sigv4": {"region": sigv4_region} if sigv4 else None,
        }
        profiles.append(_profile(SETTINGS_SOURCE, spec))
    if auth_file:
        for index, spec in enumerate(_read_file(auth_file), start=1):
            profiles.append(_profile(f"profile {index} of {auth_file}", spec))
    seen: dict[tuple[object, ...], str] = {}
    for profile in profiles:
        for rule in profile.rules:
            if rule.key in seen:
                raise AuthConfigError(
                    f"address rule {rule.text!r} is in two profiles ({seen[rule.key]} and "
                    f"{profile.source}): an address gets the credentials of one profile"
                )
            seen[rule.key] = profile.source
    return tuple(profiles)


class _FromFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str = Field(min_length=1)


class _SigV4Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")


class _ProfileSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )
    addresses: list[str] = Field(min_length=1)
    bearer_token_file: str | None = Field(default=None, min_length=1)
    ca_file: str | None = Field(default=None, min_length=1)
    sigv4: _SigV4Spec | None = None
    headers: dict[str, str | _FromFile] = Field(default_factory=dict)


def _read_file(path: str) -> list[Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise AuthConfigError(f"cannot read the profiles file {path}: {err.strerror}") from err
    try:
        document = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as err:
        raise AuthConfigError(f"{path} is not YAML or JSON: {err}") from err
    if not isinstance(document, list):
        raise AuthConfigError(f"{path}: expected a list of profiles, got {type(document).__name__}")
    return document


def _profile(source: str, raw: Any) -> Profile:
    try:
        spec = _ProfileSpec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in err.errors()
        )
        raise AuthConfigError(f"{source}: {problems}") from err
    if spec.bearer_token_file and spec.sigv4 is not None:
        raise AuthConfigError(
            f"{source}: a bearer token and SigV4 both set the Authorization header; choose one"
        )
    headers = []
    for name, value in spec.headers.items():
        if not _HEADER_NAME.match(name):
            raise AuthConfigError(f"{source}: {name!r} is not a header name")
        if name.lower() in _SIGNED:
            raise AuthConfigError(
                f"{source}: header {name} is set by the operator itself "
                "(use bearerTokenFile or sigv4 for Authorization)"
            )
        if isinstance(value, str):
            if "\r" in value or "\n" in value:
                raise AuthConfigError(f"{source}: the value of header {name} has a line break")
            headers.append(Header(name=name, value=value))
        else:
            headers.append(Header(name=name, file=value.file))
    if not (spec.bearer_token_file or spec.ca_file or spec.sigv4 is not None or headers):
        raise AuthConfigError(
            f"{source}: no credentials (bearerTokenFile, caFile, sigv4 or headers)"
        )
    rules = tuple(AddressRule.parse(text) for text in spec.addresses)
    region = spec.sigv4.region if spec.sigv4 is not None else None
    if spec.sigv4 is not None and region is None:
        for rule in rules:
            if rule.scheme is not None and amp_region(rule.text) is None:
                raise AuthConfigError(
                    f"{source}: SigV4 for {rule.text} needs a region: it is not an Amazon "
                    "Managed Prometheus address (aps-workspaces.<region>.amazonaws.com)"
                )
    return Profile(
        source=source,
        rules=rules,
        bearer_token_file=spec.bearer_token_file,
        ca_file=spec.ca_file,
        sigv4=spec.sigv4 is not None,
        sigv4_region=region,
        headers=tuple(headers),
    )


def _url_rule(text: str) -> AddressRule:
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = _port(parts)
    except ValueError as err:
        raise AuthConfigError(f"address rule {text!r} is not a URL: {err}") from err
    if parts.scheme not in ("http", "https") or not host:
        raise AuthConfigError(f"address rule {text!r}: only http(s)://host URLs")
    if parts.username is not None or parts.password is not None:
        raise AuthConfigError(f"address rule {text!r}: no user info in a URL")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise AuthConfigError(f"address rule {text!r}: no query or fragment")
    path = parts.path.rstrip("/")
    if "%" in path or any(segment in (".", "..") for segment in path.split("/")):
        raise AuthConfigError(f"address rule {text!r}: no '.', '..' or %-escapes in the path")
    return AddressRule(text=text, scheme=parts.scheme, host=host, port=port, path=path)


def _port(parts: SplitResult) -> int:
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80
