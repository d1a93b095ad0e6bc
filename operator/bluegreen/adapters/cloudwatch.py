"""Amazon CloudWatch through boto3: GetMetricData for the analysis of `cloudwatch` metrics.

    provider = CloudWatchProvider(timeout_seconds=5)
    provider.get_metric_data(request)   # a QueryResult; request from core.cloudwatch

Credentials come from botocore's default chain (environment, shared files, web identity:
IRSA in EKS, container and instance metadata); the operator's IAM role needs
`cloudwatch:GetMetricData`. The endpoint is the region's, unless the operator's
administrator sets another (`BLUEGREEN_CLOUDWATCH_ENDPOINT_URL`, or botocore's own
`AWS_ENDPOINT_URL_CLOUDWATCH`): an app names only a region, never an endpoint.

An app's metric may name a region; without one, the operator's own: botocore's
(`AWS_DEFAULT_REGION`, the profile), else `AWS_REGION` (what EKS sets for IRSA and the other
AWS SDKs read). One client per region (made on first use). Each call follows NextToken for at most
MAX_PAGES pages. botocore's standard retry mode retries throttling and server errors with
exponential backoff and jitter, MAX_ATTEMPTS attempts in all. Never raises; every failure is
a QueryResult with `error` set, which the analysis counts as inconclusive:

- Throttling after every attempt    -> "CloudWatch throttled the request (...) N times"
- AccessDenied (403)                -> "access denied by CloudWatch: <IAM's message>"
- no credentials, rejected ones     -> says so
- no answer, a timeout              -> "CloudWatch unreachable: ..."
- a request CloudWatch calls invalid (a bad expression, a bad stat) -> `invalid` (Error)
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from bluegreen.adapters import aws
from bluegreen.core.analysis import QueryResult
from bluegreen.core.cloudwatch import CloudWatchRequest, judge_results

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""HTTP requests per page at most: the first and two retries (throttling, 5xx)."""
MAX_PAGES = 5

_INVALID = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterCombination",
        "InvalidParameterCombinationException",
        "MissingParameter",
        "MissingRequiredParameterException",
        "ValidationError",
        "ValidationException",
        "InvalidNextToken",
    }
)
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


class CloudWatchProvider:
    """GetMetricData for one request at a time; thread-safe (one client per region)."""

    def __init__(
        self,
        timeout_seconds: float = 5.0,
        endpoint_url: str | None = None,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.endpoint_url = endpoint_url or None
        self.max_attempts = max_attempts
        self.calls = 0
        """GetMetricData pages asked for (each up to `max_attempts` HTTP requests)."""
        self._lock = threading.Lock()
        config = aws.client_config(timeout_seconds, max_attempts)

        def make(session: boto3.session.Session, region: str | None) -> CloudWatchClient:
            if region is None and session.region_name is None:
                region = os.environ.get("AWS_REGION") or None
            return session.client(
                "cloudwatch", region_name=region, endpoint_url=self.endpoint_url, config=config
            )

        self._clients = aws.RegionalClients(make, session)

    def get_metric_data(self, request: CloudWatchRequest) -> QueryResult:
        try:
            client = self._clients.get(request.region)
        except NoRegionError:
            return QueryResult(
                error="no AWS region: set the metric's cloudwatch.region, or AWS_REGION in "
                "the operator's environment",
                invalid=True,
            )
        results: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        arguments = request.api_arguments()
        try:
            for _ in range(MAX_PAGES):
                with self._lock:
                    self.calls += 1
                answer = client.get_metric_data(**arguments)
                results.extend(dict(r) for r in answer.get("MetricDataResults", []))
                messages.extend(dict(m) for m in answer.get("Messages", []))
                token = answer.get("NextToken")
                if not token:
                    break
                arguments = {**arguments, "NextToken": token}
        except ClientError as error:
            return self._client_error(request, error)
        except (ConnectTimeoutError, ReadTimeoutError):
            return QueryResult(
                error=f"CloudWatch unreachable: no answer within {self.timeout_seconds:g}s"
            )
        except EndpointConnectionError as error:
            log.info("CloudWatch request failed: %s", error)
            return QueryResult(error=f"CloudWatch unreachable: {_endpoint(error)}")
        except NoCredentialsError:
            self._clients.forget(request.region)
            return QueryResult(
                error="no AWS credentials found (IRSA: the operator's ServiceAccount needs "
                "the eks.amazonaws.com/role-arn annotation)"
            )
        except BotoCoreError as error:
            return QueryResult(error=f"CloudWatch request failed: {error}")
        return judge_results(request, results, messages)

    def _client_error(self, request: CloudWatchRequest, error: ClientError) -> QueryResult:
        response: dict[str, Any] = dict(error.response)
        code, message = _code_and_message(response)
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        attempts = int(meta.get("RetryAttempts") or 0) + 1
        if code in aws.THROTTLING or status == 429:
            return QueryResult(
                error=f"CloudWatch throttled the request ({code}: {message}) "
                f"{attempts} time{'s' if attempts != 1 else ''}, with backoff"
            )
        if code in aws.ACCESS_DENIED or code == "403" or status == 403:
            return QueryResult(error=f"access denied by CloudWatch: {message}")
        if code in aws.BAD_CREDENTIALS:
            self._clients.forget(request.region)
            return QueryResult(error=f"CloudWatch rejected the AWS credentials ({code}: {message})")
        if code in _INVALID or (status == 400 and code not in aws.THROTTLING):
            return QueryResult(
                error=f"CloudWatch refused the query ({code}: {message})", invalid=True
            )
        return QueryResult(error=f"CloudWatch answered {code or status}: {message}")


def _code_and_message(response: dict[str, Any]) -> tuple[str, str]:
    """The error's code and message. Some services (and stand-ins) answer an XML error
    document that botocore leaves whole in the message: its <Code> and <Message> then."""
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    if message.lstrip().startswith("<"):
        fields = dict(_XML_FIELD.findall(message))
        code = fields.get("Code", code)
        message = fields.get("Message", "")
    return code, _clean(message or code)


def _endpoint(error: EndpointConnectionError) -> str:
    return f"cannot connect to {error.kwargs.get('endpoint_url', 'the endpoint')}"


def _clean(text: str, limit: int = 300) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable if len(printable) <= limit else printable[:limit] + "..."
