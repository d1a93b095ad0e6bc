"""A release's life: it starts, it switches, it finishes or it rolls back.

Traffic moves only by setting `status.activeColor` (the active Service's selector follows
it), and only to a saturated colour: `switch` is the only way forward, `rolling_back` in
`phases` the only way back.
"""

from __future__ import annotations

from datetime import timedelta

from bluegreen.api import Color, HistoryEntry, Phase, Release, ReleaseResult, ScaleDown
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.core import naming
from bluegreen.release.context import Pass, deadline_passed, elapsed, ready_count, saturated
from bluegreen.release.pins import ImageIssue, IssueKind
from bluegreen.release.workloads import ensure_deployment, ensure_scale

HISTORY_LIMIT = 10
HISTORY_FIELDS = {"revision", "image", "color", "reason", "started_at", "switch_latency_seconds"}
"""What a history entry keeps of its release as it was (with the result and end time)."""
FAILED_REVISIONS_LIMIT = 20


def start_release(p: Pass, color: Color, previous: Color | None) -> None:
    """Deploy the target revision to `color`; traffic stays on `previous` (None: the first
    deploy, nothing serves yet)."""
    if p.image_issue is not None and p.image_issue.kind is IssueKind.FAIL:
        fail_before_pods(p, color, previous, p.image_issue)
        return
    p.update(
        phase=Phase.DEPLOYING if previous is not None else Phase.PENDING,
        candidate_revision=p.target,
        analysis=None,
        release=Release(
            revision=p.target,
            image=p.image,
            pinned_image=p.pins.get(p.image),
            color=color,
            previous_color=previous,
            started_at=p.stamp(),
        ),
    )
    if p.status.scale_down is not None and p.status.scale_down.color is color:
        p.update(scale_down=None)  # the warm colour is being reused
    replicas = p.spec.preview_replicas if previous else p.spec.replicas
    ensure_deployment(p, color, replicas, starting=True)
    p.event(Reason.RELEASE_STARTED, f"deploying revision {p.target} ({p.image}) to {color.value}")
    if saturated(p, color, replicas):
        p.follow_up()  # a warm colour that already runs it (a revert): nothing to wait for
    else:
        p.await_cluster()


def switch(p: Pass) -> None:
    """Move traffic to the candidate once it is saturated at full scale."""
    release = p.release
    cand = release.color
    ensure_deployment(p, cand, p.spec.replicas)
    if not saturated(p, cand, p.spec.replicas):
        # Time spent waiting for the promotion (a manual gate, autoPromotionSeconds) does
        # not count against scaling up: the deadline runs from the request.
        if deadline_passed(p, release.promotion_requested_at):
            begin_rollback(
                p,
                ReleaseResult.ROLLED_BACK,
                Reason.PROGRESS_DEADLINE_EXCEEDED,
                f"{ready_count(p, cand)}/{p.spec.replicas} replicas of {cand.value} "
                "ready at promotion time",
            )
        else:
            p.await_cluster(release.promotion_requested_at)
        return
    p.update(phase=Phase.OBSERVING, active_color=cand)
    p.update_release(switched_at=p.stamp())
    p.event(
        Reason.SWITCHED,
        f"active Service {naming.active_service(p.name)} now selects {cand.value} "
        f"(revision {p.target})",
    )
    p.await_endpoints(cand, p.stamp())


def complete(p: Pass) -> None:
    """The candidate is the stable revision; the old colour stays warm for a while."""
    release = p.release
    finish(p, ReleaseResult.PROMOTED, Reason.PROMOTED)
    p.update(phase=Phase.HEALTHY, stable_revision=release.revision, message="")
    if release.previous_color is not None:
        at = p.now + timedelta(seconds=p.spec.strategy.scale_down_delay_seconds)
        p.update(scale_down=ScaleDown(color=release.previous_color, at=ts.format(at)))
    p.event(
        Reason.PROMOTED,
        f"revision {release.revision} is stable on {release.color.value} after "
        f"{elapsed(p, release.started_at):.1f}s",
    )


def finish(p: Pass, result: ReleaseResult, reason: str = "", message: str = "") -> None:
    """Close the current release and add it to the history."""
    release = p.release
    p.update_release(
        completed_at=p.stamp(),
        duration_seconds=round(elapsed(p, release.started_at), 3),
        result=result,
        rollback_result=None,
        reason=reason or release.reason,
        message=message or release.message,
    )
    done = p.release
    kept = done.model_dump(include=HISTORY_FIELDS)
    entry = HistoryEntry(**kept, result=result, completed_at=p.stamp())
    p.update(history=[entry, *p.status.history][:HISTORY_LIMIT], candidate_revision=None)


