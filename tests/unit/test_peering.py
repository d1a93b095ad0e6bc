"""Is this replica the one that acts: kopf's peering rule over the cached peering records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.adapters.cache import CLUSTER_PEERINGS, PEERINGS, ObjectCache
from bluegreen.runtime.peering import Peering, blocking_peers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _seen(ago: float, priority: int = 0, lifetime: int = 60) -> dict[str, Any]:
    at = (NOW - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"priority": priority, "lifetime": lifetime, "lastseen": at}


@pytest.mark.parametrize(
    ("records", "priority", "blocking"),
    [
        ({}, 0, []),
        ({"me": _seen(1)}, 0, []),
        ({"me": _seen(1), "other": _seen(1, priority=10)}, 0, ["other"]),
        ({"me": _seen(1, priority=10), "other": _seen(1)}, 10, []),
        ({"me": _seen(1), "other": _seen(1)}, 0, ["me", "other"]),  # kopf pauses both
        ({"me": _seen(1), "old": _seen(120, priority=10)}, 0, []),  # past its lifetime
        ({"me": _seen(1), "new": {"priority": 5}}, 0, ["new"]),  # no lastseen: seen now
    ],
)
def test_blocking_peers(records: dict[str, Any], priority: int, blocking: list[str]) -> None:
    assert blocking_peers(records, priority, NOW) == blocking


def _peering(cache: ObjectCache, *, clusterwide: bool = True) -> Peering:
    return Peering(cache, name="bg", clusterwide=clusterwide, priority=0, standalone=False)


def test_not_active_before_the_records_are_listed() -> None:
    assert not _peering(ObjectCache()).active()


@pytest.mark.parametrize("clusterwide", [True, False])
def test_without_kopfs_peering_crd_the_replica_runs_standalone(clusterwide: bool) -> None:
    cache = ObjectCache()
    kind = CLUSTER_PEERINGS if clusterwide else PEERINGS
    assert kind.optional  # a 404 on the list marks it not served instead of retrying forever
    cache.not_served(kind.name, "" if clusterwide else "team-a")
    assert _peering(cache, clusterwide=clusterwide).active()


def test_a_live_peer_of_higher_priority_pauses_the_replica() -> None:
    cache = ObjectCache()
    live = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = {"priority": 100, "lifetime": 60, "lastseen": live}
    body = {"metadata": {"name": "bg"}, "status": {"other": record}}
    cache.replace_all(CLUSTER_PEERINGS.name, [body])
    assert not _peering(cache).active()
    cache.replace_all(CLUSTER_PEERINGS.name, [{**body, "metadata": {"name": "another"}}])
    assert _peering(cache).active()
