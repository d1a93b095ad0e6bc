"""Events leave the pass at once and are posted by one thread of their own.

A pass hands its Events to the queue and goes on: posting them (one API request each) never
delays a switch. The queue is bounded; when the API server is too slow for it, the newest
Events are dropped and counted, never the release.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from bluegreen.core.ports import EventSink

log = logging.getLogger(__name__)

_Item = tuple[Mapping[str, Any], str, str, str]


class EventQueue:
    """Implements the EventSink port in front of another (the gateway)."""

    def __init__(
        self,
        sink: EventSink,
        *,
        size: int = 10_000,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._sink = sink
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=size)
        self._on_dropped = on_dropped
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post what is queued (for at most `timeout` seconds), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def emit_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = app.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid")}}
        try:
            self._queue.put_nowait((ref, type_, reason, message))
        except queue.Full:
            self.dropped += 1
            if self._on_dropped is not None:
                self._on_dropped()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            app, type_, reason, message = item
            try:
                self._sink.emit_event(app, type_, reason, message)
            except Exception as err:  # noqa: BLE001 - events are best effort
                log.warning("could not post event %s: %s", reason, err)
