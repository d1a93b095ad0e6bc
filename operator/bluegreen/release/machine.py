"""The release state machine. Pure: `plan(app, observed)` reads the app and a snapshot of
the world, and returns what to do; it does no I/O and reads no clock (`observed.now`).

One pass makes at most one phase transition. Everything it needs to resume lives in
`status`, so a restarted operator picks up exactly where it stopped.

Traffic moves only by setting `status.activeColor`, which the active Service's selector
follows; and the active colour only ever changes to a colour that is saturated (every
replica ready and shown ready in the EndpointSlices).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bluegreen.api import (
    IN_FLIGHT_PHASES,
    AnalysisPhase,
    AnalysisRun,
    BlueGreenApp,
    BlueGreenAppStatus,
    Color,
    Condition,
    HistoryEntry,
    Measurement,
    MeasurementVerdict,
    Metric,
    Phase,
    Release,
    ReleaseResult,
    ScaleDown,
)
from bluegreen.api.v1alpha1 import CanaryStatus, ResolveDigest
from bluegreen.core import analysis, naming, render
from bluegreen.core.analysis import Verdict
from bluegreen.core.images import Outcome as ResolutionOutcome
from bluegreen.core.plan import Action, Apply, ClearRequest, Delete, Event, Plan, Scale
from bluegreen.core.world import IngressState, Observed, ServiceState

HISTORY_LIMIT = 10
FAILED_REVISIONS_LIMIT = 20
REQUESTS = ("promote", "abort", "retry")

# How soon to look again, in seconds.
POLL_SWITCH = 0.05  # right after a selector flip: switch latency is measured at this grain
POLL_ROLLOUT = 0.5  # while pods start
POLL_SCALING = 2.0  # while the active colour scales to a new replica count
POLL_REGISTRY = 5.0  # while the image registry does not answer


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def needs_polling(status: BlueGreenAppStatus, replicas: int) -> bool:
    """True while time alone can move the app on (no polling of settled apps): a release
    in flight, a delayed scale-down, or an active colour still scaling to `replicas`."""
    if status.phase in IN_FLIGHT_PHASES or status.scale_down is not None:
        return True
    if status.active_color is not None and status.replicas != replicas:
        return True
    run = status.analysis
    if (
        run is not None
        and run.verdict in ("Running", "Inconclusive")
        and status.phase in (Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING)
    ):
        return True  # an analysis window is open, or is to be taken again
    return (
        status.phase is Phase.PAUSED
        and status.release is not None
        and status.release.promotion_requested_at is not None
    )


def analysis_metrics(
    app: BlueGreenApp, phase: AnalysisPhase, step: int | None = None
) -> list[Metric]:
    """The metrics of an analysis phase; for a canary step, its own metrics if it has any."""
    canary = app.spec.strategy.canary
    if step is not None and canary is not None and step < len(canary.steps):
        own = canary.steps[step].metrics
        if own is not None:
            return list(own)
    spec = app.spec.analysis
    if spec is None:
        return []
    return list(spec.pre_promotion if phase == "pre" else spec.post_promotion)


def due_samples(app: BlueGreenApp, now: datetime) -> list[tuple[AnalysisPhase, Metric]]:
    """The metrics whose next measurement is due now: what `observe` must sample."""
    st = app.status
    run, release = st.analysis, st.release
    if (
        run is None
        or release is None
        or run.verdict != "Running"
        or run.revision != release.revision
    ):
        return []
    if st.phase not in (Phase.ANALYZING, Phase.PAUSED, Phase.OBSERVING):
        return []
    start = parse(run.window_start)
    due = []
    for metric in analysis_metrics(app, run.phase, run.step):
        at = analysis.next_due(metric, run.measurements, start, now)
        if at is not None and at <= now:
            due.append((run.phase, metric))
    return due


def sample_key(phase: AnalysisPhase, metric: Metric) -> str:
    return f"{phase}/{metric.name}"


@dataclass
class _Work:
    status: BlueGreenAppStatus
    actions: list[Action]
    events: list[Event]
    requeue: float | None = None

    def update(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def release(self, **changes: Any) -> None:
        assert self.status.release is not None
        self.update(release=self.status.release.model_copy(update=changes))

    def event(
        self, reason: str, message: str, kind: Literal["Normal", "Warning"] = "Normal"
    ) -> None:
        self.events.append(Event(kind, reason, message))

    def poll(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)


class _Planner:
    def __init__(self, app: BlueGreenApp, observed: Observed) -> None:
        self.app = app
        self.spec = app.spec
        self.name = app.metadata.name
        self.obs = observed
        self.now = observed.now
        self.pins, self.image_issue = _pins(app, observed)
        self.target = render.target_revision(app, self.pins)
        self.image = render.primary_image(app)
        self.w = _Work(status=app.status, actions=[], events=[])
        raw = app.metadata.annotations.get(naming.ANNOTATION_REQUEST)
        self.request = raw.strip().lower() if raw is not None else None

    # ------------------------------------------------------------------ facts

    @property
    def st(self) -> BlueGreenAppStatus:
        return self.w.status

    def saturated(self, color: Color, replicas: int, revision: str | None = None) -> bool:
        """Every replica of `color` runs `revision` (default: the target), is ready, and
        the EndpointSlices show that many ready endpoints."""
        revision = revision or self.target
        dep = self.obs.deployments.get(color)
        if dep is None or dep.revision != revision or dep.replicas != replicas:
            return False
        if not dep.settled or dep.ready_replicas < replicas:
            return False
        if self.obs.stray_pods(color, revision):
            return False
        ready = self.obs.ready_pods(color, revision)
        if len(ready) < replicas:
            return False
        in_slices = {e.pod for e in self.obs.metrics_endpoints if e.ready and e.pod in ready}
        return len(in_slices) >= replicas

    def converged(self, color: Color) -> bool:
        """Every ready endpoint behind the active Service belongs to `color`, and all of
        that colour's ready pods are there."""
        svc = self.obs.services.get(naming.active_service(self.name))
        if svc is None or dict(svc.selector) != naming.selector(self.name, color):
            return False
        ready_of_color = self.obs.ready_pods(color)
        ready_endpoints = {e.pod for e in self.obs.active_endpoints if e.ready}
        if not ready_endpoints <= ready_of_color:
            return False
        wanted = min(self.spec.replicas, len(ready_of_color)) if self.spec.replicas else 0
        return len(ready_endpoints) >= max(wanted, 0) and (
            self.spec.replicas == 0 or len(ready_endpoints) > 0
        )

    def elapsed(self, since: str | None) -> float:
        return 0.0 if since is None else (self.now - parse(since)).total_seconds()

    def deadline_passed(self, since: str | None = None) -> bool:
        """More than progressDeadlineSeconds since `since` (default: the release start)."""
        release = self.st.release
        if release is None:
            return False
        start = since or release.started_at
        return self.elapsed(start) > self.spec.strategy.progress_deadline_seconds

    def ready_count(self, color: Color) -> int:
        return len(self.obs.ready_pods(color, self.target))

    # ------------------------------------------------------------------ actions

    def ensure_deployment(self, color: Color, replicas: int) -> None:
        """The colour runs the target revision with `replicas` replicas."""
        dep = self.obs.deployments.get(color)
        if dep is None or dep.revision != self.target or not dep.has_owner:
            self.w.actions.append(Apply(render.deployment(self.app, color, replicas, self.pins)))
        elif dep.replicas != replicas:
            self.w.actions.append(Scale(naming.deployment(self.name, color), replicas))

    def ensure_scale(self, color: Color, replicas: int) -> None:
        """The colour has `replicas` replicas; its template is left alone."""
        dep = self.obs.deployments.get(color)
        if dep is not None and dep.replicas != replicas:
            self.w.actions.append(Scale(naming.deployment(self.name, color), replicas))

    def ensure_service(self, manifest: dict[str, Any]) -> None:
        have = self.obs.services.get(manifest["metadata"]["name"])
        if have is None or not _service_matches(have, manifest):
            self.w.actions.append(Apply(manifest))

    # ------------------------------------------------------------------ transitions

    def start_release(self, color: Color, previous: Color | None) -> None:
        if self.image_issue is not None and self.image_issue.kind == "fail":
            self.fail_before_pods(color, previous, self.image_issue)
            return
        self.w.update(
            phase=Phase.DEPLOYING if previous is not None else Phase.PENDING,
            candidate_revision=self.target,
            analysis=None,
            release=Release(
                revision=self.target,
                image=self.image,
                pinned_image=self.pins.get(self.image),
                color=color,
                previous_color=previous,
                started_at=iso(self.now),
            ),
        )
        if self.st.scale_down is not None and self.st.scale_down.color is color:
            self.w.update(scale_down=None)  # the warm colour is being reused
        replicas = self.spec.preview_replicas if previous is not None else self.spec.replicas
        self.ensure_deployment(color, replicas)
        self.w.event(
            "ReleaseStarted",
            f"deploying revision {self.target} ({self.image}) to {color.value}",
        )
        self.w.poll(POLL_ROLLOUT)

    def finish(self, result: ReleaseResult, reason: str = "", message: str = "") -> None:
        """Close the current release and add it to the history."""
        release = self.st.release
        assert release is not None
        self.w.release(
            completed_at=iso(self.now),
            duration_seconds=round(self.elapsed(release.started_at), 3),
            result=result,
            reason=reason or release.reason,
            message=message or release.message,
        )
        done = self.st.release
        assert done is not None
        entry = HistoryEntry(
            revision=done.revision,
            image=done.image,
            color=done.color,
            result=result,
            reason=done.reason,
            started_at=done.started_at,
            completed_at=iso(self.now),
            switch_latency_seconds=done.switch_latency_seconds,
        )
        self.w.update(history=[entry, *self.st.history][:HISTORY_LIMIT], candidate_revision=None)

    def begin_rollback(self, reason: str, message: str) -> None:
        release = self.st.release
        assert release is not None
        self.w.update(phase=Phase.ROLLING_BACK)
        self.w.release(rollback_started_at=iso(self.now), reason=reason, message=message)
        # The selector moves back in `rolling_back`, once the stable colour is saturated.
        self.w.event("RollingBack", f"{reason}: {message}", "Warning")
        self.w.poll(POLL_SWITCH)

    def superseded(self) -> bool:
        """A new template arrived while a release was in flight before the switch."""
        release = self.st.release
        if release is None or self.target == release.revision:
            return False
        cand = release.color
        self.finish(ReleaseResult.SUPERSEDED, "Superseded", f"superseded by revision {self.target}")
        self.w.event(
            "ReleaseSuperseded",
            f"revision {release.revision} superseded by {self.target} before the switch",
        )
        if self.target == self.st.stable_revision:
            self.ensure_scale(cand, 0)
            self.w.update(phase=Phase.HEALTHY)
        elif self.target in self.st.failed_revisions:
            self.ensure_scale(cand, 0)
            self.mark_degraded_by_failed_revision()
        else:
            self.start_release(cand, release.previous_color)
        return True

    def mark_degraded_by_failed_revision(self) -> None:
        self.w.update(
            phase=Phase.DEGRADED,
            message=f"revision {self.target} failed before; it is not released again until "
            "a person runs `kubectl bluegreen retry`",
        )
        self.w.event(
            "RevisionFailedBefore",
            f"revision {self.target} failed before and is not released again by itself",
            "Warning",
        )

    # ------------------------------------------------------------------ requests

    def handle_request(self) -> bool:
        """A person's promote / abort / retry. Returns True when it made the transition."""
        if self.request is None:
            return False
        self.w.actions.append(ClearRequest())
        phase = self.st.phase
        req = self.request
        if req not in REQUESTS:
            self.w.event(
                "RequestRejected",
                f"unknown request {req!r} in {naming.ANNOTATION_REQUEST}; use one of {', '.join(REQUESTS)}",
                "Warning",
            )
            return False
        if (
            req == "promote"
            and phase is Phase.PAUSED
            and self.st.release
            and self.st.release.switched_at is not None
        ):
            self.w.event("PromotionRequested", f"{self.st.release.revision} accepted by a request")
            self.complete()
            return True
        if req == "promote" and phase in (Phase.ANALYZING, Phase.PAUSED) and self.st.release:
            if self.st.release.revision == self.target:
                self.w.release(promotion_requested_at=iso(self.now))
                self.w.event("PromotionRequested", f"promotion of {self.target} requested")
                return False  # the phase step below carries it out
        elif req == "abort" and phase in (
            Phase.DEPLOYING,
            Phase.ANALYZING,
            Phase.PAUSED,
            Phase.OBSERVING,
        ):
            self.begin_rollback("Aborted", "the release was aborted by a request")
            return True
        elif req == "retry" and phase is Phase.DEGRADED and self.target in self.st.failed_revisions:
            self.w.update(
                failed_revisions=[r for r in self.st.failed_revisions if r != self.target]
            )
            self.w.event("RetryRequested", f"retrying revision {self.target}")
            if self.st.active_color is None:
                self.start_release(Color.BLUE, None)
            else:
                self.start_release(self.st.active_color.other, self.st.active_color)
            return True
        self.w.event("RequestIgnored", f"{req} does nothing in phase {phase.value}", "Warning")
        return False

    # ------------------------------------------------------------------ phases

    def pending(self) -> None:
        release = self.st.release
        if release is None or release.revision != self.target:
            if self.target in self.st.failed_revisions:
                self.mark_degraded_by_failed_revision()
                return
            self.start_release(Color.BLUE, None)
            return
        color = release.color
        self.ensure_deployment(color, self.spec.replicas)
        if self.saturated(color, self.spec.replicas):
            self.w.update(phase=Phase.OBSERVING, active_color=color)
            self.w.release(candidate_ready_at=iso(self.now), switched_at=iso(self.now))
            self.w.event("Switched", f"active Service created, selecting {color.value}")
            self.w.poll(POLL_SWITCH)
        elif self.deadline_passed():
            self.fail_first_deploy()
        else:
            self.w.poll(POLL_ROLLOUT)

    def fail_first_deploy(self) -> None:
        msg = (
            f"{self.ready_count(Color.BLUE)}/{self.spec.replicas} replicas of revision "
            f"{self.target} ready after {self.spec.strategy.progress_deadline_seconds}s"
        )
        self.w.release(reason="ProgressDeadlineExceeded", message=msg)
        self.finish(ReleaseResult.FAILED, "ProgressDeadlineExceeded", msg)
        self.w.update(
            phase=Phase.DEGRADED,
            failed_revisions=[*self.st.failed_revisions, self.target][-FAILED_REVISIONS_LIMIT:],
        )
        self.w.event("ProgressDeadlineExceeded", msg, "Warning")

    def healthy(self) -> None:
        if self.target == self.st.stable_revision:
            return
        if self.target in self.st.failed_revisions:
            self.mark_degraded_by_failed_revision()
            return
        assert self.st.active_color is not None
        self.start_release(self.st.active_color.other, self.st.active_color)

    def deploying(self) -> None:
        if self.superseded():
            return
        release = self.st.release
        assert release is not None
        cand = release.color
        replicas = self.spec.preview_replicas
        self.ensure_deployment(cand, replicas)
        if self.saturated(cand, replicas):
            self.w.update(phase=Phase.ANALYZING)
            self.w.release(candidate_ready_at=iso(self.now))
            self.w.event(
                "CandidateReady",
                f"{replicas} replicas of {cand.value} ready after "
                f"{self.elapsed(release.started_at):.1f}s",
            )
            self.w.poll(0)
        elif self.deadline_passed():
            self.begin_rollback(
                "ProgressDeadlineExceeded",
                f"{self.ready_count(cand)}/{replicas} replicas of revision {self.target} ready "
                f"after {self.spec.strategy.progress_deadline_seconds}s; traffic stays on "
                f"{(release.previous_color or cand.other).value}",
            )
        else:
            self.w.poll(POLL_ROLLOUT)

    def analyzing(self) -> None:
        if self.superseded():
            return
        release = self.st.release
        assert release is not None
        if release.promotion_requested_at is not None:
            self.promote()
            return
        if self.spec.strategy.canary is not None:
            if not self.canary_steps():
                return
        elif analysis_metrics(self.app, "pre") and not self.analysis_passed(
            "pre", "PrePromotionAnalysisFailed"
        ):
            return
        strategy = self.spec.strategy
        if not strategy.auto_promotion:
            self.w.update(phase=Phase.PAUSED)
            self.w.event(
                "Paused",
                f"revision {self.target} is ready on {release.color.value}; waiting for "
                "`kubectl bluegreen promote`",
            )
            return
        wait = strategy.auto_promotion_seconds - self.elapsed(release.candidate_ready_at)
        if wait > 0:
            self.w.poll(wait)
            return
        self.w.release(promotion_requested_at=iso(self.now))
        self.promote()

    def paused(self) -> None:
        release = self.st.release
        assert release is not None
        if release.switched_at is not None:
            self.paused_after_switch()
            return
        if self.superseded():
            return
        if release.promotion_requested_at is not None:
            self.promote()
            return
        run = self.st.analysis
        if run is not None and run.phase == "pre" and run.verdict in ("Running", "Inconclusive"):
            verdict = self.rerun_analysis("pre")
            if verdict is Verdict.SUCCESS:
                self.w.update(phase=Phase.ANALYZING, message="")
                self.w.poll(0)
            elif verdict is Verdict.FAILURE:
                self.begin_rollback("PrePromotionAnalysisFailed", self.analysis_message())

    def paused_after_switch(self) -> None:
        """Post-promotion analysis was inconclusive: traffic is on the candidate, the old
        colour is warm. A person promotes or aborts; meanwhile the window is taken again,
        and a clear verdict moves on by itself."""
        release = self.st.release
        assert release is not None
        if self.target != release.revision and release.previous_color is not None:
            self.begin_rollback(
                "Superseded", f"superseded by revision {self.target} during observation"
            )
            return
        verdict = self.rerun_analysis("post")
        if verdict is Verdict.SUCCESS:
            self.complete()
        elif verdict is Verdict.FAILURE:
            self.begin_rollback("PostPromotionAnalysisFailed", self.analysis_message())

    # ------------------------------------------------------------------ canary

    def canary_steps(self) -> bool:
        """Step the canary weight; judge each step. True once every step has passed."""
        release = self.st.release
        canary = self.spec.strategy.canary
        assert release is not None and canary is not None
        c = self.st.canary
        if c is None or c.revision != release.revision:
            self.set_canary_step(0)
            return False
        step = canary.steps[c.step]
        if analysis_metrics(self.app, "pre", c.step) and not self.analysis_passed(
            "pre", "CanaryAnalysisFailed", c.step, f"step {c.step + 1} at {c.weight}%: "
        ):
            return False
        wait = step.pause_seconds - self.elapsed(c.step_started_at)
        if wait > 0:
            self.w.poll(wait)
            return False
        if c.step + 1 < len(canary.steps):
            self.set_canary_step(c.step + 1)
            return False
        return True

    def set_canary_step(self, index: int) -> None:
        release = self.st.release
        canary = self.spec.strategy.canary
        assert release is not None and canary is not None
        weight = canary.steps[index].weight
        self.w.update(
            canary=CanaryStatus(
                revision=release.revision, step=index, weight=weight, step_started_at=iso(self.now)
            )
        )
        self.w.event(
            "CanaryStep",
            f"step {index + 1}/{len(canary.steps)}: {weight}% of requests to "
            f"{release.color.value} (revision {release.revision})",
        )
        self.w.poll(0)

    def ensure_ingresses(self) -> None:
        """The stable Ingress follows spec.ingress; the canary Ingress exists only while a
        canary step is in flight, and goes away in a safe order: after the switch once the
        endpoints converged; on abort or failure, weight 0 first, then removed."""
        st, name = self.st, self.name
        stable = self.obs.ingresses.get(naming.ingress(name))
        have = self.obs.ingresses.get(naming.canary_ingress(name))
        if self.spec.ingress is not None:
            desired = render.stable_ingress(self.app)
            if stable is None or not _ingress_matches(stable, desired):
                self.w.actions.append(Apply(desired))
        elif stable is not None:
            self.w.actions.append(Delete("Ingress", naming.ingress(name)))
        c, release = st.canary, st.release
        want: int | None = None
        switched = release is not None and release.switched_at is not None
        if self.spec.ingress is not None and c is not None and release is not None:
            if (
                c.revision == release.revision
                and not switched
                and st.phase
                in (
                    Phase.ANALYZING,
                    Phase.PAUSED,
                )
            ):
                want = c.weight
            elif st.phase is Phase.OBSERVING and release.endpoints_converged_at is None:
                want = have.weight if have is not None else None
        if want is not None and want > 0:
            desired = render.canary_ingress(self.app, want)
            if have is None or not _ingress_matches(have, desired):
                self.w.actions.append(Apply(desired))
            return
        if have is not None:
            if not switched and have.weight:
                self.w.actions.append(Apply(render.canary_ingress(self.app, 0)))
            self.w.actions.append(Delete("Ingress", naming.canary_ingress(name)))
            if c is not None and c.weight:
                self.w.event("CanaryRemoved", f"canary Ingress removed (was {c.weight}%)")
        if c is not None and want is None:
            self.w.update(canary=None)

    # ------------------------------------------------------------------ analysis

    def run_analysis(self, phase: AnalysisPhase, step: int | None = None) -> Verdict:
        """Open the phase's window if needed, take in this pass's samples, and judge."""
        release = self.st.release
        assert release is not None
        metrics = analysis_metrics(self.app, phase, step)
        run = self.st.analysis
        if (
            run is None
            or run.phase != phase
            or run.revision != release.revision
            or run.step != step
        ):
            self.open_window(phase, runs=1, step=step)
            return Verdict.RUNNING
        if run.verdict != "Running":
            return Verdict(run.verdict)
        measurements = list(run.measurements)
        first_failure = release.first_failure_at
        for metric in metrics:
            result = self.obs.samples.get(sample_key(phase, metric))
            if result is None:
                continue
            m = analysis.measure(metric, phase, result, self.now)
            measurements.append(m)
            if m.verdict is MeasurementVerdict.FAILED and first_failure is None:
                first_failure = m.at
        verdicts = {m.name: analysis.metric_verdict(m, measurements, self.now) for m in metrics}
        verdict = analysis.overall(verdicts.values())
        keep = max((m.count for m in metrics), default=1)
        message = _analysis_summary(metrics, measurements, verdicts, self.now)
        self.w.update(
            analysis=run.model_copy(
                update={
                    "measurements": analysis.bounded(measurements, keep),
                    "verdict": verdict.value,
                    "message": message,
                }
            )
        )
        if first_failure != release.first_failure_at:
            self.w.release(first_failure_at=first_failure)
        if verdict is Verdict.RUNNING:
            start = parse(run.window_start)
            dues = [
                d
                for m in metrics
                if (d := analysis.next_due(m, measurements, start, self.now)) is not None
            ]
            self.w.poll(max(0.0, (min(dues) - self.now).total_seconds()) if dues else POLL_ROLLOUT)
        elif verdict is Verdict.SUCCESS:
            self.w.event("AnalysisSucceeded", f"{phase}-promotion analysis passed: {message}")
        return verdict

    def analysis_passed(
        self, phase: AnalysisPhase, failure: str, step: int | None = None, prefix: str = ""
    ) -> bool:
        """Judge the phase's window: roll back when it failed, pause when it is
        inconclusive, wait while it runs. True once it passed."""
        verdict = self.run_analysis(phase, step)
        if verdict is Verdict.FAILURE:
            self.begin_rollback(failure, prefix + self.analysis_message())
        elif verdict is Verdict.INCONCLUSIVE:
            self.pause_inconclusive()
        return verdict is Verdict.SUCCESS

    def rerun_analysis(self, phase: AnalysisPhase) -> Verdict:
        """After an inconclusive window, take a new one; judge it like the first."""
        run = self.st.analysis
        step = run.step if run is not None else None
        if run is not None and run.phase == phase and run.verdict == "Inconclusive":
            self.open_window(phase, runs=run.runs + 1, step=step)
            return Verdict.RUNNING
        return self.run_analysis(phase, step)

    def open_window(self, phase: AnalysisPhase, runs: int, step: int | None = None) -> None:
        release = self.st.release
        assert release is not None
        metrics = analysis_metrics(self.app, phase, step)
        # The first sample one interval after the window opens: a rate() over a colour
        # that just became ready needs two scrapes before it says anything.
        first = min(analysis.interval_seconds(m) for m in metrics)
        start = self.now + timedelta(seconds=first)
        self.w.update(
            analysis=AnalysisRun(
                phase=phase,
                revision=release.revision,
                window_start=iso(start),
                runs=runs,
                step=step,
            )
        )
        if runs == 1:
            self.w.event(
                "AnalysisStarted",
                f"{phase}-promotion analysis of {release.revision} on {release.color.value}: "
                + ", ".join(m.name for m in metrics),
            )
        self.w.poll(first)

    def analysis_message(self) -> str:
        run = self.st.analysis
        return run.message if run is not None else ""

    def pause_inconclusive(self) -> None:
        message = f"analysis inconclusive, taking it again: {self.analysis_message()}"
        self.w.update(phase=Phase.PAUSED, message=message)
        self.w.event("AnalysisInconclusive", message, "Warning")
        self.w.poll(0)

    def promote(self) -> None:
        """Switch to the candidate once it is saturated at full scale."""
        release = self.st.release
        assert release is not None
        cand = release.color
        self.ensure_deployment(cand, self.spec.replicas)
        if not self.saturated(cand, self.spec.replicas):
            # Time spent waiting for the promotion (a manual gate, autoPromotionSeconds)
            # does not count against scaling up: the deadline runs from the request.
            if self.deadline_passed(release.promotion_requested_at):
                self.begin_rollback(
                    "ProgressDeadlineExceeded",
                    f"{self.ready_count(cand)}/{self.spec.replicas} replicas of {cand.value} "
                    "ready at promotion time",
                )
            else:
                self.w.poll(POLL_ROLLOUT)
            return
        self.w.update(phase=Phase.OBSERVING, active_color=cand)
        self.w.release(switched_at=iso(self.now))
        self.w.event(
            "Switched",
            f"active Service {naming.active_service(self.name)} now selects {cand.value} "
            f"(revision {self.target})",
        )
        self.w.poll(POLL_SWITCH)

    def observing(self) -> None:
        release = self.st.release
        assert release is not None and self.st.active_color is not None
        if release.endpoints_converged_at is None:
            if self.converged(self.st.active_color):
                latency = round(self.elapsed(release.switched_at), 3)
                self.w.release(endpoints_converged_at=iso(self.now), switch_latency_seconds=latency)
                self.w.event(
                    "EndpointsConverged",
                    f"every ready endpoint behind {naming.active_service(self.name)} is "
                    f"{self.st.active_color.value}, {latency:.3f}s after the switch",
                )
                self.w.poll(0)
            elif self.elapsed(release.switched_at) > self.spec.strategy.progress_deadline_seconds:
                self.begin_rollback(
                    "EndpointsNotConverged",
                    "the active Service's EndpointSlices did not converge on "
                    f"{self.st.active_color.value}",
                )
            else:
                self.w.poll(POLL_SWITCH)
            return
        if self.target != release.revision and release.previous_color is not None:
            self.begin_rollback(
                "Superseded", f"superseded by revision {self.target} during observation"
            )
            return
        if analysis_metrics(self.app, "post") and not self.analysis_passed(
            "post", "PostPromotionAnalysisFailed"
        ):
            return
        self.complete()

    def complete(self) -> None:
        release = self.st.release
        assert release is not None
        self.finish(ReleaseResult.PROMOTED, "Promoted")
        self.w.update(phase=Phase.HEALTHY, stable_revision=release.revision, message="")
        if release.previous_color is not None:
            at = self.now + timedelta(seconds=self.spec.strategy.scale_down_delay_seconds)
            self.w.update(scale_down=ScaleDown(color=release.previous_color, at=iso(at)))
        self.w.event(
            "Promoted",
            f"revision {release.revision} is stable on {release.color.value} after "
            f"{self.elapsed(release.started_at):.1f}s",
        )

    def rolling_back(self) -> None:
        release = self.st.release
        assert release is not None
        stable = release.previous_color
        if stable is None:
            self.fail_first_deploy()
            return
        if self.st.active_color is not stable:
            # Traffic goes back only to a saturated colour: the warm one normally is;
            # if it is not, it scales up first and traffic stays where it is meanwhile.
            self.ensure_scale(stable, self.spec.replicas)
            if self.saturated(stable, self.spec.replicas, self.st.stable_revision):
                self.w.update(active_color=stable)
                self.w.release(switched_back_at=iso(self.now))
                self.w.poll(POLL_SWITCH)
            else:
                self.w.poll(POLL_ROLLOUT)
            return
        if not self.converged(stable):
            self.w.poll(POLL_SWITCH)
            return
        if release.rollback_started_at is not None:
            self.w.release(rollback_seconds=round(self.elapsed(release.rollback_started_at), 3))
        superseded = release.reason == "Superseded"
        result = (
            ReleaseResult.SUPERSEDED
            if superseded
            else ReleaseResult.ABORTED
            if release.reason == "Aborted"
            else ReleaseResult.ROLLED_BACK
        )
        failed = self.st.failed_revisions
        if not superseded and release.revision not in failed:
            failed = [*failed, release.revision][-FAILED_REVISIONS_LIMIT:]
        at = self.now + timedelta(seconds=self.spec.strategy.abort_scale_down_delay_seconds)
        self.finish(result)
        if superseded:
            # Traffic is safe on the stable colour: go on with the newest revision.
            self.w.event(
                "ReleaseSuperseded", f"revision {release.revision} superseded by {self.target}"
            )
            if self.target == self.st.stable_revision:
                self.w.update(
                    phase=Phase.HEALTHY, scale_down=ScaleDown(color=release.color, at=iso(at))
                )
            elif self.target in self.st.failed_revisions:
                self.w.update(scale_down=ScaleDown(color=release.color, at=iso(at)))
                self.mark_degraded_by_failed_revision()
            else:
                self.start_release(release.color, stable)
            return
        self.w.update(
            failed_revisions=failed,
            scale_down=ScaleDown(color=release.color, at=iso(at)),
            phase=Phase.DEGRADED,
            message=f"revision {release.revision} {result.value}: {release.message}",
        )
        self.w.event(
            result.value,
            f"traffic is back on {stable.value} (revision {self.st.stable_revision}); "
            f"{release.reason}: {release.message}",
            "Warning",
        )

    def degraded(self) -> None:
        if self.st.active_color is None:
            if self.target not in self.st.failed_revisions:
                self.start_release(Color.BLUE, None)
            return
        if self.target == self.st.stable_revision:
            self.w.update(phase=Phase.HEALTHY, candidate_revision=None, message="")
            self.w.event("Recovered", f"the spec is back on stable revision {self.target}")
        elif self.target not in self.st.failed_revisions:
            self.start_release(self.st.active_color.other, self.st.active_color)

    # ------------------------------------------------------------------ every pass

    def upkeep(self) -> None:
        """What holds in every phase: Services, the active colour's scale, delayed
        scale-downs, and the derived status fields."""
        st = self.st
        active = st.active_color
        if active is not None:
            self.ensure_service(render.active_service(self.app, active))
            preview = active
            if st.phase in (Phase.ANALYZING, Phase.PAUSED) and st.release is not None:
                preview = st.release.color
            self.ensure_service(render.preview_service(self.app, preview))
            stable_color = active
            if st.phase is Phase.OBSERVING and st.release and st.release.previous_color:
                stable_color = active  # the candidate serves; the old colour stays as it is
            self.ensure_scale(stable_color, self.spec.replicas)
        if self.obs.deployments:
            self.ensure_service(render.metrics_service(self.app))
        if active is not None:
            self.ensure_ingresses()
        if (
            self.spec.monitoring.service_monitor.enabled
            and self.obs.service_monitor_supported
            and self.obs.deployments
        ):
            desired = render.service_monitor(self.app)
            have = self.obs.service_monitor
            if have is None or have.get("spec") != desired["spec"]:
                self.w.actions.append(Apply(desired))
        sd = self.st.scale_down
        if sd is not None:
            busy = sd.color is self.st.active_color or (
                self.st.release is not None
                and self.st.release.color is sd.color
                and self.st.phase in (Phase.DEPLOYING, Phase.ANALYZING, Phase.PAUSED)
            )
            wait = (parse(sd.at) - self.now).total_seconds()
            if busy:
                self.w.update(scale_down=None)
            elif wait <= 0:
                self.ensure_scale(sd.color, 0)
                self.w.update(scale_down=None)
                self.w.event("ScaledDown", f"{sd.color.value} scaled to zero")
            else:
                self.w.poll(wait)
        self.derive()

    def derive(self) -> None:
        st = self.st
        active = st.active_color
        ready = len(self.obs.ready_pods(active)) if active is not None else 0
        selector = naming.label_selector(naming.selector(self.name, active)) if active else ""
        self.w.update(
            pinned_images=dict(self.pins),
            message=st.message if st.phase in (Phase.DEGRADED, Phase.PAUSED) else "",
            observed_generation=self.app.metadata.generation,
            replicas=ready,
            selector=selector,
            candidate_revision=(
                st.release.revision
                if st.release is not None and st.phase not in (Phase.HEALTHY, Phase.DEGRADED)
                else None
            ),
        )
        self.w.update(conditions=self.conditions())

    def conditions(self) -> list[Condition]:
        st = self.st
        phase = st.phase
        release = st.release
        active = st.active_color
        ready = len(self.obs.ready_pods(active)) if active is not None else 0
        available = active is not None and (ready >= min(self.spec.replicas, 1))
        progressing = phase in IN_FLIGHT_PHASES
        desired = [
            (
                "Available",
                available,
                "ActiveColorReady" if available else "NoReadyActiveColor",
                f"{ready} ready replicas of {active.value} serve traffic"
                if active
                else "nothing serves yet",
            ),
            (
                "Progressing",
                progressing,
                phase.value if progressing else (release.reason or "Idle") if release else "Idle",
                (
                    f"release of revision {release.revision} to {release.color.value}: {phase.value}"
                    if progressing and release
                    else ""
                ),
            ),
            (
                "Degraded",
                phase is Phase.DEGRADED,
                (release.reason or "ReleaseFailed")
                if phase is Phase.DEGRADED and release
                else "AsExpected",
                st.message if phase is Phase.DEGRADED else "",
            ),
            (
                "Paused",
                phase is Phase.PAUSED,
                "ManualPromotion" if phase is Phase.PAUSED else "NotPaused",
                "waiting for `kubectl bluegreen promote`" if phase is Phase.PAUSED else "",
            ),
        ]
        if self.spec.image.resolve_digest is not ResolveDigest.NEVER:
            issue = self.image_issue
            desired.append(
                (
                    "ImagePinned",
                    issue is None,
                    "Pinned" if issue is None else issue.reason,
                    ", ".join(f"{k} -> {v}" for k, v in self.pins.items() if k != v)
                    if issue is None
                    else issue.message,
                )
            )
        if self.spec.monitoring.service_monitor.enabled:
            supported = self.obs.service_monitor_supported
            desired.append(
                (
                    "ServiceMonitorReady",
                    supported,
                    "Applied" if supported else "CRDNotInstalled",
                    f"ServiceMonitor {naming.service_monitor(self.name)} selects "
                    f"{naming.metrics_service(self.name)}"
                    if supported
                    else "monitoring.coreos.com/v1 is not served: install the Prometheus "
                    "Operator CRDs for a ServiceMonitor, or set "
                    "spec.monitoring.serviceMonitor.enabled: false",
                )
            )
        old = {c.type: c for c in st.conditions}
        out = []
        for ctype, value, reason, message in desired:
            status = "True" if value else "False"
            prev = old.get(ctype)
            changed = prev is None or prev.status != status
            out.append(
                Condition(
                    type=ctype,
                    status=status,
                    reason=reason,
                    message=message,
                    last_transition_time=iso(self.now)
                    if changed or prev is None
                    else prev.last_transition_time,
                    observed_generation=self.app.metadata.generation,
                )
            )
        return out

    # ------------------------------------------------------------------ entry

    def fail_before_pods(self, color: Color, previous: Color | None, issue: ImageIssue) -> None:
        """spec.image.resolveDigest: Required, and the image cannot be pinned: the release
        fails before any pod of it is created; traffic stays where it is."""
        where = (
            f"traffic stays on {previous.value}" if previous is not None else "nothing was deployed"
        )
        message = f"{issue.message}; no pod was created, {where}"
        self.w.update(
            release=Release(
                revision=self.target,
                image=self.image,
                color=color,
                previous_color=previous,
                started_at=iso(self.now),
                reason=issue.reason,
                message=message,
            )
        )
        self.finish(ReleaseResult.FAILED, issue.reason, message)
        dep = self.obs.deployments.get(color)
        if previous is not None and dep is not None and dep.revision != self.st.stable_revision:
            self.ensure_scale(color, 0)  # a superseded candidate, if any, goes away
        self.w.update(
            phase=Phase.DEGRADED,
            message=message,
            failed_revisions=[*self.st.failed_revisions, self.target][-FAILED_REVISIONS_LIMIT:],
        )
        self.w.event(issue.reason, message, "Warning")

    def run(self) -> Plan:
        if self.image_issue is not None and self.image_issue.kind == "hold":
            # Required digests, and the registry does not answer: nothing moves until it
            # does; the ImagePinned condition says why.
            self.upkeep()
            self.w.poll(POLL_REGISTRY)
            return Plan(
                actions=tuple(self.w.actions),
                status=self.st,
                events=tuple(self.w.events),
                requeue_after=self.w.requeue,
            )
        if not self.handle_request():
            step = {
                Phase.PENDING: self.pending,
                Phase.HEALTHY: self.healthy,
                Phase.DEPLOYING: self.deploying,
                Phase.ANALYZING: self.analyzing,
                Phase.PAUSED: self.paused,
                Phase.OBSERVING: self.observing,
                Phase.ROLLING_BACK: self.rolling_back,
                Phase.DEGRADED: self.degraded,
            }[self.st.phase]
            step()
        self.upkeep()
        if needs_polling(self.st, self.spec.replicas) and self.w.requeue is None:
            self.w.poll(POLL_SCALING if self.st.phase is Phase.HEALTHY else POLL_ROLLOUT)
        return Plan(
            actions=tuple(self.w.actions),
            status=self.st,
            events=tuple(self.w.events),
            requeue_after=self.w.requeue,
        )


