"""What `kubectl bluegreen` prints, checked exactly: pure functions of status dicts.

The apps below are dicts as the API server returns them (camelCase, RFC 3339 times with
microseconds, as the operator writes them). `NOW` is fixed, so every AGE is known.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import requests as requests_text
from bluegreen.kubectl import timeline

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def ts(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cond(
    type_: str, status: str, reason: str, message: str = "", age: float = 600
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(age),
        "observedGeneration": 2,
    }


def app(
    name: str, status: dict[str, Any] | None, replicas: int = 2, age: float = 3600
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "bluegreen.dev/v1alpha1",
        "kind": "BlueGreenApp",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": 2,
            "creationTimestamp": (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {"replicas": replicas},
    }
    if status is not None:
        body["status"] = status
    return body


RELEASE_V2 = {
    "revision": "7c9f0e1a2b",
    "image": "registry.example/shop:v2",
    "color": "green",
    "previousColor": "blue",
    "startedAt": "2026-11-26T14:50:00.000000Z",
    "candidateReadyAt": "2026-11-26T14:50:01.250000Z",
    "promotionRequestedAt": "2026-11-26T14:50:05.000000Z",
    "switchedAt": "2026-11-26T14:50:05.100000Z",
    "endpointsConvergedAt": "2026-11-26T14:50:05.512000Z",
    "completedAt": "2026-11-26T14:50:05.600000Z",
    "switchLatencySeconds": 0.412,
    "durationSeconds": 5.6,
    "result": "Promoted",
    "reason": "Promoted",
    "message": "",
}

HEALTHY = app(
    "shop",
    {
        "phase": "Healthy",
        "activeColor": "green",
        "stableRevision": "7c9f0e1a2b",
        "observedGeneration": 2,
        "replicas": 2,
        "message": "",
        "conditions": [
            cond(
                "Available", "True", "ActiveColorReady", "2 ready replicas of green serve traffic"
            ),
            cond("Progressing", "False", "Promoted", age=90),
            cond("Degraded", "False", "AsExpected"),
            cond("Paused", "False", "NotPaused"),
        ],
        "release": RELEASE_V2,
        "history": [
            {
                "revision": "7c9f0e1a2b",
                "image": "registry.example/shop:v2",
                "color": "green",
                "result": "Promoted",
                "reason": "Promoted",
                "startedAt": "2026-11-26T14:50:00.000000Z",
                "completedAt": "2026-11-26T14:50:05.600000Z",
                "switchLatencySeconds": 0.412,
            },
            {
                "revision": "e6587b9010",
                "image": "registry.example/shop:v1",
                "color": "blue",
                "result": "Promoted",
                "reason": "Promoted",
                "startedAt": "2026-11-26T14:00:00.300000Z",
                "completedAt": "2026-11-26T14:00:01.900000Z",
                "switchLatencySeconds": 0.104,
            },
        ],
        "failedRevisions": [],
    },
)

PAUSED = app(
    "cart-with-a-long-name",
    {
        "phase": "Paused",
        "activeColor": "blue",
        "stableRevision": "e6587b9010",
        "candidateRevision": "50005b8677",
        "replicas": 3,
        "conditions": [
            cond(
                "Progressing", "True", "Paused", "release of revision 50005b8677 to green: Paused"
            ),
            cond("Paused", "True", "ManualPromotion", "waiting for `kubectl bluegreen promote`"),
        ],
        "release": {
            "revision": "50005b8677",
            "image": "registry.example/cart:v3",
            "color": "green",
            "previousColor": "blue",
            "startedAt": ts(30),
            "candidateReadyAt": ts(29),
        },
    },
    replicas=3,
    age=200,
)

DEGRADED = app(
    "pay",
    {
        "phase": "Degraded",
        "activeColor": "blue",
        "stableRevision": "e6587b9010",
        "replicas": 1,
        "message": "revision 9a47cacf19 failed before; it is not released again until a person runs `kubectl bluegreen retry`",
        "failedRevisions": ["9a47cacf19"],
        "release": {
            "revision": "9a47cacf19",
            "image": "registry.example/pay:v9",
            "color": "green",
            "previousColor": "blue",
            "startedAt": "2026-11-26T14:59:00.000000Z",
            "switchedAt": "2026-11-26T14:59:02.000000Z",
            "rollbackStartedAt": "2026-11-26T14:59:03.250000Z",
            "switchedBackAt": "2026-11-26T14:59:03.300000Z",
            "completedAt": "2026-11-26T14:59:03.750000Z",
            "durationSeconds": 3.75,
            "result": "RolledBack",
            "reason": "Aborted",
            "message": "the release was aborted by a request",
        },
        "scaleDown": {"color": "green", "at": "2026-11-26T14:59:33.750000Z"},
    },
    replicas=1,
    age=5 * 86400,
)

NEW = app("fresh", None, replicas=1, age=5)  # the operator has not written a status yet


# ----------------------------------------------------------------------------- status table


def test_status_table_exact_columns() -> None:
    out = fmt.status_table([HEALTHY, PAUSED, DEGRADED, NEW], NOW)
    assert out.splitlines() == [
        "NAME                    PHASE      ACTIVE   STABLE       CANDIDATE    READY   AGE",
        "shop                    Healthy    green    7c9f0e1a2b   <none>       2/2     60m",
        "cart-with-a-long-name   Paused     blue     e6587b9010   50005b8677   3/3     3m20s",
        "pay                     Degraded   blue     e6587b9010   <none>       1/1     5d",
        "fresh                   Pending    <none>   <none>       <none>       0/1     5s",
    ]


def test_status_table_wide_all_namespaces() -> None:
    out = fmt.status_table([PAUSED, DEGRADED, HEALTHY], NOW, wide=True, all_namespaces=True)
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "ACTIVE",
        "STABLE",
        "CANDIDATE",
        "READY",
        "AGE",
        "MESSAGE",
    ]
    # MESSAGE: status.message, else what the Progressing/Paused condition says, else empty.
    assert lines[1].endswith("3m20s   release of revision 50005b8677 to green: Paused")
    assert lines[2].endswith("5d      " + DEGRADED["status"]["message"])
    assert lines[3].endswith("60m") and lines[3].startswith("shop        shop   ")
    # Every column starts at the same offset on every line.
    start = lines[0].index("CANDIDATE")
    assert [ln[start : start + 10].strip() for ln in lines[1:]] == [
        "50005b8677",
        "<none>",
        "<none>",
    ]


@pytest.mark.parametrize(
    ("headers", "rows", "expected"),
    [
        # Go tabwriter as kubectl sets it: 3 spaces of padding, columns at least 6 wide.
        (["A", "B"], [["x", "y"]], ["A     B", "x     y"]),
        (["NAME", "AGE"], [["shop", "5s"], ["a", ""]], ["NAME   AGE", "shop   5s", "a"]),
        (["NAME"], [], ["NAME"]),
    ],
)
def test_table_alignment(headers: list[str], rows: list[list[str]], expected: list[str]) -> None:
    assert fmt.table(headers, rows).splitlines() == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (3600, "60m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 25 * 60, "3h25m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (5 * 86400 + 3 * 3600, "5d3h"),
        (9 * 86400, "9d"),
        (800 * 86400, "2y70d"),
        (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_age_matches_kubectl(seconds: float, expected: str) -> None:
    assert fmt.human_age(seconds) == expected


# ----------------------------------------------------------------------------- status detail


def test_status_detail_of_a_healthy_app() -> None:
    assert fmt.status_detail(HEALTHY, NOW).splitlines() == [
        "Name:                shop",
        "Namespace:           shop",
        "Phase:               Healthy",
        "Active colour:       green",
        "Stable revision:     7c9f0e1a2b",
        "Candidate revision:  <none>",
        "Ready:               2/2",
        "Observed generation: 2 (generation 2)",
        "Failed revisions:    <none>",
        "",
        "Conditions:",
        "  TYPE          STATUS   REASON             AGE   MESSAGE",
        "  Available     True     ActiveColorReady   10m   2 ready replicas of green serve traffic",
        "  Progressing   False    Promoted           90s",
        "  Degraded      False    AsExpected         10m",
        "  Paused        False    NotPaused          10m",
        "",
        "Release:",
        "  Revision:       7c9f0e1a2b",
        "  Image:          registry.example/shop:v2",
        "  Colour:         blue -> green",
        "  Started:        2026-11-26T14:50:00.000000Z (10m ago)",
        "  Result:         Promoted",
        "  Reason:         Promoted",
        "  Switch latency: 0.412s",
        "  Duration:       5.600s",
    ]


def test_status_detail_of_a_degraded_app_with_a_pending_request() -> None:
    body = {
        **DEGRADED,
        "metadata": {**DEGRADED["metadata"], "annotations": {"bluegreen.dev/request": "retry"}},
    }
    lines = fmt.status_detail(body, NOW).splitlines()
    assert "Phase:               Degraded" in lines
    assert "Failed revisions:    9a47cacf19" in lines
    assert "Scale down:          green at 2026-11-26T14:59:33.750000Z" in lines
    assert "Pending request:     retry" in lines
    assert "Message:             " + DEGRADED["status"]["message"] in lines
    assert lines[lines.index("Conditions:") + 1] == "  <none>"
    release = lines[lines.index("Release:") + 1 :]
    assert "  Result:         RolledBack" in release
    assert "  Reason:         Aborted" in release
    assert "  Switch latency: <none>" in release
    assert "  Message:        the release was aborted by a request" in release


def test_status_detail_of_an_app_without_status() -> None:
    lines = fmt.status_detail(NEW, NOW).splitlines()
    assert "Phase:               Pending" in lines
    assert "Observed generation: <none> (generation 2)" in lines
    assert lines[-2:] == ["Release:", "  <none>"]


def test_in_flight_release_says_so() -> None:
    lines = fmt.status_detail(PAUSED, NOW).splitlines()
    assert "Candidate revision:  50005b8677" in lines
    assert "  Started:        " + ts(30) + " (30s ago)" in lines
    assert "  Result:         in flight" in lines


# ----------------------------------------------------------------------------- history


def test_history_rows() -> None:
    assert fmt.history_table(HEALTHY["status"]["history"]).splitlines() == [
        "REVISION     IMAGE                      COLOR   RESULT     REASON     STARTED                COMPLETED              SWITCH",
        "7c9f0e1a2b   registry.example/shop:v2   green   Promoted   Promoted   2026-11-26T14:50:00Z   2026-11-26T14:50:05Z   0.412s",
        "e6587b9010   registry.example/shop:v1   blue    Promoted   Promoted   2026-11-26T14:00:00Z   2026-11-26T14:00:01Z   0.104s",
    ]


def test_history_row_of_a_failed_release() -> None:
    entry = {
        "revision": "9a47cacf19",
        "color": "green",
        "result": "RolledBack",
        "reason": "ProgressDeadlineExceeded",
        "startedAt": "2026-11-26T14:59:00Z",
        "completedAt": "2026-11-26T15:09:00.5+00:00",
    }
    row = fmt.history_table([entry]).splitlines()[1].split()
    assert row == [
        "9a47cacf19",
        "<none>",
        "green",
        "RolledBack",
        "ProgressDeadlineExceeded",
        "2026-11-26T14:59:00Z",
        "2026-11-26T15:09:00Z",
        "<none>",
    ]


# ----------------------------------------------------------------------------- timeline


def test_timeline_offsets_of_a_promoted_release() -> None:
    entries = timeline.timeline_entries(RELEASE_V2)
    assert [(fmt.offset(e.offset_seconds), e.what) for e in entries] == [
        ("+0.000s", "startedAt"),
        ("+1.250s", "candidateReadyAt"),
        ("+5.000s", "promotionRequestedAt"),
        ("+5.100s", "switchedAt"),
        ("+5.512s", "endpointsConvergedAt"),
        ("+5.600s", "completedAt"),
    ]
    assert timeline.timeline_text(RELEASE_V2, entries).splitlines() == [
        "Revision:       7c9f0e1a2b",
        "Image:          registry.example/shop:v2",
        "Colour:         blue -> green",
        "Result:         Promoted",
        "Reason:         Promoted",
        "Switch latency: 0.412s",
        "Duration:       5.600s",
        "",
        "OFFSET    TIME                          WHAT                   DETAIL",
        "+0.000s   2026-11-26T14:50:00.000000Z   startedAt",
        "+1.250s   2026-11-26T14:50:01.250000Z   candidateReadyAt",
        "+5.000s   2026-11-26T14:50:05.000000Z   promotionRequestedAt",
        "+5.100s   2026-11-26T14:50:05.100000Z   switchedAt",
        "+5.512s   2026-11-26T14:50:05.512000Z   endpointsConvergedAt",
        "+5.600s   2026-11-26T14:50:05.600000Z   completedAt",
    ]


def test_timeline_of_a_rollback_keeps_time_order_and_message() -> None:
    release = DEGRADED["status"]["release"]
    entries = timeline.timeline_entries(release)
    assert [(fmt.offset(e.offset_seconds), e.what) for e in entries] == [
        ("+0.000s", "startedAt"),
        ("+2.000s", "switchedAt"),
        ("+3.250s", "rollbackStartedAt"),
        ("+3.300s", "switchedBackAt"),
        ("+3.750s", "completedAt"),
    ]
    text = timeline.timeline_text(release, entries)
    assert "Result:         RolledBack\nReason:         Aborted\n" in text
    assert "Message:        the release was aborted by a request" in text


def test_timeline_merges_events_in_time_order() -> None:
    events: list[dict[str, Any]] = [
        {  # the operator's own Event: eventTime with microseconds
            "reason": "Switched",
            "type": "Normal",
            "note": "active Service shop now selects green",
            "eventTime": "2026-11-26T14:50:05.110000Z",
            "metadata": {"name": "shop.1"},
        },
        {  # a core/v1 Event (kopf's): whole seconds only, a series counted
            "reason": "Logging",
            "type": "Warning",
            "note": "transient error",
            "eventTime": None,
            "deprecatedLastTimestamp": "2026-11-26T14:50:03Z",
            "series": {"count": 3, "lastObservedTime": "2026-11-26T14:50:03.500000Z"},
            "metadata": {"name": "shop.2"},
        },
        {  # in the second the release started: kept (core Events are truncated)
            "reason": "ReleaseStarted",
            "type": "Normal",
            "note": "deploying",
            "deprecatedLastTimestamp": "2026-11-26T14:49:59.500000Z",
            "metadata": {"name": "shop.3"},
        },
        {  # an earlier release: left out
            "reason": "Promoted",
            "type": "Normal",
            "note": "old",
            "eventTime": "2026-11-26T14:00:01.900000Z",
            "metadata": {"name": "shop.4"},
        },
    ]
    entries = timeline.timeline_entries(RELEASE_V2, events)
    assert [(fmt.offset(e.offset_seconds), e.what, e.detail) for e in entries] == [
        ("-0.500s", "event/ReleaseStarted", "deploying"),
        ("+0.000s", "startedAt", ""),
        ("+1.250s", "candidateReadyAt", ""),
        ("+3.500s", "event/Logging", "Warning: transient error (x3)"),
        ("+5.000s", "promotionRequestedAt", ""),
        ("+5.100s", "switchedAt", ""),
        ("+5.110s", "event/Switched", "active Service shop now selects green"),
        ("+5.512s", "endpointsConvergedAt", ""),
        ("+5.600s", "completedAt", ""),
    ]
    line = next(
        ln for ln in timeline.timeline_text(RELEASE_V2, entries).splitlines() if "Switched" in ln
    )
    assert line == (
        "+5.110s   2026-11-26T14:50:05.110000Z   event/Switched         "
        "active Service shop now selects green"
    )


def test_timeline_of_a_release_in_flight() -> None:
    release = PAUSED["status"]["release"]
    entries = timeline.timeline_entries(release)
    assert [(fmt.offset(e.offset_seconds), e.what) for e in entries] == [
        ("+0.000s", "startedAt"),
        ("+1.000s", "candidateReadyAt"),
    ]
    text = timeline.timeline_text(release, entries)
    assert "Result:         in flight\n" in text
    assert "Switch latency: <none>\n" in text


def test_timeline_data_is_json_ready() -> None:
    entries = timeline.timeline_entries(RELEASE_V2)
    data = json.loads(fmt.dump(timeline.timeline_data(RELEASE_V2, entries), "json"))
    assert data["release"]["revision"] == "7c9f0e1a2b"
    assert data["timeline"][3] == {
        "time": "2026-11-26T14:50:05.100000Z",
        "offsetSeconds": 5.1,
        "what": "switchedAt",
        "detail": "",
    }
    assert timeline.timeline_data(None, []) == {"release": None, "timeline": []}
    assert timeline.timeline_entries({"revision": "x"}) == []


@pytest.mark.parametrize(
    ("delta", "expected"),
    [(0, "+0.000s"), (0.4124, "+0.412s"), (12.3456, "+12.346s"), (-0.5, "-0.500s")],
)
def test_offset(delta: float, expected: str) -> None:
    assert fmt.offset(delta) == expected


# ----------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("request_", "phase", "allowed"),
    [
        ("promote", "Analyzing", True),
        ("promote", "Paused", True),
        ("promote", "Healthy", False),
        ("promote", "Observing", False),
        ("promote", "Pending", False),
        ("abort", "Deploying", True),
        ("abort", "Analyzing", True),
        ("abort", "Paused", True),
        ("abort", "Observing", True),
        ("abort", "RollingBack", False),
        ("abort", "Healthy", False),
        ("abort", "Degraded", False),
        ("retry", "Degraded", True),
        ("retry", "Healthy", False),
        ("retry", "Paused", False),
    ],
)
def test_request_refusal(request_: str, phase: str, allowed: bool) -> None:
    refusal = requests_text.request_refusal(request_, "shop", phase)
    assert (refusal is None) is allowed


def test_request_refusal_message() -> None:
    assert requests_text.request_refusal("promote", "shop", "Healthy") == (
        'cannot promote bluegreenapp "shop" in phase Healthy: '
        "promote applies only in Analyzing or Paused (--force sends it anyway)"
    )
    assert requests_text.request_refusal("abort", "shop", "Degraded") == (
        'cannot abort bluegreenapp "shop" in phase Degraded: '
        "abort applies only in Deploying, Analyzing, Paused or Observing (--force sends it anyway)"
    )
    assert fmt.phase_of(NEW) == "Pending"


PAUSED_ST: dict[str, Any] = {"phase": "Paused", "release": {"startedAt": "t1"}}
PROMOTING: dict[str, Any] = {
    "phase": "Paused",
    "release": {"startedAt": "t1", "promotionRequestedAt": "t2"},
}


@pytest.mark.parametrize(
    ("request_", "before", "after", "settled"),
    [
        # The operator has not written anything yet: nothing to report.
        ("promote", PAUSED_ST, PAUSED_ST, False),
        # Promotion requested, candidate scaling up: still Paused, not at rest.
        ("promote", PAUSED_ST, PROMOTING, False),
        ("promote", PAUSED_ST, {**PROMOTING, "phase": "Observing"}, False),
        ("promote", PAUSED_ST, {**PROMOTING, "phase": "Healthy"}, True),
        ("promote", PAUSED_ST, {**PROMOTING, "phase": "Degraded"}, True),
        # Sent with --force in Healthy: Healthy alone does not show the operator acted.
        ("promote", {"phase": "Healthy"}, {"phase": "Healthy"}, False),
        ("abort", PAUSED_ST, {"phase": "RollingBack", "release": {"startedAt": "t1"}}, False),
        ("abort", PAUSED_ST, {"phase": "Degraded", "release": {"rollbackStartedAt": "t3"}}, True),
        (
            "retry",
            {"phase": "Degraded", "release": {"startedAt": "t1"}},
            {"phase": "Degraded", "release": {"startedAt": "t1"}},
            False,
        ),
        (
            "retry",
            {"phase": "Degraded"},
            {"phase": "Deploying", "release": {"startedAt": "t4"}},
            False,
        ),
        ("retry", {"phase": "Degraded"}, {"phase": "Paused", "release": {"startedAt": "t4"}}, True),
        (
            "retry",
            {"phase": "Degraded", "release": {"startedAt": "t1"}},
            {"phase": "Degraded", "release": {"startedAt": "t4"}},
            True,
        ),
    ],
)
def test_request_settled(
    request_: str, before: dict[str, Any], after: dict[str, Any], settled: bool
) -> None:
    assert requests_text.request_settled(request_, before, after) is settled


@pytest.mark.parametrize(
    ("request_", "phase", "expected"),
    [
        ("promote", "Healthy", True),
        ("promote", "Degraded", False),
        ("abort", "Degraded", True),
        ("abort", "Healthy", False),
        ("retry", "Healthy", True),
        ("retry", "Paused", True),
        ("retry", "Degraded", False),
    ],
)
def test_request_expected(request_: str, phase: str, expected: bool) -> None:
    assert requests_text.request_expected(request_, phase) is expected


def test_request_result_text() -> None:
    assert requests_text.request_result_text("promote", HEALTHY, "done") == (
        "bluegreenapp.bluegreen.dev/shop promote: done, phase Healthy "
        "(active green, stable 7c9f0e1a2b)"
    )
    assert requests_text.request_result_text("promote", PAUSED, "timed out") == (
        "bluegreenapp.bluegreen.dev/cart-with-a-long-name promote: timed out, phase Paused "
        "(active blue, stable e6587b9010, candidate 50005b8677)"
    )
    assert (
        requests_text.request_sent_text("abort", "shop")
        == "bluegreenapp.bluegreen.dev/shop abort requested"
    )


# ----------------------------------------------------------------------------- raw output


def test_dump_json_and_yaml_round_trip() -> None:
    body = {**HEALTHY, "metadata": {**HEALTHY["metadata"], "managedFields": [{"manager": "x"}]}}
    clean = fmt.without_managed_fields(body)
    assert "managedFields" not in clean["metadata"]
    assert "managedFields" in body["metadata"]  # the input is not changed
    assert json.loads(fmt.dump(clean, "json")) == clean
    assert yaml.safe_load(fmt.dump(clean, "yaml")) == clean
    assert fmt.dump([], "yaml") == "[]"
