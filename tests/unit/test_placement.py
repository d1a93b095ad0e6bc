"""Placement and marks of the colours, decided by the pure core: anti-affinity in the pod
template and in the revision, the role metadata each colour's pods get, the budgets, the
Services' ports, labels and annotations."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bluegreen.adapters.kinds import KINDS
from bluegreen.api import BlueGreenApp, Color, Phase
from bluegreen.core import naming, placement, render
from bluegreen.core.plan import Apply, Delete, PatchMetadata
from bluegreen.core.world import BudgetState, IngressState, Marks, PodState
from bluegreen.kubectl import templates
from bluegreen.release import machine
from bluegreen.release.workloads import service_matches, stale_keys
from bluegreen.runtime.states import pod_state, service_state
from tests.unit.factories import (
    BLUE,
    GREEN,
    UID,
    V1,
    V2,
    app_body,
    at,
    healthy,
    in_release,
    make_app,
    steady,
)

REQUIRED = {"requiredDuringSchedulingIgnoredDuringExecution": {}}
PREFERRED = {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}}


def app_with(spec: dict[str, Any], **kw: Any) -> BlueGreenApp:
    body = app_body(**kw)
    for key, value in spec.items():
        if key == "strategy":
            body["spec"]["strategy"].update(value)
        else:
            body["spec"][key] = value
    return BlueGreenApp.model_validate(body)


# ----------------------------------------------------------------------------- anti-affinity


def test_without_anti_affinity_the_revision_is_the_templates_alone() -> None:
    """Upgrading the operator starts no release for apps that do not use it."""
    app = make_app()
    assert render.target_revision(app) == templates.app_revision(app_body()["spec"])
    assert "affinity" not in render.deployment(app, BLUE, 2)["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(None, REQUIRED, id="set"),
        pytest.param(REQUIRED, None, id="removed"),
        pytest.param(REQUIRED, PREFERRED, id="required-to-preferred"),
        pytest.param(
            PREFERRED,
            {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 41}},
            id="weight",
        ),
    ],
)
def test_a_change_of_anti_affinity_is_a_new_revision(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    def rev(aa: dict[str, Any] | None) -> str:
        app = app_with({"strategy": {"antiAffinity": aa}} if aa else {})
        return render.target_revision(app)

    assert rev(before) != rev(after)


@pytest.mark.parametrize(
    ("aa", "key", "term"),
    [
        pytest.param(
            REQUIRED,
            "requiredDuringSchedulingIgnoredDuringExecution",
            {
                "labelSelector": {"matchLabels": naming.selector("shop", GREEN)},
                "topologyKey": "kubernetes.io/hostname",
            },
            id="required",
        ),
        pytest.param(
            PREFERRED,
            "preferredDuringSchedulingIgnoredDuringExecution",
            {
                "weight": 40,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": naming.selector("shop", GREEN)},
                    "topologyKey": "kubernetes.io/hostname",
                },
            },
            id="preferred",
        ),
    ],
)
def test_the_term_is_against_the_other_colour_after_the_users_own(
    aa: dict[str, Any], key: str, term: dict[str, Any]
) -> None:
    own_term = {"labelSelector": {"matchLabels": {"db": "x"}}, "topologyKey": "zone"}
    body = app_body()
    body["spec"]["strategy"]["antiAffinity"] = aa
    body["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {"x": 1},
        "podAntiAffinity": {key: [own_term]},
    }
    app = BlueGreenApp.model_validate(body)
    affinity = render.deployment(app, BLUE, 2)["spec"]["template"]["spec"]["affinity"]
    assert affinity["nodeAffinity"] == {"x": 1}
    assert affinity["podAntiAffinity"][key] == [own_term, term]
    # The user's template itself is left as written (what undo sets back).
    assert app.spec.template.spec["affinity"]["podAntiAffinity"][key] == [own_term]


def test_undo_finds_the_revision_of_a_kept_template_with_anti_affinity() -> None:
    app = app_with({"strategy": {"antiAffinity": REQUIRED}})
    dep = render.deployment(app, BLUE, 2)
    kept = templates.kept_template(dep)
    assert kept is not None
    assert kept.revision == render.target_revision(app)
    spec = app_body()["spec"]
    spec["strategy"]["antiAffinity"] = REQUIRED
    assert templates.app_revision(spec) == render.target_revision(app)


def test_an_anti_affinity_change_goes_to_the_idle_colour_in_a_release() -> None:
    """The active Deployment's template is never re-applied for it: a release starts."""
    app = app_with({"strategy": {"antiAffinity": REQUIRED}}, status=healthy(V1, BLUE))
    plan = machine.plan(app, steady(at(0), V1, BLUE).build())
    applied = [a.manifest["metadata"]["name"] for a in plan.actions if isinstance(a, Apply)]
    assert plan.status.phase is Phase.DEPLOYING
    assert plan.status.release is not None and plan.status.release.color is GREEN
    assert naming.deployment("shop", BLUE) not in applied
    assert naming.deployment("shop", GREEN) in applied


