"""`kubectl bluegreen` never hands the terminal what an author wrote as it is: escape
sequences (OSC 8 hyperlinks, screen clears, C1 CSI), bidi overrides and line breaks in
names, messages, annotations and Events are shown as escapes in tables and text, and stay
exact (escaped in their own syntax) in -o json and -o yaml."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import requests as requests_text
from bluegreen.kubectl import timeline

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
LINK = "\x1b]8;;https://evil.example/\x1b\\promote me\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
BELL_TITLE = "\x1b]0;owned\x07"
C1_CSI = "\x9b31m"
BIDI = "\u202eevil\u202c \u2066x\u2069"
FORGED = "fine\nother   Healthy   blue"
CR = "all good\roverwritten"
HOSTILE = [LINK, CLEAR, BELL_TITLE, C1_CSI, BIDI, FORGED, CR, "\x00\x7f\u061c\u200f\u2028"]
# What no output may hold raw (a line break only where the output itself breaks lines).
RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def ts(before: float) -> str:
    return (NOW - timedelta(seconds=before)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hostile_app(text: str) -> dict[str, Any]:
    """An app whose every author- or writer-controlled string carries `text`."""
    release = {
        "revision": "7c9f" + text,
        "image": "shop:v2" + text,
        "color": "green",
        "previousColor": "blue",
        "startedAt": ts(60),
        "switchedAt": ts(30),
        "result": "RolledBack",
        "reason": "PostPromotionAnalysisFailed" + text,
        "message": "error rate " + text,
    }
    return {
        "apiVersion": "bluegreen.dev/v1alpha1",
        "kind": "BlueGreenApp",
        "metadata": {
            "name": "shop" + text,
            "namespace": "web" + text,
            "generation": 2,
            "creationTimestamp": ts(3600),
            "annotations": {"bluegreen.dev/request": "promote" + text, "note" + text: text},
        },
        "spec": {"replicas": 2},
        "status": {
            "phase": "Degraded" + text,
            "activeColor": "blue" + text,
            "stableRevision": "1a2b" + text,
            "message": "the release failed: " + text,
            "failedRevisions": ["7c9f" + text],
            "conditions": [
                {
                    "type": "Degraded" + text,
                    "status": "True",
                    "reason": "Failed" + text,
                    "message": text,
                    "lastTransitionTime": ts(10),
                }
            ],
            "release": release,
            "history": [{**release, "completedAt": ts(5)}],
        },
    }


def event(text: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "e1"},
        "reason": "RolledBack" + text,
        "type": "Warning",
        "note": "traffic is back " + text,
        "eventTime": ts(20),
    }


def outputs(text: str) -> dict[str, str]:
    """Every text output of the plugin for an app and an Event carrying `text`."""
    a = hostile_app(text)
    release = a["status"]["release"]
    entries = timeline.timeline_entries(release, [event(text)])
    return {
        "status": fmt.status_table([a], NOW),
        "status -o wide -A": fmt.status_table([a], NOW, wide=True, all_namespaces=True),
        "status NAME": fmt.status_detail(a, NOW),
        "history": fmt.history_table(a["status"]["history"]),
        "timeline --events": timeline.timeline_text(release, entries),
        "promote --wait": requests_text.request_result_text("promote", a, "done"),
        "refusal": requests_text.request_refusal("promote", "shop" + text, "Degraded" + text) or "",
    }


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_no_text_output_hands_a_control_character_to_the_terminal(text: str) -> None:
    for name, out in outputs(text).items():
        shown = fmt.terminal(out)
        assert not RAW.findall(shown), (name, shown)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_tables_and_fields_escape_their_cells_so_no_row_is_forged(text: str) -> None:
    out = outputs(text)
    # Tables and fields escape each cell themselves: a message cannot add a line.
    assert len(out["status"].splitlines()) == 2
    assert len(out["history"].splitlines()) == 2
    assert not RAW.findall(out["status NAME"]), out["status NAME"]
    assert "\x1b" not in out["timeline --events"]


def test_escapes_are_visible_and_alignment_holds() -> None:
    out = fmt.status_table([hostile_app(LINK)], NOW).splitlines()
    assert out[1].startswith(r"shop\x1b]8;;https://evil.example/\x1b\promote me")
    # Every column starts where its header does.
    header = out[0]
    for title in ("PHASE", "ACTIVE", "STABLE"):
        at = header.index(title)
        assert out[1][at - 3 : at] == "   " and out[1][at] != " ", (title, out[1])
    assert fmt.printable(BIDI) == r"\u202eevil\u202c \u2066x\u2069"
    assert fmt.printable(FORGED) == r"fine\nother   Healthy   blue"
    assert fmt.printable(C1_CSI + "\x00\x7f") == r"\x9b31m\x00\x7f"
    assert fmt.terminal("a\nb\tc\x1b") == "a\nb\tc\\x1b"


def test_plain_text_is_left_alone() -> None:
    text = "Ünïcode — fine: 日本語, emoji 🙂, quotes \"' and a back\\slash"
    assert fmt.printable(text) == text
    assert fmt.terminal(text + "\n" + text) == text + "\n" + text


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("output", ["json", "yaml"])
def test_json_and_yaml_escape_in_their_own_syntax_and_stay_exact(text: str, output: str) -> None:
    a = hostile_app(text)
    dumped = fmt.dump(a, output)
    assert not RAW.findall(dumped), dumped
    assert fmt.terminal(dumped) == dumped  # nothing left for the last guard to do
    back = json.loads(dumped) if output == "json" else yaml.safe_load(dumped)
    assert back == a  # a script reading the output gets the exact strings


def test_json_uses_json_escapes() -> None:
    dumped = fmt.dump({"m": CLEAR + BIDI + "\x7f"}, "json")
    assert r"\u001b[2J" in dumped and r"\u202e" in dumped and r"\u007f" in dumped
