"""Config tracking in a release (spec.configTracking): the copies a revision's pods
reference, the copies no revision needs any more, and the ConfigTracked condition.

The copies of a revision are made just before the Deployment that references them is
written; the copies of the revisions the colours run, of the release in flight and of the
app's history are kept (the history is what `kubectl bluegreen undo` can go back to); the
others are deleted. A reference to an object that does not exist holds the release
(`held`): nothing moves until it does.
"""

from __future__ import annotations

from bluegreen.api import Color
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.core import configs, render
from bluegreen.core.plan import CopyConfig, Delete
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
            manifest = render.config_copy(p.app, ref, p.target)
            p.actions.append(CopyConfig(manifest, ref.name, p.config.config[ref.key]))


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


def condition(p: Pass) -> Wanted | None:
    """ConfigTracked, for an app that tracks config."""
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
