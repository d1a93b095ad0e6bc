"""The wall clock, as a port implementation (the pure core only ever receives `now`)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
