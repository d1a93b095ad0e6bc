"""Config tracking (spec.configTracking) against the real API server and operator.

- A ConfigMap change starts a release; the new colour's pods reference `<cm>-<revision>`,
  an immutable copy (the API server refuses to change it); the old colour keeps its own.
- A failing analysis after the switch returns traffic to the colour whose pods reference
  the old copy.
- Copies of revisions nothing keeps are deleted.
- A deleted copy the serving colour's pods reference is made again; when its ConfigMap no
  longer holds that content, a condition and an Event say so and traffic stays.
- A missing non-optional ConfigMap: a condition, the release waits, traffic stays.
- Secrets: without the operator's opt-in a condition and plain references; with it, copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import OPERATOR_LOGS
from tests.support.apps import Apps, app_manifest, job_check
from tests.support.chart import new_namespace
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

APP = "shop"


def tracking_app(*env_from: dict[str, Any], secrets: bool = False) -> dict[str, Any]:
    body = app_manifest(APP)
    body["spec"]["configTracking"] = {"enabled": True, "secrets": secrets}
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "settings"}}, *env_from]
    # An optional reference to nothing: left as it is.
    body["spec"]["template"]["spec"]["volumes"] = [
        {"name": "extra", "configMap": {"name": "absent", "optional": True}}
    ]
    return body


def put_configmap(api: client.ApiClient, ns: str, name: str, data: dict[str, str]) -> None:
    core = client.CoreV1Api(api)
    body = {"metadata": {"name": name}, "data": data}
    try:
        core.replace_namespaced_config_map(name, ns, body)
    except ApiException as err:
        if err.status != 404:
            raise
        core.create_namespaced_config_map(ns, body)


def pod_spec(api: client.ApiClient, ns: str, color: str) -> dict[str, Any]:
    dep = client.AppsV1Api(api).read_namespaced_deployment(f"{APP}-{color}", ns)
    spec: dict[str, Any] = api.sanitize_for_serialization(dep.spec.template.spec)
    return spec


def env_from(api: client.ApiClient, ns: str, color: str) -> list[str]:
    (container,) = pod_spec(api, ns, color)["containers"]
    return [
        next(v["name"] for v in e.values() if isinstance(v, dict)) for e in container["envFrom"]
    ]


def condition(st: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), None)


def test_a_configmap_change_releases_to_pods_that_reference_an_immutable_copy(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    apps.create(tracking_app())
    first = apps.wait_phase(APP, "Healthy")
    rev1 = first["stableRevision"]
    assert env_from(api_client, namespace, "blue") == [f"settings-{rev1}"]
    volume = pod_spec(api_client, namespace, "blue")["volumes"][0]
    assert volume["configMap"]["name"] == "absent"  # optional, absent: left alone
    copy1 = core.read_namespaced_config_map(f"settings-{rev1}", namespace)
    assert copy1.immutable is True
    assert copy1.data == {"LEVEL": "info"}
    assert copy1.metadata.labels["bluegreen.dev/revision"] == rev1
    assert copy1.metadata.owner_references[0].kind == "BlueGreenApp"
    with pytest.raises(ApiException) as refused:
        core.patch_namespaced_config_map(
            f"settings-{rev1}", namespace, {"data": {"LEVEL": "debug"}}
        )
    assert refused.value.status == 422, refused.value.body
    cond = condition(first, "ConfigTracked")
    assert cond is not None and cond["status"] == "True", first

    put_configmap(api_client, namespace, "settings", {"LEVEL": "debug"})
    done = apps.wait_release_done(APP, 2)
    rev2 = done["stableRevision"]
    assert (done["phase"], done["activeColor"]) == ("Healthy", "green"), done
    assert rev2 != rev1
    assert env_from(api_client, namespace, "green") == [f"settings-{rev2}"]
    assert env_from(api_client, namespace, "blue") == [f"settings-{rev1}"]
    assert core.read_namespaced_config_map(f"settings-{rev2}", namespace).data == {"LEVEL": "debug"}
    # The first revision is in the history: its copy stays.
    assert core.read_namespaced_config_map(f"settings-{rev1}", namespace).data == {"LEVEL": "info"}


def test_a_failing_analysis_returns_traffic_to_the_colour_with_the_old_copy(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    body = tracking_app()
    apps.create(body)
    rev1 = apps.wait_phase(APP, "Healthy")["stableRevision"]
    # Analysis after the switch that fails: adding it changes no revision.
    apps.patch_spec(APP, {"analysis": {"postPromotion": [job_check(1)]}})
    put_configmap(api_client, namespace, "settings", {"LEVEL": "broken"})
    st = apps.wait_phase(APP, "Degraded", timeout=90)
    assert st["activeColor"] == "blue", st
    assert st["stableRevision"] == rev1
    assert st["release"]["reason"] == "PostPromotionAnalysisFailed", st
    assert st["release"]["switchedAt"], "traffic moved to green first"
    assert env_from(api_client, namespace, "blue") == [f"settings-{rev1}"]
    svc = client.CoreV1Api(api_client).read_namespaced_service(APP, namespace)
    assert svc.spec.selector["bluegreen.dev/color"] == "blue"


def test_copies_no_revision_keeps_are_deleted(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    apps.create(tracking_app())
    rev1 = apps.wait_phase(APP, "Healthy")["stableRevision"]
    app = apps.get(APP)
    stale = "settings-0000000000"
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": stale,
                "labels": {
                    "bluegreen.dev/app": APP,
                    "bluegreen.dev/config-copy": "true",
                    "bluegreen.dev/revision": "0000000000",
                },
                "ownerReferences": [
                    {
                        "apiVersion": app["apiVersion"],
                        "kind": "BlueGreenApp",
                        "name": APP,
                        "uid": app["metadata"]["uid"],
                    }
                ],
            },
            "data": {"LEVEL": "old"},
            "immutable": True,
        },
    )
    names = lambda: {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}  # noqa: E731
    wait_for(f"{stale} to be deleted", lambda: stale not in names())
    assert f"settings-{rev1}" in names()


def test_a_deleted_copy_of_the_serving_colour_is_made_again_or_reported(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    body = tracking_app()
    body["spec"]["strategy"] = {"autoPromotion": False}
    apps.create(body)
    rev1 = apps.wait_phase(APP, "Healthy")["stableRevision"]
    copy = f"settings-{rev1}"
    names = lambda: {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}  # noqa: E731

    # The ConfigMap still holds the revision's content: the copy is made again.
    core.delete_namespaced_config_map(copy, namespace)
    wait_for(f"{copy} to be made again", lambda: copy in names())
    again = core.read_namespaced_config_map(copy, namespace)
    assert again.immutable is True and again.data == {"LEVEL": "info"}
    assert again.metadata.labels["bluegreen.dev/revision"] == rev1

    # The ConfigMap changed (a release waits for a person): the old content is gone.
    put_configmap(api_client, namespace, "settings", {"LEVEL": "debug"})
    apps.wait_phase(APP, "Paused")
    core.delete_namespaced_config_map(copy, namespace)

    def lost() -> dict[str, Any] | None:
        st = apps.status(APP)
        cond = condition(st, "ConfigTracked")
        return st if cond and cond["reason"] == "ConfigCopyLost" else None

    st = wait_for("ConfigTracked=False ConfigCopyLost", lost)
    message = condition(st, "ConfigTracked")["message"]  # type: ignore[index]
    assert f"ConfigMap {copy}" in message and "blue pods" in message, message
    assert (st["phase"], st["activeColor"]) == ("Paused", "blue"), st
    assert copy not in names()
    assert "ConfigCopyLost" in [e["reason"] for e in apps.events(APP)]
    svc = core.read_namespaced_service(APP, namespace)
    assert svc.spec.selector["bluegreen.dev/color"] == "blue"

    # The content is back: the copy is made again.
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    wait_for(f"{copy} to be made again", lambda: copy in names())
    assert core.read_namespaced_config_map(copy, namespace).data == {"LEVEL": "info"}


def test_a_missing_configmap_holds_the_release_and_traffic_stays(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    apps.create(tracking_app())
    first = apps.wait_phase(APP, "Healthy")
    template = apps.get(APP)["spec"]["template"]
    template["spec"]["containers"][0]["envFrom"].append({"configMapRef": {"name": "flags"}})
    apps.patch_spec(APP, {"template": template})

    def held() -> dict[str, Any] | None:
        st = apps.status(APP)
        cond = condition(st, "ConfigTracked")
        return st if cond and cond["reason"] == "ConfigMissing" else None

    st = wait_for("ConfigTracked=False ConfigMissing", held)
    assert "ConfigMap flags" in condition(st, "ConfigTracked")["message"]  # type: ignore[index]
    assert (st["phase"], st["activeColor"]) == ("Healthy", "blue"), st
    assert st["stableRevision"] == first["stableRevision"]
    assert len(st.get("history") or []) == 1
    # The idle colour was not touched.
    green = client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items
    assert [d.metadata.name for d in green] == [f"{APP}-blue"]

    put_configmap(api_client, namespace, "flags", {"NEW": "1"})
    done = apps.wait_release_done(APP, 2)
    assert (done["phase"], done["activeColor"]) == ("Healthy", "green"), done
    rev = done["stableRevision"]
    assert env_from(api_client, namespace, "green") == [f"settings-{rev}", f"flags-{rev}"]


def test_secrets_without_the_operators_opt_in_are_a_condition_and_plain_references(
    apps: Apps, api_client: client.ApiClient, namespace: str
) -> None:
    put_configmap(api_client, namespace, "settings", {"LEVEL": "info"})
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"pw": "one"}}
    )
    apps.create(tracking_app({"secretRef": {"name": "creds"}}, secrets=True))
    st = apps.wait_phase(APP, "Healthy")
    rev = st["stableRevision"]
    cond = condition(st, "ConfigTracked")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "SecretsNotTracked")
    assert "starts no release" in cond["message"]
    assert env_from(api_client, namespace, "blue") == [f"settings-{rev}", "creds"]


@pytest.fixture
def secrets_operator(
    cluster: Cluster, crd: None, api_client: client.ApiClient
) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator whose administrator allows tracking Secrets, on a namespace of its own."""
    ns = new_namespace(api_client, "cts")
    op = OperatorProcess(
        cluster.kubeconfig,
        OPERATOR_LOGS,
        namespaces=ns,
        env={"BLUEGREEN_TRACK_SECRETS": "true", "BLUEGREEN_WATCH_NAMESPACES": ns},
        log_name=f"operator-{ns}.log",
    )
    op.start()
    yield op, ns
    op.stop()
    client.CoreV1Api(api_client).delete_namespace(ns, propagation_policy="Background")


