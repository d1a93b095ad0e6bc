#!/usr/bin/env python3
"""`make demo`: a release and a rollback on the local control plane, through a real proxy.

Everything runs inside a private network namespace (tools/netns.py), where pod IPs are real
local addresses:

1. the local control plane with its data path: Traefik in front, and pods that run the
   demo app as real processes on their pod IPs (tools/podrunner.py); the real operator;
   a real Prometheus that finds the app's pods itself (Kubernetes service discovery,
   relabelled as the operator's ServiceMonitor says) and scrapes the operator too;
2. a BlueGreenApp at v1 behind an Ingress, with error-rate analysis before and after the
   switch, and a second Ingress on its preview Service, so that the candidate gets a
   little traffic of its own to be judged on before the switch;
3. a bounded request loop through Traefik (the app's host, and a small share on the
   preview host) from v1 to the end;
4. release v2: analysed, switched, verified, promoted; its timeline;
5. release v3, which answers half of its requests with errors once it takes traffic
   (faults switched on in its pods): the post-promotion analysis catches it and the
   operator rolls back by itself; the timeline with the error rate that triggered it;
6. the loop's totals by colour, version and status code, and how long each switch took
   to move the traffic, as the loop saw it;
7. the request rate per colour from Prometheus over the demo's own time span, with every
   switch marked, to .cache/demo/switch.png;
8. clean up: the app, the namespace, the processes and the control plane.

Run from outside the namespace (`make demo`, or `python3 tools/demo.py`), it enters one
first; its state lives in .cache/demo/. It always uses its own local control plane: a
KUBECONFIG in the environment is left alone.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402
from tests.support.apps import Apps, install_crd  # noqa: E402
from tests.support.cluster import cluster_session  # noqa: E402
from tests.support.datapath import NO_RETRIES, DataPath, data_path_app, load_data_path  # noqa: E402
from tests.support.demo_app import http_request  # noqa: E402
from tests.support.operator import ANALYSIS_POLICY, OperatorProcess, for_operator  # noqa: E402
from tests.support.prometheus import (  # noqa: E402
    UPSTREAM_VERSION,
    PrometheusServer,
    active_targets,
    build_kubernetes_prometheus,
    wait_for_scrape_after,
)
from tests.support.proxytraffic import (  # noqa: E402
    Answer,
    ProxyTraffic,
    check_target,
    settled_on,
    wait_until_served,
)
from tests.support.waiting import wait_for  # noqa: E402
from tests.support.watchers import SelectorRecorder  # noqa: E402
from tools import datapath  # noqa: E402

OUT = REPO / ".cache" / "demo"
STATE = OUT / "cluster"
"""The demo's own control plane state, apart from the tests' and `make cluster`'s."""
NAMESPACE = "bluegreen-demo"
APP = "shop"
HOST = "shop.example.com"
PREVIEW_HOST = "shop-preview.example.com"
RATE = 25.0
"""Requests per second to the app's host, one at a time: answers come back in order."""
PREVIEW_RATE = 8.0
"""Requests per second to the preview host: what the candidate is judged on."""
MAX_SECONDS = 240.0
"""The loops stop by themselves after this long, whatever happens to the demo."""
DISCOVERY_RELOAD = "1s"
"""Prometheus applies what discovery found this often at most (5s by default): the demo
runs on a 1 s scrape interval, so new pods are scraped within a second or two."""
RATE_WINDOW = "4s"
"""The graph's rate() window: four scrape intervals, so a switch shows in seconds."""
GRAPH_MARGIN_SECONDS = 5
"""The graph starts this long before the loop did."""
BIN = Path(sys.executable).parent
PLUGIN = str(BIN / "kubectl-bluegreen")
KUBECTL = str(BIN / "kubectl")

