"""Releases pinned to what was pushed: ECR tags resolved to digests by the real operator
(boto3) against moto's server mode on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.moto import REGION, create_repository, push_image, run_moto_server
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def ecr_world(
    cluster: Cluster, crd: None, api_client: client.ApiClient, moto: str
) -> Iterator[tuple[Apps, str, str]]:
    ns = f"ecr{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
    env = {
        "AWS_ENDPOINT_URL_ECR": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "BLUEGREEN_IMAGE_CACHE_SECONDS": "1",
    }
    op = OperatorProcess(cluster.kubeconfig, OPERATOR_LOGS, namespaces=ns, env=env)
    op.start()
    repo = create_repository(moto, f"shop-{uuid.uuid4().hex[:6]}")
    try:
        yield Apps(api_client, ns), ns, repo
    finally:
        op.stop()
        client.CoreV1Api(api_client).delete_namespace(ns)


def _image(api_client: client.ApiClient, ns: str, name: str) -> str:
    dep = client.AppsV1Api(api_client).read_namespaced_deployment(name, ns)
    return str(dep.spec.template.spec.containers[0].image)


def _app(repo: str, tag: str, policy: str) -> dict[str, Any]:
    body = app_manifest("shop", image=f"{repo}:{tag}")
    body["spec"]["image"] = {"resolveDigest": policy}
    return body


def test_release_of_an_ecr_tag_runs_its_digest(
    ecr_world: tuple[Apps, str, str], api_client: client.ApiClient, moto: str
) -> None:
    apps, ns, repo = ecr_world
    v1 = push_image(moto, repo.split("/", 1)[1], "v1", content="v1")
    apps.create(_app(repo, "v1", "Required"))
    st = apps.wait_phase("shop", "Healthy")
    assert _image(api_client, ns, "shop-blue") == f"{repo}@{v1}"
    assert st["pinnedImages"] == {f"{repo}:v1": f"{repo}@{v1}"}
    assert st["release"]["image"] == f"{repo}:v1"
    assert st["release"]["pinnedImage"] == f"{repo}@{v1}"
    dep = client.AppsV1Api(api_client).read_namespaced_deployment("shop-blue", ns)
    assert dep.metadata.annotations["bluegreen.dev/image"] == f"{repo}:v1"
    env = {e.name: e.value for e in dep.spec.template.spec.containers[0].env}
    assert env["APP_VERSION"] == "v1"  # the tag a person wrote, not the digest
    conditions = {c["type"]: c for c in st["conditions"]}
    assert conditions["ImagePinned"]["status"] == "True"

    v2 = push_image(moto, repo.split("/", 1)[1], "v2", content="v2")
    apps.set_image("shop", f"{repo}:v2")
    done = apps.wait_release_done("shop", 2)
    assert done["activeColor"] == "green"
    assert _image(api_client, ns, "shop-green") == f"{repo}@{v2}"


def test_missing_image_fails_fast_and_traffic_stays(
    ecr_world: tuple[Apps, str, str], api_client: client.ApiClient, moto: str
) -> None:
    apps, ns, repo = ecr_world
    v1 = push_image(moto, repo.split("/", 1)[1], "v1", content="v1")
    apps.create(_app(repo, "v1", "Required"))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", f"{repo}:v9")
    st = wait_for(
        "the release to fail",
        lambda: (s := apps.status("shop")).get("history", [{}])[0].get("result") == "Failed" and s,
        timeout=30,
    )
    assert st["phase"] == "Degraded"
    assert st["activeColor"] == "blue"
    assert st["release"]["reason"] == "ImageNotFound"
    assert "v9" in st["release"]["message"] and "no pod was created" in st["release"]["message"]
    apps_api = client.AppsV1Api(api_client)
    names = [d.metadata.name for d in apps_api.list_namespaced_deployment(ns).items]
    assert names == ["shop-blue"], "a Deployment was made for an image that does not exist"
    assert _image(api_client, ns, "shop-blue") == f"{repo}@{v1}"
    pods = client.CoreV1Api(api_client).list_namespaced_pod(ns).items
    assert {p.metadata.labels["bluegreen.dev/color"] for p in pods} == {"blue"}


def test_if_possible_falls_back_to_the_tag_with_a_condition(
    ecr_world: tuple[Apps, str, str], api_client: client.ApiClient
) -> None:
    apps, ns, repo = ecr_world
    apps.create(_app(repo, "nothere", "IfPossible"))
    st = apps.wait_phase("shop", "Healthy")
    assert _image(api_client, ns, "shop-blue") == f"{repo}:nothere"
    cond = {c["type"]: c for c in st["conditions"]}["ImagePinned"]
    assert (cond["status"], cond["reason"]) == ("False", "ImageNotFound")
    assert "nothere" in cond["message"]
