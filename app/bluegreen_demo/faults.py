"""Fault injection: the settings, their validation, and a deterministic error schedule.

The demo app must misbehave on demand so that analysis and rollback can be shown and
tested. Errors are not random: an accumulator adds the error ratio on every request and a
request fails each time the accumulator reaches one. A ratio of 0.25 therefore fails
exactly every 4th request, 0.5 every 2nd, and 20 requests at 0.5 give exactly 10 errors.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

MAX_LATENCY_MS: Final = 60_000
"""Upper bound on injected latency, so a typo cannot hang a pod for hours."""

_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})

# JSON field names of the admin endpoint.
ERROR_RATIO: Final = "errorRatio"
LATENCY_MS: Final = "latencyMs"
HEALTH_FAIL: Final = "healthFail"
_FIELDS: Final = (ERROR_RATIO, LATENCY_MS, HEALTH_FAIL)


class ConfigError(ValueError):
    """Invalid configuration; the message is meant for the person who set it."""


class FaultError(ConfigError):
    """Invalid fault settings; the message is meant for the person who sent them."""


@dataclass(frozen=True)
class FaultSettings:
    """What the app currently does wrong. The default does nothing wrong."""

    error_ratio: float = 0.0
    """Fraction of requests to `/` answered with 500, in [0, 1]."""
    latency_ms: int = 0
    """Added latency on `/`, in milliseconds."""
    health_fail: bool = False
    """Answer `/health` with 503."""

    def __post_init__(self) -> None:
        _check_error_ratio(self.error_ratio, "error ratio")
        _check_latency_ms(self.latency_ms, "latency")

    def to_json(self) -> dict[str, float | int | bool]:
        return {
            ERROR_RATIO: self.error_ratio,
            LATENCY_MS: self.latency_ms,
            HEALTH_FAIL: self.health_fail,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FaultSettings:
        """Read `FAULT_ERROR_RATIO`, `FAULT_LATENCY_MS` and `FAULT_HEALTH_FAIL`."""
        ratio_text = env.get("FAULT_ERROR_RATIO", "").strip() or "0"
        latency_text = env.get("FAULT_LATENCY_MS", "").strip() or "0"
        health_text = env.get("FAULT_HEALTH_FAIL", "")
        try:
            ratio = float(ratio_text)
        except ValueError:
            raise FaultError(
                f"FAULT_ERROR_RATIO must be a number in [0, 1], got {ratio_text!r}"
            ) from None
        try:
            latency = int(latency_text)
        except ValueError:
            raise FaultError(
                f"FAULT_LATENCY_MS must be a whole number of milliseconds, got {latency_text!r}"
            ) from None
        health_fail = parse_bool("FAULT_HEALTH_FAIL", health_text)
        _check_error_ratio(ratio, "FAULT_ERROR_RATIO")
        _check_latency_ms(latency, "FAULT_LATENCY_MS")
        return cls(error_ratio=ratio, latency_ms=latency, health_fail=health_fail)

    def updated(self, payload: object) -> FaultSettings:
        """Apply a partial update from the admin endpoint's JSON body.

        Raises FaultError, naming the offending field, on anything but a JSON object whose
        keys are known fault names with values of the right type and range.
        """
        if not isinstance(payload, dict):
            raise FaultError(
                "body must be a JSON object such as "
                '{"errorRatio": 0.5, "latencyMs": 0, "healthFail": false}'
            )
        unknown = sorted(str(key) for key in payload if key not in _FIELDS)
        if unknown:
            raise FaultError(
                f"unknown field(s) {', '.join(unknown)}; known fields: {', '.join(_FIELDS)}"
            )
        error_ratio, latency_ms, health_fail = self.error_ratio, self.latency_ms, self.health_fail
        if ERROR_RATIO in payload:
            value = payload[ERROR_RATIO]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultError(f"{ERROR_RATIO} must be a number in [0, 1], got {value!r}")
            try:
                error_ratio = float(value)
            except OverflowError:
                raise FaultError(
                    f"{ERROR_RATIO} must be a number in [0, 1], got {value!r}"
                ) from None
            _check_error_ratio(error_ratio, ERROR_RATIO)
        if LATENCY_MS in payload:
            value = payload[LATENCY_MS]
            if isinstance(value, bool) or not isinstance(value, int):
                raise FaultError(
                    f"{LATENCY_MS} must be a whole number of milliseconds, got {value!r}"
                )
            latency_ms = value
            _check_latency_ms(latency_ms, LATENCY_MS)
        if HEALTH_FAIL in payload:
            value = payload[HEALTH_FAIL]
            if not isinstance(value, bool):
                raise FaultError(f"{HEALTH_FAIL} must be true or false, got {value!r}")
            health_fail = value
        return FaultSettings(
            error_ratio=error_ratio, latency_ms=latency_ms, health_fail=health_fail
        )


def parse_bool(name: str, text: str, *, default: bool = False) -> bool:
    """Parse an environment flag: true/false, 1/0, yes/no, on/off; empty means default."""
    word = text.strip().lower()
    if not word:
        return default
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def _check_error_ratio(value: float, name: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise FaultError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_latency_ms(value: int, name: str) -> None:
    if not 0 <= value <= MAX_LATENCY_MS:
        raise FaultError(f"{name} must be between 0 and {MAX_LATENCY_MS} ms, got {value!r}")


class FaultInjector:
    """Thread-safe holder of the current faults and of the error schedule."""

    def __init__(self, settings: FaultSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._ratio = _as_fraction(settings.error_ratio)
        self._accumulator = Fraction(0)

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def update(self, payload: object) -> FaultSettings:
        """Apply a partial update (see FaultSettings.updated) and return the new settings.

        Setting `errorRatio`, even to its current value, restarts the error schedule, so
        the sequence of failures after an update does not depend on earlier traffic.
        """
        with self._lock:
            new = self._settings.updated(payload)
            if isinstance(payload, dict) and ERROR_RATIO in payload:
                self._ratio = _as_fraction(new.error_ratio)
                self._accumulator = Fraction(0)
            self._settings = new
            return new

    def next_request_fails(self) -> bool:
        """Advance the error schedule by one request; True if this request must fail."""
        with self._lock:
            if self._ratio == 0:
                return False
            self._accumulator += self._ratio
            if self._accumulator >= 1:
                self._accumulator -= 1
                return True
            return False


def _as_fraction(ratio: float) -> Fraction:
    # Exact arithmetic: 0.1 becomes 1/10, so ten requests give exactly one error, forever.
    return Fraction(ratio).limit_denominator(1_000_000)
