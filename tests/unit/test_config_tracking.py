"""Config tracking (spec.configTracking): which references, the revision, the copies'
names, the rewrite, garbage collection (table-driven), and releases of a ConfigMap change
ticked through the reconcile pass against the in-memory cluster."""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.core import configs, naming
from bluegreen.core.configs import CONFIG_MAP, SECRET, Choice, Copy, Found, Ref
from bluegreen.core.revision import revision
from tests.unit.factories import NAME, R1, V1, template
from tests.unit.fake_cluster import FakeCluster
from tests.unit.test_reconcile_ticks import Harness, app_body

# ----------------------------------------------------------------------------- references


def _pod(**spec: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "app", "image": V1}], **spec}}


REFERENCES = {
    "env configMapKeyRef and secretKeyRef": (
        _pod(
            containers=[
                {
                    "name": "app",
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        {"name": "C", "value": "plain"},
                    ],
                }
            ]
        ),
        {Ref(CONFIG_MAP, "c"): False, Ref(SECRET, "s"): False},
    ),
    "envFrom of an initContainer": (
        _pod(
            initContainers=[
                {
                    "name": "i",
                    "envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}],
                }
            ]
        ),
        {Ref(CONFIG_MAP, "c"): False, Ref(SECRET, "s"): False},
    ),
    "volumes, secret by secretName, projected sources": (
        _pod(
            volumes=[
                {"name": "a", "configMap": {"name": "c"}},
                {"name": "b", "secret": {"secretName": "s"}},
                {
                    "name": "p",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "pc"}},
                            {"secret": {"name": "ps"}},
                            {"serviceAccountToken": {"path": "t"}},
                        ]
                    },
                },
                {"name": "e", "emptyDir": {}},
            ]
        ),
        {
            Ref(CONFIG_MAP, "c"): False,
            Ref(CONFIG_MAP, "pc"): False,
            Ref(SECRET, "ps"): False,
            Ref(SECRET, "s"): False,
        },
    ),
    "optional only when every reference is": (
        _pod(
            volumes=[
                {"name": "a", "configMap": {"name": "both", "optional": True}},
                {"name": "b", "configMap": {"name": "opt", "optional": True}},
            ],
            containers=[{"name": "app", "envFrom": [{"configMapRef": {"name": "both"}}]}],
        ),
        {Ref(CONFIG_MAP, "both"): False, Ref(CONFIG_MAP, "opt"): True},
    ),
    "nothing referenced": (_pod(), {}),
}


@pytest.mark.parametrize("tmpl,want", REFERENCES.values(), ids=REFERENCES.keys())
def test_references(tmpl: dict[str, Any], want: dict[Ref, bool]) -> None:
    assert configs.references(tmpl) == want


# ----------------------------------------------------------------------------- tracking

C, S, OPT = Ref(CONFIG_MAP, "c"), Ref(SECRET, "s"), Ref(CONFIG_MAP, "opt")
TRACK = {
    "present ConfigMap tracked, Secret not asked for": (
        {C: False, S: False},
        {C: Found("d1"), S: Found("d2")},
        (False, True),
        Choice(config={"ConfigMap/c": "d1"}),
    ),
    "Secret asked for and allowed": (
        {C: False, S: False},
        {C: Found("d1"), S: Found("d2", type="Opaque")},
        (True, True),
        Choice(config={"ConfigMap/c": "d1", "Secret/s": "d2"}),
    ),
    "Secret asked for, not allowed by the operator": (
        {C: False, S: False},
        {C: Found("d1")},
        (True, False),
        Choice(config={"ConfigMap/c": "d1"}, untracked_secrets=(S,)),
    ),
    "missing required ConfigMap": ({C: False}, {}, (False, False), Choice(missing=(C,))),
    "missing optional ConfigMap is left alone": ({OPT: True}, {}, (False, False), Choice()),
    "present optional ConfigMap is tracked": (
        {OPT: True},
        {OPT: Found("d3")},
        (False, False),
        Choice(config={"ConfigMap/opt": "d3"}),
    ),
    "a reference to one of the operator's copies is not copied again": (
        {C: False},
        {C: Found("d1", copy=True)},
        (False, False),
        Choice(),
    ),
    "a ServiceAccount token Secret is not copied": (
        {S: False},
        {S: Found("d2", type="kubernetes.io/service-account-token")},
        (True, True),
        Choice(),
    ),
}


