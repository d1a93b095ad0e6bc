"""The watch cache: newest wins, write-through beats late events, lists report what changed."""

from __future__ import annotations

import time
from typing import Any

from bluegreen.adapters.cache import (
    APPS,
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    INGRESSES,
    JOBS,
    PODS,
    SERVICES,
    WATCHED,
    CachedReader,
    ObjectCache,
    newer,
)
from bluegreen.core import naming
from bluegreen.core.ports import SEEN_AT, WRITTEN_AT

NS = "shop-ns"


def deployment(name: str, rv: int, replicas: int = 2, ready: int = 2, app: str = "shop") -> Any:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": str(rv),
            "generation": 1,
            "labels": naming.owned_labels(app),
            "ownerReferences": [{"kind": "BlueGreenApp", "name": app, "uid": "u1"}],
            "managedFields": [{"manager": "x" * 1000}],
        },
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}},
        },
        "status": {"readyReplicas": ready, "observedGeneration": 1, "conditions": [{}] * 5},
    }


def pod(name: str, rv: int, app: str = "shop", ready: bool = True) -> Any:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": str(rv),
            "labels": {naming.LABEL_NAME: app, naming.LABEL_COLOR: "blue"},
        },
        "spec": {"containers": [{"name": "app", "image": "x"}]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"},
                {"type": "PodScheduled", "status": "True"},
            ]
        },
    }


class Changes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, namespace: str, app: str | None, kind: str, name: str) -> None:
        if app is not None:
            self.seen.append((namespace, app, kind))


def synced_cache(changes: Changes | None = None) -> ObjectCache:
    cache = ObjectCache(on_change=changes)
    for kind in WATCHED:
        cache.replace_all(kind.name, [])
    return cache


def test_newer_compares_numbers_as_numbers() -> None:
    assert newer("10", "9")
    assert not newer("9", "10")
    assert not newer("10", "10")
    assert newer("abc", "abd")  # opaque versions: a different one is taken as newer


def test_a_write_answer_is_kept_over_a_late_watch_event() -> None:
    cache = synced_cache()
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 10, replicas=2))
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 15, replicas=0))  # our scale's answer
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 12, replicas=2))  # a late event
    got = cache.get(DEPLOYMENTS.name, NS, "shop-blue")
    assert got is not None and got["spec"]["replicas"] == 0
    assert got["metadata"]["resourceVersion"] == "15"


def test_a_late_event_of_a_deleted_object_does_not_bring_it_back() -> None:
    cache = synced_cache()
    cache.upsert(
        SERVICES.name, {"metadata": {"name": "s", "namespace": NS, "resourceVersion": "5"}}
    )
    cache.remove(
        SERVICES.name, {"metadata": {"name": "s", "namespace": NS, "resourceVersion": "8"}}
    )
    cache.upsert(
        SERVICES.name, {"metadata": {"name": "s", "namespace": NS, "resourceVersion": "6"}}
    )
    assert cache.get(SERVICES.name, NS, "s") is None
    # Created again later: a newer version is a new object.
    cache.upsert(
        SERVICES.name, {"metadata": {"name": "s", "namespace": NS, "resourceVersion": "9"}}
    )
    assert cache.get(SERVICES.name, NS, "s") is not None


