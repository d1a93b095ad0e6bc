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

`PrometheusServer.discovering` finds the pods by itself instead, as in a cluster: Kubernetes
service discovery with the cluster's kubeconfig, relabelled the way the operator's
ServiceMonitor has the Prometheus Operator relabel them (see `kubernetes_config`). Debian's
package has no Kubernetes discovery (removed there for its dependencies), so this one is
upstream Prometheus built from its Go module with only that discovery compiled in
(`build_kubernetes_prometheus`, once, into .cache/bin/; about 7 CPU-minutes):

    build_kubernetes_prometheus()               # outside a network namespace: it downloads
    prom = PrometheusServer.discovering(kubeconfig, ["shop-ns"], static_targets=[op])
    prom.start()                                # waits for the static targets only
    active_targets(prom.url)                    # the pods found so far, with their labels
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from tests.support.cluster import REPO
from tests.support.demo_app import http_request
from tests.support.process import LOOPBACK, BackgroundProcess, free_port, on_a_free_port
from tests.support.tls import ServerCert

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
UPSTREAM_VERSION = "3.16.0"
"""Upstream Prometheus with Kubernetes discovery; its Go module is tagged v0.<3 digits>."""
UPSTREAM_MODULE = "github.com/prometheus/prometheus"
UPSTREAM_MODULE_VERSION = "v0.316.0"
UPSTREAM_TAGS = "remove_all_sd,enable_kubernetes_sd"
"""Prometheus's build tags: no service discovery but Kubernetes (and file, http, static)."""
JOB = "bluegreen-apps"
STATIC_JOB = "static"
"""The job of the targets `kubernetes_config` scrapes at fixed addresses (the operator)."""


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


def kubernetes_prometheus() -> Path:
    """Where `build_kubernetes_prometheus` puts its binary."""
    cache = Path(os.environ.get("BLUEGREEN_CACHE", REPO / ".cache"))
    return cache / "bin" / f"prometheus-v{UPSTREAM_VERSION}" / "prometheus"


def _built_right(binary: Path) -> bool:
    if not binary.is_file():
        return False
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return f"version {UPSTREAM_VERSION} " in out and "enable_kubernetes_sd" in out


