"""Analysis templates: resolve an app's `templates` and `args` into metrics. Pure.

    resolve(app.spec.analysis.pre_promotion_analysis, observed.templates,
            namespace="shop", taken={"error-rate"}, prometheus=True)
        -> Resolved(metrics=(Metric(...), ...), sources=("ClusterAnalysisTemplate/error-ratio@812",))
        or Unresolved(Reason.ANALYSIS_ARG_MISSING, "arg service of ClusterAnalysisTemplate ...")

`{{args.<name>}}` (spaces inside the braces allowed) is replaced in a metric's query,
minRequestsQuery and url, and is the whole value of a number it gives (thresholdRange.min
and max, minRequests). An arg takes the app's value, else the template's default. The
values are put in as they are, in one pass (a value is not scanned again); the app's own
placeholders ({{namespace}} {{name}} {{color}} {{revision}}) are left for the sample, so a
value or a default may use them.

Anything that keeps a template from resolving is an `Unresolved` with a reason a person can
act on; the release waits on it (`bluegreen.release.gates`), it never passes or fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import (
    CLUSTER_TEMPLATE_KIND,
    MAX_TEMPLATE_METRICS,
    TEMPLATE_KIND,
    AnalysisTemplateSpec,
    ArgType,
    Metric,
    TemplateAnalysis,
    TemplateMetric,
)
from bluegreen.api.v1alpha1.templates import PLACEHOLDER

MAX_SNAPSHOT_BYTES = 32 * 1024
"""The resolved metrics of one window, as JSON, at most: they are kept in the app's status."""

TemplateKey = tuple[bool, str]
"""(cluster scope, name): a ClusterAnalysisTemplate when the first is True."""


@dataclass(frozen=True)
class TemplateState:
    """A template as the gatherer found it: its spec, or why the stored object is not one."""

    cluster: bool
    name: str
    resource_version: str = ""
    spec: AnalysisTemplateSpec | None = None
    error: str = ""

    @property
    def kind(self) -> str:
        return kind_of(self.cluster)

    @property
    def source(self) -> str:
        return f"{self.kind}/{self.name}@{self.resource_version}"


@dataclass(frozen=True)
class Templates:
    """The templates an app names, as found; absent ones are not there."""

    found: Mapping[TemplateKey, TemplateState] = field(default_factory=dict)
    unreadable: frozenset[bool] = frozenset()
    """The scopes whose kind the operator cannot read (its CRD is not served, or, for
    ClusterAnalysisTemplates, a namespaced install has no right to list them)."""