# ----------------------------------------------------------------------------- role metadata

ACTIVE = {"labels": {"stage": "live"}, "annotations": {"a/b": "1"}}
PREVIEW = {"labels": {"stage": "candidate"}}
LIVE = Marks({"stage": "live"}, {"a/b": "1"})
CANDIDATE = Marks({"stage": "candidate"}, {})
NONE = Marks()


@pytest.mark.parametrize(
    ("status", "blue", "green"),
    [
        pytest.param(healthy(V1, BLUE), LIVE, NONE, id="healthy"),
        pytest.param(in_release(Phase.DEPLOYING, started=0), LIVE, CANDIDATE, id="deploying"),
        pytest.param(in_release(Phase.ANALYZING, started=0), LIVE, CANDIDATE, id="analyzing"),
        pytest.param(in_release(Phase.PAUSED, started=0), LIVE, CANDIDATE, id="paused"),
        pytest.param(
            in_release(Phase.OBSERVING, started=0, switched=5, converged=6),
            NONE,
            LIVE,
            id="observing-after-the-flip",
        ),
        pytest.param(
            in_release(Phase.ROLLING_BACK, started=0, switched=5, rollback_started=9),
            LIVE,
            NONE,
            id="rolling-back",
        ),
        pytest.param(
            in_release(Phase.DEGRADED, started=0, rollback_started=9), LIVE, NONE, id="degraded"
        ),
    ],
)
def test_the_marks_follow_the_roles(status: Any, blue: Marks, green: Marks) -> None:
    app = app_with({"strategy": {"activeMetadata": ACTIVE, "previewMetadata": PREVIEW}})
    assert placement.wanted_marks(app, status) == {BLUE: blue, GREEN: green}


@pytest.mark.parametrize(
    ("have", "want", "patch"),
    [
        pytest.param(NONE, NONE, None, id="nothing"),
        pytest.param(LIVE, LIVE, None, id="as-wanted"),
        pytest.param(
            NONE,
            LIVE,
            {"labels": {"stage": "live"}, "annotations": {"a/b": "1"}},
            id="set",
        ),
        pytest.param(
            LIVE, NONE, {"labels": {"stage": None}, "annotations": {"a/b": None}}, id="removed"
        ),
        pytest.param(
            LIVE,
            CANDIDATE,
            {"labels": {"stage": "candidate"}, "annotations": {"a/b": None}},
            id="changed",
        ),
    ],
)
def test_merge_patch(have: Marks, want: Marks, patch: dict[str, Any] | None) -> None:
    assert placement.merge_patch(have, want) == patch


def test_pods_going_or_without_colour_are_left_alone() -> None:
    pods = [
        PodState("b", BLUE, "r", ready=True),
        PodState("a", BLUE, "r", ready=True, deleting=True),
        PodState("c", None, "r", ready=True),
        PodState("d", GREEN, "r", ready=True, marks=LIVE),
    ]
    assert placement.marks_to_patch(pods, {BLUE: LIVE, GREEN: NONE}) == [
        ("b", {"labels": {"stage": "live"}, "annotations": {"a/b": "1"}}),
        ("d", {"labels": {"stage": None}, "annotations": {"a/b": None}}),
    ]


def test_a_pass_patches_the_pods_never_the_deployment() -> None:
    app = app_with({"strategy": {"activeMetadata": ACTIVE}}, status=healthy(V1, BLUE))
    observed = steady(at(0), V1, BLUE).build()
    plan = machine.plan(app, observed)
    patched = {a.name for a in plan.actions if isinstance(a, PatchMetadata) and a.kind == "Pod"}
    assert patched == {p.name for p in observed.pods}
    assert not [a for a in plan.actions if isinstance(a, Apply)]
    # Once marked, a pass writes nothing.
    marked = dataclasses.replace(
        observed, pods=tuple(dataclasses.replace(p, marks=LIVE) for p in observed.pods)
    )
    assert machine.plan(app, marked).actions == ()


