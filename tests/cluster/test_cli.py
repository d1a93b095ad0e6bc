"""`kubectl-bluegreen`, the real console script, against the real control plane and the
real operator: every call below is a subprocess, as a person would run it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.apps import NOT_READY, Apps, app_manifest
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

# The script of the virtualenv that runs the tests (.venv/bin/kubectl-bluegreen).
CLI = Path(sys.executable).parent / "kubectl-bluegreen"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Plugin:
    kubeconfig: Path
    namespace: str

    def __call__(self, *args: str, namespace: str | None = None, timeout: float = 180) -> Run:
        ns = self.namespace if namespace is None else namespace
        argv = [str(CLI), "--kubeconfig", str(self.kubeconfig), "-n", ns, *args]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(cluster: Cluster, apps: Apps) -> Plugin:
    return Plugin(cluster.kubeconfig, apps.namespace)


def paused_release(apps: Apps, name: str) -> dict[str, Any]:
    """An app with a manual gate, serving v1, with v2 waiting in Paused."""
    apps.create(app_manifest(name, autoPromotion=False))
    apps.wait_phase(name, "Healthy")
    apps.set_image(name, "registry.example/shop:v2")
    return apps.wait_phase(name, "Paused")


def row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [name])


def check_history(cli: Plugin, name: str, st: dict[str, Any]) -> None:
    """`history NAME` shows status.history row by row, newest first."""
    history = cli("history", name)
    assert history.code == 0, history.err
    lines = history.out.splitlines()
    assert lines[0].split() == [
        "REVISION",
        "IMAGE",
        "COLOR",
        "RESULT",
        "REASON",
        "STARTED",
        "COMPLETED",
        "SWITCH",
    ]
    rows = [ln.split() for ln in lines[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (h["revision"], h["color"], h["result"]) for h in st["history"]
    ]
    assert rows[0][1] == "registry.example/shop:v2"
    assert rows[0][7] == f"{st['history'][0]['switchLatencySeconds']:.3f}s"
    as_json = cli("history", name, "-o", "json")
    assert as_json.code == 0 and as_json.json() == st["history"]


def check_timeline(cli: Plugin, name: str, st: dict[str, Any]) -> None:
    """`timeline NAME`: the release's own timestamps, offsets from startedAt, in time order."""
    timeline = cli("timeline", name, "--events")
    assert timeline.code == 0, timeline.err
    out = timeline.out.splitlines()
    release = st["release"]
    assert f"Revision:       {release['revision']}" in out
    assert "Colour:         blue -> green" in out
    assert "Result:         Promoted" in out
    assert f"Switch latency: {release['switchLatencySeconds']:.3f}s" in out
    table = out[out.index("") + 1 :]
    assert table[0].split() == ["OFFSET", "TIME", "WHAT", "DETAIL"]
    entries = [ln.split(maxsplit=3) for ln in table[1:]]
    whats = [e[2] for e in entries]
    for key in (
        "startedAt",
        "candidateReadyAt",
        "promotionRequestedAt",
        "switchedAt",
        "completedAt",
    ):
        assert key in whats, (key, timeline.out)
        assert next(e[1] for e in entries if e[2] == key) == release[key]
    assert next(e[0] for e in entries if e[2] == "startedAt") == "+0.000s"
    started = datetime.fromisoformat(release["startedAt"].replace("Z", "+00:00"))
    switched = datetime.fromisoformat(release["switchedAt"].replace("Z", "+00:00"))
    switch_offset = f"+{(switched - started).total_seconds():.3f}s"
    assert next(e[0] for e in entries if e[2] == "switchedAt") == switch_offset
    assert "event/Switched" in whats and "event/Promoted" in whats
    offsets = [float(e[0].rstrip("s")) for e in entries]
    assert offsets == sorted(offsets)
    assert all(
        e[0][0] in "+-" and e[0].endswith("s") and len(e[0].split(".")[1]) == 4 for e in entries
    )

    data = cli("timeline", name, "-o", "json").json()
    assert data["release"] == release
    assert data["timeline"][0]["what"] == "startedAt"
    assert all(not t["what"].startswith("event/") for t in data["timeline"])


