"""Adapters that read analysis samples over HTTP: Prometheus instant queries and web checks.

Standard library only (`urllib.request`), synchronous: call them from a worker thread. They
never raise for a failed read; every failure is a QueryResult with `error` set, which the
analysis turns into an inconclusive measurement (or an Error one when the query is invalid).

    source = HttpMetricsSource(timeout=5.0)            # implements analysis_ports.MetricsSource
    source.query("http://prometheus:9090", "sum(up)")  # QueryResult(values=(3.0,))
    source.probe("http://shop-preview.default.svc/health")
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from bluegreen.core.analysis import QueryResult

DEFAULT_TIMEOUT = 10.0
MAX_BODY_BYTES = 8 * 1024 * 1024  # an answer this large is a query gone wrong, not a sample
_HEADERS = {"Accept": "application/json", "User-Agent": "bluegreen-operator"}


class PrometheusProvider:
    """Instant queries against one Prometheus: GET {address}/api/v1/query?query=..."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str) -> QueryResult:
        """The values of an instant vector (one per series) or of a scalar.

        Errors (in QueryResult.error; `invalid` when retrying cannot help):
        connection refused, DNS failure or timeout -> "Prometheus unreachable: ...";
        an error payload (`status: error`) -> its errorType and message, `invalid` for
        bad_data (a PromQL syntax error); another HTTP status; an answer that is not the
        API's JSON; a range vector or a string result -> `invalid`.
        """
        if _scheme(self.address) not in ("http", "https"):
            return QueryResult(
                error=f"invalid Prometheus address {self.address!r}: expected http(s)://",
                invalid=True,
            )
        url = f"{self.address}/api/v1/query?{urlencode({'query': promql})}"
        request = urllib.request.Request(url, headers=_HEADERS)  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = _read(response)
        except urllib.error.HTTPError as error:
            with error:
                return _error_answer(error.code, error.reason, _read_quietly(error))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return QueryResult(error=f"Prometheus unreachable: {_reason(error, self.timeout)}")
        if body is None:
            return QueryResult(error=f"Prometheus answer larger than {MAX_BODY_BYTES} bytes")
        return parse_answer(body)


class WebProvider:
    """Web checks: GET a URL; value 1.0 for a 2xx answer, 0.0 for any other status.

    Redirects are followed (the final answer counts). A connection failure or a timeout is
    an error (so inconclusive), not a 0: the check could not look at the app at all."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def probe(self, url: str) -> QueryResult:
        if _scheme(url) not in ("http", "https"):
            return QueryResult(error=f"invalid URL {url!r}: expected http(s)://", invalid=True)
        request = urllib.request.Request(url, headers={"User-Agent": _HEADERS["User-Agent"]})  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                status = error.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return QueryResult(error=f"GET {url} unreachable: {_reason(error, self.timeout)}")
        value = 1.0 if 200 <= status < 300 else 0.0
        return QueryResult(values=(value,), detail=f"HTTP {status}")


class HttpMetricsSource:
    """The MetricsSource of the operator (see analysis_ports): Prometheus and web checks."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._web = WebProvider(timeout)

    def query(self, address: str, promql: str) -> QueryResult:
        return PrometheusProvider(address, self.timeout).query(promql)

    def probe(self, url: str) -> QueryResult:
        return self._web.probe(url)


# ----------------------------------------------------------------------------- parsing


def parse_answer(body: bytes) -> QueryResult:
    """A QueryResult from the body of a /api/v1/query answer (HTTP 200 or not)."""
    try:
        document = json.loads(body)
    except ValueError:
        return QueryResult(
            error=f"Prometheus answered something that is not JSON: {_excerpt(body)}"
        )
    if not isinstance(document, dict):
        return QueryResult(error=f"unexpected Prometheus answer: {_excerpt(body)}")
    if document.get("status") != "success":
        kind = document.get("errorType", "unknown")
        message = document.get("error", "no message")
        return QueryResult(
            error=f"Prometheus query error ({kind}): {message}", invalid=kind == "bad_data"
        )
    data = document.get("data")
    if not isinstance(data, dict):
        return QueryResult(error=f"unexpected Prometheus answer: {_excerpt(body)}")
    kind = data.get("resultType")
    result = data.get("result")
    try:
        if kind == "vector" and isinstance(result, list):
            return QueryResult(values=tuple(_sample_value(item["value"]) for item in result))
        if kind == "scalar":
            return QueryResult(values=(_sample_value(result),))
    except (KeyError, TypeError, ValueError) as error:
        return QueryResult(error=f"unexpected Prometheus sample ({error}): {_excerpt(body)}")
    return QueryResult(
        error=f"the query gives a {kind}; analysis needs an instant vector or a scalar",
        invalid=True,
    )


def _sample_value(pair: Any) -> float:
    """[timestamp, "value"]; the value is a string: "0.5", "NaN", "+Inf", "-Inf"."""
    _, text = pair
    if not isinstance(text, str):
        raise TypeError(f"sample value {text!r} is not a string")
    return float(text)


def _error_answer(code: int, reason: object, body: bytes | None) -> QueryResult:
    if body is not None:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("status") == "error":
            parsed = parse_answer(body)
            return QueryResult(error=f"{parsed.error} (HTTP {code})", invalid=parsed.invalid)
    excerpt = f": {_excerpt(body)}" if body else ""
    return QueryResult(error=f"Prometheus answered HTTP {code} {reason}{excerpt}")


def _read(response: Any) -> bytes | None:
    """The body, or None when it exceeds MAX_BODY_BYTES."""
    body: bytes = response.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _read_quietly(response: Any) -> bytes | None:
    """The body of an error answer, if it can be read at all (it only adds detail)."""
    try:
        return _read(response)
    except (OSError, http.client.HTTPException):
        return None


def _reason(error: BaseException, timeout: float) -> str:
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return str(cause) or type(cause).__name__


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _excerpt(body: bytes | None, limit: int = 200) -> str:
    text = (body or b"").decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