def plan(app: BlueGreenApp, observed: Observed) -> Plan:
    """Decide one step for `app` given the world as `observed`."""
    return _Planner(app, observed).run()


def _service_matches(have: ServiceState, want: dict[str, Any]) -> bool:
    spec = want["spec"]
    ports = tuple((p["name"], int(p["port"]), str(p["targetPort"])) for p in spec.get("ports", []))
    return (
        dict(have.selector) == spec["selector"]
        and have.ports == ports
        and have.has_owner
        and have.headless == (spec.get("clusterIP") == "None")
    )


def _analysis_summary(
    metrics: list[Metric],
    measurements: list[Measurement],
    verdicts: dict[str, Verdict],
    now: datetime,
) -> str:
    """One line per metric: its verdict, how many measurements, and the latest value."""
    parts = []
    for metric in metrics:
        taken = analysis.window(metric, measurements, now)
        failed = sum(m.verdict is MeasurementVerdict.FAILED for m in taken)
        last = next((m for m in reversed(taken) if m.verdict is MeasurementVerdict.FAILED), None)
        last = last or (taken[-1] if taken else None)
        detail = f"{last.message}" if last is not None and last.message else ""
        if last is not None and last.value is not None and not detail:
            detail = f"value {last.value:g}"
        parts.append(
            f"{metric.name} {verdicts[metric.name].value} ({len(taken)}/{metric.count} taken, "
            f"{failed} failed{'; ' + detail if detail else ''})"
        )
    return "; ".join(parts)


