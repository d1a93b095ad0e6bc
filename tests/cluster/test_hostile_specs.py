"""Hostile specs against the real API server and the real operator: each one is either
refused by the API server with a message that says what is wrong, or its app comes to
rest, quickly and cheaply, with a status a person can read.

Hypothesis draws the specs (tests/support/hostile.py): the CRD's shape filled with huge and
unicode strings, numbers at and past every bound, odd durations, up to 21 metrics a list,
templates nested 400 deep; `KNOWN` are specs that once broke the operator. For each one:

- refused: the API server answers 4xx with a message naming the field or limit;
- accepted: the operator's model reads it too (but for the template's depth, which the CRD
  cannot bound); the app's first deploy comes to rest (its status, observedGeneration and
  the operator's API request counter stop moving) within `SETTLE_SECONDS`, then a release
  of a new image does the same or is aborted; after each, the operator spent at most
  `REQUEST_BUDGET` API requests, no pass failed unexpectedly, none was throttled (a hot
  loop), no status message, condition or Event holds a traceback, a raw control character
  or more than the operator's MESSAGE_LIMIT characters, and the operator logged no
  traceback and lost no Event.

A ResourceQuota keeps each app to a few pods whatever `replicas` says. The number of
examples is BLUEGREEN_HOSTILE_EXAMPLES (20 by default; `make bench` runs more), and a
failing example is kept in .cache/hypothesis and tried first next time. Counts and costs
are printed, and written to BLUEGREEN_HOSTILE_RESULTS when it names a file.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from bluegreen.api import BlueGreenApp
from bluegreen.api.text import MESSAGE_LIMIT
from bluegreen.api.v1alpha1 import TEMPLATE_DEPTH
from tests.cluster.test_operator_metrics import scrape, value
from tests.conftest import OPERATOR_LOGS
from tests.support.apps import GROUP, PLURAL, VERSION, Apps
from tests.support.cluster import REPO, Cluster
from tests.support.hostile import deep, hostile_spec
from tests.support.operator import OperatorProcess, for_operator
from tests.support.prometheus import PrometheusServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("BLUEGREEN_HOSTILE_EXAMPLES", "20"))
RESULTS = os.environ.get("BLUEGREEN_HOSTILE_RESULTS", "")
SETTLE_SECONDS = 30.0
"""An accepted app must be at rest this long after it was created or aborted."""
RELEASE_SECONDS = 6.0
"""How long a release may run before the test aborts it (its analysis may take hours)."""
QUIET_SECONDS = 2.0
"""At rest: neither the status nor the operator's API request counter moved this long."""
REQUEST_BUDGET = 40
"""API requests the operator may spend on one app's create, or on one release and its
abort: a release costs at most 15 (tests/cluster/test_event_driven.py)."""
MODEL_ONLY = TEMPLATE_DEPTH
"""The one rule the model has and the CRD cannot have (the depth of unknown fields)."""
PODS = 6
AT_REST = {"Healthy", "Degraded", "Paused"}
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What a message must not hand raw to whoever prints it: escape sequences, C1 controls,
bidi overrides (the operator quotes what an author wrote escaped, as the API server does)."""
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


@dataclass
class Harness:
    """The operator, its Prometheus and namespace, and what the examples cost."""

    api_client: client.ApiClient
    apps: Apps
    op: OperatorProcess
    prometheus: str
    outcomes: Counter[str] = field(default_factory=Counter)
    costs: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    tried: set[str] = field(default_factory=set)
    """The specs tried so far (Hypothesis draws some twice; the cluster's time is dear)."""
    log_offset: int = 0

    def counters(self) -> dict[str, float]:
        samples = scrape(self.op.metrics_port)
        return {
            "requests": value(samples, "bluegreen_kube_api_requests_total") or 0.0,
            "unexpected": value(samples, "bluegreen_reconcile_errors_total", kind="unexpected")
            or 0.0,
            "throttled": value(samples, "bluegreen_reconcile_passes_throttled_total") or 0.0,
        }

    def new_log(self) -> str:
        """What the operator logged since the last call."""
        text = self.op.log_path.read_text(errors="replace")
        new, self.log_offset = text[self.log_offset :], len(text)
        return new


@pytest.fixture(scope="module")
def harness(cluster: Cluster, crd: None, api_client: client.ApiClient) -> Iterator[Harness]:
    core = client.CoreV1Api(api_client)
    namespace = f"hostile-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "pods"}, "spec": {"hard": {"pods": str(PODS)}}}
    )
    prom = PrometheusServer([])
    prom.start()
    op = OperatorProcess(
        cluster.kubeconfig, OPERATOR_LOGS, namespaces=namespace, log_name="operator-hostile.log"
    )
    op.start()
    h = Harness(api_client, Apps(api_client, namespace), op, for_operator(prom.url))
    h.new_log()
    try:
        yield h
    finally:
        op.stop()
        prom.close()
        core.delete_namespace(namespace, propagation_policy="Background")
        report(h)


