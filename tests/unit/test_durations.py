"""The one duration parser (Go's syntax) and the Prometheus formatter."""

from __future__ import annotations

import pytest

from bluegreen.api import durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("1h1m1s1ms", 3661.001),
        ("0s", 0.0),
        ("90s", 90.0),
        ("1m5ms", 60.005),
        ("1.5m", 90.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("2h45m", 9900.0),
        ("1500us", 0.0015),
        ("250ns", 2.5e-7),
        ("48h", 172800.0),
    ],
)
def test_parses_go_durations(text: str, seconds: float) -> None:
    assert durations.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "15",
        "s",
        "-1s",
        "+1s",
        "15 s",
        " 15s",
        "15s ",
        "1d",
        "2d",
        "1w",
        "15S",
        "1m30",
        "ms",
        "nan",
        "inf",
        "1.5",
        ".s",
        "1..5s",
        "15x",
    ],
)
def test_refuses_anything_else_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*15s, 1m30s"):
        durations.parse(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "60s"), (4.4, "4s"), (0.25, "250ms"), (0.0001, "1ms"), (3600, "3600s")],
)
def test_prometheus_form(seconds: float, text: str) -> None:
    assert durations.prometheus(seconds) == text
