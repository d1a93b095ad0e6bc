"""AnalysisTemplate and ClusterAnalysisTemplate: metrics written once, used by many apps.

    apiVersion: bluegreen.dev/v1alpha1
    kind: ClusterAnalysisTemplate          # or AnalysisTemplate (namespaced)
    metadata: {name: error-ratio}
    spec:
      args:
        - {name: service}
        - {name: threshold, value: "0.05", type: Number}
      metrics:
        - name: error-ratio
          query: sum(rate(http_requests_total{app="{{args.service}}",color="{{color}}",status=~"5.."}[1m])) / ...
          thresholdRange: {max: "{{args.threshold}}"}

A template's metric has the shape of an app's inline metric (`Metric`), with `{{args.<name>}}`
replaced in its query, minRequestsQuery and url, and allowed as the whole value of
thresholdRange.min/max and minRequests. The operator resolves them when an analysis window
opens (`bluegreen.core.templates`) and keeps the result in the app's status.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from bluegreen.api.v1alpha1.base import (
    LIST_MAP,
    METRIC_MIN_REQUESTS,
    THRESHOLD_EMPTY,
    Model,
    StoredObject,
    cel,
    unique_names,
)
from bluegreen.api.v1alpha1.metrics import Metric, promql, web_url
from bluegreen.api.v1alpha1.refs import ARG_NAME_PATTERN, MAX_ARG_VALUE

TEMPLATE_KIND = "AnalysisTemplate"
TEMPLATE_PLURAL = "analysistemplates"
TEMPLATE_SINGULAR = "analysistemplate"
CLUSTER_TEMPLATE_KIND = "ClusterAnalysisTemplate"
CLUSTER_TEMPLATE_PLURAL = "clusteranalysistemplates"
CLUSTER_TEMPLATE_SINGULAR = "clusteranalysistemplate"

PLACEHOLDER = re.compile(r"\{\{\s*args\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
"""`{{args.<name>}}`, spaces inside the braces allowed."""
WHOLE_PLACEHOLDER = re.compile(r"^\{\{\s*args\.[A-Za-z_][A-Za-z0-9_-]*\s*\}\}$")
NUMBER_OR_ARG = "must be a number or a single {{args.<name>}}"


def _number_or_arg(description: str) -> Any:
    """The schema of a number that an arg may give. A structural schema has no "number
    or string" type, and the API server's CEL cannot type such a field, so the CRD takes
    any value here; the operator checks it (AnalysisTemplateInvalid on the apps that use
    the template)."""

    def schema(field: dict[str, Any]) -> None:
        field.clear()
        field.update({"description": description, "x-kubernetes-preserve-unknown-fields": True})

    return schema


def _check_number_or_arg(value: Any) -> Any:
    """Before pydantic's own checks: a boolean (`max: yes`) is no number here."""
    if isinstance(value, bool) or (
        isinstance(value, str) and not WHOLE_PLACEHOLDER.fullmatch(value)
    ):
        raise ValueError(NUMBER_OR_ARG)
    return value


class ArgType(enum.StrEnum):
    STRING = "String"
    NUMBER = "Number"


class TemplateArg(Model):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=ARG_NAME_PATTERN)]
    value: Annotated[
        str | None,
        Field(
            max_length=MAX_ARG_VALUE,
            description="The default value; without one, every app must give the arg.",
        ),
    ] = None
    type: ArgType = Field(
        default=ArgType.STRING,
        description="Number: the value (given or default) must be a finite number.",
    )
    description: Annotated[str | None, Field(max_length=1024)] = None


class TemplateThresholdRange(Model):
    min: float | str | None = Field(
        default=None,
        json_schema_extra=_number_or_arg("Lower bound, inclusive: a number or {{args.<name>}}."),
    )
    max: float | str | None = Field(
        default=None,
        json_schema_extra=_number_or_arg("Upper bound, inclusive: a number or {{args.<name>}}."),
    )

    _args = field_validator("min", "max", mode="before")(_check_number_or_arg)

    @model_validator(mode="after")
    def _bounds(self) -> TemplateThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError(THRESHOLD_EMPTY)
        return self


_UNTYPED = re.compile(r"self\.minRequests\b(?!Query)")
"""minRequests: a number or an arg here, a field CEL cannot type (the model checks it)."""


def _rules_without_untyped_fields() -> ConfigDict:
    """The metric's CEL rules, less the one on minRequests (the model checks it)."""
    extra = Metric.model_config.get("json_schema_extra")
    rules = extra.get("x-kubernetes-validations") if isinstance(extra, dict) else None
    kept = []
    for r in rules if isinstance(rules, list) else []:
        if not isinstance(r, dict) or r.get("message") == METRIC_MIN_REQUESTS:
            continue
        rule = str(r["rule"])
        if _UNTYPED.search(rule):
            raise RuntimeError(f"a template rule names minRequests: {rule}")
        kept.append((rule, str(r["message"])))
    return cel(*kept)


class TemplateMetric(Metric):
    """A metric of a template: an inline metric's fields, with args."""

    model_config = _rules_without_untyped_fields()

    query: str | None = promql(
        "PromQL; {{args.<name>}} is replaced when the window opens, "
        "{{namespace}} {{name}} {{color}} {{revision}} when a sample is taken."
    )
    url: str | None = web_url(
        r"^(https?://|\{\{)",
        "web check: an http(s) URL that must answer 2xx; it may start with "
        "an {{args.<name>}} that gives the scheme and host.",
    )
    threshold_range: TemplateThresholdRange | None = Field(  # type: ignore[assignment]
        default=None,
        description="The range a value must be in (min and max inclusive); each bound a "
        "number or {{args.<name>}}. A web check defaults to min 1: answered 2xx.",
    )
    min_requests: float | str | None = Field(  # type: ignore[assignment]
        default=None,
        json_schema_extra=_number_or_arg(
            "Below this many requests a measurement is inconclusive: a number or {{args.<name>}}."
        ),
    )

    _args = field_validator("min_requests", mode="before")(_check_number_or_arg)


class AnalysisTemplateSpec(Model):
    args: Annotated[
        list[TemplateArg],
        Field(
            max_length=20,
            json_schema_extra=LIST_MAP,
            description="The args the metrics use as {{args.<name>}}.",
        ),
    ] = Field(default_factory=list)
    metrics: Annotated[
        list[TemplateMetric],
        Field(min_length=1, max_length=20, json_schema_extra=LIST_MAP),
    ]

    @field_validator("args", "metrics")
    @classmethod
    def _unique_names(cls, items: list[Any]) -> list[Any]:
        return unique_names(items, "arg and metric names must be unique")


class AnalysisTemplate(StoredObject):
    """An AnalysisTemplate (namespaced) or ClusterAnalysisTemplate, as the API stores it."""

    kind: str = TEMPLATE_KIND
    spec: AnalysisTemplateSpec
