"""Fixtures shared by every test tier.

Tests that need Kubernetes carry the `cluster` marker and use the `k8s` or `namespace`
fixtures. They are never skipped: without a cluster they fail, loudly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from tests.support.apps import Apps, crd_may_be_replaced, install_crds
from tests.support.cluster import REPO, Cluster, cluster_session, component_logs
from tests.support.operator import OperatorProcess

OPERATOR_LOGS = REPO / ".cache" / "test-logs"
# Namespaces of this test session start with this prefix, and the session's operator
# watches only those: two test sessions on one cluster never act on each other's apps.
SESSION = f"t{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with cluster_session() as c:
        yield c


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


def _new_namespace(api_client: client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test (watched by the session's operator), deleted afterwards."""
    name = _new_namespace(api_client, SESSION)
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def crd(cluster: Cluster, api_client: client.ApiClient) -> None:
    """The project's CRDs in the cluster (BlueGreenApp and the analysis templates). On a
    cluster KUBECONFIG names, one that differs is not replaced unless
    BLUEGREEN_TEST_INSTALL_CRD=1 (tests.support.apps)."""
    install_crds(api_client, replace=crd_may_be_replaced(cluster.local))


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crd: None) -> Iterator[OperatorProcess]:
    """The real operator process, watching this session's namespaces, for the whole session."""
    op = OperatorProcess(cluster.kubeconfig, OPERATOR_LOGS, namespaces=f"{SESSION}-*")
    op.start()
    yield op
    op.stop()


@pytest.fixture
def own_operator(
    cluster: Cluster, crd: None, api_client: client.ApiClient
) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator of the test's own (to kill and restart) and the one namespace it watches."""
    ns = _new_namespace(api_client, f"k{uuid.uuid4().hex[:4]}")
    op = OperatorProcess(cluster.kubeconfig, OPERATOR_LOGS, namespaces=ns)
    op.start()
    yield op, ns
    op.stop()
    client.CoreV1Api(api_client).delete_namespace(ns, propagation_policy="Background")


@pytest.fixture
def apps(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Apps:
    """BlueGreenApps in the test's namespace, with the session operator running."""
    return Apps(api_client, namespace)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and item.get_closest_marker("cluster") is not None:
        logs = component_logs()
        if logs:
            report.sections.append(("local control plane logs", logs))
        for log in sorted(OPERATOR_LOGS.glob("operator-*.log")):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
            report.sections.append((f"operator log {log.name}", tail))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests under tests/cluster/ need a cluster whether or not they say so.
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