@dataclass(frozen=True)
class Resolved:
    metrics: tuple[Metric, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Unresolved:
    reason: Reason
    message: str


def kind_of(cluster: bool) -> str:
    return CLUSTER_TEMPLATE_KIND if cluster else TEMPLATE_KIND


def keys(analyses: Iterable[TemplateAnalysis | None]) -> set[TemplateKey]:
    """Every template the given references name."""
    return {(t.cluster_scope, t.template_name) for a in analyses if a for t in a.templates}


def referenced(spec: Mapping[str, Any]) -> set[TemplateKey]:
    """Every template an app's spec names, read from the raw object (the runtime wakes the
    apps that name a template when it changes, without parsing every app)."""
    analysis = spec.get("analysis") or {}
    refs = [analysis.get("prePromotionAnalysis"), analysis.get("postPromotionAnalysis")]
    canary = (spec.get("strategy") or {}).get("canary") or {}
    refs += [step.get("analysis") for step in canary.get("steps") or [] if isinstance(step, dict)]
    out: set[TemplateKey] = set()
    for ref in refs:
        for t in (ref or {}).get("templates") or [] if isinstance(ref, dict) else []:
            if isinstance(t, dict) and isinstance(t.get("templateName"), str):
                out.add((t.get("clusterScope") is True, t["templateName"]))
    return out


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every {{args.<name>}} of `values`; leave any other placeholder as it is."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def placeholders(text: str | None) -> set[str]:
    return set(PLACEHOLDER.findall(text or ""))


def resolve(
    analysis: TemplateAnalysis,
    templates: Templates,
    *,
    namespace: str,
    taken: Collection[str] = (),
    prometheus: bool = True,
) -> Resolved | Unresolved:
    """The metrics of `analysis`'s templates with their args filled in, in order; or the
    first reason they cannot be. `taken` are the names of the window's inline metrics;
    `prometheus` says whether the app has analysis.prometheus (query metrics need it)."""
    states: list[TemplateState] = []
    for ref in analysis.templates:
        state = templates.found.get((ref.cluster_scope, ref.template_name))
        if state is None:
            return Unresolved(
                Reason.ANALYSIS_TEMPLATE_NOT_FOUND,
                _not_found(ref.cluster_scope, ref.template_name, namespace, templates),
            )
        if state.spec is None:
            return Unresolved(
                Reason.ANALYSIS_TEMPLATE_INVALID,
                f"{state.kind} {state.name} is not valid: {state.error}",
            )
        states.append(state)
    given = {a.name: a.value for a in analysis.args}
    declared = {a.name for s in states if s.spec for a in s.spec.args}
    unknown = sorted(set(given) - declared)
    if unknown:
        names = ", ".join(f"{s.kind} {s.name}" for s in states)
        return Unresolved(
            Reason.ANALYSIS_ARG_INVALID,
            f"arg {unknown[0]} is not an arg of {names}",
        )
    metrics: list[Metric] = []
    owner = {name: "the app's own metrics" for name in taken}
    for state in states:
        outcome = _resolve_one(state, given)
        if isinstance(outcome, Unresolved):
            return outcome
        for metric in outcome:
            if metric.name in owner:
                return Unresolved(
                    Reason.ANALYSIS_TEMPLATE_INVALID,
                    f"metric {metric.name} of {state.kind} {state.name} has the name of a "
                    f"metric of {owner[metric.name]}: names must be unique in a window",
                )
            owner[metric.name] = f"{state.kind} {state.name}"
            if metric.query is not None and not prometheus:
                return Unresolved(
                    Reason.ANALYSIS_TEMPLATE_INVALID,
                    f"metric {metric.name} of {state.kind} {state.name} is a query: the app "
                    "needs analysis.prometheus.address",
                )
            metrics.append(metric)
    return _bounded(metrics, tuple(s.source for s in states))


def _not_found(cluster: bool, name: str, namespace: str, templates: Templates) -> str:
    where = "" if cluster else f" in namespace {namespace}"
    message = f"{kind_of(cluster)} {name} not found{where}"
    if cluster in templates.unreadable:
        message += (
            f" (the operator cannot read {kind_of(cluster)}s: their CRD is not installed, "
            "the operator has no right to list them"
            + (", or it serves only some namespaces)" if cluster else ")")
        )
    return message


def _resolve_one(state: TemplateState, given: Mapping[str, str]) -> list[Metric] | Unresolved:
    spec = state.spec
    assert spec is not None
    what = f"{state.kind} {state.name}"
    values: dict[str, str] = {}
    for arg in spec.args:
        value = given.get(arg.name, arg.value)
        if value is None:
            return Unresolved(
                Reason.ANALYSIS_ARG_MISSING,
                f"arg {arg.name} of {what} has no default value and the app gives none",
            )
        if arg.type is ArgType.NUMBER and _number(value) is None:
            return Unresolved(
                Reason.ANALYSIS_ARG_INVALID,
                f"arg {arg.name} of {what} is a Number: {value!r} is not a number",
            )
        values[arg.name] = value
    out = []
    for metric in spec.metrics:
        resolved = _metric(metric, values, what)
        if isinstance(resolved, Unresolved):
            return resolved
        out.append(resolved)
    return out


def _metric(metric: TemplateMetric, values: Mapping[str, str], what: str) -> Metric | Unresolved:
    where = f"metric {metric.name} of {what}"
    texts = (metric.query, metric.url, metric.min_requests_query)
    bounds = {
        "thresholdRange.min": metric.threshold_range.min if metric.threshold_range else None,
        "thresholdRange.max": metric.threshold_range.max if metric.threshold_range else None,
        "minRequests": metric.min_requests,
    }
    used = set().union(*(placeholders(t) for t in texts))
    used |= {n for b in bounds.values() if isinstance(b, str) for n in placeholders(b)}
    undeclared = sorted(used - set(values))
    if undeclared:
        return Unresolved(
            Reason.ANALYSIS_TEMPLATE_INVALID,
            f"{where} uses {{{{args.{undeclared[0]}}}}}, which the template does not declare",
        )
    numbers: dict[str, float | None] = {}
    for field_name, bound in bounds.items():
        if isinstance(bound, str):
            text = substitute(bound, values)
            number = _number(text)
            if number is None:
                return Unresolved(
                    Reason.ANALYSIS_ARG_INVALID,
                    f"{field_name} of {where} is {bound}: {text!r} is not a number",
                )
            numbers[field_name] = number
        else:
            numbers[field_name] = bound
    data: dict[str, Any] = metric.model_dump(exclude_none=True, exclude={"threshold_range"})
    for key in ("query", "url", "min_requests_query"):
        if key in data:
            data[key] = substitute(data[key], values)
    if numbers["minRequests"] is not None:
        data["min_requests"] = numbers["minRequests"]
    if metric.threshold_range is not None:
        data["threshold_range"] = {
            k: v
            for k, v in (
                ("min", numbers["thresholdRange.min"]),
                ("max", numbers["thresholdRange.max"]),
            )
            if v is not None
        }
    try:
        return Metric.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        detail = f"{loc}: {first['msg']}" if loc else first["msg"]
        return Unresolved(
            Reason.ANALYSIS_TEMPLATE_INVALID, f"{where} is not a valid metric: {detail}"
        )


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _bounded(metrics: list[Metric], sources: tuple[str, ...]) -> Resolved | Unresolved:
    """A window's template metrics live in status: at most MAX_TEMPLATE_METRICS of them,
    and MAX_SNAPSHOT_BYTES in all."""
    if len(metrics) > MAX_TEMPLATE_METRICS:
        return Unresolved(
            Reason.ANALYSIS_TEMPLATE_INVALID,
            f"the templates give {len(metrics)} metrics; a window takes at most "
            f"{MAX_TEMPLATE_METRICS} from templates",
        )
    size = len(json.dumps([m.model_dump(mode="json", by_alias=True) for m in metrics]))
    if size > MAX_SNAPSHOT_BYTES:
        return Unresolved(
            Reason.ANALYSIS_TEMPLATE_INVALID,
            f"the templates' metrics, args filled in, take {size} bytes; a window keeps at "
            f"most {MAX_SNAPSHOT_BYTES} in status",
        )
    return Resolved(tuple(metrics), sources)
