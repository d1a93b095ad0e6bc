"""Reading the Markdown pages the users read: their code blocks, shell commands, links,
tables and the repository paths they name, for the tests that hold the pages to what the
code, the chart and the CRD really do (tests/component/test_platform_docs.py,
test_readme.py, test_troubleshooting.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.support.cluster import REPO


def blocks(page: Path, lang: str) -> list[str]:
    """The bodies of the page's fenced code blocks of `lang` (sh, yaml, ...)."""
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(), re.S)


def split_commands(block: str, where: str = "") -> list[list[str]]:
    """Each shell command of an sh block, continuation lines joined, comments and heredoc
    bodies dropped, split as the shell would (variables left as written)."""
    out = []
    text = re.sub(r"<<'(EOF|YAML)'\n.*?\n\1\n", "\n", block, flags=re.S).replace("\\\n", " ")
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            argv = shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on on the next line
            continue
        pending = ""
        if argv:
            out.append(argv)
    assert not pending, f"{where}: unbalanced quotes in {pending!r}"
    return out


def commands(page: Path) -> list[list[str]]:
    """Every shell command of the page's sh blocks (see split_commands)."""
    return [argv for block in blocks(page, "sh") for argv in split_commands(block, page.name)]


def commented_lines(page: Path) -> list[tuple[str, str]]:
    """(command, comment) for each line of the page's sh blocks that has a `# comment`
    after a command: the claims a page makes about what a command prints."""
    out = []
    for block in blocks(page, "sh"):
        for line in block.splitlines():
            command, sep, comment = line.partition("  # ")
            if sep and command.strip() and not command.lstrip().startswith("#"):
                out.append((command.strip(), comment.strip()))
    return out


def links(page: Path) -> list[str]:
    """Relative link targets of the page's prose, without their #fragment."""
    prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    prose = re.sub(r"`[^`\n]+`", "", prose)
    return re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose)


def code_spans(text: str) -> list[str]:
    """The inline `code` of a page's prose (fenced blocks left out)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", prose)


def section(text: str, heading: str) -> str:
    """The text under a heading (`## Install with Helm`), up to the next heading of the same
    or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n") + len(heading) + 1
    out, fenced = [], False
    for line in text[start:].splitlines(keepends=True):
        fenced ^= line.startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        out.append(line)
    return "".join(out)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row of `text`, header rows included, separator
    rows left out."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]+\|", line):
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


USER_PAGES = sorted(
    [
        REPO / "README.md",
        REPO / "terraform" / "README.md",
        REPO / "SECURITY.md",
        REPO / "charts" / "bluegreen-operator" / "README.md",
        *(REPO / "docs").rglob("*.md"),
    ]
)
"""The pages users read (CHANGELOG.md, a record of the past, is not one)."""


def page_ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in pages]


TOP_LEVEL = {p.name for p in REPO.iterdir() if not p.name.startswith(".git")}


def repo_paths(text: str) -> list[str]:
    """The repository paths a page names in its code spans: `tools/demo.py`,
    `charts/bluegreen-operator/crds/`, `tests/bench/results/*.json`; a path is a span that
    starts with a top-level entry of the repository (`.cache/` is built, not committed, and
    left out), with no placeholders (`<...>`) or spaces."""
    out = []
    for span in code_spans(text):
        if " " in span or "<" in span or "=" in span or "://" in span:
            continue
        first = span.split("/", 1)[0]
        if "/" in span and first in TOP_LEVEL and first != ".cache":
            out.append(span)
    return out


def path_exists(path: str) -> bool:
    if "*" in path:
        return any(REPO.glob(path))
    return (REPO / path).exists()
