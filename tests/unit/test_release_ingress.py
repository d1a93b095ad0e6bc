"""The Ingress guard in the release machine: a refused spec.ingress writes no Ingress, leaves
the one that exists as it was, says why (condition, Ready, message, one Event), and holds
canary steps through the Ingress; an admitted one is written as before."""

from __future__ import annotations

import dataclasses
from typing import Any

from bluegreen.api import BlueGreenApp, BlueGreenAppStatus, Condition, Phase
from bluegreen.api.v1alpha1 import CanaryStatus
from bluegreen.core import render
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.core.plan import Apply, Delete, Plan
from bluegreen.core.world import IngressState, Observed
from bluegreen.release import machine
from tests.unit.factories import (
    BLUE,
    GREEN,
    R2,
    V1,
    V2,
    ObservedBuilder,
    app_body,
    at,
    healthy,
    in_release,
    stamp,
    steady,
)

SNIPPET = "nginx.ingress.kubernetes.io/server-snippet"
NEXT_UPSTREAM = "nginx.ingress.kubernetes.io/proxy-next-upstream"
ALLOW_SNIPPET = IngressPolicy(annotations=(SNIPPET,))
STEPS = [{"weight": 10, "pauseSeconds": 5}, {"weight": 50, "pauseSeconds": 5}]


def app(
    annotations: dict[str, str] | None = None,
    *,
    image: str = V1,
    status: BlueGreenAppStatus | None = None,
    class_name: str | None = None,
    canary: list[dict[str, Any]] | None = None,
) -> BlueGreenApp:
    strategy = {"canary": {"steps": canary}} if canary else None
    body = app_body(image=image, status=status or healthy(), strategy=strategy)
    ingress: dict[str, Any] = {"host": "shop.example.com", "annotations": annotations or {}}
    if class_name is not None:
        ingress["className"] = class_name
    body["spec"]["ingress"] = ingress
    return BlueGreenApp.model_validate(body)


def live(manifest: dict[str, Any], own: bool = True) -> IngressState:
    """An Ingress as the API server holds it after the operator applied `manifest`."""
    annotations = dict(manifest["metadata"].get("annotations") or {})
    return IngressState(
        name=manifest["metadata"]["name"],
        annotations=annotations,
        spec=manifest["spec"],
        own_annotations=frozenset(annotations) if own else frozenset(),
    )


DEFAULT = IngressPolicy()


def world(policy: IngressPolicy = DEFAULT, *ingresses: IngressState, now: float = 10) -> Observed:
    base = steady(at(now)).build()
    return dataclasses.replace(
        base, ingress_policy=policy, ingresses={i.name: i for i in ingresses}
    )


def ingress_writes(plan: Plan) -> list[str]:
    """`apply Ingress/<name>` and `delete Ingress/<name>`, in order."""
    out = []
    for a in plan.actions:
        if isinstance(a, Apply) and a.manifest["kind"] == "Ingress":
            out.append(f"apply {a.key}")
        elif isinstance(a, Delete) and a.kind == "Ingress":
            out.append(f"delete Ingress/{a.name}")
    return out


def cond(plan: Plan, type_: str) -> Condition:
    return next(c for c in plan.status.conditions if c.type == type_)


def test_an_admitted_ingress_is_written_and_says_so() -> None:
    plan = machine.plan(app({SNIPPET: "return 200;"}), world(ALLOW_SNIPPET))
    assert ingress_writes(plan) == ["apply Ingress/shop"]
    c = cond(plan, "IngressAdmitted")
    assert (c.status, c.reason) == ("True", "Admitted")
    assert cond(plan, "Ready").status == "True"
    assert plan.status.message == ""


def test_a_snippet_is_refused_by_default_and_no_ingress_is_written() -> None:
    plan = machine.plan(app({SNIPPET: "return 200;"}), world())
    assert ingress_writes(plan) == []
    c = cond(plan, "IngressAdmitted")
    assert (c.status, c.reason) == ("False", "IngressRefused")
    assert SNIPPET in c.message and "BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS" in c.message
    ready = cond(plan, "Ready")
    assert (ready.status, ready.reason) == ("False", "IngressRefused")
    assert plan.status.message == c.message
    assert plan.status.phase is Phase.HEALTHY  # traffic of the serving release is untouched
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "IngressRefused")]


def test_the_event_is_posted_once_while_the_refusal_stays_the_same() -> None:
    first = machine.plan(app({SNIPPET: "x"}), world())
    again = machine.plan(app({SNIPPET: "x"}, status=first.status), world())
    assert [e.reason for e in again.events] == []
    assert (
        cond(again, "IngressAdmitted").last_transition_time
        == cond(first, "IngressAdmitted").last_transition_time
    )
    other = machine.plan(app({SNIPPET: "x", NEXT_UPSTREAM: "off"}, status=first.status), world())
    assert [e.reason for e in other.events] == ["IngressRefused"]


def test_a_refused_change_leaves_the_existing_ingress_as_it_was() -> None:
    admitted = render.stable_ingress(app({NEXT_UPSTREAM: "off"}))
    policy = IngressPolicy(annotations=(NEXT_UPSTREAM,))
    plan = machine.plan(app({NEXT_UPSTREAM: "off", SNIPPET: "x"}), world(policy, live(admitted)))
    assert ingress_writes(plan) == []
    assert cond(plan, "IngressAdmitted").status == "False"


