"""Config tracking in a release (spec.configTracking): the copies a revision's pods
reference, the copies no revision needs any more, and the ConfigTracked condition.

The copies of a revision are made just before the Deployment that references them is
written, and made again (from the object, while it still holds that revision's content)
when one that a colour's pods reference is deleted; the copies of the revisions the colours run, of the release in flight and of the
app's history are kept (the history is what `kubectl bluegreen undo` can go back to); the
others are deleted. A reference to an object that does not exist holds the release
(`held`): nothing moves until it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.api import Color
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import configs, naming, render
from bluegreen.core.plan import Apply, CopyConfig, Delete
from bluegreen.release.context import Pass
from bluegreen.release.status import Wanted


def held(p: Pass) -> bool:
    """A non-optional reference to a ConfigMap (or tracked Secret) that does not exist."""
    return bool(p.config.missing)


def ensure_copies(p: Pass, color: Color) -> None:
    """The copies the target revision's pods reference exist (or are made now, before the
    colour's Deployment that references them)."""
    have = {(c.kind, c.name) for c in p.observed.config_copies}
    for ref in p.config.tracked:
        if (ref.kind, configs.copy_name(ref.name, p.target)) not in have:
            _copy(p, ref, p.target, p.config.config[ref.key])


@dataclass(frozen=True)
class Lost:
    """The copy of `source` the pods of `color` (running `revision`) reference: it cannot be
    made again."""

    color: Color
    revision: str
    source: configs.Ref


def keep_serving(p: Pass) -> list[Lost]:
    """The copies the pods of every colour that has pods reference exist: one that is gone
    is made again from its object while that still holds the revision's content. The ones
    that cannot be are returned (the condition says so); nothing else changes for them: no
    traffic moves, no pod is replaced."""
    rewritten = {
        a.manifest["metadata"]["name"]
        for a in p.actions
        if isinstance(a, Apply) and a.manifest.get("kind") == "Deployment"
    }
    lost: list[Lost] = []
    for color, dep in sorted(p.observed.deployments.items()):
        if not (dep.has_owner and dep.revision and dep.config and dep.replicas > 0):
            continue
        if naming.deployment(p.name, color) in rewritten:
            continue  # its pods are replaced in this pass, with the target's copies
        found = configs.serving(dep.revision, dep.config, p.observed.config)
        for ref in found.remake:
            _copy(p, ref, dep.revision, dep.config[ref.key])
        lost += [Lost(color, dep.revision, ref) for ref in found.lost]
    return lost


def _copy(p: Pass, ref: configs.Ref, revision: str, digest: str) -> None:
    """Make the copy of `ref` for `revision` (once per pass)."""
    manifest = render.config_copy(p.app, ref, revision)
    name = manifest["metadata"]["name"]
    for action in p.actions:
        if isinstance(action, CopyConfig) and (
            action.manifest["kind"],
            action.manifest["metadata"]["name"],
        ) == (ref.kind, name):
            return
    p.actions.append(CopyConfig(manifest, ref.name, digest))


def collect(p: Pass) -> None:
    """Delete the copies of revisions that nothing runs or can go back to."""
    st = p.status
    keep = {p.target, *(d.revision for d in p.observed.deployments.values() if d.revision)}
    keep.update(r for r in (st.stable_revision, st.candidate_revision) if r)
    if st.release is not None:
        keep.add(st.release.revision)
    keep.update(h.revision for h in st.history)
    for copy in configs.stale(p.observed.config_copies, keep):
        p.actions.append(Delete(copy.kind, copy.name))


def condition(p: Pass, lost: Sequence[Lost] = ()) -> Wanted | None:
    """ConfigTracked, for an app that tracks config (or whose colours' copies are lost).
    A copy that becomes lost is told as a warning Event too."""
    if lost:
        wanted = _lost(lost)
        old = next((c for c in p.status.conditions if c.type == wanted.type), None)
        if old is None or old.reason != wanted.reason or old.message != wanted.message:
            p.event(Reason.CONFIG_COPY_LOST, wanted.message, warning=True)
        return wanted
    if not p.spec.config_tracking.enabled:
        return None
    choice = p.config
    if choice.missing:
        names = ", ".join(f"{r.kind} {r.name}" for r in choice.missing)
        return Wanted(
            ConditionType.CONFIG_TRACKED,
            False,
            Reason.CONFIG_MISSING,
            f"{names} referenced by the template does not exist (or the operator may not "
            "read it): no release starts or goes on until it does; traffic stays where it is",
        )
    if choice.untracked_secrets:
        names = ", ".join(r.name for r in choice.untracked_secrets)
        return Wanted(
            ConditionType.CONFIG_TRACKED,
            False,
            Reason.SECRETS_NOT_TRACKED,
            "spec.configTracking.secrets is true, but the operator does not track Secrets "
            "(its administrator enables them: chart value configTracking.secrets): a change "
            f"of Secret {names} starts no release, and the pods reference it directly",
        )
    tracked = ", ".join(f"{r.kind} {r.name}" for r in choice.tracked) or "nothing referenced"
    return Wanted(
        ConditionType.CONFIG_TRACKED,
        True,
        Reason.TRACKED,
        f"revision {p.target} tracks {tracked}",
    )


def _lost(lost: Sequence[Lost]) -> Wanted:
    parts = []
    for item in lost:
        kind, name = item.source.kind, item.source.name
        parts.append(
            f"{kind} {configs.copy_name(name, item.revision)}, which the {item.color.value} "
            f"pods (revision {item.revision}) reference, is gone and {kind} {name} no longer "
            "holds that revision's content"
        )
    return Wanted(
        ConditionType.CONFIG_TRACKED,
        False,
        Reason.CONFIG_COPY_LOST,
        "; ".join(parts) + ": a pod of that colour that restarts fails to start. Traffic "
        "stays where it is; the copy is made again if the object gets that content back, "
        "and a release of the current content replaces the colour's pods",
    )
