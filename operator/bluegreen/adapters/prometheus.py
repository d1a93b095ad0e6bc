"""Adapters that read analysis samples over HTTP: Prometheus instant queries and web checks.

Standard library only (`urllib.request`), synchronous: call them from a worker thread. They
never raise for a failed read; every failure is a QueryResult with `error` set, which the
analysis turns into an inconclusive measurement (or an Error one when the query is invalid).

    source = HttpMetricsSource(timeout=5.0)            # implements analysis_ports.MetricsSource
    source.query("http://prometheus:9090", "sum(up)")  # QueryResult(values=(3.0,))
    source.probe("http://shop-preview.default.svc/health")
    PrometheusProvider("http://prometheus:9090").query_range("up", start, end, step=5)

Credentials (a bearer token, a CA, SigV4, more headers) come from the administrator's
profiles (`promcreds.PrometheusCredentials`), applied only to the addresses they name. A
certificate that is not trusted and an answer 401/403 say so in the error.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.promcreds import CredentialsError, PrometheusCredentials
from bluegreen.core.analysis import QueryResult

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
MAX_BODY_BYTES = 8 * 1024 * 1024  # an answer this large is a query gone wrong, not a sample
MAX_RANGE_BYTES = 32 * 1024 * 1024  # a graph's range query may carry more
_HEADERS = {"Accept": "application/json", "User-Agent": "bluegreen-operator"}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other (a 3xx), never followed: an allowed address
    must not lead the operator to one that is not."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@functools.lru_cache(maxsize=32)
def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """The opener for a profile's CA (one per SSLContext, which changes when the CA does)."""
    if context is None:
        return _OPENER
    return urllib.request.build_opener(_NoRedirects, urllib.request.HTTPSHandler(context=context))


