"""CloudWatch analysis end to end: the real operator process, with AWS credentials in its
environment (as IRSA gives them in EKS) and its CloudWatch endpoint pointing at moto's real
server on loopback, releases apps whose pre-promotion analysis reads the ALB 5xx count of
the candidate colour's target group.

Data within the range promotes; data outside it rolls back; no data and access denied halt
the release in Paused (AnalysisInconclusive), saying why, and never promote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.moto import (
    REGION,
    access_key,
    put_datapoints,
    run_moto_server,
    signed_requests_only,
)
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

ALB = "AWS/ApplicationELB"
ERRORS = "HTTPCode_Target_5XX_Count"
LOAD_BALANCER = "app/shop/0123456789abcdef"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def aws_operator(
    cluster: Cluster, crd: None, api_client: client.ApiClient, moto: str, tmp_path_factory: Any
) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator whose AWS credentials are an IAM user's that may not read CloudWatch (moto
    checks that only inside `signed_requests_only`), and the namespace it watches."""
    key_id, secret = access_key(moto, "bluegreen-operator", actions=["ecr:DescribeImages"])
    empty: Path = tmp_path_factory.mktemp("aws") / "empty"
    empty.write_text("")
    namespace = f"cw-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": namespace}})
    env = {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "BLUEGREEN_CLOUDWATCH_ENDPOINT_URL": moto,
        "BLUEGREEN_CLOUDWATCH_MAX_ATTEMPTS": "1",
    }
    op = OperatorProcess(cluster.kubeconfig, OPERATOR_LOGS, namespaces=namespace, env=env)
    op.start()
    yield op, namespace
    op.stop()
    client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


@pytest.fixture
def apps(api_client: client.ApiClient, aws_operator: tuple[OperatorProcess, str]) -> Apps:
    return Apps(api_client, aws_operator[1])


def errors_metric() -> dict[str, Any]:
    """At most 5 5xx answers a minute from the candidate's target group, twice."""
    return {
        "name": "alb-5xx",
        "thresholdRange": {"max": 5},
        "interval": "1s",
        "count": 2,
        "cloudwatch": {
            "lookback": "5m",
            "queries": [
                {
                    "id": "errors",
                    "metricStat": {
                        "namespace": ALB,
                        "metricName": ERRORS,
                        "dimensions": [
                            {"name": "LoadBalancer", "value": LOAD_BALANCER},
                            {
                                "name": "TargetGroup",
                                "value": "targetgroup/{{name}}-{{color}}/0123abcd",
                            },
                        ],
                        "stat": "Sum",
                        "period": 60,
                    },
                }
            ],
        },
    }


def released(apps: Apps, name: str) -> tuple[dict[str, Any], str]:
    """Create the app, wait until it serves, and return its status and the colour the next
    release will use (the candidate)."""
    body = app_manifest(name)
    body["spec"]["analysis"] = {"prePromotion": [errors_metric()]}
    apps.create(body)
    st = apps.wait_phase(name, "Healthy")
    return st, "green" if st["activeColor"] == "blue" else "blue"


def publish(moto: str, name: str, color: str, *values: float) -> None:
    now = datetime.now(UTC)
    dimensions = {
        "LoadBalancer": LOAD_BALANCER,
        "TargetGroup": f"targetgroup/{name}-{color}/0123abcd",
    }
    points = [(now - timedelta(minutes=i + 1), v) for i, v in enumerate(values)]
    put_datapoints(moto, ALB, ERRORS, dimensions, points)


def paused(apps: Apps, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        st = apps.status(name)
        condition = next((c for c in st.get("conditions") or [] if c["type"] == "Paused"), {})
        return st if condition.get("status") == "True" else None

    return wait_for(f"{name} to pause", probe)


def paused_condition(st: dict[str, Any]) -> dict[str, Any]:
    (condition,) = [c for c in st["conditions"] if c["type"] == "Paused"]
    return condition


def test_few_errors_on_the_candidate_s_target_group_promote(apps: Apps, moto: str) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    first, candidate = released(apps, name)
    publish(moto, name, candidate, 0, 2, 1)
    publish(moto, name, first["activeColor"], 90)  # the stable colour's: not judged

    apps.set_image(name, "registry.example/shop:v2")
    st = apps.wait_release_done(name, 2)

    assert st["phase"] == "Healthy" and st["history"][0]["result"] == "Promoted"
    assert st["activeColor"] == candidate
    measurements = st["analysis"]["measurements"]
    assert [m["verdict"] for m in measurements] == ["Successful", "Successful"]
    assert all(m["value"] == 2 for m in measurements)  # the highest of 0, 2, 1
    assert "CloudWatch errors: 3 datapoints in 5m" in measurements[0]["message"]


def test_too_many_errors_roll_back(apps: Apps, moto: str) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    first, candidate = released(apps, name)
    publish(moto, name, candidate, 0, 40)

    apps.set_image(name, "registry.example/shop:v2")
    st = apps.wait_release_done(name, 2)

    assert st["phase"] == "Degraded" and st["history"][0]["result"] == "RolledBack"
    assert st["activeColor"] == first["activeColor"]
    assert st["stableRevision"] == first["stableRevision"]
    assert st["analysis"]["measurements"][-1]["verdict"] == "Failed"
    assert st["analysis"]["measurements"][-1]["value"] == 40


def test_no_data_pauses_and_never_promotes(apps: Apps) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    first, _ = released(apps, name)  # nothing published for either target group

    apps.set_image(name, "registry.example/shop:v2")
    st = paused(apps, name)

    assert st["activeColor"] == first["activeColor"]
    assert st["stableRevision"] == first["stableRevision"]
    condition = paused_condition(st)
    assert condition["reason"] == "AnalysisInconclusive"
    assert "alb-5xx Inconclusive" in condition["message"]
    assert "CloudWatch errors: 0 datapoints in 5m" in condition["message"]
    assert "2/2 taken, 0 failed, 2 inconclusive" in condition["message"]


def test_access_denied_pauses_and_says_which_permission_is_missing(apps: Apps, moto: str) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    first, candidate = released(apps, name)
    publish(moto, name, candidate, 0)

    with signed_requests_only(moto):
        apps.set_image(name, "registry.example/shop:v2")
        st = paused(apps, name)

    assert st["activeColor"] == first["activeColor"]
    condition = paused_condition(st)
    assert condition["reason"] == "AnalysisInconclusive"
    assert "access denied by CloudWatch" in condition["message"]
    assert "user/bluegreen-operator is not authorized to perform" in condition["message"]
    assert "GetMetricData" in condition["message"]
