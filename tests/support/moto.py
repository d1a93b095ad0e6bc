"""Run moto's real server mode (an AWS API look-alike over HTTP) on a loopback port, and fill
its ECR with repositories and images through boto3.

    with run_moto_server() as endpoint:                 # "http://127.0.0.1:<port>"
        create_repository(endpoint, "team/shop")
        digest = push_image(endpoint, "team/shop", "v1", content="build 1")

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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from tests.support.demo_app import http_request
from tests.support.process import LOOPBACK, BackgroundProcess, on_a_free_port

if TYPE_CHECKING:
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
