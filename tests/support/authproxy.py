"""A loopback HTTP server in front of a real Prometheus that checks the credentials it gets.

Real Prometheus checks TLS and basic auth only (its web config); a bearer token is checked by
the proxy in front of it in a real deployment (kube-rbac-proxy, an API gateway), and a
SigV4 signature by Amazon Managed Prometheus, whose query API moto does not serve. This
server plays that part on loopback and forwards what it accepts to a real Prometheus:

    with AuthProxy(prometheus.url, BearerCheck("s3cret"), upstream_context=ctx) as proxy:
        proxy.url                         # http://127.0.0.1:<port>
        proxy.seen[-1].headers            # every request is recorded, accepted or not

    SigV4Check(access_key, secret_key, region="us-west-2")   # recomputes the signature
    AuthProxy(url, None)                                     # checks nothing, records all

`strip_prefix` removes a path prefix before forwarding (AMP's /workspaces/<id>). A refused
request gets 401 (bearer) or 403 (SigV4) with a JSON message, as the real ones answer.
"""

from __future__ import annotations

import hmac
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.process import LOOPBACK

Check = Callable[[str, str, Mapping[str, str]], "Refusal | None"]
"""(method, path with query, headers lowercased) -> None to accept, or why not."""


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-cased names."""
    refused: str | None


class BearerCheck:
    """Accepts `Authorization: Bearer <token>` for a token in `accepted` (change it to rotate)."""

    def __init__(self, *tokens: str) -> None:
        self.accepted = set(tokens)

    def __call__(self, method: str, target: str, headers: Mapping[str, str]) -> Refusal | None:
        value = headers.get("authorization")
        if value is None:
            return Refusal(401, "no Authorization header")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token, ok) for ok in self.accepted
        ):
            return Refusal(401, "bearer token not accepted")
        return None


_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW_SECONDS = 300


class SigV4Check:
    """Verifies an AWS Signature Version 4 the way AWS does: the credential scope, the time,
    the signed headers, and the signature recomputed (with botocore) from the request as it
    arrived, its query canonicalized with RFC 3986 escapes."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        region: str,
        service: str = "aps",
        session_token: str | None = None,
    ) -> None:
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region = region
        self.service = service

    def __call__(self, method: str, target: str, headers: Mapping[str, str]) -> Refusal | None:
        found = _AUTH.match(headers.get("authorization", ""))
        if found is None:
            return Refusal(403, "Missing or malformed SigV4 Authorization header")
        stamp = headers.get("x-amz-date", "")
        signed = found["signed"].split(";")
        if found["key"] != self.credentials.access_key:
            return Refusal(403, "The security token included in the request is invalid")
        if (found["region"], found["service"]) != (self.region, self.service):
            return Refusal(403, f"Credential should be scoped to {self.region}/{self.service}")
        if found["date"] != stamp[:8] or not {"host", "x-amz-date"} <= set(signed):
            return Refusal(403, "host and x-amz-date must be signed, with the scope's date")
        try:
            at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return Refusal(403, "X-Amz-Date is not a date")
        if abs(time.time() - at.timestamp()) > MAX_SKEW_SECONDS:
            return Refusal(403, "Signature expired")
        token = self.credentials.token
        if token is not None and (
            headers.get("x-amz-security-token") != token or "x-amz-security-token" not in signed
        ):
            return Refusal(403, "The security token included in the request is invalid")
        parts = urlsplit(target)
        pairs = sorted(
            (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
        request = AWSRequest(
            method=method,
            url=f"http://{headers.get('host', '')}{parts.path}?{canonical_query}",
            headers={name: headers.get(name, "") for name in signed},
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(self.credentials, self.service, self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, found["signature"]):
            return Refusal(
                403,
                "The request signature we calculated does not match the signature you provided",
            )
        return None


class AuthProxy:
    def __init__(
        self,
        upstream: str,
        check: Check | None,
        *,
        upstream_context: ssl.SSLContext | None = None,
        strip_prefix: str = "",
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.check = check
        self.upstream_context = upstream_context
        self.strip_prefix = strip_prefix
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> AuthProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AuthProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _forward(self, target: str) -> tuple[int, bytes, str]:
        path = target
        if self.strip_prefix and path.startswith(self.strip_prefix):
            path = path[len(self.strip_prefix) :]
        request = urllib.request.Request(self.upstream + path)
        try:
            with urllib.request.urlopen(
                request, timeout=10, context=self.upstream_context
            ) as answer:
                return answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read(), error.headers.get("Content-Type", "")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                refusal = proxy.check("GET", self.path, headers) if proxy.check else None
                proxy._record(Seen("GET", self.path, headers, refusal.message if refusal else None))
                if refusal is not None:
                    body = json.dumps({"message": refusal.message}).encode()
                    status, content_type = refusal.status, "application/json"
                else:
                    status, body, content_type = proxy._forward(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
