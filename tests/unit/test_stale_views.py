"""A delayed watch never makes the operator flip traffic to a colour that is not saturated.

The operator reads only its watch caches. Here the cache is the real `ObjectCache`, fed by a
fake watch over the in-memory cluster that can fall behind: its events are held back while
the cluster (the fake controllers) moves on. What keeps the operator safe is write-through:
every write's answer goes into the cache at once, so the cache is never older than what the
operator itself wrote. The same scenario without write-through flips to a colour whose pods
run another revision, which shows the check bites.

The scenario: blue is warm on v1 after v2 went to green; v3 starts on blue; the spec goes
back to v1 while the watch still shows blue's old v1 pods, ready.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from bluegreen.adapters.cache import (
    APPS,
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    PODS,
    SERVICES,
    WATCHED,
    CachedReader,
    ObjectCache,
)
from bluegreen.core import naming
from bluegreen.runtime import reconcile
from tests.unit.factories import NAME, NAMESPACE, R1, R2, V1, V2, V3, app_body
from tests.unit.fake_cluster import FakeClock, FakeCluster

Key = tuple[str, str]  # (kind, name)


@dataclass
class FakeWatch:
    """Turns the fake cluster's changes into watch events with resourceVersions, and
    delivers them into the cache when told (so it can fall behind)."""

    cluster: FakeCluster
    cache: ObjectCache
    log: list[tuple[str, Key, dict[str, Any] | None]] = field(default_factory=list)
    seen: dict[Key, str] = field(default_factory=dict)
    delivered: int = 0
    version: int = 100

    def snapshot(self) -> dict[Key, dict[str, Any]]:
        out: dict[Key, dict[str, Any]] = {}
        assert self.cluster.body is not None
        out[(APPS.name, NAME)] = self.cluster.body
        for key, obj in self.cluster.objects.items():
            kind, name = key.split("/", 1)
            out[(kind, name)] = obj
        for name, pod in self.cluster.pod_objects.items():
            out[(PODS.name, name)] = pod
        for slices in self.cluster.slices.values():
            for s in slices:
                out[(ENDPOINT_SLICES.name, s["metadata"]["name"])] = s
        return out

    def record(self) -> list[int]:
        """Stamp every change since the last call with the next resourceVersion; returns
        the indexes of the new events in the log."""
        now = self.snapshot()
        new: list[int] = []
        for key, obj in sorted(now.items()):
            text = json.dumps(obj, sort_keys=True)
            if self.seen.get(key) != text:
                self.seen[key] = text
                self.version += 1
                stamped = copy.deepcopy(obj)
                meta = stamped.setdefault("metadata", {})
                meta["resourceVersion"] = str(self.version)
                meta.setdefault("namespace", NAMESPACE)
                meta.setdefault("name", key[1])
                new.append(len(self.log))
                self.log.append(("MODIFIED", key, stamped))
        for key in [k for k in self.seen if k not in now]:
            del self.seen[key]
            self.version += 1
            gone = {"metadata": {"name": key[1], "namespace": NAMESPACE}}
            gone["metadata"]["resourceVersion"] = str(self.version)  # type: ignore[index]
            new.append(len(self.log))
            self.log.append(("DELETED", key, gone))
        return new

    def push(self, index: int) -> None:
        kind_event, (kind, _), obj = self.log[index]
        assert obj is not None
        if kind_event == "DELETED":
            self.cache.remove(kind, obj)
        else:
            self.cache.upsert(kind, obj)

    def deliver(self, *, objects: bool = True) -> None:
        """The watches catch up: the app's (kopf's) always, the owned objects' only when
        `objects` (else they fall behind)."""
        for index in range(self.delivered, len(self.log)):
            if self.log[index][1][0] == APPS.name:
                self.push(index)
        if objects:
            while self.delivered < len(self.log):
                if self.log[self.delivered][1][0] != APPS.name:
                    self.push(self.delivered)
                self.delivered += 1


@dataclass
class ThroughWriter:
    """The gateway's writes on the fake cluster; with `through`, each write's answer (the
    object as now stored, with its new resourceVersion) goes into the cache at once, as
    `KubernetesGateway` does."""

    cluster: FakeCluster
    watch: FakeWatch
    through: bool

    def _after(self, kind: str, name: str) -> None:
        for index in self.watch.record():
            # The app's own status always goes through, so the scenario goes on; `through`
            # decides for the objects the decision reads (Deployments, Services).
            wanted = self.through or kind == APPS.name
            if wanted and self.watch.log[index][1] == (kind, name):
                self.watch.push(index)

    def apply(self, manifest: dict[str, Any], *, adopt: bool = False) -> None:
        self.cluster.apply(manifest, adopt=adopt)
        self._after(manifest["kind"], manifest["metadata"]["name"])

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.cluster.scale(namespace, deployment, replicas)
        self._after(DEPLOYMENTS.name, deployment)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        raise AssertionError(f"nothing is deleted in these scenarios ({kind}/{name})")

    def patch_app_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.cluster.patch_app_status(namespace, name, status)
        self._after(APPS.name, name)

    def remove_app_annotation(self, namespace: str, name: str, key: str) -> None:
        self.cluster.remove_app_annotation(namespace, name, key)
        self._after(APPS.name, name)


@dataclass
class World:
    cluster: FakeCluster
    watch: FakeWatch
    writer: ThroughWriter
    reader: CachedReader
    clock: FakeClock = field(default_factory=FakeClock)
    lagging: bool = False
    bad_flips: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, *, through: bool) -> World:
        cluster = FakeCluster()
        cluster.create_app(app_body(image=V1, strategy={"scaleDownDelaySeconds": 600}))
        cache = ObjectCache()
        for kind in WATCHED:
            cache.replace_all(kind.name, [])
        watch = FakeWatch(cluster, cache)
        watch.record()
        watch.deliver()
        return cls(cluster, watch, ThroughWriter(cluster, watch, through), CachedReader(cache))

    def tick(self) -> None:
        before = self._active_selector()
        reconcile.reconcile(NAMESPACE, NAME, self.reader, self.writer, self.clock)
        after = self._active_selector()
        if after is not None and after != before:
            self._check_flip(after)
        self.cluster.simulate()
        self.watch.record()
        self.watch.deliver(objects=not self.lagging)
        self.clock.advance(1.0)

    def _active_selector(self) -> str | None:
        svc = self.cluster.obj(SERVICES.name, naming.active_service(NAME))
        return None if svc is None else str(svc["spec"]["selector"][naming.LABEL_COLOR])

    def _check_flip(self, color: str) -> None:
        """The colour traffic just moved to, in the cluster as it really is: every replica
        ready and running the revision the release promotes."""
        release = self.cluster.status.get("release") or {}
        revision = release.get("revision")
        ready = [
            p
            for p in self.cluster.pod_objects.values()
            if p["metadata"]["labels"].get(naming.LABEL_COLOR) == color
            and p["metadata"]["labels"].get(naming.LABEL_REVISION) == revision
            and any(c["status"] == "True" for c in p["status"]["conditions"])
        ]
        if len(ready) < 2:
            self.bad_flips.append(f"{color}: {len(ready)} ready pods of {revision}")

    def run_until(self, phase: str, revision: str | None = None, ticks: int = 40) -> None:
        for _ in range(ticks):
            self.tick()
            st = self.cluster.status
            if st.get("phase") == phase and (
                revision is None or st.get("stableRevision") == revision
            ):
                return
        raise AssertionError(f"not {phase} after {ticks} ticks: {self.cluster.status.get('phase')}")


def revert_inside_the_warm_window(world: World) -> None:
    world.run_until("Healthy", R1)
    world.cluster.set_image(V2)
    world.run_until("Healthy", R2)  # v2 on green; blue warm on v1 for 600 s
    assert world.cluster.status["activeColor"] == "green"
    world.lagging = True  # from here the watch falls behind
    world.cluster.set_image(V3)
    world.tick()  # v3 goes to blue (Recreate: blue's v1 pods go)
    world.cluster.hold_not_ready(R1)  # the v1 pods blue gets again will not be ready soon
    world.cluster.set_image(V1)  # the spec goes back to v1, blue's old revision
    for _ in range(6):
        world.tick()


def test_a_lagging_watch_never_causes_a_flip_to_an_unsaturated_colour() -> None:
    world = World.new(through=True)
    revert_inside_the_warm_window(world)
    assert world.bad_flips == []
    assert world.cluster.status["activeColor"] == "green"  # traffic stays where it was safe
    # The watch catches up, blue's v1 pods get ready: then, and only then, traffic moves.
    world.lagging = False
    world.cluster.hold_not_ready(R1, held=False)
    world.run_until("Healthy", R1)
    assert world.bad_flips == []
    assert world.cluster.status["activeColor"] == "blue"


def test_without_write_through_the_same_lag_flips_to_a_colour_running_another_revision() -> None:
    """The control: the check above can fail."""
    world = World.new(through=False)
    revert_inside_the_warm_window(world)
    assert world.bad_flips, "the check did not bite: the stale view should have flipped"
