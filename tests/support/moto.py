"""Run moto's real server mode (an AWS API look-alike over HTTP) on a loopback port, and fill
its ECR with repositories and images, and its CloudWatch with datapoints, through boto3.

    with run_moto_server() as endpoint:                 # "http://127.0.0.1:<port>"
        create_repository(endpoint, "team/shop")
        digest = push_image(endpoint, "team/shop", "v1", content="build 1")
        put_datapoints(endpoint, "AWS/ApplicationELB", "RequestCount", {"TargetGroup": tg},
                       [(now - timedelta(minutes=1), 120.0)])
        with signed_requests_only(endpoint):           # moto checks IAM policies now
            key = access_key(endpoint, "nobody")        # a user without any policy

What moto 5.x's ECR does (measured against the server, and read in moto/ecr/models.py):
- Every image lives in account 123456789012 (moto's default for any access key); the region
  comes from the request's signature, so repositories of us-east-1 are invisible from
  eu-west-1. DescribeImages with another registryId -> RepositoryNotFoundException.
- The digest is NOT sha256(manifest) as in real ECR: moto hashes the concatenated layer
  digests of the manifest (a manifest without layers gets a near-random digest). So images
  need distinct layers to get distinct digests; `push_image` derives them from `content`.
- put_image with an existing tag and a new manifest MOVES the tag (mutable repositories):
  moto deletes the image that had only that tag (real ECR keeps it, untagged). The same
  manifest with the same tag again is ImageAlreadyExistsException.
- Errors are JSON with HTTP 400: {"__type": "ImageNotFoundException", "message": ...}.

What moto 5.2's CloudWatch does (measured against the server, read in moto/cloudwatch/):
- GetMetricData speaks awsJson1.0, the protocol botocore picks. A MetricStat query is
  computed per period over the datapoints PutMetricData stored (Sum, Average, ...), newest
  first with ScanBy TimestampDescending; a period without datapoints is left out, as in
  CloudWatch. ReturnData false keeps a query out of the answer.
- Metric math is NOT evaluated: an expression returns the values of the query it names when
  it is exactly one query's id (`errors`), and nothing for anything else (`errors /
  requests`). Tests of metric math against moto therefore use the first form; the request
  that carries a real expression is checked in the unit tests.
- IAM is not checked until `signed_requests_only` (moto's reset-auth): then every request
  must be signed by an IAM user's key whose policies allow the action, which moto names
  `monitoring:GetMetricData` (the endpoint's prefix, where IAM says `cloudwatch:`). A denial
  is HTTP 403 with an XML error document (Code AccessDenied) that botocore leaves whole in
  the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from tests.support.demo_app import http_request
from tests.support.process import LOOPBACK, BackgroundProcess, on_a_free_port

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecr import ECRClient

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@contextlib.contextmanager
def run_moto_server(startup_timeout: float = 20.0) -> Iterator[str]:
    """Start `python -m moto.server` on a free loopback port, wait until it answers, yield
    its endpoint URL, then stop it."""
    with tempfile.TemporaryDirectory(prefix="moto-") as workdir:
        server = BackgroundProcess("moto server", Path(workdir) / "moto.log")

        def start(port: int) -> None:
            server.start(
                [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                cwd=workdir,
                fresh_log=True,
            )
            endpoint = f"http://{LOOPBACK}:{port}"
            server.wait_ready(
                lambda: http_request("GET", endpoint + "/moto-api/", timeout=1.0).status == 200,
                startup_timeout,
            )

        try:
            port = on_a_free_port(start)
            yield f"http://{LOOPBACK}:{port}"
        finally:
            server.stop()


def ecr_client(endpoint: str, region: str = REGION) -> ECRClient:
    """A boto3 ECR client of the test's own (explicit dummy credentials) against moto."""
    return boto3.client(
        "ecr",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any key
    )


def create_repository(endpoint: str, name: str, region: str = REGION) -> str:
    """Create a (tag-mutable) repository; returns its URI `<account>.dkr.ecr.<region>...`."""
    answer = ecr_client(endpoint, region).create_repository(repositoryName=name)
    return answer["repository"]["repositoryUri"]


def image_manifest(content: str) -> str:
    """A small OCI image manifest whose config and layer digests derive from `content`."""
    config = "sha256:" + hashlib.sha256(f"config {content}".encode()).hexdigest()
    layer = "sha256:" + hashlib.sha256(f"layer {content}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": _OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": 512,
                "digest": config,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "size": 1024,
                    "digest": layer,
                }
            ],
        }
    )


def push_image(
    endpoint: str, repository: str, tag: str, content: str = "", region: str = REGION
) -> str:
    """put_image a manifest built from `content` under `tag`; returns the digest moto gave it."""
    answer = ecr_client(endpoint, region).put_image(
        repositoryName=repository,
        imageManifest=image_manifest(content or f"{repository}:{tag}"),
        imageManifestMediaType=_OCI_MANIFEST,
        imageTag=tag,
    )
    return answer["image"]["imageId"]["imageDigest"]


def _client(service: str, endpoint: str, region: str, **credentials: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=credentials.get("key_id", "testing"),
        aws_secret_access_key=credentials.get("secret", "testing"),
    )


def cloudwatch_client(endpoint: str, region: str = REGION) -> CloudWatchClient:
    """A boto3 CloudWatch client of the test's own (dummy credentials) against moto."""
    client: CloudWatchClient = _client("cloudwatch", endpoint, region)
    return client


def put_datapoints(
    endpoint: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    points: Sequence[tuple[datetime, float]],
    *,
    region: str = REGION,
) -> None:
    """PutMetricData: one datapoint per (timestamp, value), with these dimensions."""
    cloudwatch_client(endpoint, region).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": at,
                "Value": value,
            }
            for at, value in points
        ],
    )


def access_key(endpoint: str, user: str, actions: Sequence[str] = ()) -> tuple[str, str]:
    """An IAM user allowed `actions` on every resource (none: no policy at all), and an
    access key of its own: (key id, secret). Call it before `signed_requests_only`."""
    iam = _client("iam", endpoint, REGION)
    iam.create_user(UserName=user)
    if actions:
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="test", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _reset_auth(endpoint: str, free_requests: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_requests.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@contextlib.contextmanager
def signed_requests_only(endpoint: str) -> Iterator[None]:
    """While inside: moto authenticates every request and checks the caller's IAM policies
    (for the whole server: other tests' requests too). Afterwards it checks nothing again."""
    _reset_auth(endpoint, "0")
    try:
        yield
    finally:
        _reset_auth(endpoint, "inf")
