"""The platform team's pages (docs/install.md, upgrade.md, uninstall.md,
run-from-checkout.md, flux/README.md, releasing.md): their commands are checked against
the real tools and files they name.

- every `helm install|upgrade|template` value (`--set`, `--set-string`) renders the chart,
  schema included, with the chart of this checkout;
- every `kopf run` passes `--peering=bluegreen` and the module the image runs, and every
  flag is one `kopf run --help` lists;
- every YAML block parses; the kopf peering objects are of the kinds the chart's CRDs
  define; the Flux Kustomizations name the BlueGreenApp kind the CRD serves;
- the settings a page names exist, with the defaults it gives;
- relative links point at files that exist.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bluegreen.runtime.settings import Settings
from tests.support import docs
from tests.support.cluster import REPO
from tests.support.docs import blocks, links
from tests.support.tools import helm

DOCS = REPO / "docs"
PAGES = ["install.md", "upgrade.md", "uninstall.md", "run-from-checkout.md", "releasing.md"]
CHART = REPO / "charts" / "bluegreen-operator"
KOPF = Path(sys.executable).parent / "kopf"


def test_the_pages_exist_and_their_links_resolve() -> None:
    for name in [*PAGES, "flux/README.md"]:
        page = DOCS / name
        assert page.is_file(), name
        for target in links(page):
            assert (page.parent / target).exists(), f"{name} links to a missing {target}"


def _helm_values(argv: list[str]) -> list[tuple[str, str]]:
    out = []
    for i, arg in enumerate(argv):
        if arg in ("--set", "--set-string"):
            out.append((arg, argv[i + 1]))
    return out


@pytest.mark.parametrize("name", PAGES)
def test_documented_helm_values_render_the_chart(name: str) -> None:
    for argv in docs.commands(DOCS / name):
        if argv[:1] != ["helm"] or argv[1] not in ("install", "upgrade", "template"):
            continue
        values = _helm_values(argv)
        args = ["template", "bluegreen-operator", str(CHART)]
        for flag, value in values:
            args += [flag, value]
        result = helm(*args, check=False)
        assert result.returncode == 0, f"{name}: {shlex.join(argv)}\n{result.stderr}"


def test_the_install_page_pins_versions_and_verifies_with_cosign() -> None:
    commands = docs.commands(DOCS / "install.md")
    installs = [c for c in commands if c[:2] == ["helm", "install"]]
    assert installs
    for argv in installs:
        chart = argv[3]
        if chart.startswith("oci://"):
            assert "--version" in argv or "@" in chart, shlex.join(argv)
    verifies = [c for c in commands if c[:2] == ["cosign", "verify"]]
    assert len(verifies) == 2  # the image and the chart, each by digest
    for argv in verifies:
        assert "@$" in argv[2]
        assert {"--certificate-identity-regexp", "--certificate-oidc-issuer"} <= set(argv)
    text = (DOCS / "install.md").read_text()
    assert "release-operator\\.yml@refs/tags/v" in text
    assert "pipx install bluegreen" in text and "Why not Krew" in text


def test_kopf_runs_of_the_page_join_the_peering() -> None:
    page = DOCS / "run-from-checkout.md"
    runs = [c for c in docs.commands(page) if c[0].endswith("kopf") and c[1] == "run"]
    assert len(runs) >= 3
    usage = subprocess.run(
        [str(KOPF), "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    known = set(re.findall(r"(--[a-z-]+)", usage))
    image = next(
        ln for ln in (REPO / "Dockerfile").read_text().splitlines() if ln.startswith("ENTRYPOINT")
    )
    module = re.search(r'"-m", "([^"]+)"', image)
    assert module
    for argv in runs:
        flags = {a.split("=")[0] for a in argv if a.startswith("--")}
        assert flags <= known, flags - known
        assert "--peering=bluegreen" in argv, shlex.join(argv)
        assert argv[argv.index("-m") + 1] == module.group(1)
        assert "--all-namespaces" in argv or any(a.startswith("--namespace=") for a in argv)
        assert "--standalone" not in argv


def test_peering_objects_of_the_page_are_the_chart_crds_kinds() -> None:
    text = (DOCS / "run-from-checkout.md").read_text()
    bodies = [yaml.safe_load(b) for b in re.findall(r"<<'EOF'\n(.*?)\nEOF\n", text, re.S)]
    crds = {
        (d["spec"]["group"], d["spec"]["names"]["kind"], d["spec"]["scope"]): d
        for d in (yaml.safe_load(p.read_text()) for p in (CHART / "crds").glob("kopf.dev_*"))
    }
    kinds = {(b["apiVersion"], b["kind"]) for b in bodies}
    assert kinds == {("kopf.dev/v1", "ClusterKopfPeering"), ("kopf.dev/v1", "KopfPeering")}
    for body in bodies:
        assert body["metadata"]["name"] == "bluegreen"
        assert any(g == "kopf.dev" and k == body["kind"] for g, k, _ in crds)
    # The chart's replicas use the same peering name by default.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["peering"]["name"] == "bluegreen"


def test_settings_named_by_the_page_exist_with_their_defaults() -> None:
    rows = re.findall(
        r"^\| `BLUEGREEN_([A-Z_]+)` \| ([^|]+) \|",
        (DOCS / "run-from-checkout.md").read_text(),
        re.M,
    )
    assert rows
    defaults = Settings.model_fields
    for name, default in rows:
        field = defaults[name.lower()]
        want = None if default.strip() == "unset" else default.strip()
        got = field.default
        assert (str(got) if got is not None else None) == want, name


def test_yaml_blocks_parse_and_flux_names_the_served_kind() -> None:
    crd = yaml.safe_load((REPO / "crds" / "bluegreen.dev_bluegreenapps.yaml").read_text())
    served = {f"{crd['spec']['group']}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}
    kind = crd["spec"]["names"]["kind"]
    for name in [*PAGES, "flux/README.md"]:
        for block in blocks(DOCS / name, "yaml"):
            yaml.safe_load(block)
    guide = DOCS / "flux" / "README.md"
    kustomizations = [
        yaml.safe_load(b) for b in blocks(guide, "yaml") if "kind: Kustomization" in b
    ]
    assert len(kustomizations) == 2
    for k in kustomizations:
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        assert k["spec"]["wait"] is True
    (exprs,) = [
        k["spec"]["healthCheckExprs"] for k in kustomizations if "healthCheckExprs" in k["spec"]
    ]
    assert [(e["apiVersion"], e["kind"]) for e in exprs] == [(sorted(served)[0], kind)]
    health_checks = yaml.safe_load(
        next(b for b in blocks(guide, "yaml") if b.lstrip().startswith("healthChecks:"))
    )["healthChecks"]
    assert [(h["apiVersion"], h["kind"]) for h in health_checks] == [(sorted(served)[0], kind)]


def test_the_uninstall_page_warns_before_anything_is_deleted() -> None:
    text = (DOCS / "uninstall.md").read_text()
    warning = text.index("> [!WARNING]")
    assert warning < text.index("```")
    assert "garbage collector" in text[warning : text.index("```")]
    commands = [shlex.join(c) for c in docs.commands(DOCS / "uninstall.md")]
    orphan = next(i for i, c in enumerate(commands) if "--cascade=orphan" in c)
    crd = next(i for i, c in enumerate(commands) if c.startswith("kubectl delete crd bluegreen"))
    assert orphan < crd


def test_the_upgrade_page_applies_crds_before_the_chart() -> None:
    commands = [shlex.join(c) for c in docs.commands(DOCS / "upgrade.md")]
    crds = next(i for i, c in enumerate(commands) if c.startswith("helm show crds"))
    upgrade = next(i for i, c in enumerate(commands) if c.startswith("helm upgrade"))
    assert crds < upgrade
    # Piped straight into a server-side apply.
    assert commands[crds].endswith("'|' kubectl apply --server-side --force-conflicts -f -")