@pytest.mark.parametrize("refs,found,flags,want", TRACK.values(), ids=TRACK.keys())
def test_track(
    refs: dict[Ref, bool], found: dict[Ref, Found], flags: tuple[bool, bool], want: Choice
) -> None:
    secrets, allowed = flags
    assert configs.track(refs, found, secrets=secrets, secrets_allowed=allowed) == want


def test_digest_is_of_data_and_binary_data_only() -> None:
    assert configs.digest({"a": "1"}) == configs.object_digest({"data": {"a": "1"}, "x": 1})
    assert configs.digest({"a": "1"}) != configs.digest({"a": "2"})
    assert configs.digest({"a": "1"}) != configs.digest({"a": "1"}, {"b": "AA=="})


def test_revision_without_config_is_the_template_alone() -> None:
    """An app that does not track config keeps its revision: upgrading starts no release."""
    t = template(V1)
    assert revision(t, {}) == revision(t) == R1
    assert revision(t, {"ConfigMap/c": "d1"}) != revision(t, {"ConfigMap/c": "d2"})


# ----------------------------------------------------------------------------- copies

COPY_NAMES = {
    "short": ("settings", "0123456789", "settings-0123456789"),
    "exactly 253": ("a" * 242, "0123456789", "a" * 242 + "-0123456789"),
}


@pytest.mark.parametrize("name,rev,want", COPY_NAMES.values(), ids=COPY_NAMES.keys())
def test_copy_name(name: str, rev: str, want: str) -> None:
    assert configs.copy_name(name, rev) == want


def test_a_long_name_is_shortened_with_a_hash_and_stays_distinct() -> None:
    a, b = "x" * 250 + "a", "x" * 250 + "b"
    ca, cb = configs.copy_name(a, "0123456789"), configs.copy_name(b, "0123456789")
    assert len(ca) == len(cb) == 253
    assert ca != cb
    assert ca.endswith("-0123456789") and ca.startswith("x" * 200)


def test_rewrite_points_every_reference_at_the_copies() -> None:
    tmpl = REFERENCES["volumes, secret by secretName, projected sources"][0]
    configs.rewrite(tmpl, {Ref(CONFIG_MAP, "c"): "c-r", Ref(SECRET, "s"): "s-r"})
    volumes = tmpl["spec"]["volumes"]
    assert volumes[0]["configMap"]["name"] == "c-r"
    assert volumes[1]["secret"]["secretName"] == "s-r"
    assert volumes[2]["projected"]["sources"][0]["configMap"]["name"] == "pc"  # not renamed


STALE = {
    "kept revisions stay": ([Copy(CONFIG_MAP, "c-r1", "r1")], {"r1"}, []),
    "others go": (
        [Copy(CONFIG_MAP, "c-r1", "r1"), Copy(SECRET, "s-r0", "r0")],
        {"r1"},
        [Copy(SECRET, "s-r0", "r0")],
    ),
    "nothing kept": ([Copy(CONFIG_MAP, "c-r1", "r1")], set(), [Copy(CONFIG_MAP, "c-r1", "r1")]),
}


@pytest.mark.parametrize("copies,keep,want", STALE.values(), ids=STALE.keys())
def test_stale(copies: list[Copy], keep: set[str], want: list[Copy]) -> None:
    assert configs.stale(copies, keep) == want