def test_status_table_detail_and_json(cli: Plugin, apps: Apps) -> None:
    apps.create(app_manifest("shop", replicas=2))
    st = apps.wait_phase("shop", "Healthy")

    run = cli("status")
    assert run.code == 0, run.err
    header, *_ = run.out.splitlines()
    assert header.split() == ["NAME", "PHASE", "ACTIVE", "STABLE", "CANDIDATE", "READY", "AGE"]
    name, phase, active, stable, candidate, ready, _age = row(run.out, "shop")
    assert (name, phase, active, stable, candidate, ready) == (
        "shop",
        "Healthy",
        "blue",
        st["stableRevision"],
        "<none>",
        "2/2",
    )

    wide = cli("status", "-o", "wide")
    assert wide.code == 0 and wide.out.splitlines()[0].split()[-1] == "MESSAGE"

    every = cli("status", "-A")
    assert every.code == 0, every.err
    assert [apps.namespace, "shop", "Healthy"] in [ln.split()[:3] for ln in every.out.splitlines()]

    listed = cli("status", "-o", "json")
    assert listed.code == 0, listed.err
    assert listed.json()["kind"] == "List"
    [item] = listed.json()["items"]
    assert item["status"]["stableRevision"] == st["stableRevision"]
    assert "managedFields" not in item["metadata"]

    one = cli("status", "shop", "-o", "yaml")
    assert one.code == 0, one.err
    body = yaml.safe_load(one.out)
    assert body["metadata"]["name"] == "shop"
    assert body["status"]["phase"] == "Healthy"

    detail = cli("status", "shop")
    assert detail.code == 0, detail.err
    lines = detail.out.splitlines()
    assert "Phase:               Healthy" in lines
    assert f"Stable revision:     {st['stableRevision']}" in lines
    conditions = lines[lines.index("Conditions:") + 1 :]
    assert conditions[0].split() == ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]
    assert conditions[1].split()[:3] == ["Available", "True", "ActiveColorReady"]
    assert f"  Revision:       {st['stableRevision']}" in lines
    assert "  Result:         Promoted" in lines


def test_namespace_and_context_from_the_kubeconfig(
    cluster: Cluster, apps: Apps, tmp_path: Path
) -> None:
    """Without -n the plugin uses the namespace of the kubeconfig's context, as kubectl."""
    apps.create(app_manifest("ctx"))
    apps.wait_phase("ctx", "Healthy")
    kc = yaml.safe_load(cluster.kubeconfig.read_text())
    current = next(c for c in kc["contexts"] if c["name"] == kc["current-context"])
    other = {"name": "apps", "context": {**current["context"], "namespace": apps.namespace}}
    kc["contexts"] = [*kc["contexts"], other]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kc))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(CLI), "--kubeconfig", str(path), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    by_context = run("--context", "apps", "status")
    assert by_context.returncode == 0, by_context.stderr
    assert row(by_context.stdout, "ctx")[1] == "Healthy"
    after_command = run("status", "ctx", "--context", "apps", "-o", "json")
    assert after_command.returncode == 0, after_command.stderr
    assert json.loads(after_command.stdout)["metadata"]["namespace"] == apps.namespace
    kc["contexts"] = [other]
    kc["current-context"] = "apps"
    path.write_text(yaml.safe_dump(kc))
    by_current = run("history", "ctx")
    assert by_current.returncode == 0, by_current.stderr
    assert by_current.stdout.splitlines()[1].split()[3] == "Promoted"
    unknown = run("--context", "nope", "status")
    assert unknown.returncode == 5
    assert 'context "nope" does not exist' in unknown.stderr


def test_promote_wait_from_paused_then_refused_in_healthy(cli: Plugin, apps: Apps) -> None:
    paused = paused_release(apps, "gate")
    run = cli("promote", "gate", "--wait", "--timeout", "90")
    assert run.code == 0, run.out + run.err
    assert "promote: done, phase Healthy (active green" in run.out
    st = apps.status("gate")
    assert st["phase"] == "Healthy"
    assert st["activeColor"] == "green"
    assert st["stableRevision"] == paused["candidateRevision"]
    assert "bluegreen.dev/request" not in (apps.get("gate")["metadata"].get("annotations") or {})

    refused = cli("promote", "gate")
    assert refused.code == 3
    assert refused.err.strip() == (
        'error: cannot promote bluegreenapp "gate" in phase Healthy: '
        "promote applies only in Analyzing or Paused (--force sends it anyway)"
    )
    assert "bluegreen.dev/request" not in (apps.get("gate")["metadata"].get("annotations") or {})

    # Forced anyway, the operator ignores it and says so in an Event: exit 6.
    forced = cli("promote", "gate", "--force", "--wait", "--timeout", "60", "-o", "json")
    assert forced.code == 6, forced.out + forced.err
    result = forced.json()
    assert result["outcome"] == "Unexpected"
    assert result["phase"] == "Healthy"
    assert result["forced"] is True
    assert "does nothing in phase Healthy" in result["note"]


def test_abort_wait_then_retry_wait_then_history_and_timeline(cli: Plugin, apps: Apps) -> None:
    paused = paused_release(apps, "ab")
    candidate = paused["candidateRevision"]

    aborted = cli("abort", "ab", "--wait", "--timeout", "90")
    assert aborted.code == 0, aborted.out + aborted.err
    assert "abort: done, phase Degraded (active blue" in aborted.out
    st = apps.status("ab")
    assert st["phase"] == "Degraded" and candidate in st["failedRevisions"]

    assert cli("abort", "ab").code == 3  # nothing in flight any more
    assert cli("promote", "ab").code == 3

    retried = cli("retry", "ab", "--wait", "--timeout", "90", "-o", "json")
    assert retried.code == 0, retried.out + retried.err
    result = retried.json()
    # The app has a manual gate: the retried release waits in Paused again.
    assert (result["request"], result["outcome"], result["phase"]) == (
        "retry",
        "Expected",
        "Paused",
    )
    assert result["status"]["candidateRevision"] == candidate

    promoted = cli("promote", "ab", "--wait")
    assert promoted.code == 0, promoted.out + promoted.err
    assert "phase Healthy (active green" in promoted.out
    st = apps.wait_phase("ab", "Healthy", revision=candidate)

    assert (st["history"][0]["revision"], st["history"][0]["result"]) == (candidate, "Promoted")
    assert (st["history"][1]["revision"], st["history"][1]["result"]) == (candidate, "Aborted")
    check_history(cli, "ab", st)
    check_timeline(cli, "ab", st)


