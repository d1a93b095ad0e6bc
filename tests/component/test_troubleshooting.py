"""docs/troubleshooting.md describes every condition and every reason the operator writes
(bluegreen.api.reasons) exactly once: a reason added to the code without its entry, or an
entry left behind for a reason that is gone, fails here."""

from __future__ import annotations

import re
from collections import Counter

from bluegreen.api import Phase
from bluegreen.api.reasons import ConditionType, Reason
from tests.support import docs
from tests.support.cluster import REPO

PAGE = REPO / "docs" / "troubleshooting.md"
TEXT = PAGE.read_text()
REASONS = docs.section(TEXT, "## Reasons")
NORMAL = docs.section(REASONS, "### Normal operation")


def _entries() -> Counter[str]:
    """The reasons the page describes: a `#### `Reason`` heading, or a row of the table of
    normal operation."""
    headings = re.findall(r"^#### `(\w+)`$", REASONS, re.M)
    rows = [r[0].strip("`") for r in docs.table_rows(NORMAL)[1:]]
    return Counter([*headings, *rows])


def test_every_reason_is_described_once() -> None:
    entries = _entries()
    twice = sorted(name for name, n in entries.items() if n > 1)
    assert twice == [], f"described more than once: {twice}"
    missing = sorted(r.value for r in Reason if r.value not in entries)
    assert missing == [], f"docs/troubleshooting.md: add an entry for {missing}"
    unknown = sorted(set(entries) - {r.value for r in Reason})
    assert unknown == [], f"docs/troubleshooting.md describes reasons that are gone: {unknown}"


def test_each_problem_says_symptom_cause_and_what_to_do() -> None:
    for name in re.findall(r"^#### `(\w+)`$", REASONS, re.M):
        body = docs.section(REASONS, f"#### `{name}`")
        for part in ("**Symptom:**", "**Cause:**", "**What to do:**"):
            assert part in body, f"{name}: no {part}"
            after = body.split(part, 1)[1].strip()
            assert len(after.split()) >= 3, f"{name}: {part} says nothing"


def test_each_normal_reason_says_where_and_what() -> None:
    rows = docs.table_rows(NORMAL)
    assert rows[0] == ["reason", "where", "what it says"]
    for row in rows[1:]:
        assert len(row) == 3 and all(row), row


def test_every_condition_is_in_the_table_with_the_reasons_it_carries() -> None:
    rows = docs.table_rows(docs.section(TEXT, "## Conditions"))
    assert rows[0] == ["condition", "True", "False", "reasons"]
    names = [r[0].strip("`") for r in rows[1:]]
    assert sorted(names) == sorted(c.value for c in ConditionType)
    known = {r.value for r in Reason} | {p.value for p in Phase}
    for row in rows[1:]:
        named = re.findall(r"`(\w+)`", row[3])
        assert named, row[0]
        assert set(named) <= known, f"{row[0]}: {set(named) - known}"
