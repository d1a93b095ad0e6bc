"""Conditions and the status fields derived from the snapshot.

`set_condition` alone owns the rule "lastTransitionTime changes only when the condition's
status changes" (argo-rollouts' SetRolloutCondition); everything that writes a condition,
the reconcile pass's rejected and invalid specs included, goes through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.api import IN_FLIGHT_PHASES, Condition, Phase, Verdict
from bluegreen.api.reasons import ConditionType, Reason
from bluegreen.api.text import readable
from bluegreen.api.v1alpha1 import ResolveDigest
from bluegreen.core import naming
from bluegreen.release import ingress
from bluegreen.release.context import Pass, pod_selector


@dataclass(frozen=True)
class Wanted:
    """A condition as this pass sees it, before its transition time is settled."""

    type: ConditionType
    true: bool
    reason: str
    message: str = ""


def condition(
    wanted: Wanted, existing: Sequence[Condition], now: str, generation: int | None
) -> Condition:
    """The condition `wanted` describes; its transition time moves only when its status
    differs from the one of its type in `existing`."""
    status = "True" if wanted.true else "False"
    kind = wanted.type.value
    prev = next((c for c in existing if c.type == kind), None)
    return Condition(
        type=kind,
        status=status,
        reason=wanted.reason,
        message=readable(wanted.message),
        last_transition_time=now
        if prev is None or prev.status != status
        else prev.last_transition_time,
        observed_generation=generation,
    )


def set_condition(
    conditions: Sequence[Condition], wanted: Wanted, now: str, generation: int | None
) -> list[Condition]:
    """`conditions` with the condition of `wanted`'s type replaced (or added last)."""
    new = condition(wanted, conditions, now, generation)
    if not any(c.type == wanted.type for c in conditions):
        return [*conditions, new]
    return [new if c.type == wanted.type else c for c in conditions]


def derive(p: Pass, extra: Sequence[Wanted] = ()) -> None:
    """The fields of status that follow from the phase and the snapshot; `extra` are the
    conditions of optional features (traffic routing)."""
    st = p.status
    active = st.active_color
    selector = naming.label_selector(pod_selector(p, active)) if active else ""
    p.update(
        pinned_images=dict(p.pins),
        message=st.message
        if st.phase in (Phase.DEGRADED, Phase.PAUSED)
        else (ingress.refusal(p) or ""),
        observed_generation=p.app.metadata.generation,
        replicas=len(p.observed.ready_pods(active)) if active is not None else 0,
        selector=selector,
        candidate_revision=(
            st.release.revision
            if st.release is not None and st.phase not in (Phase.HEALTHY, Phase.DEGRADED)
            else None
        ),
    )
    generation, now = p.app.metadata.generation, p.stamp()
    wanted = [*_wanted(p), *extra]
    p.update(conditions=[condition(w, st.conditions, now, generation) for w in wanted])


def _wanted(p: Pass) -> list[Wanted]:
    wanted = [_available(p), _progressing(p), _degraded(p), _paused(p), *_kstatus(p)]
    if p.spec.image.resolve_digest is not ResolveDigest.NEVER:
        wanted.append(_image_pinned(p))
    if p.spec.monitoring.service_monitor.enabled:
        wanted.append(_service_monitor(p))
    if p.spec.ingress is not None:
        wanted.append(_ingress_admitted(p))
    return wanted


def _ingress_admitted(p: Pass) -> Wanted:
    refused = ingress.refusal(p)
    if refused is not None:
        return Wanted(ConditionType.INGRESS_ADMITTED, False, Reason.INGRESS_REFUSED, refused)
    return Wanted(
        ConditionType.INGRESS_ADMITTED,
        True,
        Reason.ADMITTED,
        "spec.ingress is within the operator's Ingress guard",
    )


def _available(p: Pass) -> Wanted:
    active = p.status.active_color
    ready = len(p.observed.ready_pods(active)) if active is not None else 0
    available = active is not None and ready >= min(p.spec.replicas, 1)
    message = f"{ready} ready replicas of {active.value} serve traffic" if active else ""
    return Wanted(
        ConditionType.AVAILABLE,
        available,
        Reason.ACTIVE_COLOR_READY if available else Reason.NO_READY_ACTIVE_COLOR,
        message or "nothing serves yet",
    )


def _progressing(p: Pass) -> Wanted:
    phase, release = p.status.phase, p.status.release
    if phase in IN_FLIGHT_PHASES:
        message = (
            f"release of revision {release.revision} to {release.color.value}: {phase.value}"
            if release
            else ""
        )
        return Wanted(ConditionType.PROGRESSING, True, phase.value, message)
    reason = (release.reason or Reason.IDLE) if release else Reason.IDLE
    return Wanted(ConditionType.PROGRESSING, False, reason)


