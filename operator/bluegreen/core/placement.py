"""Placement and marks of the colours, decided from the app alone. Pure: no I/O, no clock.

- Anti-affinity: each colour's pods keep off the nodes of the other colour's pods. The term
  is part of the colour's pod template, so a change of `strategy.antiAffinity` is part of
  the revision (`anti_affinity_input`) and goes to the idle colour in a release, like any
  template change: the active colour's pods are never restarted for it.
- Role metadata: the labels and annotations of `strategy.activeMetadata` and
  `strategy.previewMetadata` are set on the PODS of the colour in that role (never on the
  Deployment's template, which would restart them) and taken off when it leaves the role.
- PodDisruptionBudgets: one per colour, while the colour has replicas.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from bluegreen.api import BlueGreenApp, BlueGreenAppStatus, Color, Phase
from bluegreen.core import naming
from bluegreen.core.world import Marks, PodState

HOSTNAME = "kubernetes.io/hostname"

PREVIEW_PHASES = frozenset({Phase.DEPLOYING, Phase.ANALYZING, Phase.PAUSED})
"""The phases in which the release's colour is the preview: deployed and judged, before the
switch. Afterwards it is the active colour (Observing) or a failed candidate."""


# ----------------------------------------------------------------------------- anti-affinity


def anti_affinity_input(app: BlueGreenApp) -> dict[str, Any] | None:
    """What of `strategy.antiAffinity` goes into the revision (None: unset, so the revision
    of an app without it is the template's alone, as before)."""
    aa = app.spec.strategy.anti_affinity
    return None if aa is None else aa.model_dump(mode="json", by_alias=True, exclude_none=True)


def anti_affinity_term(app: BlueGreenApp, color: Color) -> tuple[str, dict[str, Any]] | None:
    """The podAntiAffinity list and the term `color`'s pods get: against the other colour's
    pods of the same app, by node."""
    aa = app.spec.strategy.anti_affinity
    if aa is None:
        return None
    term = {
        "labelSelector": {"matchLabels": naming.selector(app.metadata.name, color.other)},
        "topologyKey": HOSTNAME,
    }
    preferred = aa.preferred_during_scheduling_ignored_during_execution
    if preferred is not None:
        return (
            "preferredDuringSchedulingIgnoredDuringExecution",
            {"weight": preferred.weight, "podAffinityTerm": term},
        )
    return "requiredDuringSchedulingIgnoredDuringExecution", term


def with_anti_affinity(pod_spec: dict[str, Any], app: BlueGreenApp, color: Color) -> None:
    """Add the colour's anti-affinity term to `pod_spec`, after the user's own terms (their
    affinity is kept as written)."""
    found = anti_affinity_term(app, color)
    if found is None:
        return
    key, term = found
    affinity = copy.deepcopy(pod_spec.get("affinity") or {})
    anti = affinity.setdefault("podAntiAffinity", {}) or {}
    affinity["podAntiAffinity"] = anti
    anti[key] = [*(anti.get(key) or []), term]
    pod_spec["affinity"] = affinity


# ----------------------------------------------------------------------------- role metadata


def roles(status: BlueGreenAppStatus) -> dict[Color, str]:
    """The role of each colour now: "active" for the colour the active Service selects,
    "preview" for the release's colour while it is deployed and judged."""
    out: dict[Color, str] = {}
    release = status.release
    if release is not None and status.phase in PREVIEW_PHASES:
        out[release.color] = "preview"
    if status.active_color is not None:
        out[status.active_color] = "active"
    return out


def wanted_marks(app: BlueGreenApp, status: BlueGreenAppStatus) -> dict[Color, Marks]:
    """What the operator's marks on each colour's pods should be (empty: none)."""
    strategy = app.spec.strategy
    by_role = {"active": strategy.active_metadata, "preview": strategy.preview_metadata}
    out = {c: Marks() for c in Color}
    for color, role in roles(status).items():
        meta = by_role[role]
        if meta is not None:
            out[color] = Marks(dict(meta.labels), dict(meta.annotations))
    return out


def merge_patch(have: Marks, want: Marks) -> dict[str, Any] | None:
    """The metadata merge patch from `have` to `want` (None: nothing to do). Keys the
    operator set and no longer wants are removed (null)."""
    patch: dict[str, Any] = {}
    for part, old, new in (
        ("labels", have.labels, want.labels),
        ("annotations", have.annotations, want.annotations),
    ):
        changes: dict[str, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
        changes.update({k: None for k in old if k not in new})
        if changes:
            patch[part] = changes
    return patch or None


def marks_to_patch(
    pods: Iterable[PodState], wanted: Mapping[Color, Marks]
) -> list[tuple[str, dict[str, Any]]]:
    """(pod, merge patch of its metadata) for every pod whose marks differ from its colour's
    wanted marks, in name order. Pods on their way out are left alone."""
    out = []
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.deleting or pod.color is None:
            continue
        patch = merge_patch(pod.marks, wanted.get(pod.color, Marks()))
        if patch is not None:
            out.append((pod.name, patch))
    return out


# ----------------------------------------------------------------------------- disruption


def pdb_name(app: str, color: Color) -> str:
    return f"{app}-{color.value}"


def pdb_spec(app: BlueGreenApp, selector: Mapping[str, str]) -> dict[str, Any] | None:
    budget = app.spec.pod_disruption_budget
    if budget is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(selector)}}
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    if budget.max_unavailable is not None:
        spec["maxUnavailable"] = budget.max_unavailable
    return spec


def wants_pdb(app: BlueGreenApp, replicas: int | None) -> bool:
    """A colour has a budget while it has replicas: a colour scaled to zero has no pods to
    protect, and a budget over no pods would only show as "not enough healthy pods" in
    alerts. `replicas`: of the colour's Deployment, None when there is none."""
    return app.spec.pod_disruption_budget is not None and bool(replicas)
