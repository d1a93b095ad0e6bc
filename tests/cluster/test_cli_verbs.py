"""`kubectl bluegreen undo|set image|restart|watch|lint`: the real console script against
the real control plane and the real operator process."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster.test_cli import CLI, Plugin
from tests.cluster.test_config_tracking import put_configmap, tracking_app
from tests.cluster.test_validation import CASES, Case, valid_app
from tests.support.apps import GROUP, PLURAL, VERSION, Apps, app_manifest
from tests.support.cluster import Cluster
from tests.support.waiting import wait_for
from tests.support.watchers import EndpointRecorder

pytestmark = pytest.mark.cluster


@pytest.fixture
def cli(cluster: Cluster, apps: Apps) -> Plugin:
    return Plugin(cluster.kubeconfig, apps.namespace)


def deployment(api_client: client.ApiClient, ns: str, name: str) -> Any:
    return client.AppsV1Api(api_client).read_namespaced_deployment(name, ns)


def pods(api_client: client.ApiClient, ns: str, color: str) -> set[str]:
    items = (
        client.CoreV1Api(api_client)
        .list_namespaced_pod(ns, label_selector=f"bluegreen.dev/color={color}")
        .items
    )
    return {p.metadata.name for p in items if p.metadata.deletion_timestamp is None}


def two_releases(apps: Apps, name: str, **strategy: Any) -> tuple[str, str]:
    """v1 on blue, then v2 promoted on green: (v1's revision, v2's revision)."""
    apps.create(app_manifest(name, **strategy))
    v1 = apps.wait_phase(name, "Healthy")["stableRevision"]
    apps.set_image(name, "registry.example/shop:v2")
    st = wait_for(
        "v2 stable",
        lambda: (
            (s := apps.status(name)).get("phase") == "Healthy"
            and s.get("stableRevision") != v1
            and s
        ),
        timeout=90,
    )
    return v1, st["stableRevision"]


def test_undo_to_a_warm_colour_flips_back_without_new_pods(
    cli: Plugin, apps: Apps, api_client: client.ApiClient
) -> None:
    v1, v2 = two_releases(apps, "warm", scaleDownDelaySeconds=600)
    before = pods(api_client, apps.namespace, "blue")
    assert len(before) == 2
    run = cli("undo", "warm", "--wait", "--timeout", "90", "-o", "json")
    assert run.code == 0, run.out + run.err
    result = run.json()
    assert (result["revision"], result["color"], result["warm"]) == (v1, "blue", True)
    assert "blue still runs it warm" in run.err
    st = apps.status("warm")
    assert (st["phase"], st["activeColor"], st["stableRevision"]) == ("Healthy", "blue", v1)
    assert pods(api_client, apps.namespace, "blue") == before  # the same pods serve again
    template = apps.get("warm")["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.example/shop:v1"
    # And forward again, by revision prefix: green is warm now.
    again = cli("undo", "warm", "--to-revision", v2[:6], "--wait")
    assert again.code == 0, again.out + again.err
    assert apps.status("warm")["stableRevision"] == v2
    # Nothing to undo to that the app runs already.
    same = cli("undo", "warm", "--to-revision", v2)
    assert same.code == 3 and f"revision {v2} already" in same.err
    unknown = cli("undo", "warm", "--to-revision", "zzzz")
    assert unknown.code == 3 and "not in the app's history" in unknown.err


def test_undo_of_a_tracked_config_change_says_what_undo_cannot_do(
    cli: Plugin, apps: Apps, api_client: client.ApiClient
) -> None:
    """Revisions of an app that tracks its ConfigMaps include their content: undo compares
    templates, so it knows the revision the app runs, and that a ConfigMap-only change is
    not one it can set back."""
    put_configmap(api_client, apps.namespace, "settings", {"LEVEL": "info"})
    apps.create(tracking_app())
    rev1 = apps.wait_phase("shop", "Healthy")["stableRevision"]
    same = cli("undo", "shop", "--to-revision", rev1)
    assert same.code == 3 and f"revision {rev1} already" in same.err, same.err
    put_configmap(api_client, apps.namespace, "settings", {"LEVEL": "debug"})
    rev2 = apps.wait_release_done("shop", 2)["stableRevision"]
    assert rev2 != rev1
    back = cli("undo", "shop")
    assert back.code == 3, back.out + back.err
    assert "differs from it only in its tracked ConfigMaps" in back.err
    assert f"settings-{rev1}" not in back.err and f"<name>-{rev1}" in back.err
    assert apps.status("shop")["stableRevision"] == rev2  # nothing was changed


def test_undo_to_a_cold_colour_is_a_normal_release(
    cli: Plugin, apps: Apps, api_client: client.ApiClient
) -> None:
    v1, _v2 = two_releases(apps, "cold")  # scaleDownDelaySeconds 2
    wait_for(
        "blue scaled down",
        lambda: deployment(api_client, apps.namespace, "cold-blue").spec.replicas == 0,
        timeout=60,
    )
    run = cli("undo", "cold")
    assert run.code == 0, run.out + run.err
    assert f"undo to revision {v1}: blue is scaled down: a release deploys it again" in run.out
    st = apps.wait_phase("cold", "Healthy", revision=v1, timeout=90)
    assert st["activeColor"] == "blue"
    assert st["history"][0]["revision"] == v1 and st["history"][0]["result"] == "Promoted"
    assert st["release"]["candidateReadyAt"] is not None


def test_set_image_wait_releases_the_new_image(cli: Plugin, apps: Apps) -> None:
    apps.create(app_manifest("img"))
    v1 = apps.wait_phase("img", "Healthy")["stableRevision"]
    missing = cli("set", "image", "img", "nope=registry.example/shop:v2")
    assert missing.code == 1 and 'unable to find container named "nope"' in missing.err.replace(
        "'", '"'
    )
    bad = cli("set", "image", "img", "app")
    assert bad.code == 2 and "expected CONTAINER=IMAGE" in bad.err
    run = cli("set", "image", "img", "app=registry.example/shop:v2", "--wait", "--timeout", "90")
    assert run.code == 0, run.out + run.err
    assert "set: done, phase Healthy (active green" in run.out
    st = apps.status("img")
    assert st["stableRevision"] != v1
    assert st["history"][0]["image"] == "registry.example/shop:v2"
    same = cli("set", "image", "img", "app=registry.example/shop:v2")
    assert (same.code, same.out.strip()) == (0, "bluegreenapp.bluegreen.dev/img image unchanged")


def test_restart_replaces_every_active_pod_and_the_ready_count_never_drops(
    cli: Plugin, apps: Apps, api_client: client.ApiClient
) -> None:
    apps.create(app_manifest("rs", replicas=3))
    st = apps.wait_phase("rs", "Healthy")
    before = pods(api_client, apps.namespace, "blue")
    rec = EndpointRecorder(api_client, apps.namespace, "rs")
    rec.start()
    try:
        wait_for(
            "endpoints recorded",
            lambda: len(rec.history()[-1].ready) == 3 if rec.history() else False,
        )
        run = cli("restart", "rs", "--wait", "--timeout", "90")
        assert run.code == 0, run.out + run.err
        wait_for(
            "old pods gone from the endpoints",
            lambda: rec.history()[-1].ready.isdisjoint(before),
            timeout=60,
        )
    finally:
        rec.stop()
    samples = rec.history()
    print(
        f"restart: {len(samples)} endpoint samples, ready counts {[len(s.ready) for s in samples]}"
    )
    assert min(len(s.ready) for s in samples) >= 3, samples
    after = pods(api_client, apps.namespace, "blue")
    assert len(after) == 3 and after.isdisjoint(before)
    now = apps.status("rs")
    # No release: the same revision on the same colour, nothing added to the history.
    assert (now["phase"], now["activeColor"], now["stableRevision"]) == (
        "Healthy",
        "blue",
        st["stableRevision"],
    )
    assert len(now["history"]) == len(st["history"])


def test_watch_follows_a_release_until_it_settles(cli: Plugin, apps: Apps) -> None:
    apps.create(app_manifest("wt"))
    apps.wait_phase("wt", "Healthy")
    argv = [str(CLI), "--kubeconfig", str(cli.kubeconfig), "-n", cli.namespace]
    proc = subprocess.Popen(
        [*argv, "watch", "wt", "--until-settled", "--timeout", "90"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Settled already: one header and one line, then it exits.
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [ln.split()[1] for ln in out.splitlines()] == ["PHASE", "Healthy"]

    proc = subprocess.Popen(
        [*argv, "watch", "wt", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first: list[str] = [proc.stdout.readline(), proc.stdout.readline()]
    assert first[1].split()[1] == "Healthy"
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    apps.set_image("wt", "registry.example/shop:v2")
    apps.wait_phase("wt", "Healthy", revision=None, timeout=90)
    wait_for(
        "the watch saw the release end",
        lambda: any(ln.split()[1:3] == ["Healthy", "green"] for ln in lines),
        timeout=60,
    )
    proc.terminate()
    proc.wait(timeout=30)
    phases = [ln.split()[1] for ln in lines]
    assert "Deploying" in phases and "Observing" in phases, lines
    # --until-settled during a release exits when it is over.
    apps.set_image("wt", "registry.example/shop:v3")
    run = cli("watch", "wt", "--until-settled", "--timeout", "90")
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1].split()[1:3] == ["Healthy", "blue"]
    timed = cli("watch", "wt", "--timeout", "2")
    assert timed.code == 0 and len(timed.out.splitlines()) == 2


def server_errors(api_client: client.ApiClient, namespace: str, body: dict[str, Any]) -> list[str]:
    """The API server's dry-run answer: `field: message` per cause."""
    api = client.CustomObjectsApi(api_client)
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")
    except ApiException as err:
        details = yaml.safe_load(err.body).get("details") or {}
        return [
            f"{c.get('field', '')}: {c['message']}"
            for c in details.get("causes") or []
            if NOT_CHECKED not in c["message"]  # a note that more rules wait, not a rule
        ]
    return []


