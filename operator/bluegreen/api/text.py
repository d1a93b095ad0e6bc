r"""Text meant for people: what the operator writes into status and Events, and what the
plugin prints. Both quote what others wrote (an author's IngressClass or annotation keys,
an error a server answered), so both go through here.

    printable("shop\x1b[2J\u202e")    # 'shop\\x1b[2J\\u202e': escapes, nothing a terminal obeys
    readable("x" * 5000)              # at most MESSAGE_LIMIT characters, saying how many more
    clip_bytes("日本" * 400, 1024)     # at most 1024 bytes of UTF-8 (an Event's note)

Every function is idempotent (`readable(readable(t)) == readable(t)`): a message stored in
status compares equal to the same message built again, so nothing is rewritten or told
twice because of the escaping.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (ESC and CSI/OSC start sequences), the bidi controls
# (marks, embeddings, overrides, isolates) and the Unicode line and paragraph separators.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

MESSAGE_LIMIT = 2048
"""Characters of a status message or condition: enough for every message the operator
composes, while one that quotes 2,000 annotation keys cannot grow the app past what the
API server stores (about 1.5 MB an object)."""
EVENT_NOTE_BYTES = 1024
"""The API server's limit of an Event's note, in bytes of UTF-8 (not characters)."""


def printable(text: str, keep: str = "") -> str:
    r"""`text` with every character that could steer a terminal written as an escape
    (`\x1b`, `\u202e`, `\n`), but those in `keep`."""

    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in keep:
            return ch
        if ch in _NAMED:
            return _NAMED[ch]
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, text)


def clip(text: str, limit: int) -> str:
    """`text`, or its start and how much was left out, in at most `limit` characters."""
    if len(text) <= limit:
        return text
    # The suffix with the whole length is at least as long as the one written.
    keep = max(limit - len(f"… ({len(text)} more characters)"), 0)
    return f"{text[:keep]}… ({len(text) - keep} more characters)"


def readable(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line for a status message, a condition or an Event: escaped, then clipped."""
    return clip(printable(text), limit)


def clip_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 on a character boundary, with `…`."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode(errors="ignore") + "…"
