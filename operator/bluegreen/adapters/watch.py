"""List-then-watch, one stream per kind, into the ObjectCache (an informer, in short).

Each `Watcher` is a thread: it lists its kind (paged, with its label selector), hands the
list to the cache, then watches from the list's resourceVersion with bookmarks, and goes
on from the last resourceVersion it saw when the server ends the stream. When the server
says that version is gone (410), it lists again; the cache reports what changed in between
as if it had been events. An optional kind whose API is not served (a CRD not installed) is
empty and is asked for again every `rediscover_seconds`; so is a kind the operator may
not list when its `Kind` says so (the analysis templates: RBAC that predates them).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from urllib.parse import urlencode

from kubernetes import client
from urllib3.exceptions import HTTPError

from bluegreen.adapters.cache import Kind, ObjectCache

log = logging.getLogger(__name__)

WATCH_SECONDS = 300
"""How long the server keeps one watch open before the watcher opens the next."""
PAGE = 500
MAX_RETRY_SECONDS = 5.0
"""A failed watch tries again after 1, 2, 4, then every 5 s: one request per kind, and the
apps see the API server within 5 s of its return."""


class _GoneError(Exception):
    """The resourceVersion to watch from is too old: list again."""


class _NotServedError(Exception):
    """The kind's API is not served (404 on the list)."""


@dataclass(eq=False)
class Watcher:
    api: client.ApiClient
    kind: Kind
    cache: ObjectCache
    _: KW_ONLY
    namespace: str | None = None
    on_request: Callable[[], None] | None = None
    rediscover_seconds: float = 30.0
    on_recovered: Callable[[], None] | None = None
    """Called when a list succeeds after a failure: the API server answers again."""
    lists: int = field(default=0, init=False)
    watches: int = field(default=0, init=False)
    _told_forbidden: bool = field(default=False, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        name = f"watch-{self.kind.plural}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        delay = 1.0
        failed = False
        while not self._stop.is_set():
            try:
                version = self._list()
                delay = 1.0
                if failed and self.on_recovered is not None:
                    self.on_recovered()
                failed = False
                while not self._stop.is_set():
                    version = self._watch(version)
            except _GoneError:
                continue
            except _NotServedError:
                self.cache.not_served(self.kind.name, self.namespace or "")
                self._stop.wait(self.rediscover_seconds)
            except Exception as err:  # noqa: BLE001 - a watch must outlive any failure
                log.warning("watching %s failed, again in %.0fs: %s", self.kind.plural, delay, err)
                failed = True
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    # ------------------------------------------------------------------ HTTP

    def _open(self, query: dict[str, str], read_timeout: float) -> Any:
        params = {**query}
        if self.kind.selector:
            params["labelSelector"] = self.kind.selector
        path = f"{self.kind.path(self.namespace)}?{urlencode(params)}"
        method, url, headers, body, _ = self.api.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        if self.on_request is not None:
            self.on_request()
        try:
            return self.api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=(10, read_timeout)
            )
        except client.ApiException as err:
            if err.status == 404 and self.kind.optional:
                raise _NotServedError from err
            if err.status == 403 and self.kind.forbidden_is_absent:
                self._forbidden()
                raise _NotServedError from err
            raise

    def _forbidden(self) -> None:
        """Said once per watcher (it asks again every `rediscover_seconds`)."""
        if not self._told_forbidden:
            self._told_forbidden = True
            log.warning(
                "listing %s is forbidden (HTTP 403): taken as absent until the operator's "
                "role allows list and watch",
                self.kind.plural,
            )

    def _list(self) -> str:
        items: list[dict[str, Any]] = []
        query = {"limit": str(PAGE)}
        while True:
            resp = self._open(query, read_timeout=60)
            if resp.status == 404 and self.kind.optional:
                raise _NotServedError
            if resp.status == 403 and self.kind.forbidden_is_absent:
                self._forbidden()
                raise _NotServedError
            document = json.loads(resp.read())
            if resp.status != 200:
                raise RuntimeError(f"listing {self.kind.plural}: HTTP {resp.status}: {document}")
            items.extend(document.get("items") or [])
            meta = document.get("metadata") or {}
            if not meta.get("continue"):
                break
            query = {"limit": str(PAGE), "continue": meta["continue"]}
        self.cache.replace_all(self.kind.name, items, self.namespace or "")
        self.lists += 1
        return str(meta.get("resourceVersion") or "")

    def _watch(self, version: str) -> str:
        query = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        resp = self._open(query, read_timeout=WATCH_SECONDS + 30)
        if resp.status == 410:
            raise _GoneError
        if resp.status != 200:
            raise RuntimeError(f"watching {self.kind.plural}: HTTP {resp.status}")
        self.watches += 1
        try:
            for event in _events(resp.response):
                version = self._handle(event, version)
                if self._stop.is_set():
                    break
        except HTTPError as err:
            log.info("watch of %s ended: %s", self.kind.plural, err)
        finally:
            resp.response.release_conn()
        return version

    def _handle(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _GoneError
            raise RuntimeError(f"watch of {self.kind.plural}: {obj.get('message', obj)}")
        seen = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind in ("ADDED", "MODIFIED"):
            self.cache.upsert(self.kind.name, obj)
        elif kind == "DELETED":
            self.cache.remove(self.kind.name, obj)
        return seen


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON documents of a watch stream, one per line."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)
