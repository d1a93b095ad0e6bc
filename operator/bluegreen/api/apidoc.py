"""docs/api.md: the API reference, generated from the CRD (itself generated from the models).

`make crds` writes it next to the CRDs, and `--check` fails when it drifts, like the CRDs.
One section per object of the schema (spec, status and every nested object), each field
with its type, default and description, and the rules (CEL) the API server enforces.
"""

from __future__ import annotations

import json
from typing import Any

from bluegreen.api import GROUP, KIND, VERSION
from bluegreen.api.v1alpha1 import CLUSTER_TEMPLATE_KIND, TEMPLATE_KIND

Schema = dict[str, Any]

INTRO = f"""# {KIND} API reference ({GROUP}/{VERSION})

Generated from the pydantic models by `make crds` (`python -m bluegreen.api.crdgen --write`);
do not edit by hand. The same schema is the CRD the API server validates with, so what this
page says a field accepts is what `kubectl apply` accepts. Every duration is a Go duration
(`15s`, `1m30s`, `1.5m`); every timestamp in status is RFC 3339 in UTC.
"""


TEMPLATES = f"""# {TEMPLATE_KIND} and {CLUSTER_TEMPLATE_KIND} ({GROUP}/{VERSION})

Analysis metrics with args, named by apps in `analysis.prePromotionAnalysis`,
`analysis.postPromotionAnalysis` and a canary step's `analysis` (see
[analysis-templates.md](analysis-templates.md)). An {TEMPLATE_KIND} lives in the namespace
of the apps that use it; a {CLUSTER_TEMPLATE_KIND} is cluster-scoped. Both have this spec.
"""


def render(root: Schema, templates: Schema | None = None) -> str:
    """The whole reference, from the CRDs' openAPIV3Schemas: the BlueGreenApp's, then the
    analysis templates' (one spec for both kinds)."""
    out = [INTRO]
    rules = root.get("x-kubernetes-validations") or []
    if rules:
        out.append("## The object\n")
        out.append(_rules(rules))
    seen: dict[str, str] = {}
    for top in ("spec", "status"):
        _section(out, top, root["properties"][top], seen)
    if templates is not None:
        out.append(TEMPLATES)
        _section(out, "AnalysisTemplate.spec", templates["properties"]["spec"], {})
    return "\n".join(out).rstrip() + "\n"


def _section(out: list[str], path: str, schema: Schema, seen: dict[str, str]) -> None:
    props = schema.get("properties") or {}
    if not props:
        return
    key = json.dumps(schema, sort_keys=True)
    title = f"## `{path}`\n"
    if schema.get("description"):
        title += f"\n{_text(schema['description'])}\n"
    if key in seen:
        out.append(f"{title}\nThe same fields as [`{seen[key]}`](#{_anchor(seen[key])}).\n")
        return
    seen[key] = path
    required = set(schema.get("required") or [])
    rows = ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    nested: list[tuple[str, Schema]] = []
    for name, sub in props.items():
        inner, suffix = (sub.get("items") or {}, "[]") if sub.get("type") == "array" else (sub, "")
        if inner.get("properties"):
            nested.append((f"{path}.{name}{suffix}", inner))
        rows.append(
            f"| `{name}`{' (required)' if name in required else ''} | {_type(sub)} | "
            f"{_default(sub)} | {_describe(sub)} |"
        )
    out.append(title)
    out.append("\n".join(rows) + "\n")
    if schema.get("x-kubernetes-validations"):
        out.append(_rules(schema["x-kubernetes-validations"]))
    for child, sub in nested:
        _section(out, child, sub, seen)


def _type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    if "type" not in schema and schema.get("x-kubernetes-preserve-unknown-fields"):
        return "number or string"
    kind = str(schema.get("type", "object"))
    if kind == "array":
        return f"list of {_type(schema.get('items') or {})}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of {_type(schema['additionalProperties'])}"
    if schema.get("enum"):
        return " \\| ".join(f"`{v}`" for v in schema["enum"] if v is not None)
    return kind


def _default(schema: Schema) -> str:
    if "default" not in schema:
        return ""
    return f"`{json.dumps(schema['default'])}`"


def _describe(schema: Schema) -> str:
    parts = [_text(schema.get("description", ""))]
    limits = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "min"),
            ("maximum", "max"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minItems", "min items"),
            ("maxItems", "max items"),
        )
        if key in schema
    ]
    if "pattern" in schema:
        limits.append(f"pattern `{schema['pattern']}`")
    if limits:
        parts.append("(" + ", ".join(limits) + ")")
    return " ".join(p for p in parts if p).replace("|", "\\|")


def _rules(rules: list[dict[str, str]]) -> str:
    lines = ["Rules the API server checks:", ""]
    lines += [f"- {_text(r['message'])}" for r in rules]
    return "\n".join(lines) + "\n"


def _text(text: str) -> str:
    return " ".join(text.split())


def _anchor(path: str) -> str:
    return "".join(c for c in path.lower() if c.isalnum() or c in "-_")