# ----------------------------------------------------------------------------- budgets


def _budget_actions(app: BlueGreenApp, observed: Any) -> list[Any]:
    return [
        a
        for a in machine.plan(app, observed).actions
        if (isinstance(a, Apply) and a.manifest["kind"] == "PodDisruptionBudget")
        or (isinstance(a, Delete) and a.kind == "PodDisruptionBudget")
    ]


def test_a_budget_for_the_colour_with_replicas_none_for_one_at_zero() -> None:
    app = app_with({"podDisruptionBudget": {"maxUnavailable": "25%"}}, status=healthy(V1, BLUE))
    observed = steady(at(0), V1, BLUE).color(GREEN, V2, replicas=0).build()
    (apply,) = _budget_actions(app, observed)
    assert apply.manifest["metadata"]["name"] == "shop-blue"
    assert apply.manifest["metadata"]["ownerReferences"][0]["uid"] == UID
    assert apply.manifest["spec"] == {
        "selector": {"matchLabels": naming.selector("shop", BLUE)},
        "maxUnavailable": "25%",
    }
    have = {
        "shop-blue": BudgetState("shop-blue", apply.manifest["spec"]),
        "shop-green": BudgetState("shop-green", apply.manifest["spec"]),
    }
    assert _budget_actions(app, dataclasses.replace(observed, budgets=have)) == [
        Delete("PodDisruptionBudget", "shop-green")
    ]


def test_budgets_go_with_the_field_but_never_someone_elses() -> None:
    app = make_app(status=healthy(V1, BLUE))
    observed = steady(at(0), V1, BLUE).build()
    have = {
        "shop-blue": BudgetState("shop-blue", {}),
        "shop-green": BudgetState("shop-green", {}, has_owner=False),
    }
    assert _budget_actions(app, dataclasses.replace(observed, budgets=have)) == [
        Delete("PodDisruptionBudget", "shop-blue")
    ]


# ----------------------------------------------------------------------------- Services

PORTS = [
    {"name": "grpc", "port": 9090, "appProtocol": "kubernetes.io/h2c"},
    {"name": "http", "port": 80, "targetPort": "web", "appProtocol": "http"},
]


