"""One step per phase. Each function is what a pass does when the app is in that phase
(what is true in each phase: `bluegreen.api.Phase`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bluegreen.api import Color, Phase, ReleaseResult, ScaleDown, Verdict
from bluegreen.api import timestamps as ts
from bluegreen.api.reasons import Reason
from bluegreen.core import naming
from bluegreen.release import canary, gates, ingress, routes
from bluegreen.release.context import (
    Pass,
    converged,
    deadline_passed,
    elapsed,
    ready_count,
    saturated,
)
from bluegreen.release.lifecycle import (
    begin_rollback,
    complete,
    fail_first_deploy,
    finish,
    refuse_failed_revision,
    remember_failure,
    start_release,
    superseded,
    switch,
    way_on,
)
from bluegreen.release.workloads import ensure_deployment, ensure_scale


def pending(p: Pass) -> None:
    release = p.status.release
    if release is None or release.revision != p.target:
        if p.target in p.status.failed_revisions:
            refuse_failed_revision(p)
        else:
            start_release(p, Color.BLUE, None)
        return
    color = release.color
    ensure_deployment(p, color, p.spec.replicas)
    if saturated(p, color, p.spec.replicas):
        p.update(phase=Phase.OBSERVING, active_color=color)
        p.update_release(candidate_ready_at=p.stamp(), switched_at=p.stamp())
        p.event(Reason.SWITCHED, f"active Service created, selecting {color.value}")
        p.await_endpoints(color, p.stamp())
    elif deadline_passed(p):
        fail_first_deploy(p)
    else:
        p.await_cluster()


def healthy(p: Pass) -> None:
    active = p.status.active_color
    if p.target == p.status.stable_revision or active is None:
        return
    if p.target in p.status.failed_revisions:
        refuse_failed_revision(p)
    else:
        start_release(p, active.other, active)


def deploying(p: Pass) -> None:
    if superseded(p):
        return
    release = p.release
    cand, replicas = release.color, p.spec.preview_replicas
    ensure_deployment(p, cand, replicas)
    if saturated(p, cand, replicas):
        p.update(phase=Phase.ANALYZING)
        p.update_release(candidate_ready_at=p.stamp())
        p.event(
            Reason.CANDIDATE_READY,
            f"{replicas} replicas of {cand.value} ready after "
            f"{elapsed(p, release.started_at):.1f}s",
        )
        p.follow_up()
    elif deadline_passed(p):
        begin_rollback(
            p,
            ReleaseResult.ROLLED_BACK,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"{ready_count(p, cand)}/{replicas} replicas of revision {p.target} ready after "
            f"{p.spec.strategy.progress_deadline_seconds}s; traffic stays on "
            f"{(release.previous_color or cand.other).value}",
        )
    else:
        p.await_cluster()


def analyzing(p: Pass) -> None:
    if superseded(p):
        return
    release = p.release
    if release.promotion_requested_at is not None:
        switch(p)
        return
    if p.spec.strategy.canary is not None:
        routed = routes.find_rule(p)
        if routed is not None and not routed.ok:
            return  # the route cannot split traffic: wait (TrafficRouted says why)
        if ingress.canary_blocked(p):
            return  # the canary Ingress may not be written: wait (IngressAdmitted says why)
        if not canary.steps_passed(p):
            return
    elif gates.has_checks(p.app, "pre") and not gates.passed(
        p, "pre", Reason.PRE_PROMOTION_ANALYSIS_FAILED
    ):
        return
    strategy = p.spec.strategy
    if not strategy.auto_promotion:
        p.enter(
            Phase.PAUSED,
            f"revision {p.target} is ready on {release.color.value}: waiting for "
            "`kubectl bluegreen promote` (or abort)",
            Reason.PAUSED,
            f"revision {p.target} is ready on {release.color.value}; waiting for "
            "`kubectl bluegreen promote`",
        )
        return
    wait = strategy.auto_promotion_seconds - elapsed(p, release.candidate_ready_at)
    if wait > 0:
        p.poll(wait)
        return
    p.update_release(promotion_requested_at=p.stamp())
    switch(p)


def paused(p: Pass) -> None:
    release = p.release
    if release.switched_at is not None:
        _paused_after_switch(p)
        return
    if superseded(p):
        return
    if release.promotion_requested_at is not None:
        switch(p)
        return
    run = p.status.analysis
    if run is None or run.phase != "pre":
        return
    if run.verdict not in (Verdict.RUNNING, Verdict.INCONCLUSIVE):
        return
    verdict = gates.judge_again(p, "pre")
    if verdict is Verdict.SUCCESS:
        p.update(phase=Phase.ANALYZING, message="")
        p.follow_up()
    elif verdict is Verdict.INCONCLUSIVE:
        p.follow_up()  # inconclusive again: the next pass opens a new window
    elif verdict is Verdict.FAILURE:
        begin_rollback(
            p, ReleaseResult.ROLLED_BACK, Reason.PRE_PROMOTION_ANALYSIS_FAILED, gates.summary_of(p)
        )


def _paused_after_switch(p: Pass) -> None:
    """Post-promotion analysis was inconclusive: traffic is on the candidate, the old colour
    is warm. A person promotes or aborts; meanwhile the window is taken again, and a clear
    verdict moves on by itself."""
    if _superseded_after_switch(p):
        return
    verdict = gates.judge_again(p, "post")
    if verdict is Verdict.SUCCESS:
        complete(p)
    elif verdict is Verdict.INCONCLUSIVE:
        p.follow_up()  # inconclusive again: the next pass opens a new window
    elif verdict is Verdict.FAILURE:
        begin_rollback(
            p,
            ReleaseResult.ROLLED_BACK,
            Reason.POST_PROMOTION_ANALYSIS_FAILED,
            gates.summary_of(p),
        )


def _superseded_after_switch(p: Pass) -> bool:
    """A newer template arrived while the candidate serves: traffic goes back to the warm
    stable colour first (an unverified revision is never a rollback target)."""
    release = p.release
    if p.target == release.revision or release.previous_color is None:
        return False
    begin_rollback(
        p,
        ReleaseResult.SUPERSEDED,
        Reason.SUPERSEDED,
        f"superseded by revision {p.target} during observation",
    )
    return True


def observing(p: Pass) -> None:
    release = p.release
    active = p.status.active_color or release.color
    if release.endpoints_converged_at is None and not _converged(p, active):
        return
    if _superseded_after_switch(p):
        return
    if gates.has_checks(p.app, "post") and not gates.passed(
        p, "post", Reason.POST_PROMOTION_ANALYSIS_FAILED
    ):
        return
    complete(p)


def _converged_at(p: Pass, switched: datetime) -> tuple[datetime, str]:
    """When the EndpointSlices converged: when the watch saw their last change, not when a
    pass looked (an operator restarted after the flip looks late). A view from a full list
    has only the API server's time of the write, to the second."""
    since = p.observed.active_endpoints_since
    if since is None or since > p.now:
        return p.now, ""
    if since < switched - timedelta(seconds=1):
        return p.now, ""  # a view older than the flip says nothing of when it converged
    if p.observed.active_endpoints_exact:
        return since, ""
    return since, " (to the second: they converged while the operator was not watching)"


