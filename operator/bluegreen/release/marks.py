"""What holds in every phase for placement and marks: each colour's pods carry the role
metadata of the role it has now (strategy.activeMetadata, previewMetadata), and each colour
with replicas has its PodDisruptionBudget (spec.podDisruptionBudget)."""

from __future__ import annotations

from bluegreen.api import Color
from bluegreen.core import placement, render
from bluegreen.core.plan import Apply, Delete, PatchMetadata
from bluegreen.release.context import Pass, pod_selector


def ensure_marks(p: Pass) -> None:
    """Patch the pods whose marks differ from their colour's role now: a flip, a rollback
    or a new pod (a scale-up, a replacement) is followed on the next pass."""
    wanted = placement.wanted_marks(p.app, p.status)
    for pod, patch in placement.marks_to_patch(p.observed.pods, wanted):
        p.actions.append(PatchMetadata("Pod", pod, patch))


def ensure_budgets(p: Pass) -> None:
    """A budget per colour that has replicas; none for a colour at zero, none at all without
    spec.podDisruptionBudget. Budgets of the app only (the ownerReference)."""
    for color in Color:
        name = placement.pdb_name(p.name, color)
        have = p.observed.budgets.get(name)
        dep = p.observed.deployments.get(color)
        if placement.wants_pdb(p.app, dep.replicas if dep is not None else None):
            manifest = render.pod_disruption_budget(p.app, color, pod_selector(p, color))
            if have is None or dict(have.spec) != manifest["spec"]:
                p.actions.append(Apply(manifest))
        elif have is not None and have.has_owner:
            p.actions.append(Delete("PodDisruptionBudget", name))
