"""Check Grafana dashboard JSON files against Grafana's own schema models.

Run with the Python of .cache/grafana-sdk-venv (tests/support/dashboards.py makes it), not
the project's: it imports grafana_foundation_sdk, whose models are generated from Grafana's
dashboard, panel and Prometheus query schemas. Run it isolated (-I): this folder holds a
module named `operator`, which must not shadow the standard library's.

    python -I grafana_schema_check.py release.json operator.json  # prints JSON, exit 1 on problems

For each dashboard:
- it decodes with the SDK (Dashboard.from_json, with every panel and query plugin registered);
- every key of the file survives a decode/encode round trip, i.e. the schema knows it (a
  misspelt `gridpos` or `fieldconfig` or an unknown panel option is dropped, and reported),
  but for the few fields Grafana reads that the generated models leave out (LEGACY below);
- every panel's type has a schema (its options decode to a typed model, not a plain dict)
  and every query decodes as a Prometheus query;
- every field typed with an enum or a Literal in the schema holds one of its values (the
  SDK's decoder does not check that itself).
"""

from __future__ import annotations

import enum
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard

# Keys Grafana reads that the generated models do not list. Prometheus annotation queries
# keep their options at the top level (Grafana's prometheus datasource migrates them into a
# query when it runs the annotation); `definition` is the text a query variable shows in
# the variables list.
LEGACY = [
    re.compile(r"/annotations/list\[\d+\]/(step|tagKeys|textFormat|titleFormat|useValueForTime)"),
    re.compile(r"/templating/list\[\d+\]/definition"),
]


def key_paths(value: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(f"{path}/{key}")
            out |= key_paths(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out |= key_paths(item, f"{path}[{i}]")
    return out


def is_model(value: Any) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.") and hasattr(
        value, "to_json"
    )


def check_values(value: Any, hint: Any, path: str, problems: list[str]) -> None:
    """Enum and Literal fields hold allowed values; recurse into lists and models."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        return
    if origin is typing.Union:
        options = [a for a in args if a is not type(None)]
        enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
        literals = [
            v for a in options if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)
        ]
        if (enums or literals) and len(options) == len(enums) + sum(
            1 for a in options if typing.get_origin(a) is typing.Literal
        ):
            allowed = {m.value for e in enums for m in e} | set(literals)
            raw = value.value if isinstance(value, enum.Enum) else value
            if raw not in allowed:
                problems.append(f"{path}: {raw!r} is not one of {sorted(map(str, allowed))}")
            return
        for option in options:
            check_values(value, option, path, problems)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        raw = value.value if isinstance(value, enum.Enum) else value
        if raw not in {m.value for m in hint}:
            problems.append(f"{path}: {raw!r} is not one of {sorted(str(m.value) for m in hint)}")
        return
    if origin is typing.Literal:
        if value not in args:
            problems.append(f"{path}: {value!r} is not one of {list(args)}")
        return
    if origin is list and isinstance(value, list):
        for i, item in enumerate(value):
            check_values(item, args[0] if args else Any, f"{path}[{i}]", problems)
        return
    if is_model(value):
        check_model(value, path, problems)


def check_model(model: Any, path: str, problems: list[str]) -> None:
    try:
        hints = typing.get_type_hints(type(model))
    except (NameError, TypeError):  # a forward reference the generated module cannot resolve
        hints = {}
    for name, value in vars(model).items():
        check_values(value, hints.get(name, Any), f"{path}.{name}", problems)


def check(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    problems: list[str] = []
    dashboard = Dashboard.from_json(data)
    back = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    for dropped in sorted(key_paths(data) - key_paths(back)):
        if not any(p.fullmatch(dropped) for p in LEGACY):
            problems.append(f"{dropped}: not in Grafana's schema (dropped by a round trip)")
    for i, panel in enumerate(dashboard.panels or []):
        where = f"panels[{i}] ({getattr(panel, 'title', '')!r}, {panel.type_val})"
        if isinstance(panel.options, dict):
            problems.append(f"{where}: no schema for panel type {panel.type_val!r}")
        for j, target in enumerate(getattr(panel, "targets", None) or []):
            if not isinstance(target, prometheus.Dataquery):
                problems.append(f"{where}.targets[{j}]: not a Prometheus query")
    check_model(dashboard, "dashboard", problems)
    return list(dict.fromkeys(problems))


def main(argv: list[str]) -> int:
    register_default_plugins()
    report = {path: check(Path(path)) for path in argv}
    print(json.dumps(report, indent=2))
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
