"""The Ingress guard with the real operator process and the real API server: an app cannot
put into its Ingress what the operator's administrator does not allow (a class, an
annotation key), and a refused spec leaves the Ingress that exists as it was.

Each test runs an operator of its own, with the guard's settings it names, on a namespace
of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

CLASSES = "BLUEGREEN_INGRESS_ALLOWED_CLASSES"
ANNOTATIONS = "BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS"
SNIPPET = "nginx.ingress.kubernetes.io/server-snippet"
CONFIG_SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"
BODY_SIZE = "nginx.ingress.kubernetes.io/proxy-body-size"
HOST = "shop.example.com"


class Guarded:
    """An operator of the test's own with the guard's settings `env`, and its namespace."""

    def __init__(self, cluster: Cluster, api_client: client.ApiClient) -> None:
        self.cluster = cluster
        self.core = client.CoreV1Api(api_client)
        self.net = client.NetworkingV1Api(api_client)
        self.namespace = f"guard-{uuid.uuid4().hex[:10]}"
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        self.apps = Apps(api_client, self.namespace)
        self.op: OperatorProcess | None = None

    def start(self, **settings: str) -> None:
        """(Re)start the operator with these guard settings; the others as the defaults."""
        if self.op is not None:
            self.op.stop()
        env = {CLASSES: "", ANNOTATIONS: "", **settings}
        self.op = OperatorProcess(
            self.cluster.kubeconfig, OPERATOR_LOGS, namespaces=self.namespace, env=env
        )
        self.op.start()

    def stop(self) -> None:
        if self.op is not None:
            self.op.stop()
        self.core.delete_namespace(self.namespace, propagation_policy="Background")

    def ingress(self, name: str = "shop") -> Any:
        try:
            return self.net.read_namespaced_ingress(name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def admitted(self, want: str) -> dict[str, Any]:
        """Wait until the IngressAdmitted condition has status `want`; the app's status."""

        def probe() -> dict[str, Any] | None:
            st = self.apps.status("shop")
            c = condition(st, "IngressAdmitted")
            return st if c is not None and c["status"] == want else None

        return wait_for(f"IngressAdmitted {want}", probe, timeout=30)


def condition(st: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), None)


@pytest.fixture
def guarded(cluster: Cluster, crd: None, api_client: client.ApiClient) -> Iterator[Guarded]:
    g = Guarded(cluster, api_client)
    yield g
    g.stop()


def with_ingress(**ingress: Any) -> dict[str, Any]:
    body = app_manifest("shop")
    body["spec"]["ingress"] = {"host": HOST, **ingress}
    return body


def test_a_snippet_is_refused_and_the_ingress_stays_until_the_administrator_allows_it(
    guarded: Guarded,
) -> None:
    guarded.start()  # the guard's defaults: no class, no annotation
    apps = guarded.apps
    apps.create(with_ingress())
    st = apps.wait_phase("shop", "Healthy")
    assert condition(guarded.admitted("True"), "IngressAdmitted")["reason"] == "Admitted"
    before = guarded.ingress()
    assert before is not None and before.spec.ingress_class_name is None
    active = st["activeColor"]

    apps.patch_spec("shop", {"ingress": {"annotations": {SNIPPET: "return 200 'mine';"}}})
    st = guarded.admitted("False")
    cond = condition(st, "IngressAdmitted")
    assert cond["reason"] == "IngressRefused", cond
    assert SNIPPET in cond["message"], cond["message"]
    assert ANNOTATIONS in cond["message"] and "now: none" in cond["message"], cond["message"]
    assert "return 200" not in cond["message"]  # the author's value is not repeated
    ready = condition(st, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "IngressRefused"), ready
    assert st["message"] == cond["message"]
    # Traffic of the serving release is untouched; the Ingress was not written.
    assert st["phase"] == "Healthy" and st["activeColor"] == active
    after = guarded.ingress()
    assert after.metadata.resource_version == before.metadata.resource_version
    assert SNIPPET not in (after.metadata.annotations or {})
    wait_for(
        "the IngressRefused Event",
        lambda: [e for e in apps.events("shop") if e.get("reason") == "IngressRefused"],
        timeout=15,
    )

    # The administrator allows this key by its exact name: the Ingress is written.
    assert guarded.op is not None
    guarded.start(**{ANNOTATIONS: SNIPPET})
    st = guarded.admitted("True")
    assert condition(st, "Ready")["status"] == "True"
    assert st.get("message", "") == ""
    written = wait_for(
        "the snippet on the Ingress",
        lambda: (i := guarded.ingress()) and SNIPPET in (i.metadata.annotations or {}) and i,
        timeout=15,
    )
    assert written.metadata.annotations[SNIPPET] == "return 200 'mine';"

    # The author takes it out of the spec: it goes from the Ingress too.
    apps.patch_spec("shop", {"ingress": {"annotations": {SNIPPET: None}}})
    wait_for(
        "the snippet off the Ingress",
        lambda: SNIPPET not in (guarded.ingress().metadata.annotations or {}),
        timeout=15,
    )


def test_a_listed_class_and_pattern_pass_and_a_snippet_needs_its_exact_name(
    guarded: Guarded,
) -> None:
    guarded.start(**{CLASSES: "nginx", ANNOTATIONS: "nginx.ingress.kubernetes.io/*"})
    apps = guarded.apps
    apps.create(
        with_ingress(className="nginx", annotations={BODY_SIZE: "8m", CONFIG_SNIPPET: "deny all;"})
    )
    apps.wait_phase("shop", "Healthy")
    st = guarded.admitted("False")
    message = condition(st, "IngressAdmitted")["message"]
    assert f"spec.ingress.annotations {CONFIG_SNIPPET} not allowed" in message, message
    assert "only by exact name, never through a pattern" in message, message
    assert BODY_SIZE not in message and "className" not in message, message
    assert guarded.ingress() is None  # never written, not even in part

    apps.patch_spec("shop", {"ingress": {"annotations": {CONFIG_SNIPPET: None}}})
    guarded.admitted("True")
    ingress = wait_for("the Ingress", guarded.ingress, timeout=15)
    assert ingress.spec.ingress_class_name == "nginx"
    assert ingress.metadata.annotations[BODY_SIZE] == "8m"
    assert CONFIG_SNIPPET not in ingress.metadata.annotations

    # A class the administrator did not list is refused; the Ingress stays on nginx.
    apps.patch_spec("shop", {"ingress": {"className": "public"}})
    st = guarded.admitted("False")
    message = condition(st, "IngressAdmitted")["message"]
    assert f"spec.ingress.className public not allowed by the operator's {CLASSES}" in message
    assert "now: nginx" in message
    assert guarded.ingress().spec.ingress_class_name == "nginx"
