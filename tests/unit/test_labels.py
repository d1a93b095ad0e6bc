"""The labels the operator selects by, and the ones it leaves to the user.

Every selector the operator writes names `bluegreen.dev/app` (plus `bluegreen.dev/color`
for one colour); `app.kubernetes.io/*` labels in the template are the user's (a Helm
chart's selectorLabels, say): accepted, kept on the pods as written, never selected on.
Only keys under `bluegreen.dev/` are refused. Pods of Deployments an earlier operator
version made carry `app.kubernetes.io/name` only; the watch cache still files them under
their app (test_label_migration.py follows such an app through its releases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from bluegreen.adapters.cache import ENDPOINT_SLICES, PODS
from bluegreen.api import BlueGreenApp
from bluegreen.api.v1alpha1 import RESERVED_LABELS
from bluegreen.core import naming, render
from tests.unit.factories import BLUE, GREEN, app_body

HELM = {"app.kubernetes.io/name": "storefront", "app.kubernetes.io/instance": "prod"}


def app_with_labels(labels: dict[str, str]) -> BlueGreenApp:
    body = app_body()
    body["spec"]["template"]["metadata"]["labels"] = labels
    return BlueGreenApp.model_validate(body)


# ----------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            naming.selector("shop", BLUE),
            {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"},
        ),
        (naming.app_selector("shop"), {"bluegreen.dev/app": "shop"}),
        (
            naming.legacy_selector("shop", GREEN),
            {"app.kubernetes.io/name": "shop", "bluegreen.dev/color": "green"},
        ),
        (naming.legacy_app_selector("shop"), {"app.kubernetes.io/name": "shop"}),
        (
            naming.owned_labels("shop"),
            {
                "app.kubernetes.io/name": "shop",
                "bluegreen.dev/app": "shop",
                "app.kubernetes.io/managed-by": "bluegreen-operator",
            },
        ),
    ],
    ids=["selector", "app-selector", "legacy-selector", "legacy-app-selector", "owned-labels"],
)
def test_naming(labels: dict[str, str], expected: dict[str, str]) -> None:
    assert labels == expected


def test_the_legacy_service_name_fits_like_the_others() -> None:
    longest = "s" * 55
    names = [naming.metrics_service(longest), naming.legacy_metrics_service(longest)]
    assert [len(n) for n in names] == [63, 62]


# ----------------------------------------------------------------------------- pod labels


@pytest.mark.parametrize(
    ("template_labels", "pod_labels"),
    [
        pytest.param(
            {"tier": "web"},
            {"tier": "web", "app.kubernetes.io/name": "shop"},
            id="no-name-the-apps-name-as-before",
        ),
        pytest.param(
            {"tier": "web", **HELM},
            {"tier": "web", **HELM},
            id="the-users-name-and-instance-as-written",
        ),
        pytest.param(
            {"app.kubernetes.io/name": "shop"},
            {"app.kubernetes.io/name": "shop"},
            id="the-users-name-equal-to-the-apps",
        ),
        pytest.param({}, {"app.kubernetes.io/name": "shop"}, id="no-labels"),
        pytest.param(
            {"app": "legacy-app", "version": "x"},
            {"app": "legacy-app", "version": "x", "app.kubernetes.io/name": "shop"},
            id="plain-app-and-version",
        ),
    ],
)
def test_pods_carry_the_users_labels_and_the_operators(
    template_labels: dict[str, str], pod_labels: dict[str, str]
) -> None:
    app = app_with_labels(template_labels)
    dep = render.deployment(app, GREEN, 2)
    rev = render.target_revision(app)
    operators = {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "green"}
    assert dep["spec"]["template"]["metadata"]["labels"] == {
        **pod_labels,
        **operators,
        "bluegreen.dev/revision": rev,
    }
    # What the Deployment selects is the operator's labels only, whatever the template says.
    assert dep["spec"]["selector"]["matchLabels"] == operators


# ----------------------------------------------------------------------------- selectors


def _svc(manifest: dict[str, Any]) -> dict[str, str]:
    selector: dict[str, str] = manifest["spec"]["selector"]
    return selector


def _monitor(manifest: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = manifest["spec"]["selector"]["matchLabels"]
    return labels


SELECTORS: list[tuple[str, Callable[[BlueGreenApp], dict[str, str]], dict[str, str]]] = [
    (
        "deployment",
        lambda a: render.deployment(a, BLUE, 2)["spec"]["selector"]["matchLabels"],
        {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"},
    ),
    (
        "active",
        lambda a: _svc(render.active_service(a, BLUE)),
        {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"},
    ),
    (
        "preview",
        lambda a: _svc(render.preview_service(a, GREEN)),
        {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "green"},
    ),
    (
        "active-of-a-legacy-colour",
        lambda a: _svc(render.active_service(a, BLUE, naming.legacy_selector("shop", BLUE))),
        {"app.kubernetes.io/name": "shop", "bluegreen.dev/color": "blue"},
    ),
    ("metrics", lambda a: _svc(render.metrics_service(a)), {"bluegreen.dev/app": "shop"}),
    (
        "legacy-metrics",
        lambda a: _svc(render.legacy_metrics_service(a)),
        {"app.kubernetes.io/name": "shop"},
    ),
    (
        "service-monitor",
        lambda a: _monitor(render.service_monitor(a)),
        {"bluegreen.dev/app": "shop", "bluegreen.dev/role": "metrics"},
    ),
]


@pytest.mark.parametrize("template_labels", [{"tier": "web"}, HELM], ids=["plain", "helm"])
@pytest.mark.parametrize(
    ("select", "expected"), [(s, e) for _, s, e in SELECTORS], ids=[n for n, _, _ in SELECTORS]
)
def test_every_selector_names_the_operators_labels_whatever_the_template_says(
    template_labels: dict[str, str],
    select: Callable[[BlueGreenApp], dict[str, str]],
    expected: dict[str, str],
) -> None:
    assert select(app_with_labels(template_labels)) == expected


def test_the_service_monitor_finds_both_metrics_services_by_their_labels() -> None:
    app = app_with_labels(HELM)
    wanted = _monitor(render.service_monitor(app, legacy=True)).items()
    for service in (render.metrics_service(app), render.legacy_metrics_service(app)):
        assert wanted <= service["metadata"]["labels"].items(), service["metadata"]["name"]


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("app.kubernetes.io/name", True),
        ("app.kubernetes.io/instance", True),
        ("app.kubernetes.io/version", True),
        ("app.kubernetes.io/managed-by", True),
        ("app", True),
        ("bluegreen.dev.example/x", True),  # another domain that starts alike
        ("bluegreen.dev/app", False),
        ("bluegreen.dev/color", False),
        ("bluegreen.dev/revision", False),
        ("bluegreen.dev/anything", False),
    ],
)
def test_only_the_operators_own_keys_are_refused_in_the_template(key: str, accepted: bool) -> None:
    body = app_body()
    body["spec"]["template"]["metadata"]["labels"][key] = "x"
    if accepted:
        BlueGreenApp.model_validate(body)
    else:
        with pytest.raises(ValidationError) as info:
            BlueGreenApp.model_validate(body)
        assert RESERVED_LABELS in str(info.value)


# ----------------------------------------------------------------------------- watch cache


@pytest.mark.parametrize(
    ("labels", "app"),
    [
        pytest.param(
            {"bluegreen.dev/app": "shop", "bluegreen.dev/color": "blue"}, "shop", id="new"
        ),
        pytest.param(
            {"bluegreen.dev/app": "shop", "app.kubernetes.io/name": "storefront"},
            "shop",
            id="new-with-the-users-name",
        ),
        pytest.param(
            {"app.kubernetes.io/name": "shop", "bluegreen.dev/color": "blue"},
            "shop",
            id="legacy",
        ),
        pytest.param({"bluegreen.dev/color": "blue"}, None, id="no-app"),
    ],
)
def test_the_watch_cache_files_pods_and_slices_under_their_app(
    labels: dict[str, str], app: str | None
) -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns", "labels": labels}}
    assert PODS.index_of(obj) == app
    assert PODS.app_of(obj) == app
    assert ENDPOINT_SLICES.app_of(obj) == app