def report(h: Harness) -> None:
    worst = {
        k: max((c.get(k) or 0 for c in h.costs), default=0)
        for k in ("create_requests", "release_requests", "create_seconds", "release_seconds")
    }
    summary = {"examples": h.count, "outcomes": dict(h.outcomes), "worst": worst}
    print(f"\nhostile specs: {json.dumps(summary, indent=1)}")
    if RESULTS:
        path = Path(RESULTS) if Path(RESULTS).is_absolute() else REPO / RESULTS
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**summary, "per_example": h.costs}, indent=1) + "\n")


# ----------------------------------------------------------------------------- checks


def api_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or "")
    except ValueError:
        return str(err.body or err.reason or "")


def check_refusal(err: ApiException, spec: dict[str, Any]) -> str:
    """A refusal is a 4xx with a message that names what is wrong."""
    message = api_message(err)
    assert 400 <= err.status < 500, (err.status, message[:2000])
    assert message.strip(), f"HTTP {err.status} without a message"
    assert not TRACEBACK.search(message), message[:2000]
    assert "spec" in message or "request" in message.lower() or "json" in message.lower(), message[
        :2000
    ]
    return f"refused {err.status}"


def messages(status: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    out = [str(status.get("message") or "")]
    out += [str(c.get("message") or "") for c in status.get("conditions") or []]
    release = status.get("release") or {}
    out.append(str(release.get("message") or ""))
    out += [str(e.get("note") or "") for e in events]
    return out


def check_readable(h: Harness, name: str, status: dict[str, Any]) -> None:
    for text in messages(status, h.apps.events(name)):
        assert not TRACEBACK.search(text), text[:4000]
        assert len(text) <= MESSAGE_LIMIT, f"a message of {len(text)} characters: {text[:300]}"
        assert not RAW_CONTROL.search(text), f"raw control characters in {text[:600]!r}"
    log = h.new_log()
    assert "Traceback" not in log, log[-6000:]
    assert "could not post event" not in log, log[-6000:]
    assert h.op.proc is not None and h.op.proc.poll() is None, "the operator died"


def settle(h: Harness, name: str, timeout: float) -> tuple[dict[str, Any], bool]:
    """Wait until the app's status is at rest: observedGeneration is its generation, and
    neither the status nor the operator's request counter moved for QUIET_SECONDS."""
    deadline = time.monotonic() + timeout
    last: tuple[str, float] | None = None
    since = time.monotonic()
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = h.apps.get(name)
        status = dict(body.get("status") or {})
        seen = body["metadata"]["generation"] == status.get("observedGeneration")
        now = (json.dumps(status, sort_keys=True), h.counters()["requests"])
        if now != last:
            last, since = now, time.monotonic()
        elif seen and time.monotonic() - since >= QUIET_SECONDS:
            return status, True
        time.sleep(0.25)
    return status, False


def check_stage(
    h: Harness, name: str, before: dict[str, float], status: dict[str, Any], what: str
) -> float:
    after = h.counters()
    spent = after["requests"] - before["requests"]
    assert after["unexpected"] == before["unexpected"], f"{what}: a pass failed unexpectedly"
    assert after["throttled"] == before["throttled"], f"{what}: passes throttled (a hot loop)"
    assert spent <= REQUEST_BUDGET, f"{what}: {spent:.0f} API requests; status {status}"
    check_readable(h, name, status)
    return spent


def outcome_of(status: dict[str, Any]) -> str:
    degraded = [
        c
        for c in status.get("conditions") or []
        if c["type"] == "Degraded" and c["status"] == "True"
    ]
    reason = degraded[0]["reason"] if degraded else ""
    return f"{status.get('phase')}{'/' + reason if reason else ''}"


def run_example(h: Harness, spec: dict[str, Any]) -> None:
    key = json.dumps(spec, sort_keys=True)
    if key in h.tried:
        return
    h.tried.add(key)
    h.count += 1
    name = f"h{h.count}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BlueGreenApp",
        "metadata": {"name": name},
        "spec": spec,
    }
    cost: dict[str, Any] = {"example": h.count}
    h.costs.append(cost)
    h.new_log()
    before = h.counters()
    started = time.monotonic()
    try:
        created = h.apps.create(body)
    except ApiException as err:
        cost["outcome"] = check_refusal(err, spec)
        cost["message"] = api_message(err)[:300]
        h.outcomes[cost["outcome"]] += 1
        return
    try:
        try:
            BlueGreenApp.model_validate(created)
        except ValidationError as err:
            # What the CRD admits the operator reads, but for the limits the CRD cannot
            # state: a drift would be a spec the user was told is fine and the operator
            # refuses.
            assert all(MODEL_ONLY in e["msg"] for e in err.errors()), str(err)[:2000]
        status, rested = settle(h, name, SETTLE_SECONDS)
        assert rested, f"not at rest {SETTLE_SECONDS:.0f}s after create: {status}"
        cost["create_seconds"] = round(time.monotonic() - started, 2)
        cost["create_requests"] = check_stage(h, name, before, status, "create")
        cost["outcome"] = outcome_of(status)
        cost["message"] = str(status.get("message") or "")[:300]
        if status.get("phase") != "Healthy":
            h.outcomes[cost["outcome"]] += 1
            return
        before, started = h.counters(), time.monotonic()
        template = h.apps.get(name)["spec"]["template"]
        template["spec"]["containers"][0]["image"] = "registry.example/shop:v2"
        h.apps.patch_spec(name, {"template": template})
        status, rested = settle(h, name, RELEASE_SECONDS)
        if not rested or status.get("phase") not in AT_REST:
            cost["aborted_in"] = status.get("phase")
            h.apps.request(name, "abort")
            status, rested = settle(h, name, SETTLE_SECONDS)
            assert rested, f"not at rest {SETTLE_SECONDS:.0f}s after abort: {status}"
        assert status.get("phase") in AT_REST, status
        cost["release_seconds"] = round(time.monotonic() - started, 2)
        cost["release_requests"] = check_stage(h, name, before, status, "release")
        cost["outcome"] += " -> " + outcome_of(status)
        cost["message"] = str(status.get("message") or "")[:300]
        h.outcomes[cost["outcome"]] += 1
    finally:
        remove(h, name)


