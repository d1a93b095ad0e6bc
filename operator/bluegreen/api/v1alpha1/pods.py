"""The pod template of a BlueGreenApp (and of an analysis Job): kept as data, its outline
checked by the CRD, the rest by the API server when the Deployment or Job is written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bluegreen.api.v1alpha1.base import MAX_TEMPLATE_DEPTH, RESERVED_LABELS, TEMPLATE_DEPTH

MAX_JOB_LABELS = 16
JOB_RESTART_POLICIES = ("Never", "OnFailure")
_DEPLOYMENT_POD = (
    f"A PodTemplateSpec, exactly as in a Deployment (nested at most {MAX_TEMPLATE_DEPTH} "
    "levels deep)."
)
_JOB_POD = (
    "A PodTemplateSpec, exactly as in a Job. restartPolicy defaults to Never; the operator "
    "adds PREVIEW_URL, ACTIVE_URL and the other analysis variables to every container's env."
)


def _pod_template_schema(
    schema: dict[str, Any],
    description: str,
    max_labels: int | None = None,
    restart_policies: tuple[str, ...] | None = None,
) -> None:
    """The CRD checks the outline of a pod template; the Deployment (or Job) API checks the
    rest."""
    labels: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
    spec_properties: dict[str, Any] = {
        "containers": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
                "type": "object",
                "required": ["name", "image"],
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 63},
                    "image": {"type": "string", "minLength": 1, "maxLength": 4096},
                },
            },
        }
    }
    if restart_policies is not None:
        spec_properties["restartPolicy"] = {"type": "string", "enum": list(restart_policies)}
    if max_labels is not None:
        # The CEL rule below visits every label: a bound keeps its cost within the API
        # server's budget where the template is nested in lists (canary steps' metrics).
        labels["maxProperties"] = max_labels
    schema.clear()
    schema.update(
        {
            "type": "object",
            "description": description,
            "required": ["spec"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "labels": labels,
                        "annotations": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                    "x-kubernetes-validations": [
                        {
                            "rule": "!has(self.labels) || "
                            "self.labels.all(k, !k.startsWith('bluegreen.dev/'))",
                            "message": RESERVED_LABELS,
                        }
                    ],
                },
                "spec": {
                    "type": "object",
                    "required": ["containers"],
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": spec_properties,
                },
            },
        }
    )


def nesting(value: Any) -> int:
    """How many levels of objects and lists `value` nests (0 for a scalar); no recursion."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth <= MAX_TEMPLATE_DEPTH:
            todo.extend((child, depth) for child in children)
    return deepest


class PodTemplate(BaseModel):
    """A PodTemplateSpec, exactly as in a Deployment. Kept as data: the API server
    validates it when the Deployment is applied, and the CRD checks its outline."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema: _pod_template_schema(schema, _DEPLOYMENT_POD),
    )

    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _shallow(cls, data: Any) -> Any:
        # Before pydantic walks it: a template nested thousands deep must not reach its
        # recursion limits (or ours) as a crash of every pass.
        if nesting(data) > MAX_TEMPLATE_DEPTH:
            raise ValueError(TEMPLATE_DEPTH)
        return data

    @field_validator("metadata")
    @classmethod
    def _labels(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        for key in ("labels", "annotations"):
            values = metadata.get(key, {})
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ValueError(f"template.metadata.{key} must map names to strings")
        labels = metadata.get("labels", {})
        if any(k.startswith("bluegreen.dev/") for k in labels):
            raise ValueError(RESERVED_LABELS)
        return metadata

    @field_validator("spec")
    @classmethod
    def _has_containers(cls, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not 1 <= len(containers) <= 64:
            raise ValueError("template.spec.containers must list 1 to 64 containers")
        for c in containers:
            if not isinstance(c, dict):
                raise ValueError("template.spec.containers must be objects")
            for field, limit in (("name", 63), ("image", 4096)):
                value = c.get(field)
                if not isinstance(value, str) or not 1 <= len(value) <= limit:
                    raise ValueError(f"every container needs a {field} (1-{limit} characters)")
        return spec


class JobTemplate(PodTemplate):
    """The pod template of an analysis Job: the same outline and the same reserved labels
    (so a Job's pod never joins the app's Services), at most MAX_JOB_LABELS labels, and a
    restartPolicy a Job takes (Never, the default, or OnFailure)."""

    @field_validator("metadata")
    @classmethod
    def _few_labels(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(metadata.get("labels") or {}) > MAX_JOB_LABELS:
            raise ValueError(f"a job template takes at most {MAX_JOB_LABELS} labels")
        return metadata

    @field_validator("spec")
    @classmethod
    def _restart_policy(cls, spec: dict[str, Any]) -> dict[str, Any]:
        policy = spec.get("restartPolicy")
        if policy is not None and policy not in JOB_RESTART_POLICIES:
            raise ValueError(
                f"a job template's restartPolicy must be one of {', '.join(JOB_RESTART_POLICIES)}"
            )
        return spec

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema: _pod_template_schema(
            schema, _JOB_POD, max_labels=MAX_JOB_LABELS, restart_policies=JOB_RESTART_POLICIES
        ),
    )
