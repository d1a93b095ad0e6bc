"""`kubectl bluegreen watch NAME`: one line per change of the app's status, driven by a
Kubernetes watch on the app (no polling), for at most --timeout; with --until-settled it
exits once the app is at rest."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bluegreen.api import Phase
from bluegreen.api.text import printable
from bluegreen.core.naming import ANNOTATION_REQUEST
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl.cluster import EXIT_NOT_FOUND, EXIT_OK, EXIT_TIMEOUT, Cluster
from bluegreen.release.requests import RESTING_PHASES

HEADERS = ("TIME", "PHASE", "ACTIVE", "STABLE", "CANDIDATE", "READY", "MESSAGE")


def settled(app: Mapping[str, Any]) -> bool:
    """At rest: the operator has seen the latest spec, no request is pending, and the phase
    is one where nothing happens until the spec changes or a person asks."""
    meta = fmt.as_dict(app.get("metadata"))
    st = fmt.status_of(app)
    if ANNOTATION_REQUEST in fmt.as_dict(meta.get("annotations")):
        return False
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    phase = str(st.get("phase") or "")
    if phase not in {p.value for p in RESTING_PHASES}:
        return False
    release = fmt.as_dict(st.get("release"))
    return not (phase == Phase.PAUSED.value and release.get("promotionRequestedAt"))


def row(app: Mapping[str, Any]) -> tuple[str, ...]:
    """What a line shows, without its time: a new line only when one of these changes."""
    st = fmt.status_of(app)
    return (
        fmt.phase_of(app),
        str(st.get("activeColor") or fmt.NONE),
        str(st.get("stableRevision") or fmt.NONE),
        str(st.get("candidateRevision") or fmt.NONE),
        fmt.ready(app),
        fmt.summary_message(app),
    )


WIDTHS = (8, 11, 6, 10, 10, 6)


def line(cells: tuple[str, ...]) -> str:
    """TIME PHASE ACTIVE STABLE CANDIDATE READY MESSAGE, in fixed columns."""
    cells = tuple(printable(c) for c in cells)  # no control character, no line break
    head = "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=False))
    return f"{head}  {cells[-1]}".rstrip()


def cmd_watch(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    app = cluster.get_app(namespace, args.name)
    as_json = args.output in ("json", "yaml")
    last: tuple[str, ...] | None = None

    def show(obj: Mapping[str, Any]) -> None:
        nonlocal last
        values = row(obj)
        if values == last:
            return
        last = values
        if as_json:
            record = {"time": datetime.now(UTC).isoformat(), "status": fmt.status_of(obj)}
            print(json.dumps(record, sort_keys=True), flush=True)  # JSON escapes controls
        else:
            print(fmt.terminal(line((f"{datetime.now(UTC):%H:%M:%S}", *values))), flush=True)

    if not as_json:
        print(line(HEADERS), flush=True)
    show(app)
    if args.until_settled and settled(app):
        return EXIT_OK
    version = str(app["metadata"]["resourceVersion"])
    while (remaining := deadline - time.monotonic()) > 0:
        for kind, obj in cluster.watch_app(namespace, args.name, version, remaining):
            if kind == "ERROR":  # the version is too old (410 Gone): start again from now
                fresh = cluster.get_app(namespace, args.name)
                version = str(fresh["metadata"]["resourceVersion"])
                show(fresh)
                break
            if kind == "DELETED":
                print(fmt.terminal(f'{fmt.KIND_TEXT} "{args.name}" was deleted'), flush=True)
                return EXIT_NOT_FOUND
            version = str(obj["metadata"].get("resourceVersion") or version)
            show(obj)
            if args.until_settled and settled(obj):
                return EXIT_OK
            if time.monotonic() >= deadline:
                break
    if args.until_settled:
        print(f"error: the app did not come to rest within {args.timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_OK
