"""The README (and the other pages users read: docs/, terraform/README.md) says only what
the code, the chart and the CRD do. Each check reads the real source of truth:

- every `BLUEGREEN_*` variable is a setting of the operator (bluegreen.runtime.settings) or
  a variable the code reads; a default a page gives is the setting's default, and no page
  tells you to set a setting to the value it already has;
- every chart value a page names exists in values.yaml, with the default the README's table
  gives, and every `helm install|upgrade|template` of the README renders the chart, schema
  included;
- the operator's metrics table and the phase table are the metrics and phases there are;
  the README's example apps are valid, and its count of invalid manifests is the tests'.

The plugin's commands and the repository's paths, links and names: test_docs_references.py.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.api import BlueGreenApp, Phase
from bluegreen.runtime import telemetry
from bluegreen.runtime.settings import Settings
from tests.support import docs
from tests.support.cluster import REPO
from tests.support.tools import helm

README = REPO / "README.md"
CHART = REPO / "charts" / "bluegreen-operator"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
CRD = yaml.safe_load((REPO / "crds" / "bluegreen.dev_bluegreenapps.yaml").read_text())
PAGES = docs.USER_PAGES
SETTING = re.compile(r"\bBLUEGREEN_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")


def _code_text() -> str:
    """Every line of Python the project runs or tests with."""
    files = [
        *(REPO / "operator").rglob("*.py"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "tools").rglob("*.py"),
    ]
    return "\n".join(f.read_text() for f in files if f.name != Path(__file__).name)


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_every_variable_a_page_names_is_read_by_the_code(page: Path) -> None:
    fields = {f"BLUEGREEN_{name.upper()}" for name in Settings.model_fields}
    code = _code_text()
    unknown = sorted(
        {
            name
            for name in SETTING.findall(page.read_text())
            if name not in fields and f'"{name}"' not in code
        }
    )
    assert unknown == [], f"{page.name} names variables nothing reads: {unknown}"


def _setting(name: str, monkeypatch: pytest.MonkeyPatch, value: str | None = None) -> Any:
    field = name.removeprefix("BLUEGREEN_").lower()
    assert field in Settings.model_fields, name
    for key in list(os.environ):
        if key.startswith("BLUEGREEN_"):
            monkeypatch.delenv(key)
    if value is not None:
        monkeypatch.setenv(name, value)
    return getattr(Settings(), field)


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_defaults_a_page_gives_are_the_settings_defaults(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = page.read_text()
    claims = re.findall(
        r"`(BLUEGREEN_[A-Z0-9_]+)`(?: \(| \(default |, default )(-?\d+(?:\.\d+)?)\b", text
    )
    for name, value in claims:
        default = _setting(name, monkeypatch)
        assert float(value) == float(default), f"{page.name}: {name} defaults to {default}"


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_no_page_tells_you_to_set_a_setting_to_its_default(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"BLUEGREEN_{name.upper()}" for name in Settings.model_fields}
    for name, value in re.findall(r"\b(BLUEGREEN_[A-Z0-9_]+)=([^\s`)]+)", page.read_text()):
        if name not in fields or "$" in value or "<" in value:
            continue
        default = _setting(name, monkeypatch)
        assert _setting(name, monkeypatch, value.rstrip(".,")) != default, (
            f"{page.name}: {name}={value} is already the default"
        )


# ----------------------------------------------------------------------------- the chart


def _value(path: str) -> Any:
    node: Any = VALUES
    for part in path.split("."):
        if part == "*":
            assert isinstance(node, dict) and node, path
            return node
        assert isinstance(node, dict) and part in node, f"no chart value {path}"
        node = node[part]
    return node


def _value_keys(text: str) -> list[str]:
    """Code spans of the form `a.b` or `a.b=value` whose first part is a chart value."""
    out = []
    for span in docs.code_spans(text):
        key = span.split("=", 1)[0]
        if re.fullmatch(r"[a-zA-Z]\w*(\.[\w*]+)+", key) and key.split(".")[0] in VALUES:
            out.append(key)
    return out


@pytest.mark.parametrize(
    "page", [README, REPO / "terraform" / "README.md"], ids=["README.md", "terraform/README.md"]
)
def test_chart_values_the_page_names_exist(page: Path) -> None:
    keys = _value_keys(page.read_text())
    assert keys
    for key in keys:
        _value(key)


def test_the_readme_chart_table_names_values_with_their_defaults() -> None:
    table = docs.table_rows(docs.section(README.read_text(), "## Install with Helm"))
    assert table[0][:2] == ["value", "default"]
    for row in table[1:]:
        names = re.findall(r"`([^`]+)`", row[0])
        first = names[0]
        parent = first.rsplit(".", 1)[0] + "." if "." in first else ""
        for i, name in enumerate(names):
            key = name if i == 0 else parent + name  # `a.b`, `c`: c is a sibling of b
            value = _value(key)
            if "*" in key or (isinstance(value, dict) and value):
                continue
            default = row[1].strip("`")
            if "," in default or default in ("on", "off"):
                continue
            assert yaml.safe_load(default) == value, f"{key}: the default is {value!r}"


def test_the_credentials_example_and_table_are_chart_values() -> None:
    text = docs.section(README.read_text(), "#### Prometheus credentials")
    (example,) = [
        b
        for b in docs.blocks(README, "yaml")
        if "# charts/bluegreen-operator" in b and "prometheusAuth:" in b
    ]
    values = yaml.safe_load(example)

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if not isinstance(_value(key), dict) or not _value(key):
                    continue  # a map of the user's own keys, or a leaf
                walk(v, key)

    walk(values, "")
    (top,) = values
    table = docs.table_rows(text)
    assert table[0][0] == "chart value"
    for row in table[1:]:
        for name in re.findall(r"`([^`]+)`", row[0]):
            _value(f"{top}.{name}")


def test_helm_commands_of_the_readme_render_the_chart() -> None:
    installs = [
        argv
        for argv in docs.commands(README)
        if argv[:1] == ["helm"] and argv[1] in ("install", "upgrade", "template")
    ]
    assert installs
    for argv in installs:
        args = ["template", "bluegreen-operator", str(CHART)]
        for i, arg in enumerate(argv):
            if arg in ("--set", "--set-string"):
                # A placeholder the reader fills in is filled here the way the page says.
                value = re.sub(r"<[^>]*hex[^>]*>", "0" * 64, argv[i + 1])
                value = re.sub(r"<[^>]+>", "example", value)
                args += [arg, value]
        result = helm(*args, check=False)
        assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stderr}"


def test_what_the_readme_says_get_pods_shows() -> None:
    claims = [c for cmd, c in docs.commented_lines(README) if cmd.endswith("get pods")]
    assert claims
    rendered = yaml.safe_load_all(helm("template", "bluegreen-operator", str(CHART)).stdout)
    (deployment,) = [d for d in rendered if d and d["kind"] == "Deployment"]
    containers = len(deployment["spec"]["template"]["spec"]["containers"])
    for claim in claims:
        pods = re.search(r"(\d+) pods", claim)
        ready = re.search(r"(\d+)/(\d+) Running", claim)
        assert ready, claim
        assert int(ready.group(2)) == containers, f"{claim!r}: a pod has {containers} container"
        if pods:
            assert int(pods.group(1)) == VALUES["replicaCount"]


# ----------------------------------------------------------------------------- tables


def test_the_metrics_table_is_the_metrics_the_operator_serves() -> None:
    rows = docs.table_rows(docs.section(README.read_text(), "## The operator's metrics"))
    assert rows[0][:3] == ["metric", "type", "labels"]
    documented = {
        row[0].strip("`"): (row[1], [x.strip() for x in row[2].split(",") if x.strip()])
        for row in rows[1:]
        if row[0].startswith("`bluegreen_")
    }
    served = {}
    for value in vars(telemetry).values():
        name = getattr(value, "_name", None)
        kind = getattr(value, "_type", None)
        if isinstance(name, str) and name.startswith("bluegreen_") and kind:
            full = f"{name}_total" if kind == "counter" else name
            served[full] = (kind, list(value._labelnames))
    assert documented == served


def _without_ellipses(node: Any) -> Any:
    """`[ ... ]` in an example stands for more of the same: left out."""
    if isinstance(node, dict):
        return {k: _without_ellipses(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_ellipses(v) for v in node if v != "..."]
    return node


def test_the_readme_examples_are_valid_apps() -> None:
    documents = [d for b in docs.blocks(README, "yaml") for d in yaml.safe_load_all(b) if d]
    (app,) = [d for d in documents if d.get("kind") == "BlueGreenApp"]
    app["metadata"]["namespace"] = "shop"
    BlueGreenApp.model_validate(app)
    fragments = [d for d in documents if "kind" not in d and "spec" in d]
    assert len(fragments) >= 2
    for fragment in fragments:
        merged = copy.deepcopy(app)
        merged["spec"].update(_without_ellipses(fragment["spec"]))
        BlueGreenApp.model_validate(merged)


def test_the_count_of_invalid_manifests_is_the_tests_count() -> None:
    from tests.cluster.test_validation import CASES  # noqa: PLC0415 - only here

    claim = re.search(
        r"(\d+) invalid manifests are rejected by the API server .*?the (\d+) about the spec",
        README.read_text(),
        re.S,
    )
    assert claim, "the README says how many invalid manifests the tests send"
    in_spec = [c for c in CASES if c.values[0].in_spec]
    assert (int(claim.group(1)), int(claim.group(2))) == (len(CASES), len(in_spec))


def test_the_phase_table_is_every_phase() -> None:
    rows = docs.table_rows(docs.section(README.read_text(), "### Release phases"))
    assert rows[0][0] == "phase"
    assert [r[0] for r in rows[1:]] == [p.value for p in Phase]
