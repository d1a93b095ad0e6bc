"""Text for people (bluegreen.api.text): what the operator writes into status and Events
quotes what authors and servers wrote, escaped and clipped, the same on every pass."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bluegreen.api.text import (
    EVENT_NOTE_BYTES,
    MESSAGE_LIMIT,
    clip,
    clip_bytes,
    printable,
    readable,
)
from tests.unit.factories import app_body
from tests.unit.fake_cluster import FakeCluster
from tests.unit.test_reconcile_ticks import Harness

RAW = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=3000)


@given(ANY_TEXT, st.integers(40, 4000))
def test_readable_is_escaped_clipped_and_idempotent(text: str, limit: int) -> None:
    once = readable(text, limit)
    assert not RAW.search(once)
    assert len(once) <= limit
    assert readable(once, limit) == once
    if len(printable(text)) <= limit:
        assert once == printable(text)


@given(ANY_TEXT, st.integers(4, 2000))
def test_clip_bytes_cuts_on_a_character_boundary(text: str, limit: int) -> None:
    cut = clip_bytes(text, limit)
    assert len(cut.encode()) <= limit
    assert cut == text or (cut.endswith("…") and text.startswith(cut[:-1]))


def test_clip_says_how_much_was_left_out() -> None:
    assert clip("x" * 10, 10) == "x" * 10
    cut = clip("x" * 5000, 100)
    assert len(cut) <= 100 and cut.endswith(f"… ({5000 - cut.index('…')} more characters)")


def test_an_event_note_of_other_scripts_fits_in_the_api_servers_bytes() -> None:
    note = clip_bytes("日本語" * 400, EVENT_NOTE_BYTES)
    assert len(note.encode()) <= EVENT_NOTE_BYTES < len(note) * 3 + 3


def test_printable_escapes_what_steers_a_terminal() -> None:
    assert printable("a\x1b[2J\u202eb\n") == r"a\x1b[2J\u202eb\n"
    assert printable("Ünïcode 日本語 🙂") == "Ünïcode 日本語 🙂"


def test_a_refused_ingress_of_2000_keys_is_written_once_bounded_and_told_once() -> None:
    body = app_body(image="registry.example/shop:v1")
    keys = {f"{i:04d}-" + "k" * 195 + "\x1b[2J": "v" for i in range(2000)}
    body["spec"]["ingress"] = {"host": "shop.example.com", "className": "\x1b]0;x\x07nginx"}
    body["spec"]["ingress"]["annotations"] = keys
    cluster = FakeCluster()
    cluster.create_app(body)
    h = Harness(cluster)
    for _ in range(6):
        h.tick()
    status = cluster.status
    (admitted,) = [c for c in status["conditions"] if c["type"] == "IngressAdmitted"]
    for text in (admitted["message"], status.get("message", "")):
        assert len(text) <= MESSAGE_LIMIT and not RAW.search(text), text[:200]
    assert r"\x1b]0;x\x07nginx" in admitted["message"]
    assert h.events().count("IngressRefused") == 1
    writes = len([c for c in h.calls() if c.op == "patch_app_status"])
    h.tick()
    h.tick()
    assert len([c for c in h.calls() if c.op == "patch_app_status"]) == writes
