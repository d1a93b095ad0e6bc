"""What the AWS adapters (CloudWatch, ECR) share: botocore's settings, one client per
region, and the error codes that mean the same thing in every AWS API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import boto3
from botocore.config import Config

THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
# The request was refused because of who sent it: the credentials are wrong, not the request.
BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
    }
)


def client_config(timeout_seconds: float, attempts: int) -> Config:
    """Bounded waits and retries: `attempts` counts the first request too (botocore's own
    "max_attempts" counts retries only: {"max_attempts": 2} would be three attempts)."""
    return Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        user_agent_extra="bluegreen-operator",
    )


Client = TypeVar("Client")


class RegionalClients(Generic[Client]):
    """One client per region, made on first use; thread-safe (creating a client is not
    thread-safe in boto3, using one is). A client whose credentials were refused is
    forgotten, so the next call reads them again (IRSA tokens rotate)."""

    def __init__(
        self,
        make: Callable[[boto3.session.Session, str | None], Client],
        session: boto3.session.Session | None = None,
    ) -> None:
        self._make = make
        self._session = session
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}

    def get(self, region: str | None) -> Client:
        with self._lock:
            client = self._clients.get(region or "")
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                client = self._make(self._session, region)
                self._clients[region or ""] = client
            return client

    def forget(self, region: str | None) -> None:
        with self._lock:
            self._clients.pop(region or "", None)
