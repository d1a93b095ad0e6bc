"""`kubectl bluegreen lint FILE...`: validate BlueGreenApp manifests offline.

The rules are the API server's: the CRD is generated from the pydantic models of
`bluegreen.api`, and every CEL rule of the CRD has a validator in the model with the same
message. Lint runs the model (and the two rules on metadata.name the CRD adds), so it says
what `kubectl apply` would be told, without a cluster. The CEL rules themselves are not
evaluated here: they use Kubernetes' own CEL library (isSorted, duration), which no Python
CEL runtime ships; the cluster tests check that lint and the API server agree.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bluegreen.api import GROUP, KIND, BlueGreenAppSpec, crdgen
from bluegreen.api.text import printable
from bluegreen.api.v1alpha1 import MAX_NAME_LENGTH
from bluegreen.kubectl.cluster import EXIT_NOT_FOUND, EXIT_OK
from bluegreen.kubectl.format import dump, terminal

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Every object's name, checked by the API server before the CRD's own rules.
SUBDOMAIN_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
SUBDOMAIN_PATTERN = re.compile(f"^{SUBDOMAIN_RE}$")
SUBDOMAIN_MAX = 253
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{SUBDOMAIN_RE}')"
)
NAME_TOO_LONG = (
    f"metadata.name must be at most {MAX_NAME_LENGTH} characters: the operator derives "
    "Service names such as <name>-preview from it"
)
NAME_NOT_DNS = (
    "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting "
    "with a letter): it names the app's Services"
)


def _clean(loc: Sequence[int | str]) -> list[int | str]:
    """The loc without pydantic's own steps (function-after[...], tagged unions)."""
    return [p for p in loc if isinstance(p, int) or not str(p).startswith(_INTERNAL)]


_INTERNAL = ("function-", "tagged-union", "lax-or-strict")


def field_path(loc: Sequence[int | str]) -> str:
    """('spec', 'analysis', 'prePromotion', 0) -> 'spec.analysis.prePromotion[0]'"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(_INTERNAL):
            out += f".{part}" if out else str(part)
    return out


@functools.cache
def _schema() -> dict[str, Any]:
    version = crdgen.crd()["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def schema_at(loc: Sequence[int | str]) -> dict[str, Any]:
    """The CRD schema's node at `loc` ({} past what the schema describes)."""
    node: Any = _schema()
    for part in loc:
        if not isinstance(node, dict):
            return {}
        if isinstance(part, int):
            node = node.get("items") or {}
        else:
            node = (node.get("properties") or {}).get(str(part))
    return node if isinstance(node, dict) else {}


def rule_location(loc: Sequence[int | str], text: str) -> Sequence[int | str]:
    """Where the CRD's CEL rule with this message sits: the API server reports that node
    (a model validator may sit on one of its fields)."""
    for end in range(len(loc), -1, -1):
        rules = schema_at(loc[:end]).get("x-kubernetes-validations") or []
        if any(r.get("message") == text for r in rules):
            return loc[:end]
    return loc


def message(error: ErrorDetails, prefix: Sequence[str] = ("spec",)) -> str:
    """One pydantic error as the API server words the same mistake."""
    path = field_path([*prefix, *error["loc"]])
    kind = error["type"]
    if kind == "value_error":
        text = str(error["msg"]).removeprefix("Value error, ")
        where = field_path(rule_location([*prefix, *_clean(error["loc"])], text))
        return f"{where}: Invalid value: {text}"
    if kind == "missing":
        return f"{path}: Required value"
    if kind == "extra_forbidden":
        return f'unknown field "{path}"'
    return f"{path}: Invalid value: {error.get('input')!r}: {error['msg']}"


def problems(doc: Mapping[str, Any]) -> list[str]:
    """What the API server would refuse in this BlueGreenApp; [] when it is valid."""
    out = []
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        out.append("metadata.name: Required value: name or generateName is required")
    else:
        if len(name) > SUBDOMAIN_MAX or not SUBDOMAIN_PATTERN.match(name):
            out.append(f"metadata.name: Invalid value: {json.dumps(name)}: {SUBDOMAIN}")
        if len(name) > MAX_NAME_LENGTH:
            out.append(f"<nil>: Invalid value: {NAME_TOO_LONG}")
        if not NAME_PATTERN.match(name):
            out.append(f"<nil>: Invalid value: {NAME_NOT_DNS}")
    if "spec" not in doc:
        return [*out, "spec: Required value"]
    spec = doc["spec"]
    if isinstance(spec, Mapping) and "template" not in spec:
        out.append("spec.template: Required value")
        return out
    try:
        BlueGreenAppSpec.model_validate(spec)
    except ValidationError as err:
        out.extend(message(e) for e in err.errors())
    return out


def documents(path: str) -> Iterator[tuple[int, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    for index, doc in enumerate(yaml.safe_load_all(text)):
        if doc is not None:
            yield index, doc


def is_app(doc: Any) -> bool:
    return (
        isinstance(doc, Mapping)
        and doc.get("kind") == KIND
        and str(doc.get("apiVersion", "")).split("/")[0] == GROUP
    )


def cmd_lint(args: argparse.Namespace) -> int:
    code = EXIT_OK
    results: list[dict[str, Any]] = []
    for path in args.files:
        where = "stdin" if path == "-" else path
        try:
            docs = list(documents(path))
        except (OSError, yaml.YAMLError) as err:
            print(terminal(f"{where}: error: {err}"), file=sys.stderr)
            code = EXIT_NOT_FOUND
            continue
        for index, doc in docs:
            if not is_app(doc):
                continue
            name = printable(str((doc.get("metadata") or {}).get("name") or f"document {index}"))
            found = problems(doc)
            results.append({"file": where, "name": name, "valid": not found, "problems": found})
            if found:
                code = EXIT_NOT_FOUND
    if args.output in ("json", "yaml"):
        print(dump(results, args.output))
    else:
        for r in results:
            if r["valid"]:
                print(terminal(f'{r["file"]}: {KIND.lower()} "{r["name"]}" is valid'))
            for problem in r["problems"]:
                print(terminal(f'{r["file"]}: {KIND.lower()} "{r["name"]}": {problem}'))
    if not results and code == EXIT_OK:
        print(terminal(f"error: no {KIND} in {', '.join(args.files)}"), file=sys.stderr)
        return EXIT_NOT_FOUND
    return code