def build_kubernetes_prometheus() -> Path:
    """Upstream Prometheus with Kubernetes service discovery, built by `go install` from the
    module proxy unless already there; the path of the binary. Needs the network."""
    binary = kubernetes_prometheus()
    if _built_right(binary):
        return binary
    print(
        f"building Prometheus {UPSTREAM_VERSION} with Kubernetes discovery into {binary.parent} "
        "(once; about 7 CPU-minutes)",
        flush=True,
    )
    binary.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="prometheus-build-", dir=binary.parent.parent))
    staging.chmod(0o755)
    version = "github.com/prometheus/common/version"
    env = {
        **os.environ,
        "GOWORK": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "",
        "GOBIN": str(staging),
    }
    try:
        subprocess.run(
            [
                "go",
                "install",
                f"-tags={UPSTREAM_TAGS}",
                f"-ldflags=-s -w -X {version}.Version={UPSTREAM_VERSION} "
                f"-X {version}.Revision={UPSTREAM_MODULE_VERSION}",
                f"{UPSTREAM_MODULE}/cmd/prometheus@{UPSTREAM_MODULE_VERSION}",
            ],
            cwd=staging,
            env=env,
            check=True,
        )
        if binary.parent.exists():
            shutil.rmtree(binary.parent)
        staging.rename(binary.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _built_right(binary):
        raise RuntimeError(f"{binary} is not Prometheus {UPSTREAM_VERSION} with Kubernetes SD")
    return binary


def _meta_name(name: str) -> str:
    """A Kubernetes label's name as part of a service-discovery meta label."""
    return "".join(c if c.isalnum() else "_" for c in name)


def kubernetes_config(
    kubeconfig: Path | str,
    namespaces: Sequence[str],
    scrape_interval: str = "1s",
    *,
    static_targets: Sequence[tuple[str, Mapping[str, str]]] = (),
) -> dict[str, object]:
    """A prometheus.yml that finds the apps' pods itself, as a Prometheus Operator does for
    the operator's ServiceMonitor: the endpoints of every Service labelled
    `bluegreen.dev/role: metrics` (an app's `<name>-metrics`, over both colours, and its
    `<name>-legacy` while the app still has a Deployment of an earlier operator version) in
    `namespaces`, port `http`, read through `kubeconfig`. As the ServiceMonitor says, the
    target's labels win over the app's own (honor_labels: false), a pod that `<name>-legacy`
    selects although it carries `bluegreen.dev/app` is scraped through `<name>-metrics`
    only, `color` and `revision` come from the pod's labels and `app` is the app's name;
    `namespace`, `pod` and `service` are added as the Prometheus Operator adds them.
    `static_targets` (address, labels) are scraped as well, in the job `static`: the
    operator's own metrics, say."""
    meta = "__meta_kubernetes_"
    relabel = [
        {
            "source_labels": [f"{meta}service_label_{_meta_name('bluegreen.dev/role')}"],
            "regex": "metrics",
            "action": "keep",
        },
        {"source_labels": [f"{meta}endpoint_port_name"], "regex": "http", "action": "keep"},
        {
            "source_labels": [
                f"{meta}service_name",
                f"{meta}pod_labelpresent_{_meta_name('bluegreen.dev/app')}",
            ],
            "regex": ".+-legacy;true",
            "action": "drop",
        },
        {"source_labels": [f"{meta}namespace"], "target_label": "namespace"},
        {"source_labels": [f"{meta}service_name"], "target_label": "service"},
        {"source_labels": [f"{meta}pod_name"], "target_label": "pod"},
        {
            "source_labels": [f"{meta}service_label_{_meta_name('bluegreen.dev/app')}"],
            "target_label": "app",
        },
        {
            "source_labels": [f"{meta}pod_label_{_meta_name('bluegreen.dev/color')}"],
            "target_label": "color",
        },
        {
            "source_labels": [f"{meta}pod_label_{_meta_name('bluegreen.dev/revision')}"],
            "target_label": "revision",
        },
    ]
    jobs: list[dict[str, object]] = [
        {
            "job_name": JOB,
            "honor_labels": False,
            "kubernetes_sd_configs": [
                {
                    "role": "endpoints",
                    "kubeconfig_file": str(kubeconfig),
                    "namespaces": {"names": list(namespaces)},
                }
            ],
            "relabel_configs": relabel,
        }
    ]
    if static_targets:
        jobs.append(
            {
                "job_name": STATIC_JOB,
                "static_configs": [
                    {"targets": [address], "labels": dict(labels)}
                    for address, labels in static_targets
                ],
            }
        )
    config = prometheus_config([], scrape_interval)
    config["scrape_configs"] = jobs
    return config


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


def query(url: str, promql: str, context: ssl.SSLContext | None = None) -> dict[str, object]:
    """The `data` of an instant query (for the tests' own checks, not the code under test)."""
    response = http_request(
        "GET", f"{url}/api/v1/query?{urlencode({'query': promql})}", context=context
    )
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


def active_targets(
    url: str, job: str | None = JOB, context: ssl.SSLContext | None = None
) -> list[dict[str, Any]]:
    """The targets Prometheus scrapes now (of `job`; None: of every job), as
    /api/v1/targets gives them: `labels`, `health`, `scrapeUrl`, `lastScrape`..."""
    response = http_request("GET", url + "/api/v1/targets?state=active", context=context)
    targets: list[dict[str, Any]] = json.loads(response.body)["data"]["activeTargets"]
    return [t for t in targets if job is None or t["labels"].get("job") == job]


def _wait_targets_up(
    url: str,
    expected: int,
    timeout: float,
    process: BackgroundProcess,
    *,
    among: Sequence[str] | None = None,
    context: ssl.SSLContext | None = None,
) -> None:
    """Wait until exactly `expected` targets are active and all up; with `among` (addresses),
    until those are up, whatever else service discovery found."""
    deadline = time.monotonic() + timeout
    targets: list[dict[str, Any]] = []
    while True:
        targets = active_targets(url, job=None, context=context)
        if among is not None:
            up = {t["labels"].get("instance") for t in targets if t["health"] == "up"}
            if up.issuperset(among):
                return
        elif len(targets) == expected and all(t["health"] == "up" for t in targets):
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
        tls: ServerCert | None = None,
    ) -> None:
        """`config`: a whole prometheus.yml to use instead of the one built from `targets`
        (several jobs, rule files); `targets` are then every target it scrapes, to wait for.
        `tls`: serve the web API over HTTPS with this certificate (Prometheus's web config,
        `tls_server_config`); `url` is then https://127.0.0.1:<port> and `context` trusts
        the certificate's CA."""
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.config = self.workdir / "prometheus.yml"
        if config is None:
            config = prometheus_config(targets, scrape_interval)
        self.config.write_text(yaml.safe_dump(dict(config)))
        self.targets = targets
        self.discovers = False
        """True when service discovery finds targets besides `targets` (see `discovering`)."""
        self.binary = PROMETHEUS
        self.extra_args: list[str] = []
        self.scheme = "http"
        self.context: ssl.SSLContext | None = None
        if tls is not None:
            web_config = self.workdir / "web.yml"
            web_config.write_text(
                yaml.safe_dump(
                    {"tls_server_config": {"cert_file": str(tls.cert), "key_file": str(tls.key)}}
                )
            )
            self.extra_args.append(f"--web.config.file={web_config}")
            self.scheme = "https"
            self.context = ssl.create_default_context(cafile=str(tls.ca))
        self.port = free_port()
        self.url = f"{self.scheme}://{LOOPBACK}:{self.port}"
        self.process = BackgroundProcess("Prometheus", self.workdir / "prometheus.log")

    @classmethod
    def discovering(
        cls,
        kubeconfig: Path | str,
        namespaces: Sequence[str],
        scrape_interval: str = "1s",
        *,
        static_targets: Sequence[tuple[str, Mapping[str, str]]] = (),
        discovery_reload_interval: str = "5s",
    ) -> PrometheusServer:
        """A Prometheus that finds the apps' pods in `namespaces` itself (`kubernetes_config`);
        `start` waits for the `static_targets` to be up, not for pods. It runs the binary of
        `build_kubernetes_prometheus`, which must have been built.

        `discovery_reload_interval`: how often at most the scrape manager applies what
        discovery found (Prometheus's `--scrape.discovery-reload-interval`, 5s by default):
        a new pod is scraped at most that long after it appears."""
        binary = kubernetes_prometheus()
        if not binary.is_file():
            raise RuntimeError(
                f"no {binary}: Kubernetes discovery needs upstream Prometheus; "
                "build_kubernetes_prometheus() builds it (`make demo` does)"
            )
        server = cls(
            [(address, dict(labels)) for address, labels in static_targets],
            scrape_interval,
            config=kubernetes_config(
                kubeconfig, namespaces, scrape_interval, static_targets=static_targets
            ),
        )
        server.discovers = True
        server.binary = str(binary)
        server.extra_args = [f"--scrape.discovery-reload-interval={discovery_reload_interval}"]
        return server

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self, timeout: float = 30.0) -> None:
        """Start Prometheus and wait until it is ready and every target is up. The first
        start takes another port if the one chosen was taken meanwhile; a start after a
        stop keeps the address."""
        if self.process.popen is None:
            self.port = on_a_free_port(lambda port: self._start(port, timeout), first=self.port)
            self.url = f"{self.scheme}://{LOOPBACK}:{self.port}"
        else:
            self._start(self.port, timeout)
        among = [address for address, _ in self.targets] if self.discovers else None
        _wait_targets_up(
            self.url, len(self.targets), timeout, self.process, among=among, context=self.context
        )

    def _start(self, port: int, timeout: float) -> None:
        self.process.start(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
                *self.extra_args,
            ],
            cwd=self.workdir,
        )
        url = f"{self.scheme}://{LOOPBACK}:{port}"
        self.process.wait_ready(
            lambda: (
                http_request("GET", url + "/-/ready", timeout=1.0, context=self.context).status
                == 200
            ),
            timeout,
        )

    def stop(self) -> None:
        self.process.stop()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
