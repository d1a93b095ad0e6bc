"""The app's Ingresses, written only as the administrator's Ingress guard admits them.

The stable Ingress follows spec.ingress; the canary Ingress follows the canary step
(`canary.step_weight`). The canary Ingress exists only while a step is in flight, and goes
away in a safe order: after the switch only once the endpoints converged; on abort or
failure, weight 0 first.

When the guard (`bluegreen.core.ingress_guard`, the operator's BLUEGREEN_INGRESS_ALLOWED_*
settings) refuses spec.ingress, neither Ingress is written: what exists stays as it was,
so the traffic of the serving release goes on untouched. The IngressAdmitted condition and
a Warning Event name what was refused and the setting that would allow it, and canary
steps through the Ingress wait until the author or the administrator changes something.
Deleting is always allowed: an Ingress the spec no longer asks for goes.
"""

from __future__ import annotations

from typing import Any

from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import ingress_guard, naming, render
from bluegreen.core.plan import Apply, Delete
from bluegreen.core.world import IngressState
from bluegreen.release.canary import step_weight
from bluegreen.release.context import Pass
from bluegreen.release.workloads import remove_stale_keys


def refusal(p: Pass) -> str | None:
    """Why the guard refuses spec.ingress (every refused field), or None."""
    ingress = p.spec.ingress
    if ingress is None:
        return None
    found = ingress_guard.check(p.observed.ingress_policy, ingress, p.app.metadata.namespace)
    return ingress_guard.message(found) if found else None


def by_ingress(p: Pass) -> bool:
    """Canary weights go through the canary Ingress (not an HTTPRoute's rule)."""
    return p.spec.ingress is not None and p.spec.gateway_api is None


def canary_blocked(p: Pass) -> bool:
    """Canary steps would go through an Ingress the guard refuses: they wait."""
    return p.spec.strategy.canary is not None and by_ingress(p) and refusal(p) is not None


def ensure_ingresses(p: Pass) -> None:
    """The stable Ingress follows spec.ingress; the canary Ingress follows the step."""
    refused = refusal(p) is not None
    stable = p.observed.ingresses.get(naming.ingress(p.name))
    if p.spec.ingress is not None:
        desired = render.stable_ingress(p.app)
        if not refused and (stable is None or not ingress_matches(stable, desired)):
            p.actions.append(Apply(desired))
        if not refused and stable is not None:
            remove_stale_keys(p, desired, frozenset(), stable.own_annotations)
    elif stable is not None:
        p.actions.append(Delete("Ingress", naming.ingress(p.name)))
    _ensure_canary_ingress(p, refused)


def tell_when_refused(p: Pass) -> None:
    """A Warning Event when the guard starts refusing, or refuses something else."""
    why = refusal(p)
    if why is None:
        return
    old = next((c for c in p.status.conditions if c.type == ConditionType.INGRESS_ADMITTED), None)
    if old is None or old.status == "True" or old.message != why:
        p.event(Reason.INGRESS_REFUSED, why, warning=True)


def _ensure_canary_ingress(p: Pass, refused: bool) -> None:
    have = p.observed.ingresses.get(naming.canary_ingress(p.name))
    want = step_weight(p, have.weight if have is not None else None) if by_ingress(p) else None
    if want is not None and want > 0:
        desired = render.canary_ingress(p.app, want)
        if not refused and (have is None or not ingress_matches(have, desired)):
            p.actions.append(Apply(desired))
        if not refused and have is not None:
            remove_stale_keys(p, desired, frozenset(), have.own_annotations)
        return
    c, release = p.status.canary, p.status.release
    if have is not None:
        switched = release is not None and release.switched_at is not None
        if not switched and have.weight and not refused:
            p.actions.append(Apply(render.canary_ingress(p.app, 0)))
        p.actions.append(Delete("Ingress", naming.canary_ingress(p.name)))
        if c is not None and c.weight:
            p.event(Reason.CANARY_REMOVED, f"canary Ingress removed (was {c.weight}%)")
    if c is not None and step_weight(p, c.weight) is None:
        p.update(canary=None)  # the canary is over


def ingress_matches(have: IngressState, want: dict[str, Any]) -> bool:
    """Spec and annotations as rendered: every wanted annotation there, and none the
    operator wrote before that is no longer wanted (others' annotations are theirs; the
    operator's go by `remove_stale_keys`, as an apply cannot take off what the creation
    set).
    Without a className in the spec, the class the API server's DefaultIngressClass
    admission filled in is not a change."""
    wanted = want["metadata"].get("annotations") or {}
    spec = dict(have.spec)
    if "ingressClassName" not in want["spec"]:
        spec.pop("ingressClassName", None)
    return (
        spec == want["spec"]
        and all(have.annotations.get(k) == v for k, v in wanted.items())
        and have.own_annotations <= wanted.keys()
    )
