"""The notification endpoints of the operator's administrator, from a YAML or JSON file
(BLUEGREEN_NOTIFICATIONS_FILE, a ConfigMap the chart mounts). App authors only name them.

    endpoints:
      - name: team-slack
        type: slack                 # a Slack incoming webhook (or Mattermost's, ...)
        urlFile: /var/run/secrets/bluegreen/notifications/team-slack   # from a Secret
      - name: audit
        type: webhook               # the generic JSON document (README, "Notifications")
        url: http://audit.platform.svc:8080/bluegreen
        headers:
          X-Source: bluegreen                                          # a value
          Authorization: {file: /var/run/secrets/bluegreen/notifications/audit-token}
    subscriptions:                  # every app's, besides its own spec.notifications
      - endpoint: audit
        events: [RolledBack, Aborted, Degraded]

A URL file and a header file are read at each delivery (a rotated Secret needs no
restart); their content, stripped of surrounding whitespace, is the value. Everything else
is read once, at start: a wrong file stops the operator with the reason.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.promauth import Header
from bluegreen.api import Subscription
from bluegreen.api.v1alpha1.notifications import ENDPOINT_NAME_PATTERN

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_OWN_HEADERS = frozenset({"content-type", "content-length", "host", "user-agent"})
"""Headers the operator sets itself: an endpoint may not replace them."""


class NotificationConfigError(ValueError):
    """The administrator's notification settings are wrong; the message says how."""


class EndpointKind(enum.StrEnum):
    SLACK = "slack"
    """A Slack-compatible incoming webhook: {"text": ..., "attachments": [...]}."""
    WEBHOOK = "webhook"
    """The generic JSON document."""


class _Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _FromFile(_Strict):
    file: Annotated[str, Field(min_length=1)]


class _EndpointEntry(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=ENDPOINT_NAME_PATTERN)]
    type: EndpointKind
    url: Annotated[str | None, Field(min_length=1, max_length=2048)] = None
    url_file: Annotated[str | None, Field(min_length=1)] = None
    headers: dict[str, str | _FromFile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_url(self) -> _EndpointEntry:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("an endpoint needs exactly one of url or urlFile")
        return self


class _File(_Strict):
    endpoints: list[_EndpointEntry] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as the notifier uses it; `url()` and `headers()` read files now."""

    name: str
    kind: EndpointKind
    url_value: str | None = None
    url_file: str | None = None
    header_list: tuple[Header, ...] = ()

    def url(self) -> str:
        """OSError when the URL file cannot be read."""
        if self.url_value is not None:
            return self.url_value
        return Path(str(self.url_file)).read_text().strip()

    def headers(self) -> dict[str, str]:
        """OSError when a header file cannot be read."""
        return {
            h.name: h.value if h.value is not None else Path(str(h.file)).read_text().strip()
            for h in self.header_list
        }


@dataclass(frozen=True)
class NotificationConfig:
    endpoints: dict[str, Endpoint]
    subscriptions: tuple[Subscription, ...] = ()

    def describe(self) -> str:
        """What is configured, without URLs or header values (they may be secrets)."""
        if not self.endpoints:
            return "no notification endpoints"
        names = ", ".join(f"{e.name} ({e.kind.value})" for e in self.endpoints.values())
        subs = ", ".join(s.endpoint for s in self.subscriptions) or "none"
        return f"notification endpoints: {names}; every app's subscriptions: {subs}"


def load_config(path: str | None, policy: EndpointPolicy) -> NotificationConfig:
    """The endpoints of the file at `path` (None: none at all)."""
    if path is None:
        return NotificationConfig(endpoints={})
    try:
        raw = Path(path).read_text()
    except OSError as err:
        raise NotificationConfigError(f"notifications file {path}: {err.strerror}") from err
    return parse_config(raw, policy, source=path)


def parse_config(raw: str, policy: EndpointPolicy, source: str = "") -> NotificationConfig:
    where = f"notifications file {source}" if source else "notifications"
    try:
        data: Any = json.loads(raw) if raw.lstrip().startswith("{") else yaml.safe_load(raw)
        parsed = _File.model_validate(data or {})
    except (ValueError, yaml.YAMLError) as err:
        raise NotificationConfigError(f"{where}: {_first_error(err)}") from err
    endpoints: dict[str, Endpoint] = {}
    for entry in parsed.endpoints:
        if entry.name in endpoints:
            raise NotificationConfigError(f"{where}: endpoint {entry.name} is listed twice")
        endpoints[entry.name] = _endpoint(entry, policy, where)
    seen: set[str] = set()
    for sub in parsed.subscriptions:
        if sub.endpoint not in endpoints:
            raise NotificationConfigError(
                f"{where}: subscription to {sub.endpoint}, which is not an endpoint "
                f"(endpoints: {', '.join(endpoints) or 'none'})"
            )
        if sub.endpoint in seen:
            raise NotificationConfigError(f"{where}: two subscriptions to {sub.endpoint}")
        seen.add(sub.endpoint)
    return NotificationConfig(endpoints=endpoints, subscriptions=tuple(parsed.subscriptions))


def _endpoint(entry: _EndpointEntry, policy: EndpointPolicy, where: str) -> Endpoint:
    if entry.url is not None:
        refused = policy.check_notification(entry.url)
        if refused is not None:
            raise NotificationConfigError(
                f"{where}: endpoint {entry.name}: {redact_in(refused, entry.url)} "
                "(BLUEGREEN_NOTIFICATIONS_ALLOWED)"
            )
    headers = []
    for name, value in entry.headers.items():
        if not _HEADER_NAME.match(name):
            raise NotificationConfigError(
                f"{where}: endpoint {entry.name}: {name!r} is not a header name"
            )
        if name.lower() in _OWN_HEADERS:
            raise NotificationConfigError(
                f"{where}: endpoint {entry.name}: the operator sets {name} itself"
            )
        if isinstance(value, str):
            headers.append(Header(name, value=value))
        else:
            headers.append(Header(name, file=value.file))
    return Endpoint(
        name=entry.name,
        kind=entry.type,
        url_value=entry.url,
        url_file=entry.url_file,
        header_list=tuple(headers),
    )


def redact(url: str) -> str:
    """A URL as it may be shown: scheme, host and port only (a webhook's path is its
    secret: Slack's carries the token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme or '?'}://{host}{port}/..."


def redact_in(message: str, url: str) -> str:
    return message.replace(repr(url), redact(url)).replace(url, redact(url))


def _first_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        return f"{loc}: {e['msg']}" if loc else str(e["msg"])
    return str(err).splitlines()[0] if str(err) else type(err).__name__