SERVED = {"ConfigMap/settings": "d1", "Secret/creds": "s1"}
SERVING = {
    "every copy there": (
        {Ref(CONFIG_MAP, "settings-r1"): Found("d1"), Ref(SECRET, "creds-r1"): Found("s1")},
        [],
        [],
    ),
    "a copy gone, its object unchanged: made again": (
        {Ref(CONFIG_MAP, "settings"): Found("d1"), Ref(SECRET, "creds-r1"): Found("s1")},
        [Ref(CONFIG_MAP, "settings")],
        [],
    ),
    "a copy gone, its object changed since: lost": (
        {Ref(CONFIG_MAP, "settings"): Found("d2"), Ref(SECRET, "creds-r1"): Found("s1")},
        [],
        [Ref(CONFIG_MAP, "settings")],
    ),
    "a copy and its object gone: lost": (
        {Ref(CONFIG_MAP, "settings-r1"): Found("d1")},
        [],
        [Ref(SECRET, "creds")],
    ),
    "a copy of that name with other content: lost, never overwritten": (
        {
            Ref(CONFIG_MAP, "settings-r1"): Found("other"),
            Ref(CONFIG_MAP, "settings"): Found("d1"),
            Ref(SECRET, "creds-r1"): Found("s1"),
        },
        [],
        [Ref(CONFIG_MAP, "settings")],
    ),
}


@pytest.mark.parametrize(("found", "remake", "lost"), SERVING.values(), ids=SERVING.keys())
def test_serving(found: dict[Ref, Found], remake: list[Ref], lost: list[Ref]) -> None:
    got = configs.serving("r1", SERVED, found)
    assert (list(got.remake), list(got.lost)) == (remake, lost)


# ----------------------------------------------------------------------------- ticks