def _converged(p: Pass, active: Color) -> bool:
    """Read the EndpointSlices back until every ready endpoint is the new colour: the time
    from the flip is the switch latency. True once they are (recorded in this pass)."""
    release = p.release
    if converged(p, active):
        switched = ts.parse_or_none(release.switched_at) or p.now
        at, how = _converged_at(p, switched)
        latency = round(max(0.0, (at - switched).total_seconds()), 3)
        p.update_release(endpoints_converged_at=ts.format(at), switch_latency_seconds=latency)
        p.event(
            Reason.ENDPOINTS_CONVERGED,
            f"every ready endpoint behind {naming.active_service(p.name)} is "
            f"{active.value}, {latency:.3f}s after the switch{how}",
        )
        return True
    if deadline_passed(p, release.switched_at):
        begin_rollback(
            p,
            ReleaseResult.ROLLED_BACK,
            Reason.ENDPOINTS_NOT_CONVERGED,
            f"the active Service's EndpointSlices did not converge on {active.value}",
        )
    else:
        p.await_cluster(release.switched_at)
    return False


def rolling_back(p: Pass) -> None:
    release = p.release
    stable = release.previous_color
    if stable is None:
        fail_first_deploy(p)
        return
    if p.status.active_color is not stable:
        # Traffic goes back only to a saturated colour: the warm one normally is; if it is
        # not, it scales up first and traffic stays where it is meanwhile.
        ensure_scale(p, stable, p.spec.replicas)
        if saturated(p, stable, p.spec.replicas, p.status.stable_revision):
            p.update(active_color=stable)
            p.update_release(switched_back_at=p.stamp())
            if converged(p, stable):
                p.follow_up()  # flipped back already (see Pass.await_endpoints)
        return  # the stable colour's pods, then its EndpointSlices, wake the app
    if converged(p, stable):
        _rolled_back(p, stable)


def _rolled_back(p: Pass, stable: Color) -> None:
    """Traffic is back on the stable colour and verified: end the release."""
    release = p.release
    result = release.rollback_result or ReleaseResult.ROLLED_BACK
    if release.rollback_started_at is not None:
        p.update_release(rollback_seconds=round(elapsed(p, release.rollback_started_at), 3))
    if result is not ReleaseResult.SUPERSEDED:
        remember_failure(p, release.revision)
    delay = timedelta(seconds=p.spec.strategy.abort_scale_down_delay_seconds)
    scale_down = ScaleDown(color=release.color, at=ts.format(p.now + delay))
    finish(p, result)
    if result is ReleaseResult.SUPERSEDED:
        _after_superseded_rollback(p, release.revision, scale_down)
        return
    p.update(
        scale_down=scale_down,
        phase=Phase.DEGRADED,
        message=f"revision {release.revision} {result.value}: {release.message}; {way_on(p)}",
    )
    # Before the switch traffic never left the stable colour: say so, not "back on".
    where = "is back on" if release.switched_at is not None else "never left"
    p.event(
        Reason(result.value),
        f"traffic {where} {stable.value} (revision {p.status.stable_revision}); "
        f"{release.reason}: {release.message}",
        warning=True,
    )


def _after_superseded_rollback(p: Pass, old: str, scale_down: ScaleDown) -> None:
    """Traffic is safe on the stable colour: go on with the newest revision."""
    release = p.release
    p.event(Reason.RELEASE_SUPERSEDED, f"revision {old} superseded by {p.target}")
    if p.target == p.status.stable_revision:
        p.update(phase=Phase.HEALTHY, scale_down=scale_down)
    elif p.target in p.status.failed_revisions:
        p.update(scale_down=scale_down)
        refuse_failed_revision(p)
    else:
        start_release(p, release.color, release.previous_color)


def degraded(p: Pass) -> None:
    active = p.status.active_color
    if active is None:
        if p.target not in p.status.failed_revisions:
            start_release(p, Color.BLUE, None)
        return
    if p.target == p.status.stable_revision:
        p.update(phase=Phase.HEALTHY, candidate_revision=None, message="")
        p.event(Reason.RECOVERED, f"the spec is back on stable revision {p.target}")
    elif p.target not in p.status.failed_revisions:
        start_release(p, active.other, active)
