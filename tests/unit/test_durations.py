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
    ("text", "seconds"),
    [
        # Below a nanosecond Go (and CEL, and so the CRD) drops the digits: exactly 1h.
        ("3600.0000000001s", 3600.0),
        ("1h0m0.0000000001s", 3600.0),
        ("0.0000000001h", 360e-9),
        ("0.0000000000001h", 0.0),  # 0.36 ns
        ("1.000000001s", 1.000000001),
        ("0.999999999s", 0.999999999),
        ("3599999999999ns", 3599.999999999),
        ("9223372036854775807ns", 9223372036.854775807),
    ],
)
def test_reads_to_the_nanosecond_as_go_does(text: str, seconds: float) -> None:
    assert durations.parse(text) == seconds


@pytest.mark.parametrize("text", ["9223372036854775808ns", "99999999999999999999h", "2562048h"])
def test_refuses_what_overflows_go(text: str) -> None:
    with pytest.raises(ValueError, match="Go's limit"):
        durations.parse(text)


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
