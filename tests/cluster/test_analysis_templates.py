"""Analysis templates on real parts: the real API server stores AnalysisTemplates and
ClusterAnalysisTemplates (the CRDs of crds/), the real operator watches them, a real
Prometheus (Debian's) scrapes two real demo app processes, one per colour, as in
test_analysis.py, and a router sends them the traffic the Services select.

- The chart's error-ratio ClusterAnalysisTemplate, with args, judges a release.
- A template edited while its window runs does not change that window; the next release
  takes the edit.
- An operator without the right to list templates (RBAC older than them) takes them as
  absent, and sees them once it is granted.
- A template that does not exist, or that the operator cannot read as one, holds the
  release in Paused with the reason as the Paused condition: never a pass, never a
  rollback; creating or fixing it lets the release go on.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from bluegreen.adapters.cache import ANALYSIS_TEMPLATES, CachedReader, ObjectCache
from bluegreen.adapters.watch import Watcher
from tests.support.apps import GROUP, VERSION, Apps, app_manifest
from tests.support.cluster import REPO
from tests.support.demo_app import DemoApp, http_request, start_demo_app
from tests.support.operator import for_operator
from tests.support.prometheus import PrometheusServer
from tests.support.router import Router
from tests.support.tools import helm_template
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

CHART = REPO / "charts" / "bluegreen-operator"
SEL = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",route="/"'


def error_ratio_spec(threshold: str, count: int) -> dict[str, Any]:
    """An AnalysisTemplate's spec: the error ratio, its bound an arg with a default."""
    return {
        "args": [{"name": "threshold", "type": "Number", "value": threshold}],
        "metrics": [
            {
                "name": "errors",
                "query": f'sum(rate(http_requests_total{{{SEL},status=~"5.."}}[4s]))'
                f" / sum(rate(http_requests_total{{{SEL}}}[4s]))",
                "thresholdRange": {"max": "{{args.threshold}}"},
                "interval": "1s",
                "count": count,
                "failureLimit": 1,
                "minRequestsQuery": f"sum(increase(http_requests_total{{{SEL}}}[4s]))",
                "minRequests": 8,
            }
        ],
    }