@pytest.mark.parametrize(
    ("service", "ports", "primary"),
    [
        pytest.param(
            {},
            [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            ("http", 80),
            id="default",
        ),
        pytest.param(
            {"port": 8080, "targetPort": 3000, "appProtocol": "h2c"},
            [
                {
                    "name": "http",
                    "port": 8080,
                    "targetPort": 3000,
                    "protocol": "TCP",
                    "appProtocol": "h2c",
                }
            ],
            ("http", 8080),
            id="single-with-appProtocol",
        ),
        pytest.param(
            {"ports": PORTS},
            [
                {
                    "name": "grpc",
                    "port": 9090,
                    "targetPort": 9090,
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
                {
                    "name": "http",
                    "port": 80,
                    "targetPort": "web",
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
            ],
            ("http", 80),
            id="ports-primary-named-http",
        ),
        pytest.param(
            {"ports": [{"name": "web", "port": 8000}, {"name": "admin", "port": 9000}]},
            [
                {"name": "web", "port": 8000, "targetPort": 8000, "protocol": "TCP"},
                {"name": "admin", "port": 9000, "targetPort": 9000, "protocol": "TCP"},
            ],
            ("web", 8000),
            id="ports-primary-first",
        ),
    ],
)
def test_service_ports_and_the_primary_port(
    service: dict[str, Any], ports: list[dict[str, Any]], primary: tuple[str, int]
) -> None:
    app = app_with({"service": service})
    assert render.active_service(app, BLUE)["spec"]["ports"] == ports
    assert render.preview_service(app, BLUE)["spec"]["ports"] == ports
    assert (app.spec.service.primary.name, app.spec.service.primary.port) == primary
    # The metrics Service scrapes the primary port, named http for the ServiceMonitor.
    (metrics,) = render.metrics_service(app)["spec"]["ports"]
    assert (metrics["name"], metrics["port"]) == ("http", primary[1])
    app_ingress = app_with({"service": service, "ingress": {"host": "shop.example.com"}})
    rule = render.stable_ingress(app_ingress)["spec"]["rules"][0]
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": primary[0]}


def _stored(manifest: dict[str, Any], managed: dict[str, Any] | None = None) -> Any:
    """The Service as the API server keeps it, through the watch cache's trimming."""
    obj = {**manifest, "metadata": {**manifest["metadata"], "managedFields": managed or []}}
    return service_state(KINDS["Service"].trim(obj), UID)


def _managed(labels: list[str], annotations: list[str]) -> list[dict[str, Any]]:
    fields = {
        "f:labels": {f"f:{k}": {} for k in labels},
        "f:annotations": {f"f:{k}": {} for k in annotations},
    }
    return [{"manager": naming.MANAGER, "fieldsV1": {"f:metadata": fields}}]


def test_service_labels_annotations_and_app_protocols_are_kept_as_rendered() -> None:
    spec = {"ports": PORTS, "labels": {"team": "a"}, "annotations": {"x/y": "z"}}
    app = app_with({"service": spec})
    want = render.active_service(app, BLUE)
    assert want["metadata"]["labels"]["team"] == "a"
    assert want["metadata"]["annotations"] == {"x/y": "z"}
    assert service_matches(_stored(want), want)
    # Drift of an appProtocol, a label or an annotation is repaired.
    for drift in (
        {
            "spec": {
                **want["spec"],
                "ports": [
                    {**want["spec"]["ports"][0], "appProtocol": "grpc"},
                    want["spec"]["ports"][1],
                ],
            }
        },
        {"metadata": {**want["metadata"], "labels": {}}},
        {"metadata": {**want["metadata"], "annotations": {"x/y": "other"}}},
    ):
        assert not service_matches(_stored({**want, **drift}), want)
    # A label or annotation the operator set and the spec no longer has is taken off (a
    # merge patch: an apply that leaves it out would not remove what the creation set).
    plain = render.active_service(make_app(), BLUE)
    meta = plain["metadata"]
    stale_service = {**plain, "metadata": {**meta, "labels": {**meta["labels"], "team": "a"}}}
    stale_service["metadata"]["annotations"] = {"x/y": "z", "theirs": "1"}

    def stale(have: Any, want: dict[str, Any]) -> dict[str, Any] | None:
        return stale_keys(want, have.own_labels, have.own_annotations)

    own = _stored(stale_service, _managed([*meta["labels"], "team"], ["x/y"]))
    assert stale(own, plain) == {"labels": {"team": None}, "annotations": {"x/y": None}}
    assert stale(_stored(stale_service), plain) is None  # someone else's: left alone
    mine = _managed(list(want["metadata"]["labels"]), ["x/y"])
    assert stale(_stored(want, mine), want) is None


def test_the_pod_cache_keeps_only_the_operators_marks() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "default",
            "labels": {"bluegreen.dev/color": "blue", "stage": "live", "other": "x"},
            "annotations": {"a/b": "1", "big": "y" * 1000},
            "managedFields": _managed(["stage"], ["a/b"]),
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    trimmed = KINDS["Pod"].trim(pod)
    assert "annotations" not in trimmed["metadata"]
    state: PodState = pod_state(trimmed)
    assert state.marks == Marks({"stage": "live"}, {"a/b": "1"})
    assert state.color is Color.BLUE


def test_an_ingress_annotation_taken_out_of_the_spec_is_taken_off() -> None:
    """The operator creates its objects under its own field manager, so what it set at
    creation is its own: an annotation the spec no longer has goes with a merge patch (an
    apply leaving it out would not remove it, and would be sent again every pass)."""
    body = app_body(status=healthy(V1, BLUE))
    body["spec"]["ingress"] = {"host": "shop.example.com"}
    app = BlueGreenApp.model_validate(body)
    want = render.stable_ingress(app)
    have = IngressState(
        "shop",
        annotations={"old/key": "x", "theirs": "y"},
        spec=want["spec"],
        own_annotations=frozenset({"old/key"}),
    )
    observed = dataclasses.replace(steady(at(0), V1, BLUE).build(), ingresses={"shop": have})
    actions = [a for a in machine.plan(app, observed).actions if "Ingress" in str(a)]
    assert actions == [
        Apply(want),
        PatchMetadata("Ingress", "shop", {"annotations": {"old/key": None}}),
    ]
    # Once it is off, nothing more is sent.
    gone = dataclasses.replace(have, annotations={"theirs": "y"}, own_annotations=frozenset())
    observed = dataclasses.replace(observed, ingresses={"shop": gone})
    assert not [a for a in machine.plan(app, observed).actions if "Ingress" in str(a)]