def remove(h: Harness, name: str) -> None:
    """Delete the app and wait for its pods to go (they count against the quota)."""
    h.apps.api.delete_namespaced_custom_object(
        GROUP, VERSION, h.apps.namespace, PLURAL, name, propagation_policy="Foreground"
    )
    core = client.CoreV1Api(h.api_client)
    wait_for(
        f"{name}'s pods to go",
        lambda: not core.list_namespaced_pod(h.apps.namespace).items,
        timeout=60,
    )


# ----------------------------------------------------------------------------- the tests

ONE_CONTAINER = [{"name": "app", "image": "registry.example/shop:v1"}]
KNOWN = {
    # An unknown field nested 400 deep in the pod template.
    "deep-template": {"template": {"spec": {"containers": ONE_CONTAINER, "x": deep(400, 1)}}},
    # A 300 KB annotation: fine for the app, too much for a Deployment (256 KB in all).
    "huge-annotation": {
        "template": {
            "metadata": {"annotations": {"note": "\u202e\x1b[2J" + "x" * 300_000}},
            "spec": {"containers": ONE_CONTAINER},
        }
    },
    # An image tag of 500 characters of another script: Events quote it (at most 1024
    # bytes of UTF-8 each, not 1024 characters).
    "unicode-image": {
        "template": {
            "spec": {
                "containers": [{"name": "app", "image": "registry.example/shop:" + "語" * 500}]
            }
        }
    },
    # An IngressClass and 2000 annotation keys the Ingress guard refuses, every one of
    # them quoted in its message: escape sequences, and 2000 x 200 characters.
    "refused-ingress": {
        "template": {"spec": {"containers": ONE_CONTAINER}},
        "ingress": {
            "host": "shop.example.com",
            "className": "\x1b]8;;https://evil.example/\x1b\\nginx\x1b]8;;\x1b\\",
            "annotations": {f"{i:04d}-" + "k" * 195 + "\x1b[2J": "v" for i in range(2000)},
        },
    },
    # 1h and a tenth of a nanosecond: exactly 1h for the CRD's CEL rule (Go drops what is
    # below a nanosecond), and so for the operator.
    "sub-nanosecond-interval": {
        "template": {"spec": {"containers": ONE_CONTAINER}},
        "analysis": {
            "prePromotion": [
                {"name": "up", "url": "http://evil.example/up", "interval": "1h0m0.0000000001s"}
            ]
        },
    },
}


@pytest.mark.parametrize("spec", KNOWN.values(), ids=KNOWN.keys())
def test_known_hostile_specs(harness: Harness, spec: dict[str, Any]) -> None:
    run_example(harness, spec)


@pytest.mark.timeout(120 + 60 * EXAMPLES)  # an example takes about 7 s, at most about 75 s
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    database=DirectoryBasedExampleDatabase(str(REPO / ".cache" / "hypothesis")),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
@given(data=st.data())
def test_a_hostile_spec_is_refused_clearly_or_its_app_comes_to_rest(
    harness: Harness, data: st.DataObject
) -> None:
    run_example(harness, data.draw(hostile_spec(harness.prometheus), label="spec"))
