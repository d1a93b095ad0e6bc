"""The kubelet stand-in of the data path: how it reads a pod (tools/podrunner.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tools.podrunner import (
    Addresses,
    Probe,
    RefusedError,
    pod_run,
    pre_stop_seconds,
    probe_of,
)

POD: dict[str, Any] = {
    "metadata": {
        "uid": "u1",
        "namespace": "shop",
        "name": "shop-blue-1",
        "labels": {"kwok.bluegreen.dev/run": "demo"},
    },
    "spec": {
        "nodeName": "kwok-node-0",
        "terminationGracePeriodSeconds": 7,
        "containers": [
            {
                "name": "app",
                "image": "registry.example/shop:v1",
                "ports": [{"name": "http", "containerPort": 3000}],
                "env": [
                    {"name": "APP_COLOR", "value": "blue"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}},
            }
        ],
    },
    "status": {"podIP": "10.244.0.7"},
}


def pod(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(POD)
    result["spec"]["containers"][0].update(changes)
    return result


def test_a_pod_runs_on_its_ip_and_first_port_with_its_env() -> None:
    run = pod_run(pod())
    assert (run.ip, run.port, run.program) == ("10.244.0.7", 3000, "demo")
    assert run.env == {
        "APP_COLOR": "blue",
        "POD": "shop-blue-1",
        "HOST": "10.244.0.7",
        "PORT": "3000",
    }
    assert run.probe == Probe("http", 3000, "/health")
    assert (run.pre_stop_seconds, run.grace_seconds) == (2.0, 7.0)


def test_the_grace_period_of_the_deletion_wins() -> None:
    deleted = pod()
    deleted["metadata"]["deletionGracePeriodSeconds"] = 1
    assert pod_run(deleted).grace_seconds == 1.0


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        (None, 0.0),
        ({"exec": {"command": ["sleep", "5"]}}, 5.0),
        ({"exec": {"command": ["/bin/sh", "-c", "sleep 3"]}}, 3.0),
        ({"sleep": {"seconds": 4}}, 4.0),
    ],
)
def test_pre_stop_sleeps(hook: dict[str, Any] | None, seconds: float) -> None:
    container = {"lifecycle": {"preStop": hook}} if hook else {}
    assert pre_stop_seconds(container) == seconds


def test_a_pre_stop_hook_that_is_not_a_sleep_is_refused() -> None:
    with pytest.raises(RefusedError, match="not a sleep"):
        pre_stop_seconds({"lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}})


def test_without_a_readiness_probe_the_port_must_accept_connections() -> None:
    assert probe_of({"ports": [{"containerPort": 8080}]}, 8080) == Probe("tcp", 8080)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ports": []}, "declares no port"),
        ({"readinessProbe": {"exec": {"command": ["true"]}}}, "httpGet and tcpSocket"),
        ({"readinessProbe": {"httpGet": {"port": "metrics"}}}, "not a port"),
        (
            {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            "only values and the fieldRefs",
        ),
    ],
)
def test_what_cannot_run_here_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RefusedError, match=message):
        pod_run(pod(**change))


def test_an_unknown_program_is_refused() -> None:
    other = pod()
    other["metadata"]["labels"]["kwok.bluegreen.dev/run"] = "nginx"
    with pytest.raises(RefusedError, match="runs only"):
        pod_run(other)


def test_two_pods_never_share_an_address() -> None:
    addresses = Addresses()
    first = pod_run(pod())
    second_pod = pod()
    second_pod["metadata"]["uid"] = "u2"
    second = pod_run(second_pod)
    addresses.claim(first)
    addresses.claim(first)  # the same pod again is fine
    with pytest.raises(RefusedError, match="already served by another running pod"):
        addresses.claim(second)
    addresses.release(first)
    addresses.claim(second)
