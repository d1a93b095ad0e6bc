"""The Deployments and Services of an app, brought to what the pass wants.

Each `ensure_*` compares the snapshot with the wanted state and adds an action only when
they differ: a pass over a settled app writes nothing.
"""

from __future__ import annotations

from typing import Any

from bluegreen.api import Color
from bluegreen.core import naming, render
from bluegreen.core.plan import Apply, Delete, PatchMetadata, Scale
from bluegreen.core.world import ServiceState
from bluegreen.release import config
from bluegreen.release.context import Pass, legacy


def ensure_deployment(p: Pass, color: Color, replicas: int, *, starting: bool = False) -> None:
    """The colour runs the target revision with `replicas` replicas.

    A Deployment an earlier operator version made (`context.legacy`) cannot take the new
    selector, so it is deleted and made again, and only ever while its colour serves no
    traffic (the candidate of a release): when it must run another revision, or when a
    release (`starting`) finds it scaled to zero. A warm one that runs the target already
    (a revert) is reused as it is, and so is the candidate of a release in flight across
    the upgrade: both keep their ready pods."""
    dep = p.observed.deployments.get(color)
    stale = dep is None or dep.revision != p.target or not dep.has_owner
    cold = starting and dep is not None and dep.replicas == 0
    # Never the active colour (no phase asks it for another revision): the API server would
    # refuse the new selector, and traffic would stay where it is.
    idle = color is not p.status.active_color
    if stale or idle:
        config.ensure_copies(p, color)
    if dep is not None and dep.has_owner and legacy(p, color) and (stale or cold) and idle:
        p.actions.append(Delete("Deployment", naming.deployment(p.name, color)))
        p.actions.append(Apply(render.deployment(p.app, color, replicas, p.pins, p.config)))
        return
    if stale:
        p.actions.append(Apply(render.deployment(p.app, color, replicas, p.pins, p.config)))
    elif dep is not None and dep.replicas != replicas:
        p.actions.append(Scale(naming.deployment(p.name, color), replicas))


def ensure_scale(p: Pass, color: Color, replicas: int) -> None:
    """The colour has `replicas` replicas; its template is left alone."""
    dep = p.observed.deployments.get(color)
    if dep is not None and dep.replicas != replicas:
        p.actions.append(Scale(naming.deployment(p.name, color), replicas))


def ensure_service(p: Pass, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    have = p.observed.services.get(name)
    if have is None or not service_matches(have, manifest):
        p.actions.append(Apply(manifest))
    if have is not None and have.has_owner:
        remove_stale_keys(p, manifest, have.own_labels, have.own_annotations)


def stale_keys(
    want: dict[str, Any], own_labels: frozenset[str], own_annotations: frozenset[str]
) -> dict[str, Any] | None:
    """The labels and annotations the operator set on an object (its creation or its
    applies) that `want` no longer has, as a merge patch that removes them: a server-side
    apply that leaves them out does not, as the creation owns them too."""
    patch: dict[str, Any] = {}
    for part, own in (("labels", own_labels), ("annotations", own_annotations)):
        gone = sorted(own - (want["metadata"].get(part) or {}).keys())
        if gone:
            patch[part] = dict.fromkeys(gone)
    return patch or None


def remove_stale_keys(
    p: Pass, want: dict[str, Any], own_labels: frozenset[str], own_annotations: frozenset[str]
) -> None:
    stale = stale_keys(want, own_labels, own_annotations)
    if stale:
        p.actions.append(PatchMetadata(want["kind"], want["metadata"]["name"], stale))


def service_matches(have: ServiceState, want: dict[str, Any]) -> bool:
    """Selector, ports, type, owner, labels and annotations are as rendered (others may add
    their own labels and annotations; the ones the operator set and no longer wants go by
    `stale_keys`)."""
    spec = want["spec"]
    ports = tuple((p["name"], int(p["port"]), str(p["targetPort"])) for p in spec.get("ports", []))
    protocols = all(
        have.protocols.get(p["name"], ("TCP", None)) == (p["protocol"], p.get("appProtocol"))
        for p in spec.get("ports", [])
    )
    labels = want["metadata"].get("labels") or {}
    annotations = want["metadata"].get("annotations") or {}
    return (
        dict(have.selector) == spec["selector"]
        and have.ports == ports
        and protocols
        and have.has_owner
        and have.headless == (spec.get("clusterIP") == "None")
        and all(have.labels.get(k) == v for k, v in labels.items())
        and all(have.annotations.get(k) == v for k, v in annotations.items())
    )