def test_a_class_is_refused_unless_listed() -> None:
    plan = machine.plan(app(class_name="nginx"), world())
    assert ingress_writes(plan) == []
    assert "leave className unset" in cond(plan, "IngressAdmitted").message
    allowed = machine.plan(app(class_name="nginx"), world(IngressPolicy(classes=("nginx",))))
    assert ingress_writes(allowed) == ["apply Ingress/shop"]
    written = next(a for a in allowed.actions if isinstance(a, Apply))
    assert written.manifest["spec"]["ingressClassName"] == "nginx"


def test_without_a_class_the_default_class_filled_in_by_the_api_server_is_no_change() -> None:
    desired = render.stable_ingress(app())
    assert "ingressClassName" not in desired["spec"]
    defaulted = live(desired)
    defaulted = dataclasses.replace(
        defaulted, spec={**defaulted.spec, "ingressClassName": "cluster-default"}
    )
    assert ingress_writes(machine.plan(app(), world(IngressPolicy(), defaulted))) == []


def test_an_annotation_taken_out_of_the_spec_is_taken_off_the_ingress() -> None:
    before = render.stable_ingress(app({SNIPPET: "x"}))
    plan = machine.plan(app(), world(ALLOW_SNIPPET, live(before)))
    assert ingress_writes(plan) == ["apply Ingress/shop"]
    # Annotations someone else added are theirs: no write for them.
    theirs = live(render.stable_ingress(app()))
    theirs = dataclasses.replace(theirs, annotations={**theirs.annotations, "team": "web"})
    assert ingress_writes(machine.plan(app(), world(IngressPolicy(), theirs))) == []


def test_removing_the_ingress_deletes_it_whatever_the_policy() -> None:
    body = app_body(status=healthy())
    old = live(render.stable_ingress(app({SNIPPET: "x"})))
    plan = machine.plan(BlueGreenApp.model_validate(body), world(IngressPolicy(), old))
    assert ingress_writes(plan) == ["delete Ingress/shop"]
    assert isinstance(plan.actions[-1], Delete) or any(isinstance(a, Delete) for a in plan.actions)
    assert not [c for c in plan.status.conditions if c.type == "IngressAdmitted"]


def canary_world(policy: IngressPolicy, *ingresses: IngressState, now: float = 25) -> Observed:
    base = (
        ObservedBuilder(at(now)).color(BLUE, V1).color(GREEN, V2).services(BLUE, preview=GREEN)
    ).build()
    return dataclasses.replace(
        base, ingress_policy=policy, ingresses={i.name: i for i in ingresses}
    )


def test_canary_steps_wait_while_the_ingress_is_refused() -> None:
    st = in_release(Phase.ANALYZING, started=0, candidate_ready=20)
    stable = live(render.stable_ingress(app()))
    plan = machine.plan(
        app({SNIPPET: "x"}, image=V2, status=st, canary=STEPS),
        canary_world(IngressPolicy(), stable),
    )
    assert plan.status.canary is None  # no step taken
    assert plan.status.phase is Phase.ANALYZING
    assert ingress_writes(plan) == []
    assert cond(plan, "IngressAdmitted").reason == "IngressRefused"
    # Admitted: the first step is taken.
    ok = machine.plan(
        app({SNIPPET: "x"}, image=V2, status=st, canary=STEPS), canary_world(ALLOW_SNIPPET, stable)
    )
    assert ok.status.canary is not None and ok.status.canary.weight == 10


def test_a_refused_canary_ingress_is_not_updated_and_goes_without_a_write() -> None:
    st = in_release(Phase.ANALYZING, started=0, candidate_ready=20)
    st = st.model_copy(
        update={"canary": CanaryStatus(revision=R2, step=0, weight=10, step_started_at=stamp(20))}
    )
    at_ten = app(image=V2, status=st, canary=STEPS)
    canary = live(render.canary_ingress(at_ten, 10))
    stable = live(render.stable_ingress(at_ten))
    refused = app({SNIPPET: "x"}, image=V2, status=st, canary=STEPS)
    plan = machine.plan(refused, canary_world(IngressPolicy(), stable, canary))
    assert ingress_writes(plan) == []  # the step's Ingress stays as it was
    # Aborted: the canary Ingress goes, without writing the refused annotations at weight 0.
    aborting = in_release(Phase.ROLLING_BACK, started=0, candidate_ready=20, rollback_started=30)
    aborting = aborting.model_copy(update={"canary": st.canary})
    plan = machine.plan(
        app({SNIPPET: "x"}, image=V2, status=aborting, canary=STEPS),
        canary_world(IngressPolicy(), stable, canary, now=31),
    )
    assert ingress_writes(plan) == ["delete Ingress/shop-canary"]
    # Admitted, the weight goes to 0 first, then the canary Ingress goes.
    plan = machine.plan(
        app(image=V2, status=aborting, canary=STEPS),
        canary_world(IngressPolicy(), stable, canary, now=31),
    )
    assert ingress_writes(plan) == ["apply Ingress/shop-canary", "delete Ingress/shop-canary"]
