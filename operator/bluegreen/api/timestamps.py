"""RFC 3339 timestamps, the one format of every time in status, Events and the plugin.

format(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))  # "2026-05-01T12:00:00.000000Z"
parse("2026-05-01T12:00:00Z")                     # an aware datetime in UTC
"""

from __future__ import annotations

from datetime import UTC, datetime


def format(t: datetime) -> str:
    """UTC with microseconds and a `Z`; a naive time is taken to be UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime; ValueError if it is not one."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return t


def parse_or_none(text: object) -> datetime | None:
    """For values read from objects as they come: None for anything that is not a time, and
    a time without a zone taken to be UTC."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
