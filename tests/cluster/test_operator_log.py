"""The operator's log as an administrator reads it: with `--log-format=json` (the image's
default), one INFO record per release transition carrying the app, revision, phase and
reason, and no WARNING or ERROR over releases that went well."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def json_operator(
    cluster: Cluster, crd: None, api_client: client.ApiClient
) -> Iterator[tuple[OperatorProcess, Apps]]:
    ns = f"log-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
    op = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces=ns,
        kopf_args=("--standalone", "--log-format=json"),
        log_name=f"operator-{ns}.log",
    )
    op.start()
    yield op, Apps(api_client, ns)
    op.stop()
    client.CoreV1Api(api_client).delete_namespace(ns, propagation_policy="Background")


def records(op: OperatorProcess) -> list[dict[str, Any]]:
    out = []
    for line in op.log_path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_one_info_record_per_transition_and_no_warnings(
    json_operator: tuple[OperatorProcess, Apps],
) -> None:
    op, apps = json_operator
    apps.create(app_manifest("shop"))
    v1 = apps.wait_phase("shop", "Healthy")["stableRevision"]
    apps.set_image("shop", "registry.example/shop:v2")
    done = wait_for(
        "the second release to finish",
        lambda: (
            (st := apps.status("shop")).get("phase") == "Healthy"
            and st.get("stableRevision") != v1
            and st
        ),
    )
    v2_rev = done["stableRevision"]
    op.stop()

    logged = records(op)
    assert logged, op.tail()
    app = f"{apps.namespace}/shop"
    moves = [r for r in logged if r.get("app") == app]
    assert moves, [r.get("message") for r in logged]
    for r in moves:
        assert r["severity"] == "info", r
        assert r["message"] == f"{app} is {r['phase']}", r
        assert {"app", "revision", "phase", "reason"} <= r.keys(), r
    phases = [(r["revision"], r["phase"]) for r in moves]
    # The second release, transition by transition, ends Healthy on its revision.
    second = phases[phases.index((v2_rev, "Deploying")) :]
    assert second[-1] == (v2_rev, "Healthy"), phases
    assert len(second) == len(set(second)), phases  # one record per transition
    noisy = [r for r in logged if r.get("severity") in ("warning", "error", "critical")]
    assert not noisy, noisy
