"""The real `kubectl-bluegreen` against the real API server, on an app whose annotations,
status and Events carry terminal escape sequences (an OSC 8 hyperlink, a screen clear, a
window title, a C1 CSI) and bidi overrides: nothing of them reaches the terminal raw, in
any output, and -o json / -o yaml give the exact strings back.

No operator watches this test's namespace: the status and the Event are written by the
test, as anyone with the rights to write them could."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.apps import GROUP, PLURAL, VERSION, Apps, app_manifest
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

CLI = Path(sys.executable).parent / "kubectl-bluegreen"
LINK = "\x1b]8;;https://evil.example/\x1b\\kubectl bluegreen promote\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[3J\x1b[H"
TITLE = "\x1b]0;owned\x07"
C1 = "\x9b31m"
BIDI = "\u202eedoc\u202c\u2066x\u2069"
FORGED = "\nshop   Healthy   blue"
HOSTILE = LINK + CLEAR + TITLE + C1 + BIDI + FORGED
RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def stamp(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def hostile(
    cluster: Cluster, crd: None, api_client: client.ApiClient
) -> Iterator[tuple[Apps, dict[str, Any]]]:
    core = client.CoreV1Api(api_client)
    namespace = f"esc-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": namespace}})
    apps = Apps(api_client, namespace)
    body = app_manifest("shop")
    body["metadata"]["annotations"] = {
        "bluegreen.dev/request": "promote" + CLEAR,
        "team.example.com/owner": LINK,
    }
    created = apps.create(body)
    release = {
        "revision": "7c9f0e1a2b",
        "image": "registry.example/shop:v2",
        "color": "green",
        "previousColor": "blue",
        "startedAt": stamp(60),
        "switchedAt": stamp(50),
        "completedAt": stamp(40),
        "result": "RolledBack",
        "reason": "PostPromotionAnalysisFailed",
        "message": "error rate 0.4 " + HOSTILE,
    }
    status = {
        "phase": "Degraded",
        "activeColor": "blue",
        "stableRevision": "1a2b3c4d5e",
        "message": "revision 7c9f0e1a2b RolledBack: " + HOSTILE,
        "conditions": [
            {
                "type": "Degraded",
                "status": "True",
                "reason": "PostPromotionAnalysisFailed",
                "message": HOSTILE,
                "lastTransitionTime": stamp(40),
            }
        ],
        "release": release,
        "history": [release],
    }
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "shop", {"status": status}
    )
    client.EventsV1Api(api_client).create_namespaced_event(
        namespace,
        {
            "metadata": {"name": f"shop.{uuid.uuid4().hex[:8]}"},
            "eventTime": stamp(45),
            "type": "Warning",
            "reason": "RolledBack",
            "action": "Release",
            "note": "traffic is back on blue " + HOSTILE,
            "reportingController": "bluegreen.dev/operator",
            "reportingInstance": "test",
            "regarding": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BlueGreenApp",
                "name": "shop",
                "namespace": namespace,
                "uid": created["metadata"]["uid"],
            },
        },
    )
    yield apps, status
    core.delete_namespace(namespace, propagation_policy="Background")


def run(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(CLI), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def test_no_output_of_the_plugin_hands_an_escape_sequence_to_the_terminal(
    cluster: Cluster, hostile: tuple[Apps, dict[str, Any]]
) -> None:
    apps, status = hostile
    ns = apps.namespace
    commands = [
        ("status",),
        ("status", "-o", "wide"),
        ("status", "-A", "-o", "wide"),
        ("status", "shop"),
        ("history", "shop"),
        ("timeline", "shop", "--events"),
        ("promote", "shop"),  # refused in Degraded: the error names the phase
        ("status", "shop", "-o", "json"),
        ("status", "shop", "-o", "yaml"),
        ("timeline", "shop", "-o", "json"),
    ]
    seen: dict[str, str] = {}
    for args in commands:
        result = run(cluster, ns, *args)
        name = " ".join(args)
        assert result.returncode in (0, 3), (name, result.stderr)
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            raw = RAW.findall(text)
            assert not raw, f"`{name}` {stream} holds {raw!r}:\n{text}"
        seen[name] = result.stdout

    # Escaped, visibly, where a person reads them; a message cannot forge a row.
    detail = seen["status shop"]
    assert r"\x1b]8;;https://evil.example/" in detail and r"\x1b[2J" in detail
    assert r"\u202eedoc\u202c" in detail and r"\x9b31m" in detail
    assert r"Pending request:     promote\x1b[2J" in detail, detail
    table = seen["status -o wide"].splitlines()
    assert len(table) == 2 and r"\nshop   Healthy   blue" in table[1], table
    events = seen["timeline shop --events"]
    assert "event/RolledBack" in events and r"traffic is back on blue \x1b]8;;" in events

    # -o json and -o yaml: the exact strings, in the format's own escapes.
    as_json = json.loads(seen["status shop -o json"])
    assert as_json["status"]["message"] == status["message"]
    assert as_json["metadata"]["annotations"]["team.example.com/owner"] == LINK
    assert r"\u001b]8;;" in seen["status shop -o json"]
    as_yaml = yaml.safe_load(seen["status shop -o yaml"])
    assert as_yaml["status"]["conditions"][0]["message"] == HOSTILE
    timeline = json.loads(seen["timeline shop -o json"])
    assert timeline["release"]["message"] == status["release"]["message"]