def test_objects_are_trimmed_to_what_the_decision_reads() -> None:
    cache = synced_cache()
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 3))
    got = cache.get(DEPLOYMENTS.name, NS, "shop-blue")
    assert got is not None
    assert "managedFields" not in got["metadata"]
    assert "conditions" not in got["status"]
    assert "spec" not in got["spec"]["template"]
    assert got["spec"]["template"]["metadata"]["labels"] == {"a": "b"}
    cache.upsert(PODS.name, pod("p1", 4))
    (p1,) = CachedReader(cache).pods(NS, "shop")
    assert p1["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    assert "spec" not in p1


def test_pods_and_slices_are_found_by_app_and_by_service() -> None:
    cache = synced_cache()
    reader = CachedReader(cache)
    cache.upsert(PODS.name, pod("a1", 1))
    cache.upsert(PODS.name, pod("b1", 2, app="other"))
    cache.upsert(PODS.name, pod("a2", 3))
    assert [p["metadata"]["name"] for p in reader.pods(NS, "shop")] == ["a1", "a2"]
    cache.remove(PODS.name, pod("a1", 4))
    assert [p["metadata"]["name"] for p in reader.pods(NS, "shop")] == ["a2"]
    slice_ = {
        "metadata": {
            "name": "shop-x1",
            "namespace": NS,
            "resourceVersion": "5",
            "labels": {"kubernetes.io/service-name": "shop", naming.LABEL_NAME: "shop"},
        },
        "endpoints": [{"targetRef": {"name": "a2"}, "conditions": {"ready": True}}],
    }
    cache.upsert(ENDPOINT_SLICES.name, slice_)
    assert reader.endpoint_slices(NS, "shop")[0]["endpoints"][0]["targetRef"] == {"name": "a2"}
    assert reader.endpoint_slices(NS, "shop-preview") == []


def test_changes_name_the_app_they_belong_to() -> None:
    changes = Changes()
    cache = synced_cache(changes)
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 1))
    cache.upsert(DEPLOYMENTS.name, deployment("shop-blue", 1))  # the same version: no change
    cache.upsert(PODS.name, pod("p", 2, app="cart"))
    cache.upsert(APPS.name, {"metadata": {"name": "shop", "namespace": NS, "resourceVersion": "3"}})
    assert changes.seen == [(NS, "shop", "Deployment"), (NS, "cart", "Pod")]


def test_a_new_list_reports_what_changed_and_what_is_gone() -> None:
    changes = Changes()
    cache = synced_cache(changes)
    cache.upsert(PODS.name, pod("p1", 1))
    cache.upsert(PODS.name, pod("p2", 2, app="cart"))
    changes.seen.clear()
    cache.replace_all(PODS.name, [pod("p1", 1), pod("p3", 7, app="tea")])
    assert sorted(changes.seen) == [(NS, "cart", "Pod"), (NS, "tea", "Pod")]
    assert cache.get(PODS.name, NS, "p2") is None


def test_passes_wait_for_the_first_list_of_every_kind() -> None:
    cache = ObjectCache()
    optional = [k for k in WATCHED if k.optional]
    for kind in [k for k in WATCHED if not k.optional]:
        cache.replace_all(kind.name, [])
        assert not cache.synced()
    for kind in optional:  # CRDs not installed: the ServiceMonitor's, the Gateway API's
        assert not cache.synced()
        cache.not_served(kind.name)
    assert cache.synced()
    assert not CachedReader(cache).service_monitors_supported()
    assert not CachedReader(cache).http_routes_supported()


def test_a_namespaced_install_reads_nothing_cluster_scoped() -> None:
    """Its Roles cannot grant a cluster-scoped kind: ClusterAnalysisTemplates are absent
    from the start, never listed, and the cache is synced without them."""
    cache = ObjectCache()
    cache.watch_namespaces(["shop", "blog"])
    reader = CachedReader(cache)
    assert not reader.analysis_templates_readable(cluster=True)
    for kind in WATCHED:
        if kind.cluster_scoped:
            continue
        for ns in ("shop", "blog"):
            assert not cache.synced()
            cache.replace_all(kind.name, [], ns)
    assert cache.synced()
    assert reader.analysis_templates_readable(cluster=False)
    assert [k.name for k in WATCHED if k.cluster_scoped] == ["ClusterAnalysisTemplate"]


