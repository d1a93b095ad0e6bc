"""Traffic that follows the Services, the way kube-proxy would route it.

kwok runs no containers, so the app's pods in the cluster serve nothing. The demo app runs
as one real process per colour on loopback instead, and this router plays the Service: it
reads the active and preview Services' selectors from the API server and sends each request
to the process of the colour the Service selects at that moment. Bounded in time and count;
loopback only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from kubernetes import client

from tests.support.demo_app import http_request


class Router:
    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        app: str,
        urls: dict[str, str],
        *,
        rate: float = 20.0,
        preview_rate: float = 10.0,
        max_seconds: float = 120.0,
    ) -> None:
        for url in urls.values():
            assert url.startswith(("http://127.0.0.1:", "http://localhost:")), url
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.app = app
        self.urls = urls
        self.rate = rate
        self.preview_rate = preview_rate
        self.max_seconds = max_seconds
        self.statuses: Counter[tuple[str, str, int]] = Counter()  # (service, colour, status)
        self.selected: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _color(self, service: str) -> str | None:
        try:
            svc = self.core.read_namespaced_service(service, self.namespace)
        except client.ApiException:
            return None
        return (svc.spec.selector or {}).get("bluegreen.dev/color")

    def _follow(self) -> None:
        """Keep the Services' current colours, as an endpoints watcher in a proxy would."""
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.selected[self.app] = self._color(self.app)
            self.selected[f"{self.app}-preview"] = self._color(f"{self.app}-preview")
            self._stop.wait(0.05)

    def _loop(self, service: str, rate: float, only_when_differs: bool) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            color = self.selected.get(service)
            if color is not None and only_when_differs and color == self.selected.get(self.app):
                color = None
            if color is not None:
                try:
                    status = http_request("GET", self.urls[color] + "/", timeout=2.0).status
                except OSError:
                    status = 0
                self.statuses[(service, color, status)] += 1
            self._stop.wait(max(0.0, 1.0 / rate - (time.monotonic() - started)))

    def start(self) -> Router:
        self.selected[self.app] = self._color(self.app)
        self._threads = [
            threading.Thread(target=self._follow, daemon=True),
            threading.Thread(target=self._loop, args=(self.app, self.rate, False), daemon=True),
            threading.Thread(
                target=self._loop,
                args=(f"{self.app}-preview", self.preview_rate, True),
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def errors_on(self, service: str) -> int:
        return sum(
            n for (svc, _, status), n in self.statuses.items() if svc == service and status >= 500
        )