def begin_rollback(p: Pass, result: ReleaseResult, reason: Reason, message: str) -> None:
    """Start moving traffic back to the stable colour; the release will end as `result`."""
    p.update(phase=Phase.ROLLING_BACK)
    p.update_release(
        rollback_started_at=p.stamp(), rollback_result=result, reason=reason, message=message
    )
    # The selector moves back in phases.rolling_back, once the stable colour is saturated.
    p.event(Reason.ROLLING_BACK, f"{reason}: {message}", warning=True)
    p.follow_up()


def remember_failure(p: Pass, revision: str) -> None:
    failed = p.status.failed_revisions
    if revision not in failed:
        p.update(failed_revisions=[*failed, revision][-FAILED_REVISIONS_LIMIT:])


def superseded(p: Pass) -> bool:
    """A new template arrived while a release was in flight before the switch: drop the
    candidate and go on with the newest revision. True when it did."""
    release = p.status.release
    if release is None or p.target == release.revision:
        return False
    cand = release.color
    finish(p, ReleaseResult.SUPERSEDED, Reason.SUPERSEDED, f"superseded by revision {p.target}")
    p.event(
        Reason.RELEASE_SUPERSEDED,
        f"revision {release.revision} superseded by {p.target} before the switch",
    )
    if p.target == p.status.stable_revision:
        ensure_scale(p, cand, 0)
        p.update(phase=Phase.HEALTHY)
    elif p.target in p.status.failed_revisions:
        ensure_scale(p, cand, 0)
        refuse_failed_revision(p)
    else:
        start_release(p, cand, release.previous_color)
    return True


def way_on(p: Pass) -> str:
    """What a person does after a failed release, for the Degraded message."""
    return (
        f"to go on, fix the spec and apply a new revision, or run "
        f"`kubectl bluegreen retry {p.name}` to release revision {p.target} again"
    )


def refuse_failed_revision(p: Pass) -> None:
    """The spec asks for a revision that failed before: it is not released again until a
    person retries it (no flapping)."""
    p.enter(
        Phase.DEGRADED,
        f"revision {p.target} failed before; it is not released again until "
        "a person runs `kubectl bluegreen retry`",
        Reason.REVISION_FAILED_BEFORE,
        f"revision {p.target} failed before and is not released again by itself",
        warning=True,
    )


def fail_before_pods(p: Pass, color: Color, previous: Color | None, issue: ImageIssue) -> None:
    """spec.image.resolveDigest: Required, and the image cannot be pinned: the release fails
    before any pod of it is created; traffic stays where it is."""
    where = f"traffic stays on {previous.value}" if previous else "nothing was deployed"
    message = f"{issue.message}; no pod was created, {where}"
    p.update(
        release=Release(
            revision=p.target,
            image=p.image,
            color=color,
            previous_color=previous,
            started_at=p.stamp(),
            reason=issue.reason,
            message=message,
        )
    )
    finish(p, ReleaseResult.FAILED, issue.reason, message)
    dep = p.observed.deployments.get(color)
    if previous is not None and dep is not None and dep.revision != p.status.stable_revision:
        ensure_scale(p, color, 0)  # a superseded candidate, if any, goes away
    p.update(phase=Phase.DEGRADED, message=f"{message}; {way_on(p)}")
    remember_failure(p, p.target)
    p.event(issue.reason, message, warning=True)


def fail_first_deploy(p: Pass) -> None:
    """The first colour never became ready: nothing serves, the revision is remembered."""
    message = (
        f"{ready_count(p, Color.BLUE)}/{p.spec.replicas} replicas of revision "
        f"{p.target} ready after {p.spec.strategy.progress_deadline_seconds}s"
    )
    p.update_release(reason=Reason.PROGRESS_DEADLINE_EXCEEDED, message=message)
    finish(p, ReleaseResult.FAILED, Reason.PROGRESS_DEADLINE_EXCEEDED, message)
    p.update(phase=Phase.DEGRADED, message=f"{message}; {way_on(p)}")
    remember_failure(p, p.target)
    p.event(Reason.PROGRESS_DEADLINE_EXCEEDED, message, warning=True)
