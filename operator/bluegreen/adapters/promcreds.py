"""Apply the administrator's Prometheus credentials to one request (profiles: `promauth`).

    credentials = PrometheusCredentials(load_profiles(...))
    prepared = credentials.prepare("GET", url, {"Accept": "application/json"})
    prepared.headers   # + Authorization, profile headers, or a SigV4 signature: only when a
                       #   profile names this URL
    prepared.context   # an ssl.SSLContext that trusts the profile's CA only, or None

Files are read when they change, not on every request: a bearer token file (a projected
ServiceAccount token is rotated by the kubelet, a Secret volume by its owner), a header's
file and a CA file are looked at with one `stat` per request and read again when their
inode, size or modification time changed (the kubelet swaps a symlink, so the inode does).

SigV4 (Amazon Managed Prometheus): botocore signs the request for the service `aps` in the
profile's region, or the one in the address (aps-workspaces.<region>.amazonaws.com), with
credentials from botocore's default chain: IRSA's web identity token in EKS, else the
environment, shared files, container or instance metadata. botocore refreshes temporary
credentials before they expire.

`prepare` raises CredentialsError when the credentials cannot be had (a file missing or
empty, no AWS credentials): the caller makes that an error of the query, never a request
without them. Thread-safe: the operator's passes run in worker threads.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from bluegreen.adapters.promauth import Profile, amp_region, select

log = logging.getLogger(__name__)

SIGV4_SERVICE = "aps"
NO_CREDENTIALS_RETRY_SECONDS = 30.0
"""After botocore's chain found no AWS credentials, how long before it is asked again (it
may wait on instance metadata for seconds each time)."""

T = TypeVar("T")


class CredentialsError(Exception):
    """The credentials a profile names cannot be had right now; the message says which."""


@dataclass(frozen=True)
class Prepared:
    headers: dict[str, str]
    context: ssl.SSLContext | None = None


class WatchedFile(Generic[T]):
    """A mounted file, parsed again only when it changed (one `stat` per `get`)."""

    def __init__(self, path: str, what: str, parse: Callable[[bytes], T]) -> None:
        self.path = path
        self.what = what
        self._parse = parse
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._value: T | None = None
        self.reads = 0
        """How many times the file was read (tests: a file is read again only when changed)."""

    def get(self) -> T:
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise CredentialsError(f"{self.what} {self.path}: {err.strerror}") from err
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp or self._value is None:
                try:
                    with open(self.path, "rb") as handle:
                        data = handle.read()
                except OSError as err:
                    raise CredentialsError(f"{self.what} {self.path}: {err.strerror}") from err
                try:
                    self._value = self._parse(data)
                except (ValueError, ssl.SSLError) as err:
                    raise CredentialsError(f"{self.what} {self.path}: {err}") from err
                self._stamp = stamp
                self.reads += 1
                log.info("read %s %s", self.what, self.path)
            return self._value


def _single_line(data: bytes) -> str:
    text = data.decode("utf-8").strip()
    if not text:
        raise ValueError("the file is empty")
    if "\n" in text or "\r" in text:
        raise ValueError("the file has more than one line")
    return text


def _ca_context(data: bytes) -> ssl.SSLContext:
    """A client context that trusts exactly the CA certificates in the file."""
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError("no PEM certificate in the file")
    return ssl.create_default_context(cadata=text)


class SigV4Signer:
    """Signs requests to Amazon Managed Prometheus with botocore's default credentials."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._missing_until = 0.0

    def sign(self, method: str, url: str, headers: Mapping[str, str]) -> dict[str, str]:
        region = self.region or amp_region(url)
        if region is None:
            raise CredentialsError(
                "SigV4 needs a region: the address is not aps-workspaces.<region>."
                "amazonaws.com and BLUEGREEN_PROMETHEUS_SIGV4_REGION (or the profile's "
                "sigv4.region) is not set"
            )
        try:
            frozen = self._chain().get_frozen_credentials()
        except (BotoCoreError, ClientError) as err:
            raise CredentialsError(f"AWS credentials for SigV4: {err}") from err
        request = AWSRequest(method=method, url=url, headers=dict(headers))
        SigV4Auth(frozen, SIGV4_SERVICE, region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    def _chain(self) -> Credentials:
        with self._lock:
            if self._credentials is not None:
                return self._credentials
            if time.monotonic() < self._missing_until:
                raise CredentialsError(_NO_AWS_CREDENTIALS)
            try:
                found = botocore.session.get_session().get_credentials()
            except (BotoCoreError, ClientError) as err:
                raise CredentialsError(f"AWS credentials for SigV4: {err}") from err
            if found is None:
                self._missing_until = time.monotonic() + NO_CREDENTIALS_RETRY_SECONDS
                raise CredentialsError(_NO_AWS_CREDENTIALS)
            self._credentials = found
            log.info("SigV4 credentials from botocore's chain: %s", found.method)
            return found


_NO_AWS_CREDENTIALS = (
    "no AWS credentials for SigV4: botocore's default chain found none (in EKS: IRSA, the "
    "eks.amazonaws.com/role-arn annotation on the operator's ServiceAccount)"
)


class _ProfileCredentials:
    """The files and signer of one profile."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.token = (
            WatchedFile(profile.bearer_token_file, "bearer token file", _single_line)
            if profile.bearer_token_file
            else None
        )
        self.ca = WatchedFile(profile.ca_file, "CA file", _ca_context) if profile.ca_file else None
        self.header_files = {
            h.name: WatchedFile(h.file, f"file of header {h.name}", _single_line)
            for h in profile.headers
            if h.file is not None
        }
        self.signer = SigV4Signer(profile.sigv4_region) if profile.sigv4 else None

    def prepare(self, method: str, url: str, headers: Mapping[str, str]) -> Prepared:
        out = dict(headers)
        for header in self.profile.headers:
            if header.value is not None:
                out[header.name] = header.value
            else:
                out[header.name] = self.header_files[header.name].get()
        if self.token is not None:
            out["Authorization"] = f"Bearer {self.token.get()}"
        context = self.ca.get() if self.ca is not None else None
        if self.signer is not None:
            out = self.signer.sign(method, url, out)  # last: it signs the other headers
        return Prepared(out, context)


class PrometheusCredentials:
    """Every profile of the operator; `prepare` applies the one that matches a URL."""

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self.profiles = tuple(profiles)
        self._by_profile = {id(p): _ProfileCredentials(p) for p in self.profiles}

    def prepare(self, method: str, url: str, headers: Mapping[str, str]) -> Prepared:
        profile = select(self.profiles, url)
        if profile is None:
            return Prepared(dict(headers))
        return self._by_profile[id(profile)].prepare(method, url, headers)