class PrometheusError(Exception):
    """A range query that gave no matrix; `unreachable` when Prometheus did not answer."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and its samples (Unix seconds, values)."""

    labels: Mapping[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    body: bytes | None
    """None when the body was larger than the limit."""


class PrometheusProvider:
    """The HTTP API of one Prometheus: instant queries for analysis, range queries for the
    switch graph (`kubectl bluegreen graph`)."""

    def __init__(
        self,
        address: str,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: PrometheusCredentials | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.timeout = timeout
        self.credentials = credentials

    def _get(self, path: str, params: Mapping[str, str], limit: int) -> _Answer:
        """GET address+path; the status and body of any HTTP answer (errors included).
        OSError and friends propagate: the caller says what "unreachable" means to it;
        so does CredentialsError (no request is sent without the credentials)."""
        # RFC 3986 escapes (%20, not +): what a SigV4 signature's canonical query expects.
        url = f"{self.address}{path}?{urlencode(params, quote_via=quote, safe='')}"
        headers, context = dict(_HEADERS), None
        if self.credentials is not None:
            prepared = self.credentials.prepare("GET", url, headers)
            headers, context = prepared.headers, prepared.context
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked by callers
        try:
            with _opener(context).open(request, timeout=self.timeout) as response:
                return _Answer(int(response.status), str(response.reason), _read(response, limit))
        except urllib.error.HTTPError as error:
            with error:
                return _Answer(error.code, str(error.reason), _read_quietly(error, limit))

    def _address_error(self) -> str | None:
        if _scheme(self.address) in ("http", "https"):
            return None
        return f"invalid Prometheus address {self.address!r}: expected http(s)://"

    def query(self, promql: str) -> QueryResult:
        """The values of an instant vector (one per series) or of a scalar.

        Errors (in QueryResult.error; `invalid` when retrying cannot help):
        connection refused, DNS failure or timeout -> "Prometheus unreachable: ...";
        an error payload (`status: error`) -> its errorType and message, `invalid` for
        bad_data (a PromQL syntax error); another HTTP status; an answer that is not the
        API's JSON; a range vector or a string result -> `invalid`.
        """
        invalid = self._address_error()
        if invalid is not None:
            return QueryResult(error=invalid, invalid=True)
        try:
            answer = self._get("/api/v1/query", {"query": promql}, MAX_BODY_BYTES)
        except CredentialsError as error:
            return QueryResult(error=f"Prometheus credentials of the operator: {error}")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            message = _untrusted(error) or f"Prometheus unreachable: {_reason(error, self.timeout)}"
            return QueryResult(error=message)
        if answer.body is None:
            return QueryResult(error=f"Prometheus answer larger than {MAX_BODY_BYTES} bytes")
        if answer.status != 200:
            return _error_answer(answer.status, answer.reason, answer.body)
        return parse_answer(answer.body)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float
    ) -> list[RangeSeries]:
        """The series of a range query; PrometheusError for anything but a matrix."""
        invalid = self._address_error()
        if invalid is not None:
            raise PrometheusError(invalid)
        params = {
            "query": promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step:g}",
        }
        try:
            answer = self._get("/api/v1/query_range", params, MAX_RANGE_BYTES)
        except CredentialsError as error:
            raise PrometheusError(f"Prometheus credentials: {error}") from error
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise PrometheusError(
                _untrusted(error)
                or f"cannot reach Prometheus at {self.address}: {_reason(error, self.timeout)}",
                unreachable=True,
            ) from error
        if answer.body is None:
            raise PrometheusError(f"Prometheus answered more than {MAX_RANGE_BYTES} bytes")
        if answer.status != 200:
            parsed = _error_answer(answer.status, answer.reason, answer.body)
            raise PrometheusError(f"Prometheus at {self.address}: {parsed.error}")
        return parse_matrix(answer.body)


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
            with _OPENER.open(request, timeout=self.timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                status = error.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return QueryResult(error=f"GET {url} unreachable: {_reason(error, self.timeout)}")
        value = 1.0 if 200 <= status < 300 else 0.0
        return QueryResult(values=(value,), detail=f"HTTP {status}")


class HttpMetricsSource:
    """The MetricsSource of the operator (bluegreen.core.ports): Prometheus and web checks,
    only to what the endpoint policy allows (checked again here, before any request)."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        policy: EndpointPolicy | None = None,
        credentials: PrometheusCredentials | None = None,
    ) -> None:
        self.timeout = timeout
        self.policy = policy or EndpointPolicy()
        self.credentials = credentials
        """The administrator's Prometheus credentials, by address (none: no credentials)."""
        self._web = WebProvider(timeout)

    def refusal(self, prometheus: str | None, url: str | None) -> str | None:
        if prometheus is not None:
            refused = self.policy.check_prometheus(prometheus)
            if refused is not None:
                return refused
        return self.policy.check_web(url) if url is not None else None

    def query(self, address: str, promql: str) -> QueryResult:
        refused = self.policy.check_prometheus(address)
        if refused is not None:
            return QueryResult(error=refused, invalid=True)
        return PrometheusProvider(address, self.timeout, self.credentials).query(promql)

    def probe(self, url: str) -> QueryResult:
        refused = self.policy.check_web(url)
        if refused is not None:
            return QueryResult(error=refused, invalid=True)
        return self._web.probe(url)


# ----------------------------------------------------------------------------- parsing


def parse_answer(body: bytes) -> QueryResult:
    """A QueryResult from the body of a /api/v1/query answer (HTTP 200 or not)."""
    try:
        document = json.loads(body)
    except ValueError:
        return QueryResult(
            error=f"Prometheus answered something that is not JSON ({_describe(body)})"
        )
    if not isinstance(document, dict):
        return QueryResult(error=f"unexpected Prometheus answer ({_describe(body)})")
    if document.get("status") != "success":
        kind = _clean(document.get("errorType", "unknown"), 40)
        message = _clean(document.get("error", "no message"))
        return QueryResult(
            error=f"Prometheus query error ({kind}): {message}", invalid=kind == "bad_data"
        )
    data = document.get("data")
    if not isinstance(data, dict):
        return QueryResult(error=f"unexpected Prometheus answer ({_describe(body)})")
    result_type = data.get("resultType")
    result = data.get("result")
    try:
        if result_type == "vector" and isinstance(result, list):
            return QueryResult(values=tuple(_sample_value(item["value"]) for item in result))
        if result_type == "scalar":
            return QueryResult(values=(_sample_value(result),))
    except (KeyError, TypeError, ValueError):
        return QueryResult(error=f"unexpected Prometheus sample ({_describe(body)})")
    return QueryResult(
        error=f"the query gives a {result_type}; analysis needs an instant vector or a scalar",
        invalid=True,
    )


def parse_matrix(body: bytes) -> list[RangeSeries]:
    """The `matrix` of a query_range answer; PrometheusError for anything else."""
    try:
        document = json.loads(body)
    except ValueError as err:
        raise PrometheusError(f"Prometheus answered something that is not JSON: {err}") from err
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise PrometheusError(f"Prometheus refused the query: {error or document!r}")
    data = document.get("data") or {}
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"expected a matrix from query_range, got {data.get('resultType')!r}")
    out = []
    for item in data.get("result") or []:
        samples = item.get("values") or []
        out.append(
            RangeSeries(
                labels={str(k): str(v) for k, v in (item.get("metric") or {}).items()},
                times=tuple(float(t) for t, _ in samples),
                values=tuple(float(v) for _, v in samples),  # "NaN" and "+Inf" parse too
            )
        )
    return out