NOT_CHECKED = "some validation rules were not checked"
LINT_CASES = {
    # CEL rules of the CRD, mirrored by the model's validators
    "metric-with-query-and-url",
    "metric-with-neither-query-nor-url",
    "failureLimit-equal-to-count",
    "thresholdRange-without-min-or-max",
    "canary-weights-decreasing",
    "canary-without-ingress",
    "query-metric-without-prometheus",
    "interval-2h",
    "ingress-host-with-scheme",
    "service-targetPort-bad-name",
    "template-label-under-bluegreen.dev",
    "name-uppercase",
    # the schema
    "template-missing",
    "spec-missing",
}


def test_lint_says_what_the_api_server_says(
    cli: Plugin, apps: Apps, api_client: client.ApiClient, tmp_path: Path
) -> None:
    valid = valid_app("linted")
    assert server_errors(api_client, apps.namespace, valid) == []
    path = tmp_path / "valid.yaml"
    path.write_text(yaml.safe_dump(valid))
    ok = cli("lint", str(path))
    assert (ok.code, ok.out.strip()) == (0, f'{path}: bluegreenapp "linted" is valid')
    compared = 0
    for param in CASES:
        case: Case = param.values[0]
        if case.id not in LINT_CASES:
            continue
        body = valid_app("linted")
        case.mutate(body)
        server = server_errors(api_client, apps.namespace, body)
        assert server, case.id
        path = tmp_path / f"{case.id}.yaml"
        path.write_text(yaml.safe_dump(body))
        run = cli("lint", str(path))
        assert run.code == 1, (case.id, run.out, run.err)
        prefix = re.compile(rf'^{re.escape(str(path))}: bluegreenapp "[^"]*": ')
        linted = [prefix.sub("", ln) for ln in run.out.splitlines()]
        print(f"{case.id}:\n  server: {server}\n  lint:   {linted}")
        assert sorted(linted) == sorted(server), case.id  # the same lines, word for word
        compared += 1
    assert compared == len(LINT_CASES)
