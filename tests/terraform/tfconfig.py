"""terraform/ as data, for the offline tests: the parsed configuration and its resource graph,
and OpenTofu evaluating expressions that need no provider.

Nothing here talks to AWS or downloads providers. The files are parsed with python-hcl2 and
the resource graph is built from the parsed structure. Where a value has to be *computed*
(variable validations, the subnet plan, Helm values built from variables) the locally built
OpenTofu evaluates the expressions in a module made of `variables.tf` and, where asked, the
locals that depend on variables only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions
from tools.localcluster import helm_bin

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
HERE = Path(__file__).resolve().parent
TOFU = REPO / ".cache" / "bin" / "tofu" / "tofu"
HELM = helm_bin()
CHARTS = TF_DIR / "charts"
OPERATOR_CHART = REPO / "charts" / "bluegreen-operator"

# A reference to a managed resource inside an expression, e.g. `aws_subnet.public[*].id`.
# Data sources (`data.x.y`) are excluded by the look-behind.
RESOURCE_REF = re.compile(r"(?<![\w.])((?:aws|helm|kubernetes)_[a-z0-9_]+)\.([a-z0-9_]+)\b")
DATA_REF = re.compile(r"(?<![\w.])data\.[a-z0-9_]+\.[a-z0-9_]+\b")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([a-z0-9_]+)\b")

NETWORK_TYPES = {
    "aws_vpc",
    "aws_subnet",
    "aws_internet_gateway",
    "aws_eip",
    "aws_nat_gateway",
    "aws_route_table",
    "aws_route",
    "aws_route_table_association",
}
# Network resources a load balancer sits in or routes through; a controller that makes AWS
# create load balancers must name every one of them in depends_on. (The VPC follows from
# the subnets.)
LB_NETWORK_TYPES = NETWORK_TYPES - {"aws_vpc"}


# --- Parsing ------------------------------------------------------------------------------


def parse(path: Path) -> dict[str, Any]:
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh, serialization_options=options)


def expr(value: Any) -> str:
    """An attribute as expression text: `${aws_vpc.this.id}` -> `aws_vpc.this.id`."""
    text = value if isinstance(value, str) else json.dumps(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


@dataclass
class Config:
    files: dict[str, dict[str, Any]]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    modules: list[Any] = field(default_factory=list)

    def resource(self, address: str) -> dict[str, Any]:
        assert address in self.resources, f"{address} is not in terraform/"
        return self.resources[address]

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {a: b for a, b in self.resources.items() if a.split(".")[0] == rtype}

    def references(self, address: str) -> set[str]:
        """Resources one resource refers to directly: expressions, depends_on, and through
        the locals and data sources it uses (data sources are nodes of Terraform's graph
        too: a role depends on the OIDC provider its trust policy document names), and (for
        Helm and Kubernetes resources) its provider's configuration."""
        body = self.resources[address]
        text = list(strings(body))
        seen: set[str] = set()
        pending = [m for s in text for m in LOCAL_REF.findall(s)]
        pending += [m for s in text for m in DATA_REF.findall(s)]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            if name.startswith("data."):
                node = self.data.get(name.removeprefix("data."))
            else:
                node = self.locals.get(name)
            if node is None:
                continue
            node_text = list(strings(node))
            text += node_text
            pending += [m for s in node_text for m in LOCAL_REF.findall(s)]
            pending += [m for s in node_text for m in DATA_REF.findall(s)]
        rtype = address.split(".", maxsplit=1)[0]
        provider = rtype.split("_")[0]
        if provider in {"helm", "kubernetes"} and provider in self.providers:
            text += list(strings(self.providers[provider]))
        refs = {f"{t}.{n}" for s in text for t, n in RESOURCE_REF.findall(s)}
        return {r for r in refs if r in self.resources and r != address}

    def dependencies(self, address: str) -> set[str]:
        """Everything a resource depends on, transitively: what destroy removes after it."""
        result: set[str] = set()
        stack = [address]
        while stack:
            for ref in self.references(stack.pop()):
                if ref not in result:
                    result.add(ref)
                    stack.append(ref)
        return result

    def variable_only_locals(self) -> dict[str, Any]:
        """The locals whose value depends on variables and other such locals only: no
        resource, data source or function of the providers. tofu can evaluate them."""
        result: dict[str, Any] = {}
        changed = True
        while changed:
            changed = False
            for name, value in self.locals.items():
                if name in result:
                    continue
                text = " ".join(strings(value))
                if RESOURCE_REF.search(text) or DATA_REF.search(text) or "path." in text:
                    continue
                if all(ref in result for ref in LOCAL_REF.findall(text)):
                    result[name] = value
                    changed = True
        return result