def _sample_value(pair: Any) -> float:
    """[timestamp, "value"]; the value is a string: "0.5", "NaN", "+Inf", "-Inf"."""
    _, text = pair
    if not isinstance(text, str):
        raise TypeError(f"sample value {text!r} is not a string")
    return float(text)


def _error_answer(code: int, reason: str, body: bytes | None) -> QueryResult:
    if body is not None:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("status") == "error":
            parsed = parse_answer(body)
            return QueryResult(error=f"{parsed.error} (HTTP {code})", invalid=parsed.invalid)
    excerpt = f" ({_describe(body)})" if body else ""
    hint = ""
    if code in (401, 403):
        hint = (
            ": the operator's credentials for this address are missing or refused "
            "(its administrator configures them: BLUEGREEN_PROMETHEUS_*)"
        )
    return QueryResult(error=f"Prometheus answered HTTP {code} {reason}{excerpt}{hint}")


def _read(response: Any, limit: int) -> bytes | None:
    """The body, or None when it exceeds `limit` bytes."""
    body: bytes = response.read(limit + 1)
    return None if len(body) > limit else body


def _read_quietly(response: Any, limit: int) -> bytes | None:
    """The body of an error answer, if it can be read at all (it only adds detail)."""
    try:
        return _read(response, limit)
    except (OSError, http.client.HTTPException):
        return None


def _untrusted(error: BaseException) -> str | None:
    """The message for a Prometheus whose TLS certificate is not trusted, which its
    administrator can fix (any other failure is one message, see `_reason`)."""
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if not isinstance(cause, ssl.SSLCertVerificationError):
        return None
    log.info("analysis request failed: %s", cause)
    return (
        f"Prometheus TLS certificate not trusted ({cause.verify_message}): the operator's "
        "administrator sets the CA for this address (BLUEGREEN_PROMETHEUS_CA_FILE)"
    )


def _reason(error: BaseException, timeout: float) -> str:
    """One message whatever went wrong on the way (refused, reset, timed out, no such
    host): what an app author reads in status must not tell open ports from closed ones.
    The operator's log has the cause."""
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    log.info("analysis request failed: %s", cause)
    return f"no connection or no answer within {timeout:g} s"


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _describe(body: bytes | None) -> str:
    """What came back, without echoing it: its size only."""
    return f"{len(body or b'')} bytes"


def _clean(text: object, limit: int = 200) -> str:
    """A message from Prometheus, as short printable text."""
    printable = "".join(c if c.isprintable() else " " for c in str(text))
    return printable if len(printable) <= limit else printable[:limit] + "..."