def test_secrets_with_the_operators_opt_in_are_copied(
    secrets_operator: tuple[OperatorProcess, str], api_client: client.ApiClient
) -> None:
    _, ns = secrets_operator
    core = client.CoreV1Api(api_client)
    apps = Apps(api_client, ns)
    put_configmap(api_client, ns, "settings", {"LEVEL": "info"})
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "creds"}, "type": "Opaque", "stringData": {"pw": "one"}}
    )
    apps.create(tracking_app({"secretRef": {"name": "creds"}}, secrets=True))
    rev1 = apps.wait_phase(APP, "Healthy")["stableRevision"]
    assert env_from(api_client, ns, "blue") == [f"settings-{rev1}", f"creds-{rev1}"]
    copy = core.read_namespaced_secret(f"creds-{rev1}", ns)
    assert copy.immutable is True and copy.type == "Opaque"
    assert copy.data == core.read_namespaced_secret("creds", ns).data
    core.patch_namespaced_secret("creds", ns, {"stringData": {"pw": "two"}})
    done = apps.wait_release_done(APP, 2)
    rev2 = done["stableRevision"]
    assert rev2 != rev1 and done["activeColor"] == "green", done
    assert env_from(api_client, ns, "green") == [f"settings-{rev2}", f"creds-{rev2}"]
    cond = condition(done, "ConfigTracked")
    assert cond is not None and cond["status"] == "True", done