def _tracking_app(secrets: bool = False, optional: bool = False) -> dict[str, Any]:
    body = app_body(image=V1)
    spec = body["spec"]
    spec["configTracking"] = {"enabled": True, "secrets": secrets}
    container = spec["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "settings"}}]
    if secrets:
        container["envFrom"].append({"secretRef": {"name": "creds"}})
    spec["template"]["spec"]["volumes"] = [
        {"name": "extra", "configMap": {"name": "extra", "optional": optional or None}}
    ]
    return body


def _harness(body: dict[str, Any], **configmaps: dict[str, str]) -> Harness:
    cluster = FakeCluster()
    for cm, data in configmaps.items():
        cluster.put_config(CONFIG_MAP, cm, data)
    cluster.create_app(body)
    return Harness(cluster)


def _env_from(cluster: FakeCluster, color: str) -> list[str]:
    dep = cluster.obj("Deployment", f"{NAME}-{color}")
    assert dep is not None
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return [next(iter(e.values()))["name"] for e in container["envFrom"]]


def _condition(cluster: FakeCluster, type_: str) -> dict[str, Any]:
    return next(c for c in cluster.status.get("conditions", []) if c["type"] == type_)


def _done(rev_not: str) -> Any:
    def done(status: dict[str, Any]) -> bool:
        return status.get("phase") == "Healthy" and status.get("stableRevision") != rev_not

    return done


def test_a_configmap_change_releases_to_the_idle_colour_with_its_own_copy() -> None:
    h = _harness(_tracking_app(), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    first = h.cluster.status["stableRevision"]
    assert first != R1  # the content is part of the revision
    assert _env_from(h.cluster, "blue") == [f"settings-{first}"]
    copy = h.cluster.obj(CONFIG_MAP, f"settings-{first}")
    assert copy is not None and copy["immutable"] is True
    assert copy["data"] == {"LEVEL": "info"}
    assert copy["metadata"]["labels"][naming.LABEL_REVISION] == first
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "BlueGreenApp"
    assert _condition(h.cluster, "ConfigTracked")["status"] == "True"

    start = len(h.ticks)
    h.cluster.put_config(CONFIG_MAP, "settings", {"LEVEL": "debug"})
    h.run_until(_done(first))
    second = h.cluster.status["stableRevision"]
    assert second != first
    assert h.cluster.status["activeColor"] == "green"
    assert _env_from(h.cluster, "green") == [f"settings-{second}"]
    assert _env_from(h.cluster, "blue") == [f"settings-{first}"]  # the old colour keeps its own
    ops = [(c.op, c.kind) for c in h.calls(start) if c.op in ("copy_config", "apply")]
    assert ops.index(("copy_config", CONFIG_MAP)) < ops.index(("apply", "Deployment"))
    new_copy = h.cluster.obj(CONFIG_MAP, f"settings-{second}")
    assert new_copy is not None and new_copy["data"] == {"LEVEL": "debug"}
    assert h.cluster.obj(CONFIG_MAP, f"settings-{first}") is not None  # in history


def test_copies_of_revisions_nothing_keeps_are_deleted() -> None:
    h = _harness(_tracking_app(), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    h.cluster.objects[f"{CONFIG_MAP}/settings-gone"] = {
        "kind": CONFIG_MAP,
        "metadata": {
            "name": "settings-gone",
            "labels": {
                naming.LABEL_APP: NAME,
                naming.LABEL_CONFIG_COPY: "true",
                naming.LABEL_REVISION: "0000000000",
            },
            "ownerReferences": [{"uid": h.cluster.body["metadata"]["uid"]}],  # type: ignore[index]
        },
        "digest": "x",
    }
    h.tick()
    assert (
        "delete",
        CONFIG_MAP,
        "settings-gone",
    ) in [(c.op, c.kind, c.name) for c in h.calls(len(h.ticks) - 1)]
    assert h.cluster.obj(CONFIG_MAP, "settings-gone") is None
    rev = h.cluster.status["stableRevision"]
    assert h.cluster.obj(CONFIG_MAP, f"settings-{rev}") is not None


def test_a_missing_configmap_holds_the_release_and_traffic_stays() -> None:
    h = _harness(_tracking_app(), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    stable = h.cluster.status["stableRevision"]
    del h.cluster.objects[f"{CONFIG_MAP}/extra"]
    start = len(h.ticks)
    for _ in range(5):
        h.tick()
    assert h.phases(start) == ["Healthy"]
    assert h.cluster.status["stableRevision"] == stable
    assert not [c for c in h.calls(start) if c.op == "apply" and c.kind == "Deployment"]
    cond = _condition(h.cluster, "ConfigTracked")
    assert (cond["status"], cond["reason"]) == ("False", "ConfigMissing")
    assert "ConfigMap extra" in cond["message"]
    h.cluster.put_config(CONFIG_MAP, "extra", {"x": "2"})
    h.run_until(_done(stable))
    assert _condition(h.cluster, "ConfigTracked")["status"] == "True"


def test_a_missing_optional_configmap_is_left_alone() -> None:
    h = _harness(_tracking_app(optional=True), settings={"LEVEL": "info"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    dep = h.cluster.obj("Deployment", f"{NAME}-blue")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "extra"


@pytest.mark.parametrize("allowed", [False, True], ids=["not allowed", "allowed"])
def test_secrets_are_copied_only_when_the_operator_allows_it(allowed: bool) -> None:
    h = _harness(_tracking_app(secrets=True), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.cluster.put_config(SECRET, "creds", {"pw": "c2VjcmV0"}, "Opaque")
    h.cluster.track_secrets = allowed
    h.run_until(lambda st: st.get("phase") == "Healthy")
    rev = h.cluster.status["stableRevision"]
    cond = _condition(h.cluster, "ConfigTracked")
    if allowed:
        assert _env_from(h.cluster, "blue") == [f"settings-{rev}", f"creds-{rev}"]
        copy = h.cluster.obj(SECRET, f"creds-{rev}")
        assert copy is not None and copy["type"] == "Opaque" and copy["immutable"] is True
        assert cond["status"] == "True"
    else:
        assert _env_from(h.cluster, "blue") == [f"settings-{rev}", "creds"]
        assert h.cluster.obj(SECRET, f"creds-{rev}") is None
        assert (cond["status"], cond["reason"]) == ("False", "SecretsNotTracked")
        assert "starts no release" in cond["message"]


def test_an_app_that_does_not_track_config_keeps_its_revision() -> None:
    body = _tracking_app()
    body["spec"]["configTracking"] = {"enabled": False}
    h = _harness(body, settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    assert _env_from(h.cluster, "blue") == ["settings"]
    assert not [c for c in h.calls() if c.op == "copy_config"]
    assert all(c["type"] != "ConfigTracked" for c in h.cluster.status["conditions"])


def test_a_deleted_copy_of_the_serving_colour_is_made_again() -> None:
    h = _harness(_tracking_app(), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    rev = h.cluster.status["stableRevision"]
    assert h.cluster.status["activeColor"] == "blue"
    del h.cluster.objects[f"{CONFIG_MAP}/settings-{rev}"]
    start = len(h.ticks)
    h.tick()
    made = [c.name for c in h.calls(start) if c.op == "copy_config"]
    assert made == [f"settings-{rev}"]
    copy = h.cluster.obj(CONFIG_MAP, f"settings-{rev}")
    assert copy is not None and copy["data"] == {"LEVEL": "info"}
    assert copy["metadata"]["labels"][naming.LABEL_REVISION] == rev
    assert h.phases(start) == ["Healthy"]
    assert _condition(h.cluster, "ConfigTracked")["status"] == "True"


def test_a_copy_whose_labels_were_edited_away_is_still_the_one_the_pods_use() -> None:
    h = _harness(_tracking_app(), settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    rev = h.cluster.status["stableRevision"]
    copy = h.cluster.objects[f"{CONFIG_MAP}/settings-{rev}"]
    copy["metadata"]["labels"] = {}
    start = len(h.ticks)
    for _ in range(3):
        h.tick()
    assert not [c for c in h.calls(start) if c.op in ("copy_config", "delete")]
    assert _condition(h.cluster, "ConfigTracked")["status"] == "True"


def test_a_lost_copy_of_the_serving_colour_is_a_condition_and_moves_no_traffic() -> None:
    body = _tracking_app()
    body["spec"]["strategy"] = {"autoPromotion": False}
    h = _harness(body, settings={"LEVEL": "info"}, extra={"x": "1"})
    h.run_until(lambda st: st.get("phase") == "Healthy")
    first = h.cluster.status["stableRevision"]
    h.cluster.put_config(CONFIG_MAP, "settings", {"LEVEL": "debug"})
    h.run_until(lambda st: st.get("phase") == "Paused")  # the release waits for a person
    del h.cluster.objects[f"{CONFIG_MAP}/settings-{first}"]
    start = len(h.ticks)
    for _ in range(3):
        h.tick()
    assert h.phases(start) == ["Paused"]
    assert h.cluster.status["activeColor"] == "blue"
    assert not h.flips
    assert not [c for c in h.calls(start) if c.op == "copy_config"]
    cond = _condition(h.cluster, "ConfigTracked")
    assert (cond["status"], cond["reason"]) == ("False", "ConfigCopyLost")
    assert f"ConfigMap settings-{first}" in cond["message"]
    assert "blue pods" in cond["message"] and "fails to start" in cond["message"]
    warned = [e for e in h.cluster.events if e[1] == "ConfigCopyLost"]
    assert len(warned) == 1 and warned[0][0] == "Warning"  # told once, not every pass

    h.cluster.put_config(CONFIG_MAP, "settings", {"LEVEL": "info"})  # the content is back
    start = len(h.ticks)
    h.tick()
    assert f"settings-{first}" in [c.name for c in h.calls(start) if c.op == "copy_config"]
    copy = h.cluster.obj(CONFIG_MAP, f"settings-{first}")
    assert copy is not None and copy["data"] == {"LEVEL": "info"}
    assert _condition(h.cluster, "ConfigTracked")["reason"] != "ConfigCopyLost"
