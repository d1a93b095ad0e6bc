"""Is this replica the one that acts? kopf's peering rule, read from kopf's own records.

The chart runs two replicas with `--peering`: kopf pauses every peer that sees a live peer of
a higher priority (and all of them when two share one). kopf pauses its own watches then,
but the operator's passes also run from its own watches and timers, so the runtime asks
`Peering.active()` before every pass. The answer comes from the same records kopf reads
(ClusterKopfPeering, or KopfPeering with --namespace), watched into the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bluegreen.adapters.cache import CLUSTER_PEERINGS, PEERINGS, Kind, ObjectCache
from bluegreen.api import timestamps


def blocking_peers(
    records: Mapping[str, Mapping[str, Any]], priority: int, now: datetime
) -> list[str]:
    """The live peers that make a process of `priority` pause: any of a higher priority,
    and, when more than one live record has our priority, those (kopf pauses them all)."""
    live = {peer: r for peer, r in records.items() if _alive(r, now)}
    higher = [peer for peer, r in live.items() if int(r.get("priority", 0)) > priority]
    same = [peer for peer, r in live.items() if int(r.get("priority", 0)) == priority]
    return higher + (same if len(same) > 1 else [])


def _alive(record: Mapping[str, Any], now: datetime) -> bool:
    seen = timestamps.parse_or_none(record.get("lastseen"))
    if seen is None:
        return True  # kopf counts a record without lastseen as seen now
    return seen + timedelta(seconds=int(record.get("lifetime", 60))) > now


class Peering:
    """`active()` for one process: standalone, or kopf's peering `name`."""

    def __init__(
        self, cache: ObjectCache, *, name: str, clusterwide: bool, priority: int, standalone: bool
    ) -> None:
        self.cache = cache
        self.name = name
        self.priority = priority
        self.standalone = standalone
        self.kind: Kind = CLUSTER_PEERINGS if clusterwide else PEERINGS

    def active(self) -> bool:
        if self.standalone:
            return True
        if not self.cache.has_list(self.kind.name):
            return False  # not known yet who else runs
        records: dict[str, Mapping[str, Any]] = {}
        for obj in self.cache.all(self.kind.name):
            if (obj.get("metadata") or {}).get("name") == self.name:
                records.update(obj.get("status") or {})
        return not blocking_peers(records, self.priority, datetime.now(UTC))