def analysis_job(name: str, rv: int, app: str = "shop", finished: str | None = None) -> Any:
    conditions = [{"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": "x"}]
    if finished is not None:
        conditions.append(
            {
                "type": finished,
                "status": "True",
                "reason": "R",
                "message": "M",
                "lastProbeTime": "x",
            }
        )
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": str(rv),
            "creationTimestamp": "2030-01-01T12:00:00Z",
            "labels": {**naming.owned_labels(app), naming.LABEL_ROLE: naming.ROLE_ANALYSIS},
            "ownerReferences": [{"kind": "BlueGreenApp", "name": app, "uid": "u1"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x" * 500}]}}},
        "status": {"conditions": conditions, "active": 0, "uncountedTerminatedPods": {}},
    }


def test_analysis_jobs_are_watched_by_their_labels_found_by_app_and_wake_it() -> None:
    changes = Changes()
    cache = synced_cache(changes)
    reader = CachedReader(cache)
    assert JOBS in WATCHED
    assert (
        JOBS.selector
        == "app.kubernetes.io/managed-by=bluegreen-operator,bluegreen.dev/role=analysis"
    )
    cache.upsert(JOBS.name, analysis_job("shop-smoke-1", 1))
    cache.upsert(JOBS.name, analysis_job("cart-smoke-1", 2, app="cart"))
    changes.seen.clear()
    cache.upsert(JOBS.name, analysis_job("shop-smoke-1", 3, finished="Complete"))
    assert changes.seen == [(NS, "shop", "Job")]  # a finished Job wakes its app
    (job,) = reader.analysis_jobs(NS, "shop")
    assert "spec" not in job  # trimmed: the template is the spec's, not the cache's
    assert job["metadata"]["creationTimestamp"] == "2030-01-01T12:00:00Z"
    assert job["status"] == {
        "conditions": [{"type": "Complete", "status": "True", "reason": "R", "message": "M"}]
    }
    assert [j["metadata"]["name"] for j in reader.analysis_jobs(NS, "cart")] == ["cart-smoke-1"]
    cache.remove(JOBS.name, analysis_job("shop-smoke-1", 4))
    assert reader.analysis_jobs(NS, "shop") == []


def test_an_ingress_keeps_the_annotation_keys_the_operator_applied() -> None:
    raw = {
        "metadata": {
            "name": "shop",
            "namespace": NS,
            "resourceVersion": "3",
            "annotations": {"mine": "1", "theirs": "2"},
            "managedFields": [
                {
                    "manager": naming.MANAGER,
                    "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:mine": {}}}},
                },
                {
                    "manager": "kubectl-annotate",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:annotations": {"f:theirs": {}}}},
                },
            ],
        },
        "spec": {"rules": []},
    }
    meta = INGRESSES.trim(raw)["metadata"]
    assert meta["annotations"] == {"mine": "1", "theirs": "2"}
    assert meta["ownAnnotations"] == ["mine"]


def test_a_deployment_keeps_its_config_digests_not_its_template() -> None:
    raw = {
        "metadata": {
            "name": "shop-blue",
            "namespace": NS,
            "annotations": {
                naming.ANNOTATION_CONFIG: '{"ConfigMap/settings": "d1"}',
                naming.ANNOTATION_TEMPLATE: '{"spec": {}}',
            },
        },
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"a": "b"}}}},
    }
    meta = DEPLOYMENTS.trim(raw)["metadata"]
    assert meta["annotations"] == {naming.ANNOTATION_CONFIG: '{"ConfigMap/settings": "d1"}'}


def test_a_watched_slice_says_when_it_arrived_a_listed_one_when_it_was_written() -> None:
    def slice_(rv: int) -> Any:
        return {
            "metadata": {
                "name": "shop-x1",
                "namespace": NS,
                "resourceVersion": str(rv),
                "labels": {"kubernetes.io/service-name": "shop", naming.LABEL_NAME: "shop"},
                "managedFields": [
                    {"manager": "endpointslice-controller", "time": "2030-01-01T12:00:07Z"},
                    {"manager": "endpointslice-controller", "time": "2030-01-01T12:00:05Z"},
                ],
            },
            "endpoints": [],
        }

    cache = ObjectCache()
    cache.replace_all(ENDPOINT_SLICES.name, [slice_(1)])
    listed = cache.get(ENDPOINT_SLICES.name, NS, "shop-x1")
    assert listed is not None
    assert listed[WRITTEN_AT] == "2030-01-01T12:00:07Z"
    assert SEEN_AT not in listed  # nobody watched it change
    before = time.time()
    cache.upsert(ENDPOINT_SLICES.name, slice_(2))
    watched = cache.get(ENDPOINT_SLICES.name, NS, "shop-x1")
    assert watched is not None and before <= watched[SEEN_AT] <= time.time()
