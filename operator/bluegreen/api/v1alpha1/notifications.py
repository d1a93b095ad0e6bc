"""Notifications: which of the administrator's endpoints hear of which release events.

The endpoints themselves (a Slack incoming webhook, a JSON webhook, their URLs) are the
operator's administrator's (BLUEGREEN_NOTIFICATIONS_FILE); an app only names them:

    spec:
      notifications:
        - endpoint: team-slack
          events: [Promoted, RolledBack, Aborted, Degraded]

(`events`, not `on`: YAML 1.1 parsers, kubectl's among them, read a bare `on` key as true.)
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, field_validator

from bluegreen.api.v1alpha1.base import Model


class NotificationEvent(enum.StrEnum):
    """A release event an endpoint can be told of. Each is sent once per transition."""

    STARTED = "Started"
    """A release started: a new revision is being deployed (the first deploy too)."""
    PAUSED = "Paused"
    """The release waits: for a person's promotion, or for analysis to become conclusive."""
    PROMOTED = "Promoted"
    """The candidate became the stable revision: traffic is on it, verified."""
    ROLLED_BACK = "RolledBack"
    """The release failed and traffic is back on the stable revision, verified."""
    ABORTED = "Aborted"
    """A person aborted the release; traffic is back on the stable revision, verified."""
    DEGRADED = "Degraded"
    """The app is Degraded without a rollback: the first deploy or a release failed before
    traffic could move, a revision that failed before was refused, or an object built from
    the spec was refused."""


ENDPOINT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NOTIFICATION_EVENTS_UNIQUE = "notifications[].events must not name an event twice"
NOTIFICATION_ENDPOINTS_UNIQUE = "notifications must not name an endpoint twice"


class Subscription(Model):
    endpoint: Annotated[
        str,
        Field(
            min_length=1,
            max_length=63,
            pattern=ENDPOINT_NAME_PATTERN,
            description="The name of a notification endpoint the operator's administrator "
            "configured (a Slack or JSON webhook); the URL is theirs, not the app's.",
        ),
    ]
    events: Annotated[
        list[NotificationEvent] | None,
        Field(
            min_length=1,
            max_length=len(NotificationEvent),
            json_schema_extra={"uniqueItems": True},
            description="The events to send: Started, Paused, Promoted, RolledBack, "
            "Aborted, Degraded; default: every one.",
        ),
    ] = None

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[NotificationEvent] | None) -> list[NotificationEvent] | None:
        if events is not None and len(set(events)) != len(events):
            raise ValueError(NOTIFICATION_EVENTS_UNIQUE)
        return events

    def wants(self, event: NotificationEvent) -> bool:
        return self.events is None or event in self.events


NOTIFICATIONS_LIST: dict[str, object] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["endpoint"],
}
"""The API server rejects two subscriptions of one endpoint ("Duplicate value")."""


def unique_endpoints(subscriptions: list[Subscription]) -> list[Subscription]:
    names = [s.endpoint for s in subscriptions]
    if len(set(names)) != len(names):
        raise ValueError(NOTIFICATION_ENDPOINTS_UNIQUE)
    return subscriptions
