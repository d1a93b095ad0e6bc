"""The Prometheus of `make demo` finds and labels the app's pods as the operator's
ServiceMonitor has a Prometheus Operator do (tests/support/prometheus.py, kubernetes_config).

Both are applied here to the service-discovery labels of one pod of the rendered metrics
Service: the same targets must be kept, with the same labels. The demo runs the real thing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bluegreen.api import Color
from bluegreen.core import render
from tests.support.prometheus import JOB, STATIC_JOB, kubernetes_config
from tests.unit.factories import NAMESPACE, make_app

LABELS = ("namespace", "app", "color", "revision")


def meta(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]", "_", name)


def discovered(service: Mapping[str, Any], pod_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels Kubernetes service discovery (role endpoints) gives one pod's endpoint."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_pod_name": "shop-blue-abc-1",
        "__meta_kubernetes_endpoint_port_name": service["spec"]["ports"][0]["name"],
    }
    for key, value in service["metadata"]["labels"].items():
        labels[f"__meta_kubernetes_service_label_{meta(key)}"] = value
    for key, value in pod_labels.items():
        labels[f"__meta_kubernetes_pod_label_{meta(key)}"] = value
        labels[f"__meta_kubernetes_pod_labelpresent_{meta(key)}"] = "true"
    return labels


def relabel(labels: Mapping[str, str], rules: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Prometheus's `keep`, `drop` and `replace` relabelling; None when the target is
    dropped."""
    out = dict(labels)
    for rule in rules:
        value = ";".join(out.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "drop":
            if match is not None:
                return None
        elif match is not None:
            result = match.expand(str(rule.get("replacement", "$1")).replace("$1", r"\1"))
            if result:
                out[rule["target_label"]] = result
            else:
                out.pop(rule["target_label"], None)
    return out


def service_monitor_rules(monitor: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a Prometheus Operator makes of the ServiceMonitor: keep its Services and port,
    add `namespace`, then its relabelings."""
    endpoint = monitor["spec"]["endpoints"][0]
    rules: list[dict[str, Any]] = [
        {
            "source_labels": [f"__meta_kubernetes_service_label_{meta(k)}"],
            "regex": v,
            "action": "keep",
        }
        for k, v in monitor["spec"]["selector"]["matchLabels"].items()
    ]
    rules.append(
        {
            "source_labels": ["__meta_kubernetes_endpoint_port_name"],
            "regex": endpoint["port"],
            "action": "keep",
        }
    )
    rules.append({"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"})
    for item in endpoint["relabelings"]:
        rule: dict[str, Any] = {"action": item.get("action", "replace")}
        for key, name in (
            ("targetLabel", "target_label"),
            ("sourceLabels", "source_labels"),
            ("replacement", "replacement"),
            ("regex", "regex"),
        ):
            if key in item:
                rule[name] = item[key]
        rules.append(rule)
    return rules


def test_the_demo_prometheus_labels_pods_as_the_service_monitor_does() -> None:
    app = make_app()
    pod_labels = render.deployment(app, Color.BLUE, 2)["spec"]["template"]["metadata"]["labels"]
    config = kubernetes_config("kubeconfig", [NAMESPACE])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == JOB)
    monitor = render.service_monitor(app)
    assert job["honor_labels"] is monitor["spec"]["endpoints"][0]["honorLabels"]
    sd = job["kubernetes_sd_configs"][0]
    assert (sd["role"], sd["namespaces"]["names"]) == ("endpoints", [NAMESPACE])

    target = discovered(render.metrics_service(app), pod_labels)
    ours = relabel(target, job["relabel_configs"])
    theirs = relabel(target, service_monitor_rules(monitor))
    assert ours is not None and theirs is not None
    assert {k: ours.get(k) for k in LABELS} == {k: theirs.get(k) for k in LABELS}
    assert ours["color"] == "blue" and ours["app"] == app.metadata.name

    # The active Service selects the same pod: neither scrapes it through that Service.
    active = discovered(render.active_service(app, Color.BLUE), pod_labels)
    assert relabel(active, job["relabel_configs"]) is None
    assert relabel(active, service_monitor_rules(monitor)) is None


def test_static_targets_are_a_job_of_their_own() -> None:
    config = kubernetes_config("/k", ["ns"], static_targets=[("127.0.0.1:9000", {})])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {JOB, STATIC_JOB}
    assert jobs[STATIC_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9000"], "labels": {}}]


def test_the_legacy_pods_are_scraped_once_through_their_own_service() -> None:
    """While the app still has a Deployment of an earlier operator version, `<name>-legacy`
    selects its pods (by `app.kubernetes.io/name`); a new pod whose template sets that
    label to the app's name too is scraped through `<name>-metrics` only."""
    app = make_app()
    config = kubernetes_config("kubeconfig", [NAMESPACE])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == JOB)
    monitor = render.service_monitor(app, legacy=True)
    rules = service_monitor_rules(monitor)
    legacy_pod = {
        "app.kubernetes.io/name": app.metadata.name,
        "bluegreen.dev/color": "blue",
        "bluegreen.dev/revision": "abc",
    }
    bridge = render.legacy_metrics_service(app)
    target = discovered(bridge, legacy_pod)
    ours, theirs = relabel(target, job["relabel_configs"]), relabel(target, rules)
    assert ours is not None and theirs is not None
    assert {k: ours.get(k) for k in LABELS} == {k: theirs.get(k) for k in LABELS}
    assert (ours["app"], ours["color"], ours["revision"]) == ("shop", "blue", "abc")

    helm_pod = render.deployment(app, Color.GREEN, 2)["spec"]["template"]["metadata"]["labels"]
    helm_pod = {**helm_pod, "app.kubernetes.io/name": app.metadata.name}
    assert relabel(discovered(bridge, helm_pod), job["relabel_configs"]) is None
    assert relabel(discovered(bridge, helm_pod), rules) is None
    through_metrics = discovered(render.metrics_service(app), helm_pod)
    assert relabel(through_metrics, rules) is not None
    assert relabel(through_metrics, job["relabel_configs"]) is not None
    # Without a legacy Deployment the ServiceMonitor drops nothing of <name>-metrics either.
    plain = service_monitor_rules(render.service_monitor(app))
    assert relabel(through_metrics, plain) == relabel(through_metrics, rules)
