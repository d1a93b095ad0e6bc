"""What the pages users read say of the kubectl plugin and of the repository is so:

- every `kubectl bluegreen ...` a page shows parses with the plugin's own parser, the
  output columns the README claims are the ones the plugin and the CRD print, and what it
  says of `-o` holds for every command;
- every repository path, link, `make` target, `python -m` module and Python name
  (`bluegreen.api.reasons.Reason`) a page names exists.

The settings, chart values and tables of the README: test_readme.py.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bluegreen.kubectl import format as plugin_format
from bluegreen.kubectl.cli import build_parser
from tests.support import docs
from tests.support.cluster import REPO

README = REPO / "README.md"
CRD = yaml.safe_load((REPO / "crds" / "bluegreen.dev_bluegreenapps.yaml").read_text())
PAGES = docs.USER_PAGES


# ----------------------------------------------------------------------------- the plugin


def _plugin_commands(page: Path) -> list[tuple[list[str], bool]]:
    """Every `kubectl bluegreen ...` of the page: from its sh blocks (whole commands), and
    from its prose (a mention may leave out the app's NAME), without the ones that hold a
    placeholder or list alternatives (`promote|abort|retry`)."""
    out = [(argv[2:], True) for argv in docs.commands(page) if argv[:2] == ["kubectl", "bluegreen"]]
    for span in docs.code_spans(page.read_text()):
        if span.startswith("kubectl bluegreen ") and not any(c in span for c in "<|"):
            out.append((shlex.split(span)[2:], False))
    return out


def _parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code == 0  # --help
    return True


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_plugin_commands_parse(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, whole in _plugin_commands(page):
        ok = _parses(argv) or (not whole and _parses([*argv, "NAME"]))
        assert ok, f"{page.name}: kubectl bluegreen {shlex.join(argv)}\n{capsys.readouterr().err}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _output_choices(command: argparse.ArgumentParser) -> list[str] | None:
    (action,) = [a for a in command._actions if "-o" in a.option_strings]
    return list(action.choices) if action.choices else None


def test_what_the_readme_says_of_dash_o_holds_for_every_command() -> None:
    text = README.read_text()
    claim = re.search(r"`-o ([a-z|]+)` on every command(?: but ((?:`\w+`(?:, | and )?)+))?", text)
    assert claim, "the README says which -o each command takes"
    formats = set(claim.group(1).split("|"))
    but = set(re.findall(r"`(\w+)`", claim.group(2) or ""))
    for name, command in _subcommands().items():
        choices = _output_choices(command)
        if name in but:
            assert choices is None or not formats <= set(choices), name
            assert f"{name} -o" in text, f"the README says what {name}'s -o is"
        else:
            assert choices is not None and formats <= set(choices), f"{name}: -o {choices}"


def _header_claims(page: Path) -> list[tuple[list[str], list[str]]]:
    """(command, columns) where an sh line's comment is a row of column names."""
    out = []
    for command, comment in docs.commented_lines(page):
        words = comment.split()
        if len(words) >= 3 and all(re.fullmatch(r"[A-Z]+", w) for w in words):
            out.append((shlex.split(command), words))
    return out


def test_the_columns_the_readme_shows_are_the_ones_printed() -> None:
    claims = _header_claims(README)
    assert len(claims) >= 3
    now = datetime.now(UTC)
    printer = [c for c in CRD["spec"]["versions"][0]["additionalPrinterColumns"]]
    for argv, columns in claims:
        if argv[:3] == ["kubectl", "get", "bga"]:
            wide = "wide" in argv
            want = ["NAME"] + [c["name"].upper() for c in printer if wide or not c.get("priority")]
        elif argv[:3] == ["kubectl", "bluegreen", "status"]:
            args = build_parser().parse_args(argv[2:])
            if args.name is not None:
                continue
            table = plugin_format.status_table(
                [], now, wide=args.output == "wide", all_namespaces=args.all_namespaces
            )
            want = table.splitlines()[0].split()
        elif argv[:3] == ["kubectl", "bluegreen", "history"]:
            want = plugin_format.history_table([]).splitlines()[0].split()
        else:
            pytest.fail(f"no source of truth known for the columns of {shlex.join(argv)}")
        assert columns == want, shlex.join(argv)


# ----------------------------------------------------------------------------- the repository


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_paths_and_links_of_the_page_exist(page: Path) -> None:
    text = page.read_text()
    for target in docs.links(page):
        assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"
    for path in docs.repo_paths(text):
        assert docs.path_exists(path) or (page.parent / path).exists(), (
            f"{page.name} names {path}, which is not in the repository"
        )


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_make_targets_and_modules_of_the_page_exist(page: Path) -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, re.M))
    text = page.read_text()
    argvs = [*docs.commands(page)]
    argvs += [shlex.split(s) for s in docs.code_spans(text) if "<" not in s and "'" not in s]
    for argv in argvs:
        if argv[:1] == ["make"] and len(argv) > 1 and "=" not in argv[1]:
            assert argv[1] in targets, f"{page.name}: no make target {argv[1]}"
        for i, arg in enumerate(argv[:-1]):
            if arg == "-m" and "python" in argv[i - 1 if i else 0]:
                module = argv[i + 1]
                assert importlib.util.find_spec(module) is not None, f"{page.name}: {module}"


def _resolves(dotted: str) -> bool:
    """A module, or a module's attribute (`bluegreen.api.reasons.Reason`)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        if importlib.util.find_spec(".".join(parts[:i])) is None:
            continue
        node: Any = importlib.import_module(".".join(parts[:i]))
        for attr in parts[i:]:
            if not hasattr(node, attr):
                return False
            node = getattr(node, attr)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=docs.page_ids(PAGES))
def test_python_names_of_the_page_exist(page: Path) -> None:
    for span in docs.code_spans(page.read_text()):
        for word in span.split():
            if "/" in word or word.startswith("bluegreen.dev"):
                continue  # a path, or the API group
            if re.fullmatch(r"(bluegreen|tests|tools)(\.[A-Za-z_]\w*)+", word):
                assert _resolves(word), f"{page.name} names {word}, which does not exist"