def _degraded(p: Pass) -> Wanted:
    st = p.status
    if st.phase is not Phase.DEGRADED:
        return Wanted(ConditionType.DEGRADED, False, Reason.AS_EXPECTED)
    return Wanted(ConditionType.DEGRADED, True, degraded_reason(p), st.message)


def degraded_reason(p: Pass) -> str:
    """Why the app is Degraded: the reason its release of the revision the spec asks for
    ended with; or, when the spec asks for a revision that failed before and is refused
    (the last release being another one), RevisionFailedBefore."""
    release = p.status.release
    if release is not None and release.revision == p.target and release.reason:
        return release.reason
    if p.target in p.status.failed_revisions:
        return Reason.REVISION_FAILED_BEFORE
    return (release.reason if release else "") or Reason.RELEASE_FAILED


def _paused(p: Pass) -> Wanted:
    """Why the release waits: analysis templates that do not resolve, the endpoint policy,
    analysis that could not say, or a person's promotion."""
    if p.status.phase is not Phase.PAUSED:
        return Wanted(ConditionType.PAUSED, False, Reason.NOT_PAUSED)
    run = p.status.analysis
    if run is not None and run.unresolved is not None:
        return Wanted(ConditionType.PAUSED, True, run.unresolved.reason, run.unresolved.message)
    if run is not None and run.refused is not None:
        return Wanted(
            ConditionType.PAUSED, True, Reason.ANALYSIS_ENDPOINT_REFUSED, p.status.message
        )
    if run is not None and (run.verdict is Verdict.INCONCLUSIVE or run.runs > 1):
        return Wanted(ConditionType.PAUSED, True, Reason.ANALYSIS_INCONCLUSIVE, p.status.message)
    return Wanted(
        ConditionType.PAUSED,
        True,
        Reason.MANUAL_PROMOTION,
        "waiting for `kubectl bluegreen promote`",
    )


def _kstatus(p: Pass) -> list[Wanted]:
    """Ready, Reconciling and Stalled, as kstatus reads them (Flux's health checks,
    `kubectl wait --for=condition=Ready`): Current when Healthy, InProgress while a release
    is in flight or paused, Failed when Degraded."""
    phase = p.status.phase
    reason = degraded_reason(p) if phase is Phase.DEGRADED else ""
    refused = ingress.refusal(p)
    if phase is Phase.HEALTHY and refused is not None:
        # Not at rest on its spec: the Ingress it asks for is not written.
        ready = Wanted(ConditionType.READY, False, Reason.INGRESS_REFUSED, refused)
    elif phase is Phase.HEALTHY:
        ready = Wanted(ConditionType.READY, True, Reason.RELEASED, _serving(p))
    else:
        ready = Wanted(ConditionType.READY, False, phase.value, p.status.message)
    in_flight = phase in IN_FLIGHT_PHASES or phase is Phase.PAUSED
    reconciling = Wanted(
        ConditionType.RECONCILING,
        in_flight,
        phase.value if in_flight else Reason.IDLE,
        _progressing(p).message if in_flight else "",
    )
    stalled = Wanted(
        ConditionType.STALLED,
        phase is Phase.DEGRADED,
        (reason or Reason.RELEASE_FAILED) if phase is Phase.DEGRADED else Reason.AS_EXPECTED,
        p.status.message if phase is Phase.DEGRADED else "",
    )
    return [ready, reconciling, stalled]


def _serving(p: Pass) -> str:
    active = p.status.active_color
    if active is None:
        return ""
    return f"{active.value} serves revision {p.status.stable_revision}"


def _image_pinned(p: Pass) -> Wanted:
    issue = p.image_issue
    if issue is not None:
        return Wanted(ConditionType.IMAGE_PINNED, False, issue.reason, issue.message)
    pinned = ", ".join(f"{k} -> {v}" for k, v in p.pins.items() if k != v)
    return Wanted(ConditionType.IMAGE_PINNED, True, Reason.PINNED, pinned)


def _service_monitor(p: Pass) -> Wanted:
    if p.observed.service_monitor_supported:
        return Wanted(
            ConditionType.SERVICE_MONITOR_READY,
            True,
            Reason.APPLIED,
            f"ServiceMonitor {naming.service_monitor(p.name)} selects "
            f"{naming.metrics_service(p.name)}",
        )
    return Wanted(
        ConditionType.SERVICE_MONITOR_READY,
        False,
        Reason.CRD_NOT_INSTALLED,
        "monitoring.coreos.com/v1 is not served: install the Prometheus Operator CRDs for a "
        "ServiceMonitor, or set spec.monitoring.serviceMonitor.enabled: false",
    )