@dataclass(frozen=True)
class ImageIssue:
    """Why the template's images are not (all) pinned to digests."""

    kind: Literal["fail", "hold", "warn"]
    reason: str
    message: str


def _pins(app: BlueGreenApp, observed: Observed) -> tuple[dict[str, str], ImageIssue | None]:
    """Each image as written -> the reference to run, per spec.image.resolveDigest.

    Required: an image that does not exist (or cannot be pinned) fails the release before
    any pod; a registry that does not answer holds everything until it does. IfPossible:
    both fall back to the tag, and the ImagePinned condition says why. A registry that does
    not answer never changes a pin made before (no release caused by an outage)."""
    policy = app.spec.image.resolve_digest
    if policy is ResolveDigest.NEVER:
        return {}, None
    required = policy is ResolveDigest.REQUIRED
    known = app.status.pinned_images
    pins: dict[str, str] = {}
    issues: list[ImageIssue] = []
    for image in render.images(app):
        r = observed.images.get(image)
        outcome = r.outcome if r is not None else ResolutionOutcome.UNAVAILABLE
        message = r.message if r is not None else f"{image}: not resolved yet"
        if r is not None and r.pinned_image is not None:
            pins[image] = r.pinned_image
        elif image in known and outcome in (
            ResolutionOutcome.UNAVAILABLE,
            ResolutionOutcome.NOT_FOUND,
        ):
            # Keep what runs: an outage or a deleted tag is no reason for a new release.
            pins[image] = known[image]
        elif outcome is ResolutionOutcome.UNAVAILABLE:
            issues.append(
                ImageIssue("hold" if required else "warn", "RegistryUnavailable", message)
            )
        elif outcome is ResolutionOutcome.NOT_FOUND:
            issues.append(ImageIssue("fail" if required else "warn", "ImageNotFound", message))
        elif outcome is ResolutionOutcome.NOT_ECR:
            issues.append(
                ImageIssue(
                    "fail" if required else "warn",
                    "ImageNotPinnable",
                    f"{image} is not an Amazon ECR image: pin it by digest in the template, "
                    "or use resolveDigest: IfPossible",
                )
            )
    for kind in ("fail", "hold", "warn"):
        found = [i for i in issues if i.kind == kind]
        if found:
            return pins, ImageIssue(
                found[0].kind, found[0].reason, "; ".join(i.message for i in found)
            )
    return pins, None


def _ingress_matches(have: IngressState, want: dict[str, Any]) -> bool:
    wanted = want["metadata"].get("annotations") or {}
    return dict(have.spec) == want["spec"] and all(
        have.annotations.get(k) == v for k, v in wanted.items()
    )