SEL = 'namespace="{{namespace}}",app="{{name}}",color="{{color}}",route="/"'
ERROR_RATE = (
    f'sum(rate(http_requests_total{{{SEL},status=~"5.."}}[4s]))'
    f" / sum(rate(http_requests_total{{{SEL}}}[4s]))"
)
REQUESTS = f"sum(increase(http_requests_total{{{SEL}}}[4s]))"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def run(kubeconfig: Path, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run(list(args), env=env, check=False)


# --------------------------------------------------------------------------- the app


def demo_app(data_path: DataPath, prometheus: str) -> dict[str, Any]:
    body = data_path_app(APP, data_path, HOST, version="v1", scaleDownDelaySeconds=5)
    check = {
        "name": "error-rate",
        "query": ERROR_RATE,
        "thresholdRange": {"max": 0.05},
        "interval": "1s",
        "failureLimit": 1,
        "minRequestsQuery": REQUESTS,
        "minRequests": 8,
    }
    body["spec"]["analysis"] = {
        "prometheus": {"address": prometheus},
        # The preview Service moves to the candidate as its analysis starts: the first
        # measurements of the window see too few of its requests (inconclusive).
        "prePromotion": [{**check, "count": 5, "failureLimit": 2}],
        "postPromotion": [{**check, "count": 8}],
    }
    return body


def preview_ingress(data_path: DataPath) -> dict[str, Any]:
    """The preview Service (the candidate while it is judged, else the active colour) on a
    host of its own."""
    backend = {"service": {"name": f"{APP}-preview", "port": {"name": "http"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": f"{APP}-preview", "annotations": dict(NO_RETRIES)},
        "spec": {
            "ingressClassName": data_path.ingress_class,
            "rules": [
                {
                    "host": PREVIEW_HOST,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def pod_addresses(core: client.CoreV1Api, namespace: str, color: str, revision: str) -> list[str]:
    """host:port of the running pods of one colour and revision."""
    selector = (
        f"bluegreen.dev/app={APP},bluegreen.dev/color={color},bluegreen.dev/revision={revision}"
    )
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    out = []
    for pod in pods:
        if pod.metadata.deletion_timestamp is None and pod.status.pod_ip:
            port = pod.spec.containers[0].ports[0].container_port
            out.append(f"{pod.status.pod_ip}:{port}")
    return sorted(out)


def inject_errors(address: str, ratio: float) -> None:
    url = f"http://{address}/admin/faults"
    check_target(url)
    answer = http_request("POST", url, body=json.dumps({"errorRatio": ratio}).encode())
    if answer.status != 200:
        raise RuntimeError(f"POST {url} answered {answer.status}: {answer.text}")


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Switch:
    what: str
    at: float  # Unix time a watch saw the active Service's selector change
    old: str
    new: str


class FlipClock(SelectorRecorder):
    """The colour the active Service selects, with the time a watch saw each change."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        super().__init__(api_client, namespace, APP)
        self.flips: list[tuple[float, str]] = []

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        before = len(self.selectors)
        super()._record(kind, obj)
        if len(self.selectors) > before:
            self.flips.append((time.time(), self.selectors[-1].get("bluegreen.dev/color", "")))

    def switches(self, names: Sequence[str]) -> list[Switch]:
        """The flips after the first selector, named in order."""
        pairs = zip(self.flips, self.flips[1:], strict=False)
        return [
            Switch(name, at, old, new)
            for name, ((_, old), (at, new)) in zip(names, pairs, strict=False)
        ]


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3]


def answered_by_app(answer: Answer) -> bool:
    """The demo app puts its colour on every answer; anything else is the proxy's or none."""
    return answer.status != 0 and bool(answer.color)


def print_totals(loops: Sequence[tuple[str, ProxyTraffic]]) -> tuple[int, int, int]:
    """The loops' answers by colour, version and status; (requests, failed, app errors)."""
    total = failed = app_errors = 0
    for label, loop in loops:
        answers = loop.answers()
        note(f"{label}: {len(answers)} requests")
        counts = Counter(
            (a.color, a.version, a.status) if answered_by_app(a) else ("", "", a.status)
            for a in answers
        )
        for (color, version, status), n in sorted(counts.items(), key=lambda kv: kv[0]):
            if color:
                what = f"{color:<5} {version:<3} HTTP {status}"
                why = "   the app's own errors" if status >= 500 else ""
            else:
                what = "no app answered" + (f" (HTTP {status})" if status else " (no answer)")
                why = ""
            note(f"    {what:<24} {n:>6}{why}")
        total += len(answers)
        failed += sum(1 for a in answers if not answered_by_app(a))
        app_errors += sum(1 for a in answers if answered_by_app(a) and a.status >= 500)
    return total, failed, app_errors


def print_switch_times(answers: list[Answer], switches: Sequence[Switch]) -> None:
    """For each flip, from the loop's answers: when the new colour first answered and
    when the old colour last answered, counted from the moment a watch saw the flip."""
    for i, switch in enumerate(switches):
        end = switches[i + 1].at if i + 1 < len(switches) else math.inf
        window = [a for a in answers if switch.at <= a.sent_at < end]
        first_new = next((a.sent_at for a in window if a.color == switch.new), None)
        last_old = max((a.sent_at for a in window if a.color == switch.old), default=None)
        if first_new is None:
            note(f"{switch.what} at {clock(switch.at)}: no {switch.new} answer seen")
            continue
        late = [a for a in window if a.color == switch.old and a.sent_at > first_new]
        last = (
            f"last {switch.old} answer +{ms(last_old - switch.at)}"
            if last_old is not None
            else f"no {switch.old} answer after it"
        )
        mix = (
            f"{len(late)} {switch.old} answers after the first {switch.new} one"
            if late
            else f"no {switch.old} answer after the first {switch.new} one"
        )
        note(
            f"{switch.what}, selector flip seen at {clock(switch.at)}: first {switch.new} "
            f"answer +{ms(first_new - switch.at)}, {last}; {mix}"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --------------------------------------------------------------------------- the story


def main() -> int:
    inside = os.environ.get("BLUEGREEN_DATA_PATH") == "1" and datapath.pod_network_is_local()
    if not inside:
        return enter_namespace()
    started = time.monotonic()
    say("local control plane with its data path: Traefik, and pods that run as processes")
    with cluster_session() as cluster:
        kc = cluster.kubeconfig
        data_path = load_data_path(cluster)
        api_client = config.new_client_from_config(config_file=str(kc))
        core = client.CoreV1Api(api_client)
        install_crd(api_client)
        namespace = f"{NAMESPACE}-{uuid.uuid4().hex[:5]}"
        core.create_namespace({"metadata": {"name": namespace}})
        op = OperatorProcess(
            kc, OUT, namespaces=namespace, env=ANALYSIS_POLICY, log_name="operator.log"
        )
        op.log_path.unlink(missing_ok=True)
        op.start()
        note(f"up in {time.monotonic() - started:.1f}s; Traefik at {data_path.ingress}")
        note(f"operator running in namespace {namespace} (log: {op.log_path})")
        try:
            with prometheus(kc, namespace, op) as prom:
                tell(Story(api_client, kc, namespace, data_path, prom))
        finally:
            op.stop()
            core.delete_namespace(namespace)
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0


def enter_namespace() -> int:
    """Run this script again inside a private network namespace of its own (after what
    needs the network: a Prometheus with Kubernetes discovery)."""
    build_kubernetes_prometheus()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["BLUEGREEN_CLUSTER_DIR"] = str(STATE)
    command = [sys.executable, str(REPO / "tools" / "netns.py"), "run", "--"]
    return subprocess.run([*command, sys.executable, __file__], env=env, check=False).returncode


@contextmanager
def prometheus(kc: Path, namespace: str, op: OperatorProcess) -> Iterator[PrometheusServer]:
    operator_target = (f"127.0.0.1:{op.metrics_port}", {})
    prom = PrometheusServer.discovering(
        kc,
        [namespace],
        static_targets=[operator_target],
        discovery_reload_interval=DISCOVERY_RELOAD,
    )
    try:
        prom.start()
        note(
            f"Prometheus {UPSTREAM_VERSION} at {prom.url}: finds the app's pods itself "
            "(kubernetes_sd_configs, role endpoints, namespace "
            f"{namespace}) and scrapes the operator"
        )
        yield prom
    finally:
        prom.close()


@dataclass
class Story:
    api_client: client.ApiClient
    kc: Path
    namespace: str
    data_path: DataPath
    prom: PrometheusServer

    @property
    def apps(self) -> Apps:
        return Apps(self.api_client, self.namespace)

    def plugin(self, *args: str) -> None:
        run(self.kc, PLUGIN, "-n", self.namespace, *args)

    def kubectl(self, *args: str) -> None:
        run(self.kc, KUBECTL, "-n", self.namespace, *args)


def tell(story: Story) -> None:
    apps = story.apps
    say("apply shop v1 (2 replicas, error-rate analysis before and after the switch)")
    apps.create(demo_app(story.data_path, for_operator(story.prom.url)))
    client.NetworkingV1Api(story.api_client).create_namespaced_ingress(
        story.namespace, preview_ingress(story.data_path)
    )
    for host in (HOST, PREVIEW_HOST):
        wait_until_served(story.data_path.ingress, host, lambda status, color: status == 200)
    clock = FlipClock(story.api_client, story.namespace)
    clock.start()
    loops = Loops(story.data_path)
    try:
        apps.wait_phase(APP, "Healthy", timeout=90)
        story.kubectl("get", "bga,svc,ingress,pods", "-o", "wide")
        show_discovered(story.prom)
        time.sleep(3)
        release_v2(story)
        time.sleep(4)
        release_v3(story, loops)
        draw_graph(story, loops)
    finally:
        loops.stop()
        clock.stop()
    names = ["v2: switch to green", "v3: switch to blue", "v3: back to green"]
    report(loops, clock.switches(names))
    apps.delete(APP)  # while the operator still runs


class Loops:
    """The bounded request loops through Traefik, from the moment v1 answers."""

    def __init__(self, data_path: DataPath) -> None:
        requests = int(RATE * MAX_SECONDS)
        self.main = ProxyTraffic(data_path.ingress, HOST, requests=requests, rate=RATE)
        self.preview = ProxyTraffic(
            data_path.ingress,
            PREVIEW_HOST,
            requests=int(PREVIEW_RATE * MAX_SECONDS),
            rate=PREVIEW_RATE,
        )
        self.started = time.time()
        self.main.start()
        self.preview.start()
        note(
            f"request loop through Traefik ({data_path.ingress}) from now on: "
            f"{RATE:.0f}/s to {HOST}, {PREVIEW_RATE:.0f}/s to {PREVIEW_HOST}"
        )

    def stop(self) -> None:
        self.main.stop()
        self.preview.stop()


def show_discovered(prom: PrometheusServer) -> None:
    wait_for("Prometheus to scrape the pods", lambda: len(active_targets(prom.url)) >= 2)
    for target in active_targets(prom.url):
        labels = target["labels"]
        note(
            f"Prometheus found {labels['instance']}: pod {labels.get('pod')}, "
            f"app={labels.get('app')} color={labels.get('color')} ({target['health']})"
        )


def release_v2(story: Story) -> None:
    say("release v2: deploy to green, analyse (preview traffic), switch, verify, observe")
    story.apps.set_image(APP, story.data_path.image("v2"))
    story.apps.wait_release_done(APP, 2, timeout=120)
    story.plugin("timeline", APP)


def release_v3(story: Story, loops: Loops) -> None:
    say("release v3: half of its requests fail once it takes traffic")
    apps = story.apps
    apps.set_image(APP, story.data_path.image("v3"))

    def taking_traffic() -> dict[str, Any] | None:
        status = apps.status(APP)
        return status if status.get("phase") in ("Observing", "Degraded") else None

    status = wait_for("v3 to take traffic", taking_traffic, timeout=120, interval=0.05)
    core = client.CoreV1Api(story.api_client)
    for address in pod_addresses(core, story.namespace, "blue", status["release"]["revision"]):
        inject_errors(address, 0.5)
        note(f'v3 is Observing: POST http://{address}/admin/faults {{"errorRatio": 0.5}}')
    apps.wait_phase(APP, "Degraded", timeout=120)
    wait_for("traffic back on green for 3s", lambda: settled_on(loops.main, "green", 3.0))
    story.plugin("timeline", APP, "--events")
    story.plugin("history", APP)
    story.kubectl("get", "bga", "-o", "wide")


def report(loops: Loops, switches: Sequence[Switch]) -> None:
    say("what the request loop got, by colour, version and status code")
    total, failed, app_errors = print_totals(
        [
            (f"{HOST} ({RATE:.0f}/s)", loops.main),
            (f"{PREVIEW_HOST} ({PREVIEW_RATE:.0f}/s)", loops.preview),
        ]
    )
    own = f"; {app_errors} answered HTTP 500 by v3 itself (its injected faults)"
    note(f"{total} requests, {failed} failed" + (own if app_errors else ""))
    say(f"switch to traffic moved, as the loop to {HOST} saw it ({RATE:.0f} requests/s)")
    print_switch_times(loops.main.answers(), switches)


def draw_graph(story: Story, loops: Loops) -> None:
    """The graph of the loop's whole span, drawn while it still runs (so that it does not
    end on the loop stopping), once Prometheus holds everything up to now."""
    wait_for_scrape_after(story.prom.url, time.time())
    since = math.ceil(time.time() - loops.started + GRAPH_MARGIN_SECONDS)
    png = OUT / "switch.png"
    say(f"request rate per colour over the demo's last {since}s, from Prometheus")
    story.plugin(
        "graph",
        APP,
        "--prometheus",
        story.prom.url,
        "--since",
        f"{since}s",
        "--rate-window",
        RATE_WINDOW,
        "-o",
        str(png),
    )


if __name__ == "__main__":
    raise SystemExit(main())
