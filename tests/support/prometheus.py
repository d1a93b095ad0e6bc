"""Run a real Prometheus server (the Debian package's /usr/bin/prometheus) on a loopback port.

    targets = [("127.0.0.1:41234", {"namespace": "default", "app": "shop", "color": "green"})]
    with run_prometheus(targets) as url:        # url == "http://127.0.0.1:<port>"
        ...                                     # every target has been scraped at least once
        wait_for_scrape_after(url, time.time())

Each target gets its labels as target labels, the way the operator's ServiceMonitor labels
the pods it scrapes (`honor_labels` stays false: a label the app exports itself under the
same name, such as the demo app's `color`, is kept as `exported_color`). The TSDB lives in a
temporary directory that is removed afterwards.

Prometheus applies new targets at most every 5 s (its discovery manager's throttle, fixed in
2.42), so a start with targets takes about 6 s; without targets it is ready in well under 1 s.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlencode

import yaml

from tests.support.demo_app import http_request
from tests.support.process import LOOPBACK, BackgroundProcess, free_port, on_a_free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JOB = "bluegreen-apps"


def prometheus_config(
    targets: Sequence[tuple[str, Mapping[str, str]]], scrape_interval: str
) -> dict[str, object]:
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # must not exceed the interval
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": [address], "labels": dict(labels)} for address, labels in targets
                ],
            }
        ],
    }


@contextlib.contextmanager
def run_prometheus(
    targets: list[tuple[str, dict[str, str]]],
    scrape_interval: str = "1s",
    *,
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Start Prometheus scraping `targets` ("host:port", target labels), wait until it is
    ready and every target is up, yield its base URL, then stop it and delete its data."""
    for address, _ in targets:
        host = address.rsplit(":", 1)[0]
        if host not in (LOOPBACK, "localhost", "[::1]"):
            raise ValueError(f"targets must be on loopback, got {address}")
    server = PrometheusServer(targets, scrape_interval)
    try:
        server.start(startup_timeout)
        yield server.url
    finally:
        server.close()


def query(url: str, promql: str) -> dict[str, object]:
    """The `data` of an instant query (for the tests' own checks, not the code under test)."""
    response = http_request("GET", f"{url}/api/v1/query?{urlencode({'query': promql})}")
    document = json.loads(response.body)
    if document.get("status") != "success":
        raise RuntimeError(f"query {promql!r} failed: {response.text}")
    data: dict[str, object] = document["data"]
    return data


def last_scrapes(url: str) -> dict[str, float]:
    """The start time (Unix seconds) of the last ingested scrape of each target, by address."""
    data = query(url, f'timestamp(up{{job="{JOB}"}})')
    result = data["result"]
    assert isinstance(result, list)
    return {item["metric"]["instance"]: float(item["value"][1]) for item in result}


def wait_for_scrape_after(url: str, after: float, timeout: float = 15.0) -> None:
    """Wait until every target has been scraped by a scrape that STARTED after `after`
    (Unix time): everything the targets counted before `after` is then in Prometheus."""
    deadline = time.monotonic() + timeout
    while True:
        scrapes = last_scrapes(url)
        if scrapes and min(scrapes.values()) > after:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no scrape after {after} within {timeout} s: {scrapes}")
        time.sleep(0.1)


def _wait_targets_up(url: str, expected: int, timeout: float, process: BackgroundProcess) -> None:
    deadline = time.monotonic() + timeout
    targets: list[dict[str, object]] = []
    while True:
        response = http_request("GET", url + "/api/v1/targets?state=active")
        targets = json.loads(response.body)["data"]["activeTargets"]
        if len(targets) == expected and all(t["health"] == "up" for t in targets):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Prometheus targets not all up after {timeout} s: {targets}\n{process.tail()}"
            )
        time.sleep(0.1)


class PrometheusServer:
    """A Prometheus on a loopback port that a test can stop and start again (same address,
    same data), to play an outage in the middle of an analysis. `run_prometheus` is one
    for a `with` block."""

    def __init__(
        self,
        targets: list[tuple[str, dict[str, str]]],
        scrape_interval: str = "1s",
        *,
        config: Mapping[str, object] | None = None,
    ) -> None:
        """`config`: a whole prometheus.yml to use instead of the one built from `targets`
        (several jobs, rule files); `targets` are then every target it scrapes, to wait for."""
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.config = self.workdir / "prometheus.yml"
        if config is None:
            config = prometheus_config(targets, scrape_interval)
        self.config.write_text(yaml.safe_dump(dict(config)))
        self.targets = targets
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process = BackgroundProcess("Prometheus", self.workdir / "prometheus.log")

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self, timeout: float = 30.0) -> None:
        """Start Prometheus and wait until it is ready and every target is up. The first
        start takes another port if the one chosen was taken meanwhile; a start after a
        stop keeps the address."""
        if self.process.popen is None:
            self.port = on_a_free_port(lambda port: self._start(port, timeout), first=self.port)
            self.url = f"http://{LOOPBACK}:{self.port}"
        else:
            self._start(self.port, timeout)
        _wait_targets_up(self.url, len(self.targets), timeout, self.process)

    def _start(self, port: int, timeout: float) -> None:
        self.process.start(
            [
                PROMETHEUS,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            cwd=self.workdir,
        )
        url = f"http://{LOOPBACK}:{port}"
        self.process.wait_ready(
            lambda: http_request("GET", url + "/-/ready", timeout=1.0).status == 200, timeout
        )

    def stop(self) -> None:
        self.process.stop()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