@cache
def load_config() -> Config:
    tf_files = sorted(TF_DIR.glob("*.tf"))
    assert tf_files, f"no .tf files in {TF_DIR}"
    config = Config(files={p.name: parse(p) for p in tf_files})
    for name, doc in config.files.items():
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for rname, body in named.items():
                    address = f"{rtype}.{rname}"
                    assert address not in config.resources, f"{address} twice ({name})"
                    config.resources[address] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for dname, body in named.items():
                    config.data[f"{dtype}.{dname}"] = body
        for block in doc.get("variable", []):
            config.variables.update(block)
        for block in doc.get("output", []):
            config.outputs.update(block)
        for block in doc.get("provider", []):
            config.providers.update(block)
        for block in doc.get("locals", []):
            for key in block:
                assert key not in config.locals, f"local.{key} twice"
            config.locals.update(block)
        config.terraform += doc.get("terraform", [])
        config.modules += doc.get("module", [])
    return config


def depends_on(body: dict[str, Any]) -> set[str]:
    return {expr(d) for d in body.get("depends_on", [])}


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc.get("statement", [])
    return found if isinstance(found, list) else [found]


TRUST_POLICY = re.compile(r'^data\.aws_iam_policy_document\.irsa_assume\["([a-z0-9_]+)"\]\.json$')


def trust_statement(cfg: Config, role: str) -> dict[str, Any]:
    """The one statement of an IRSA role's trust policy, as Terraform evaluates it for that
    role: irsa_assume's `each.value` is the role's entry in local.irsa_service_accounts."""
    found = TRUST_POLICY.match(expr(cfg.resource(role)["assume_role_policy"]))
    assert found, f"{role}'s trust policy is not one of irsa_assume's"
    doc = cfg.data["aws_iam_policy_document.irsa_assume"]
    assert expr(doc["for_each"]) == "local.irsa_service_accounts"
    account = cfg.locals["irsa_service_accounts"][found[1]]
    (statement,) = statements(json.loads(json.dumps(doc).replace("${each.value}", account)))
    return statement


def hcl(value: Any) -> str:
    """A parsed value as HCL expression text again (objects, lists, strings, expressions)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {hcl(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}") and value.count("${") == 1:
            return value[2:-1]
        if "${" in value:
            return '"' + value.replace('"', '\\"') + '"'  # a template: keep interpolations
        return json.dumps(value)
    return json.dumps(value)


# --- Evaluating with tofu (no providers needed) -------------------------------------------


def tofu_env(tmp: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    if tmp is not None:
        env["TF_DATA_DIR"] = str(tmp / ".tofu-data")
    return env


needs_tofu = pytest.mark.skipif(
    not TOFU.is_file(),
    reason=f"{TOFU} not built; run tests/terraform/build_tofu.sh",
)

REQUIRED_VARS = {
    "cluster_endpoint_public_access_cidrs": '["203.0.113.7/32"]',
    "grafana_admin_password": "a-long-enough-test-password",
}


def variables_only_module(tmp: Path, local_names: Iterable[str] = ()) -> Path:
    """A fresh module: variables.tf, plus the named variable-only locals (and the locals
    they use)."""
    module = Path(tempfile.mkdtemp(prefix="module-", dir=tmp))
    shutil.copy(TF_DIR / "variables.tf", module / "variables.tf")
    wanted = set(local_names)
    if wanted:
        available = load_config().variable_only_locals()
        pending = list(wanted)
        while pending:
            name = pending.pop()
            assert name in available, f"local.{name} does not depend on variables only"
            for ref in LOCAL_REF.findall(" ".join(strings(available[name]))):
                if ref not in wanted:
                    wanted.add(ref)
                    pending.append(ref)
        body = "\n".join(f"  {name} = {hcl(available[name])}" for name in sorted(wanted))
        (module / "locals.tf").write_text(f"locals {{\n{body}\n}}\n", encoding="utf-8")
    return module


def var_args(overrides: dict[str, str]) -> list[str]:
    values = {**REQUIRED_VARS, **overrides}
    return [arg for k, v in values.items() for arg in ("-var", f"{k}={v}")]


def tofu_plan(tmp: Path, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    module = variables_only_module(tmp)
    return subprocess.run(
        [str(TOFU), "plan", "-input=false", "-no-color", "-lock=false", *var_args(overrides)],
        cwd=module,
        capture_output=True,
        text=True,
        env=tofu_env(tmp),
        check=False,
        timeout=120,
    )


def tofu_eval(
    tmp: Path, expression: str, overrides: dict[str, str], local_names: Iterable[str] = ()
) -> Any:
    """The value of one expression over the variables (and the named locals), as JSON."""
    module = variables_only_module(tmp, local_names)
    result = subprocess.run(
        [str(TOFU), "console", *var_args(overrides)],
        cwd=module,
        input=f"jsonencode({expression})\n",
        capture_output=True,
        text=True,
        env=tofu_env(tmp),
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stderr, result.stderr
    # The console prints the JSON text as an HCL string literal (JSON-compatible quoting).
    return json.loads(json.loads(result.stdout.strip()))


# --- Rendering charts with helm (offline: `helm template`) --------------------------------

needs_helm = pytest.mark.skipif(
    not HELM.is_file(),
    reason=f"{HELM} not built; run `make setup`",
)


def helm_template(
    chart: Path, release: str, namespace: str, args: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The documents `helm template` renders (values files and --set given in `args`)."""
    argv = [str(HELM), "template", release, str(chart), "--namespace", namespace, *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
