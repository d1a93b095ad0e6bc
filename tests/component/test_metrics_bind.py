"""Where the operator's /metrics listens: BLUEGREEN_METRICS_BIND (the chart's
metrics.exposure), served by `telemetry.serve` as the operator starts it.

/metrics names every app the operator serves. With 127.0.0.1 nothing but the pod's own
loopback reaches it: a connection to another address of the same machine is refused.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import pytest
from pydantic import ValidationError

from bluegreen.runtime import telemetry
from bluegreen.runtime.settings import Settings
from tests.support.process import LOOPBACK, connects, free_port, other_address

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - the default: the metrics Service reaches it


@contextlib.contextmanager
def serving(bind: str) -> Iterator[tuple[WSGIServer, int]]:
    port = free_port()
    server = telemetry.serve(port, Settings(metrics_bind=bind).metrics_bind)
    try:
        yield server, port
    finally:
        server.shutdown()
        server.server_close()


def test_the_default_listens_on_every_address() -> None:
    assert Settings().metrics_bind == EVERY_ADDRESS
    with serving(EVERY_ADDRESS) as (server, port):
        assert server.server_address[:2] == (EVERY_ADDRESS, port)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as resp:
            assert b"bluegreen_kube_api_requests_total" in resp.read()
        other = other_address()
        if other is not None:
            assert connects(other, port), f"{other}:{port}"


def test_localhost_listens_on_loopback_only() -> None:
    with serving("127.0.0.1") as (server, port):
        assert server.server_address[:2] == ("127.0.0.1", port)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as resp:
            assert b"bluegreen_kube_api_requests_total" in resp.read()
        other = other_address()
        print(f"\nanother address of this machine: {other}")
        if other is not None:
            assert not connects(other, port), f"/metrics answered on {other}:{port}"


@pytest.mark.parametrize(("given", "bind"), [(" 127.0.0.1 ", "127.0.0.1"), ("::1", "::1")])
def test_bind_addresses_are_ip_addresses(given: str, bind: str) -> None:
    assert Settings(metrics_bind=given).metrics_bind == bind


@pytest.mark.parametrize("bad", ["localhost", "", "127.0.0.1:8080", "0.0.0.0/0"])
def test_anything_else_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValidationError, match="an IP address"):
        Settings(metrics_bind=bad)
