"""The Amazon ECR adapter of the `ImageResolver` port: tag -> digest through boto3.

    resolver = EcrResolver(ttl_seconds=60, timeout_seconds=3)
    resolver.resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v9")
    # Resolution(digest="sha256:...", outcome=ResolutionOutcome.RESOLVED, ...)

One `DescribeImages(registryId, repositoryName, imageIds=[{imageTag}])` per lookup, on one
ECR client per region (made on first use). Credentials come from boto3's default chain
(environment, shared files, web identity/IRSA, container and instance metadata); the
endpoint from `endpoint_url` or boto3's own `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL`.

Never raises for registry failures (see `bluegreen.core.images.ResolutionOutcome`):
- ImageNotFoundException, RepositoryNotFoundException -> NOT_FOUND (a definite answer);
- throttling, connect/read timeouts, unreachable endpoint, missing or rejected
  credentials, access denied, server errors -> UNAVAILABLE (ask again later).

RESOLVED and NOT_FOUND answers are cached for `ttl_seconds` (on the monotonic `clock`), so a
reconcile loop does not ask ECR on every pass; UNAVAILABLE is never cached. A call blocks at
most about 2 x `timeout_seconds` (two attempts; plus at most 1 s of retry backoff after a
throttled first attempt). Thread-safe: the operator calls it from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from bluegreen.adapters import aws
from bluegreen.core.images import (
    EcrRef,
    Resolution,
    ResolutionOutcome,
    local_resolution,
    parse_ecr,
    resolved,
    where,
)

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

MAX_ATTEMPTS = 2
"""HTTP requests per lookup at most: the first and one retry."""
MAX_CACHE_ENTRIES = 1024

_NOT_FOUND_IMAGE = "ImageNotFoundException"
_NOT_FOUND_REPOSITORY = "RepositoryNotFoundException"
_CacheKey = tuple[str, str, str, str]


class EcrResolver:
    """Implements `bluegreen.core.ports.ImageResolver` for Amazon ECR."""

    def __init__(
        self,
        ttl_seconds: float = 60,
        timeout_seconds: float = 3,
        endpoint_url: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self.endpoint_url = endpoint_url
        self.calls = 0
        """DescribeImages calls made (each may be up to MAX_ATTEMPTS HTTP requests)."""
        self._clock = clock
        config = aws.client_config(timeout_seconds, MAX_ATTEMPTS)
        self._clients: aws.RegionalClients[ECRClient] = aws.RegionalClients(
            lambda session, region: session.client(
                "ecr", region_name=region, endpoint_url=endpoint_url, config=config
            ),
            session,
        )
        self._lock = threading.Lock()
        self._cache: dict[_CacheKey, tuple[float, Resolution]] = {}

    def resolve(self, image: str) -> Resolution:
        local = local_resolution(image)
        if local is not None:
            return local
        ref = parse_ecr(image)
        assert ref is not None and ref.tag is not None  # local_resolution answers the rest
        key = (ref.registry_id, ref.region, ref.repository, ref.tag)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                expires, resolution = cached
                if self._clock() < expires:
                    return replace(resolution, image=image)
                del self._cache[key]
        resolution = self._ask(ref)
        if resolution.outcome is not ResolutionOutcome.UNAVAILABLE:
            with self._lock:
                self._remember(key, resolution)
        return resolution

    def _ask(self, ref: EcrRef) -> Resolution:
        assert ref.tag is not None
        client = self._clients.get(ref.region)
        with self._lock:
            self.calls += 1
        try:
            answer = client.describe_images(
                registryId=ref.registry_id,
                repositoryName=ref.repository,
                imageIds=[{"imageTag": ref.tag}],
            )
        except ClientError as error:
            return self._client_error(ref, error)
        except (ConnectTimeoutError, ReadTimeoutError):
            return _unavailable(ref, f"ECR timed out after {self.timeout_seconds:g}s")
        except EndpointConnectionError as error:
            return _unavailable(ref, f"cannot reach ECR: {error}")
        except NoCredentialsError:
            self._clients.forget(ref.region)  # its credentials stay None until it is remade
            return _unavailable(ref, "no AWS credentials found")
        except BotoCoreError as error:
            return _unavailable(ref, f"ECR request failed: {error}")
        digests = {d["imageDigest"] for d in answer.get("imageDetails", []) if "imageDigest" in d}
        if len(digests) != 1:
            return _unavailable(ref, f"unexpected DescribeImages answer: {len(digests)} digests")
        return resolved(ref, digests.pop())

    def _client_error(self, ref: EcrRef, error: ClientError) -> Resolution:
        code = error.response.get("Error", {}).get("Code", "")
        detail = error.response.get("Error", {}).get("Message", "") or code
        if code == _NOT_FOUND_IMAGE:
            return _not_found(ref, f"tag {ref.tag} not found {where(ref)}")
        if code == _NOT_FOUND_REPOSITORY:
            return _not_found(
                ref,
                f"repository {ref.repository} not found in registry "
                f"{ref.registry_id} ({ref.region})",
            )
        if code in aws.THROTTLING:
            return _unavailable(ref, f"ECR throttled the request ({code}: {detail})")
        if code in aws.ACCESS_DENIED:
            return _unavailable(ref, f"access denied by ECR: {detail}")
        if code in aws.BAD_CREDENTIALS:
            self._clients.forget(ref.region)
            return _unavailable(ref, f"ECR rejected the AWS credentials ({code}: {detail})")
        return _unavailable(ref, f"ECR answered {code or 'an error'}: {detail}")

    def _remember(self, key: _CacheKey, resolution: Resolution) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[stale]
            while len(self._cache) >= MAX_CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[key] = (now + self.ttl_seconds, resolution)


def _not_found(ref: EcrRef, message: str) -> Resolution:
    return Resolution(ref.original, None, ResolutionOutcome.NOT_FOUND, message)


def _unavailable(ref: EcrRef, message: str) -> Resolution:
    return Resolution(ref.original, None, ResolutionOutcome.UNAVAILABLE, message)