def test_a_candidate_that_never_got_ready_reads_as_such(cli: Plugin, apps: Apps) -> None:
    """After a progress-deadline failure, the user reads that traffic never moved, and how
    to go on: in `status`, in `get -o wide`'s MESSAGE and in the timeline's Events."""
    apps.create(app_manifest("stuck", progressDeadlineSeconds=4))
    v1 = apps.wait_phase("stuck", "Healthy")["stableRevision"]
    apps.set_image("stuck", "registry.example/shop:broken", labels=NOT_READY)
    st = apps.wait_phase("stuck", "Degraded", timeout=30)
    candidate = st["history"][0]["revision"]

    detail = cli("status", "stuck")
    assert detail.code == 0, detail.err
    message = next(ln for ln in detail.out.splitlines() if ln.startswith("Message:"))
    assert "ready after 4s" in message, message
    assert "kubectl bluegreen retry stuck" in message, message
    assert f"revision {candidate}" in message, message

    wide = cli("status", "-o", "wide")
    assert "kubectl bluegreen retry stuck" in wide.out, wide.out

    timeline = cli("timeline", "stuck", "--events")
    assert timeline.code == 0, timeline.err
    assert f"traffic never left blue (revision {v1})" in timeline.out, timeline.out
    assert "back on" not in timeline.out, timeline.out


@pytest.mark.parametrize(
    "args",
    [
        ("status", "nope"),
        ("promote", "nope"),
        ("abort", "nope", "--wait"),
        ("retry", "nope"),
        ("history", "nope"),
        ("timeline", "nope", "--events"),
    ],
)
def test_unknown_app(cli: Plugin, args: tuple[str, ...]) -> None:
    run = cli(*args)
    assert run.code == 1
    assert run.err.strip() == f'error: bluegreenapp "nope" not found in namespace "{cli.namespace}"'
    assert run.out == ""


def test_unreachable_cluster(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}},
                ],
                "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
                "contexts": [
                    {"name": "gone", "context": {"cluster": "gone", "user": "me", "namespace": "x"}}
                ],
                "current-context": "gone",
            }
        )
    )
    for args in (
        ("status",),
        ("status", "shop"),
        ("promote", "shop", "--wait"),
        ("timeline", "shop"),
    ):
        proc = subprocess.run(
            [str(CLI), "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 5, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(
            "error: cannot reach the Kubernetes API server at https://127.0.0.1:1"
        ), proc.stderr
    missing = subprocess.run(
        [str(CLI), "--kubeconfig", str(tmp_path / "absent"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 5
    assert "does not exist" in missing.stderr


def test_usage_errors_and_help() -> None:
    for args in ((), ("promote",), ("status", "-o", "xml"), ("status", "x", "-A"), ("bogus",)):
        proc = subprocess.run([str(CLI), *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "usage: kubectl bluegreen" in proc.stderr
    helped = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0
    assert "exit codes:" in helped.stdout and "5  the cluster cannot be reached" in helped.stdout


@pytest.fixture
def unwatched_namespace(api_client: client.ApiClient, crd: None) -> Iterator[str]:
    """A namespace no operator of this session watches: requests there are never taken."""
    name = f"nowatch-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


def test_wait_times_out_when_no_operator_takes_the_request(
    cluster: Cluster, api_client: client.ApiClient, unwatched_namespace: str
) -> None:
    apps = Apps(api_client, unwatched_namespace)
    apps.create(app_manifest("idle"))
    cli = Plugin(cluster.kubeconfig, unwatched_namespace)
    # No status yet: Pending, where promote means nothing.
    assert cli("promote", "idle").code == 3
    run = cli("promote", "idle", "--force", "--wait", "--timeout", "2")
    assert run.code == 4, run.out + run.err
    assert "promote: timed out, phase Pending" in run.out
    assert "the request is still on the app (is the operator running?)" in run.err
    annotations = apps.get("idle")["metadata"]["annotations"]
    assert annotations["bluegreen.dev/request"] == "promote"
    # Without --wait the request is only sent.
    sent = cli("abort", "idle", "--force")
    assert (sent.code, sent.out.strip()) == (0, "bluegreenapp.bluegreen.dev/idle abort requested")
    assert apps.get("idle")["metadata"]["annotations"]["bluegreen.dev/request"] == "abort"