@dataclass
class World:
    apps: Apps
    namespace: str
    custom: client.CustomObjectsApi
    prometheus: PrometheusServer
    blue: DemoApp
    green: DemoApp
    router: Router
    cluster_templates: list[str]

    def app(self, **analysis: Any) -> dict[str, Any]:
        body = app_manifest("shop")
        body["spec"]["analysis"] = {
            "prometheus": {"address": for_operator(self.prometheus.url)},
            **analysis,
        }
        return body

    def create_template(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate"}
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "analysistemplates",
            {**body, "metadata": {"name": name}, "spec": spec},
        )
        return created

    def create_cluster_template(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_cluster_custom_object(
            GROUP, VERSION, "clusteranalysistemplates", body
        )
        self.cluster_templates.append(body["metadata"]["name"])
        return created

    def faults(self, app: DemoApp, **faults: Any) -> None:
        r = http_request("POST", app.url + "/admin/faults", body=json.dumps(faults).encode())
        assert r.status == 200, r.text


@pytest.fixture
def world(apps: Apps, api_client: client.ApiClient, namespace: str) -> Iterator[World]:
    labels = {"namespace": namespace, "app": "shop"}
    custom = client.CustomObjectsApi(api_client)
    with start_demo_app("blue", "v1") as blue, start_demo_app("green", "v2") as green:
        prom = PrometheusServer(
            [
                (f"127.0.0.1:{blue.port}", {**labels, "color": "blue"}),
                (f"127.0.0.1:{green.port}", {**labels, "color": "green"}),
            ]
        )
        prom.start()
        router = Router(
            api_client, namespace, "shop", {"blue": blue.url, "green": green.url}
        ).start()
        w = World(apps, namespace, custom, prom, blue, green, router, [])
        try:
            yield w
        finally:
            router.stop()
            prom.close()
            for name in w.cluster_templates:  # cluster-scoped: the namespace does not take them
                custom.delete_cluster_custom_object(
                    GROUP, VERSION, "clusteranalysistemplates", name
                )


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _paused_condition(status: dict[str, Any]) -> dict[str, Any]:
    (paused,) = [c for c in status.get("conditions") or [] if c["type"] == "Paused"]
    return paused


def test_the_charts_error_ratio_template_judges_a_release(world: World) -> None:
    """The ClusterAnalysisTemplate exactly as the chart renders it, args from the app."""
    name = f"error-ratio-{uuid.uuid4().hex[:8]}"  # cluster-scoped: unique per test run
    (rendered,) = [
        d
        for d in helm_template(
            CHART,
            f"analysisTemplates.errorRatio.name={name}",
            "analysisTemplates.errorRatio.interval=1s",
            "analysisTemplates.errorRatio.count=3",
        )
        if d["kind"] == "ClusterAnalysisTemplate"
    ]
    stored = world.create_cluster_template(rendered)
    apps = world.apps
    reference = {
        "templates": [{"templateName": name, "clusterScope": True}],
        "args": [
            {"name": "window", "value": "4s"},
            {"name": "matchers", "value": 'route="/"'},
            {"name": "min-requests", "value": "8"},
        ],
    }
    apps.create(world.app(prePromotionAnalysis=reference))
    apps.wait_phase("shop", "Healthy", timeout=60)
    world.faults(world.green, errorRatio=0.5)
    apps.set_image("shop", "registry.example/shop:v2")
    failed = apps.wait_phase("shop", "Degraded", timeout=90)
    release = failed["release"]
    assert failed["activeColor"] == "blue" and release.get("switchedAt") is None
    assert release["reason"] == "PrePromotionAnalysisFailed"
    assert "error-ratio Failed" in release["message"] and "> max 0.05" in release["message"]
    run = failed["analysis"]
    rv = stored["metadata"]["resourceVersion"]
    assert run["templates"] == [f"ClusterAnalysisTemplate/{name}@{rv}"]
    (metric,) = run["templateMetrics"]
    assert 'route="/"' in metric["query"] and "[4s]" in metric["query"]
    assert metric["thresholdRange"] == {"max": 0.05}
    failing = [m for m in run["measurements"] if m["verdict"] == "Failed"]
    assert failing and all(m["value"] > 0.05 for m in failing)
    assert world.router.errors_on("shop") == 0, "users saw the candidate's errors"


def test_a_template_edited_mid_window_does_not_change_the_window(world: World) -> None:
    apps = world.apps
    before = world.create_template("errors", error_ratio_spec("0.05", count=6))
    apps.create(world.app(prePromotionAnalysis={"templates": [{"templateName": "errors"}]}))
    first = apps.wait_phase("shop", "Healthy", timeout=60)
    apps.set_image("shop", "registry.example/shop:v2")

    def window_open() -> dict[str, Any] | None:
        st = apps.status("shop")
        run = st.get("analysis") or {}
        return run if run.get("phase") == "pre" and run.get("measurements") else None

    run = wait_for("the first measurement of the window", window_open, timeout=60, interval=0.1)
    assert run["revision"] != first["stableRevision"]
    # Mid-window: a bound no error ratio can meet. The running window keeps max 0.05.
    edited = world.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "analysistemplates",
        "errors",
        {"spec": {"args": [{"name": "threshold", "type": "Number", "value": "-1"}]}},
    )
    edited_at = time.time()
    taken_before = len(run["measurements"])
    done = apps.wait_release_done("shop", 2, timeout=90)
    assert done["phase"] == "Healthy" and done["activeColor"] == "green", done.get("message")
    run = done["analysis"]
    rv_before, rv_after = (
        before["metadata"]["resourceVersion"],
        edited["metadata"]["resourceVersion"],
    )
    # The pre-promotion window as it ended (the release has no post-promotion analysis).
    assert run["phase"] == "pre" and run["verdict"] == "Successful"
    assert run["templates"] == [f"AnalysisTemplate/errors@{rv_before}"]
    assert run["templateMetrics"][0]["thresholdRange"] == {"max": 0.05}
    # Under the edited bound every one of them would have failed; none did. (The first may
    # be inconclusive: the candidate has just begun to take preview traffic.)
    verdicts = [m["verdict"] for m in run["measurements"]]
    assert "Failed" not in verdicts, verdicts
    after_edit = [
        m for m in run["measurements"] if _ts(m["at"]) > edited_at and m["verdict"] == "Successful"
    ]
    print(
        f"\nmeasurements before the edit: {taken_before}, successful after it: "
        f"{len(after_edit)}; all: {verdicts}"
    )
    assert after_edit, "no measurement passed after the edit: nothing proven"

    # The next release opens a new window: it takes the template as it is now.
    apps.set_image("shop", "registry.example/shop:v3")
    failed = apps.wait_release_done("shop", 3, timeout=90)
    assert failed["phase"] == "Degraded" and failed["activeColor"] == "green"
    assert failed["release"]["reason"] == "PrePromotionAnalysisFailed"
    assert failed["analysis"]["templates"] == [f"AnalysisTemplate/errors@{rv_after}"]
    assert "> max -1" in failed["release"]["message"]


