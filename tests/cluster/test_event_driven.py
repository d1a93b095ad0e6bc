"""The operator runs on events, not on a clock: releases move as fast as the cluster does.

- A revert inside the warm window (the old colour still scaled up) flips straight back; a
  new revision during the window starts at once. Neither waits for the scale-down timer.
- While a release waits for pods, no timer wakes the app: its pods and EndpointSlices do.
- A release costs at most 15 API requests, and a settled app none.
- A burst of changes to one app collapses into a few passes.
- No finalizer: an app is deleted even while the operator is stopped.

Times are printed, not asserted tightly (the benchmarks measure them); the bounds below only
tell an event-driven operator from one that sleeps behind a timer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.test_operator_metrics import scrape, value
from tests.support.apps import Apps, app_manifest
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for
from tests.support.watchers import SelectorRecorder

pytestmark = pytest.mark.cluster

WARM = 120  # scaleDownDelaySeconds: long enough that waiting for it would be obvious
REQUEST = "bluegreen.dev/request"


def flips(rec: SelectorRecorder) -> list[str | None]:
    return [s.get("bluegreen.dev/color") for s in rec.selectors]


def settled(apps: Apps, name: str, revision: str | None = None) -> dict[str, Any]:
    """Healthy, nothing left to scale down."""

    def probe() -> dict[str, Any] | None:
        st = apps.status(name)
        ok = st.get("phase") == "Healthy" and "scaleDown" not in st
        return st if ok and (revision is None or st.get("stableRevision") == revision) else None

    return wait_for(f"{name} to settle", probe, timeout=60)


@pytest.fixture
def warm(api_client: client.ApiClient, apps: Apps, namespace: str) -> Any:
    """v1 on blue, then v2 on green with blue kept warm for WARM seconds."""
    rec = SelectorRecorder(api_client, namespace, "shop")
    rec.start()
    apps.create(app_manifest("shop", scaleDownDelaySeconds=WARM))
    v1 = apps.wait_phase("shop", "Healthy")["stableRevision"]
    apps.set_image("shop", "registry.example/shop:v2")
    v2 = apps.wait_release_done("shop", 2)
    assert v2["activeColor"] == "green" and v2["scaleDown"]["color"] == "blue"
    yield apps, rec, v1
    rec.stop()


def test_a_revert_inside_the_warm_window_flips_straight_back(warm: Any) -> None:
    apps, rec, v1 = warm
    patched = time.monotonic()
    apps.set_image("shop", "registry.example/shop:v1")
    wait_for("the selector back on blue", lambda: flips(rec)[-1] == "blue", timeout=30)
    flipped = time.monotonic() - patched
    done = apps.wait_phase("shop", "Healthy", revision=v1)
    print(f"\nrevert inside the warm window: patch -> selector on blue {flipped:.3f}s")
    assert done["activeColor"] == "blue"
    assert flips(rec) == ["blue", "green", "blue"]
    # The warm colour was reused as it was: no new pods, no deploy; well inside the window.
    assert flipped < 5, f"the flip back took {flipped:.1f}s: it waited for something"


def test_a_new_revision_inside_the_warm_window_starts_at_once(warm: Any) -> None:
    apps, rec, _ = warm
    patched = time.monotonic()
    apps.set_image("shop", "registry.example/shop:v3")

    def started() -> dict[str, Any] | None:
        st = apps.status("shop")
        release = st.get("release") or {}
        return st if "v3" in release.get("image", "") else None

    st = wait_for("the v3 release to start", started, timeout=30, interval=0.05)
    began = time.monotonic() - patched
    done = apps.wait_phase("shop", "Healthy", revision=st["release"]["revision"])
    ended = time.monotonic() - patched
    print(f"\nnew revision inside the warm window: started {began:.3f}s, at rest {ended:.3f}s")
    assert st["release"]["color"] == "blue"  # the warm colour is the idle one
    assert done["activeColor"] == "blue"
    assert flips(rec) == ["blue", "green", "blue"]
    assert ended < WARM / 4, f"the release waited {ended:.0f}s"


def _counters(op: OperatorProcess) -> dict[str, float]:
    samples = scrape(op.metrics_port)
    out = {"requests": value(samples, "bluegreen_kube_api_requests_total") or 0.0}
    for trigger in ("app", "object", "timer", "follow-up", "resume"):
        out[trigger] = value(samples, "bluegreen_reconcile_passes_total", trigger=trigger) or 0.0
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


def test_a_release_costs_at_most_15_requests_and_waits_on_events_not_timers(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop", scaleDownDelaySeconds=1))
    settled(apps, "shop")
    time.sleep(1)
    idle_start = _counters(op)
    time.sleep(3)
    idle = _delta(idle_start, _counters(op))
    assert idle["requests"] == 0, f"a settled app cost {idle['requests']} API requests"

    before = _counters(op)
    apps.set_image("shop", "registry.example/shop:v2")
    apps.wait_release_done("shop", 2)
    at_healthy = _delta(before, _counters(op))
    settled(apps, "shop")
    time.sleep(0.5)  # the scale-down's own Event leaves the queue
    release = _delta(before, _counters(op))
    print(f"\none release: {release}")
    assert release["requests"] <= 15, release
    # From the patch to Healthy nothing but the app and its objects woke it: no timer.
    assert at_healthy["timer"] == 0, at_healthy
    assert at_healthy["object"] > 0, at_healthy
    # The only timer of the whole release is the old colour's scale-down.
    assert release["timer"] <= 1, release


def test_a_burst_of_fifty_requests_collapses_into_a_few_passes(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop"))
    settled(apps, "shop")
    time.sleep(1)
    before = _counters(op)
    custom = client.CustomObjectsApi(api_client)

    def annotate(i: int) -> None:
        custom.patch_namespaced_custom_object(
            "bluegreen.dev",
            "v1alpha1",
            ns,
            "bluegreenapps",
            "shop",
            {"metadata": {"annotations": {REQUEST: "promote", "burst": str(i)}}},
        )

    threads = [threading.Thread(target=annotate, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(
        "the request to be handled",
        lambda: REQUEST not in (apps.get("shop")["metadata"].get("annotations") or {}),
        timeout=20,
    )
    time.sleep(1)
    burst = _delta(before, _counters(op))
    passes = burst["app"] + burst["object"] + burst["follow-up"] + burst["timer"]
    print(f"\n50 request annotations: {passes:.0f} passes ({burst})")
    assert 1 <= passes < 25, burst


def test_no_finalizer_so_an_app_goes_even_while_the_operator_is_stopped(
    api_client: client.ApiClient, own_operator: tuple[OperatorProcess, str]
) -> None:
    op, ns = own_operator
    apps = Apps(api_client, ns)
    apps.create(app_manifest("shop", autoPromotion=False))
    apps.wait_phase("shop", "Healthy")
    apps.set_image("shop", "registry.example/shop:v2")
    apps.wait_phase("shop", "Paused")  # a release in flight
    assert not apps.get("shop")["metadata"].get("finalizers")
    op.stop()
    apps.delete("shop")

    def gone() -> bool:
        try:
            apps.get("shop")
        except client.ApiException as err:
            return err.status == 404
        return False

    wait_for("the app to be deleted with no operator running", gone, timeout=15)