def test_a_missing_template_keeps_the_release_waiting(world: World) -> None:
    apps = world.apps
    apps.create(world.app(prePromotionAnalysis={"templates": [{"templateName": "later"}]}))
    apps.wait_phase("shop", "Healthy", timeout=60)
    apps.set_image("shop", "registry.example/shop:v2")
    paused = apps.wait_phase("shop", "Paused", timeout=60)
    condition = _paused_condition(paused)
    expected = f"AnalysisTemplate later not found in namespace {world.namespace}"
    assert (condition["status"], condition["reason"]) == ("True", "AnalysisTemplateNotFound")
    assert condition["message"] == expected
    assert expected in paused["message"]
    assert paused["analysis"]["unresolved"]["reason"] == "AnalysisTemplateNotFound"
    assert paused["analysis"].get("measurements", []) == []
    # Events are posted from a queue of their own: wait for it.
    warning = wait_for(
        "the AnalysisTemplateNotFound event",
        lambda: next(
            (e for e in apps.events("shop") if e.get("reason") == "AnalysisTemplateNotFound"),
            None,
        ),
        timeout=30,
    )
    assert warning["type"] == "Warning" and expected in warning["note"]
    # It waits: no pass, no rollback, traffic stays on blue (looked at for a bounded while).
    for _ in range(20):
        st = apps.status("shop")
        assert st["phase"] == "Paused" and st["activeColor"] == "blue", st.get("message")
        assert st["release"].get("result") is None and st["release"].get("switchedAt") is None
        time.sleep(0.25)

    # Created, but with a bound the CRD cannot check (a number or an arg): still waiting,
    # now for the template to be fixed.
    broken = error_ratio_spec("0.05", count=3)
    broken["metrics"][0]["thresholdRange"] = {"max": "five percent"}
    world.create_template("later", broken)

    def reason() -> dict[str, Any] | None:
        st = apps.status("shop")
        return st if _paused_condition(st)["reason"] == "AnalysisTemplateInvalid" else None

    invalid = wait_for("the template to be found invalid", reason, timeout=60)
    assert invalid["phase"] == "Paused" and invalid["activeColor"] == "blue"
    assert "thresholdRange.max" in _paused_condition(invalid)["message"]

    fixed_at = time.time()
    world.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "analysistemplates",
        "later",
        {"spec": error_ratio_spec("0.05", count=3)},
    )

    def window_open() -> dict[str, Any] | None:
        st = apps.status("shop")
        run = st.get("analysis") or {}
        return st if run.get("templates") and not run.get("unresolved") else None

    opened = wait_for("the window to open", window_open, timeout=60, interval=0.05)
    print(f"\ntemplate fixed -> window open: {time.time() - fixed_at:.2f}s (as polled)")
    assert opened["phase"] in ("Analyzing", "Observing", "Healthy")
    assert _paused_condition(opened)["status"] == "False"
    done = apps.wait_release_done("shop", 2, timeout=90)
    assert done["phase"] == "Healthy" and done["activeColor"] == "green"
    assert world.router.errors_on("shop") == 0


def test_templates_the_operator_may_not_list_are_absent_until_it_may(
    api_client: client.ApiClient, namespace: str, crd: None
) -> None:
    """The operator's own watch, as a ServiceAccount whose RBAC predates the templates: the
    list is forbidden (403); the kind is absent rather than a watch failing for ever (which
    would keep the cache from ever being synced, and every app from moving)."""
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    token = core.create_namespaced_service_account_token(
        "operator", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    cfg = client.Configuration()
    admin = api_client.configuration
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = admin.host, admin.ssl_ca_cert, admin.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    cache = ObjectCache()
    cache.watch_namespaces([namespace])
    reader = CachedReader(cache)
    watcher = Watcher(
        client.ApiClient(cfg),
        ANALYSIS_TEMPLATES,
        cache,
        namespace=namespace,
        rediscover_seconds=0.5,
    )
    template = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "checks"},
        "spec": error_ratio_spec("0.05", count=3),
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "analysistemplates", template)
    watcher.start()
    try:
        wait_for(
            "the forbidden kind to be taken as absent",
            lambda: not reader.analysis_templates_readable(cluster=False),
            timeout=30,
        )
        assert reader.get("AnalysisTemplate", namespace, "checks") is None
        rule = {
            "apiGroups": [GROUP],
            "resources": ["analysistemplates"],
            "verbs": ["list", "watch"],
        }
        rbac.create_namespaced_role(namespace, {"metadata": {"name": "templates"}, "rules": [rule]})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "templates"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "templates",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "operator", "namespace": namespace}
                ],
            },
        )
        found = wait_for(
            "the template, once the operator may list it",
            lambda: reader.get("AnalysisTemplate", namespace, "checks"),
            timeout=60,
        )
        assert reader.analysis_templates_readable(cluster=False)
        # And it is watched from then on: an edit reaches the cache.
        edited = custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "analysistemplates",
            "checks",
            {"spec": {"args": [{"name": "threshold", "type": "Number", "value": "0.2"}]}},
        )
        rv = edited["metadata"]["resourceVersion"]
        wait_for(
            "the edit to reach the cache",
            lambda: (
                (reader.get("AnalysisTemplate", namespace, "checks") or {})
                .get("metadata", {})
                .get("resourceVersion")
                == rv
            ),
            timeout=30,
        )
        assert found["metadata"]["resourceVersion"] != rv
    finally:
        watcher.stop()
