"""The commands of `kubectl bluegreen`: each reads the app through `Cluster`, prints what
`bluegreen.kubectl.format` renders, and returns an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bluegreen.api import durations
from bluegreen.core.naming import ANNOTATION_REQUEST
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import graph, live, timeline, verbs
from bluegreen.kubectl import requests as requests_text
from bluegreen.kubectl.cluster import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    EXIT_UNEXPECTED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    Cluster,
)
from bluegreen.release.requests import RULES, Request

POLL_SECONDS = 0.5
IGNORED_REASONS = ("RequestIgnored", "RequestRejected")
PROMETHEUS_ENV = "BLUEGREEN_PROMETHEUS_URL"


# ----------------------------------------------------------------------------- commands


def _print(text: str) -> None:
    """Standard output; nothing reaches the terminal unescaped (`format.terminal`)."""
    if text:
        print(fmt.terminal(text))


def _warn(text: str) -> None:
    """Standard error, the same way."""
    print(fmt.terminal(text), file=sys.stderr)


def _now() -> datetime:
    return datetime.now(UTC)


def cmd_status(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    if args.name is not None:
        app = cluster.get_app(namespace, args.name)
        if args.output in ("json", "yaml"):
            _print(fmt.dump(fmt.without_managed_fields(app), args.output))
        elif args.output == "wide":
            _print(fmt.status_table([app], _now(), wide=True))
        else:
            _print(fmt.status_detail(app, _now()))
        return EXIT_OK
    scope = None if args.all_namespaces else namespace
    apps = cluster.list_apps(scope)
    if args.output in ("json", "yaml"):
        items = [fmt.without_managed_fields(a) for a in apps]
        _print(fmt.dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
        return EXIT_OK
    if not apps:
        _warn(fmt.no_apps_text(scope))
        return EXIT_OK
    _print(
        fmt.status_table(
            apps, _now(), wide=args.output == "wide", all_namespaces=args.all_namespaces
        )
    )
    return EXIT_OK


def cmd_request(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    request: str = args.command
    app = cluster.get_app(namespace, args.name)
    phase_before = fmt.phase_of(app)
    refusal = requests_text.request_refusal(request, args.name, phase_before)
    if refusal is not None and not args.force:
        raise CliError(EXIT_REFUSED, f"error: {refusal}")
    seen = {e["metadata"]["name"] for e in cluster.events(app, quiet=True)} if args.wait else set()
    sent = cluster.set_request(namespace, args.name, request)
    result: dict[str, Any] = {
        "name": args.name,
        "namespace": namespace,
        "request": request,
        "phaseBefore": phase_before,
        "forced": refusal is not None,
    }
    if not args.wait:
        result["outcome"] = "Requested"
        if args.output in ("json", "yaml"):
            _print(fmt.dump(result, args.output))
        else:
            _print(requests_text.request_sent_text(request, args.name))
        return EXIT_OK

    before = sent.get("status") or {}
    deadline = time.monotonic() + args.timeout
    outcome, code, note = "", EXIT_OK, ""
    while True:
        current = cluster.get_app(namespace, args.name)
        pending = ANNOTATION_REQUEST in (current["metadata"].get("annotations") or {})
        if not pending:
            status = current.get("status") or {}
            if requests_text.request_settled(request, before, status):
                if requests_text.request_expected(request, fmt.phase_of(current)):
                    outcome, code = "done", EXIT_OK
                else:
                    outcome, code = "ended elsewhere", EXIT_UNEXPECTED
                break
            ignored = [
                e
                for e in cluster.events(current, quiet=True)
                if e.get("reason") in IGNORED_REASONS and e["metadata"]["name"] not in seen
            ]
            if ignored:
                outcome, code = "ignored by the operator", EXIT_UNEXPECTED
                note = str(ignored[-1].get("note") or "")
                break
        if time.monotonic() >= deadline:
            outcome, code = "timed out", EXIT_TIMEOUT
            note = (
                f"after {args.timeout:g}s the request is still on the app "
                "(is the operator running?)"
                if pending
                else f"the app did not come to rest within {args.timeout:g}s"
            )
            break
        time.sleep(POLL_SECONDS)

    result.update(
        {
            "outcome": {
                EXIT_OK: "Expected",
                EXIT_UNEXPECTED: "Unexpected",
                EXIT_TIMEOUT: "Timeout",
            }[code],
            "phase": fmt.phase_of(current),
            "expectedPhases": [p.value for p in RULES[Request(request)].leads_to],
            "note": note,
            "status": current.get("status") or {},
        }
    )
    if args.output in ("json", "yaml"):
        _print(fmt.dump(result, args.output))
    else:
        _print(requests_text.request_result_text(request, current, outcome))
        if note:
            _warn(f"{'error' if code == EXIT_TIMEOUT else 'note'}: {note}")
    return code


def cmd_history(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    history = list((app.get("status") or {}).get("history") or [])
    if args.output in ("json", "yaml"):
        _print(fmt.dump(history, args.output))
    elif not history:
        _warn(f'No releases in the history of {fmt.KIND_TEXT} "{args.name}".')
    else:
        _print(fmt.history_table(history))
    return EXIT_OK


def cmd_timeline(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    release = (app.get("status") or {}).get("release") or None
    events = cluster.events(app) if args.events and release else []
    entries = timeline.timeline_entries(release, events) if release else []
    if args.output in ("json", "yaml"):
        _print(fmt.dump(timeline.timeline_data(release, entries), args.output))
    elif not release:
        _warn(f'{fmt.KIND_TEXT} "{args.name}" has not started a release yet.')
    else:
        _print(timeline.timeline_text(release, entries))
    return EXIT_OK


def prometheus_address(app: Mapping[str, Any], flag: str | None) -> str | None:
    """--prometheus, else $BLUEGREEN_PROMETHEUS_URL, else the Prometheus of the app's analysis."""
    if flag:
        return flag
    if os.environ.get(PROMETHEUS_ENV):
        return os.environ[PROMETHEUS_ENV]
    analysis = (app.get("spec") or {}).get("analysis") or {}
    address = (analysis.get("prometheus") or {}).get("address")
    return str(address) if address else None


def cmd_graph(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    address = prometheus_address(app, args.prometheus)
    if address is None:
        raise CliError(
            EXIT_USAGE,
            f"error: no Prometheus to ask: give --prometheus URL, set {PROMETHEUS_ENV}, or "
            f'set spec.analysis.prometheus.address of {fmt.KIND_TEXT} "{args.name}"',
        )
    end = _now()
    start = end - timedelta(seconds=args.since)
    step = args.step or graph.auto_step(args.since)
    path = args.output or f"{args.name}-switch.png"
    try:
        promql = graph.rate_query(
            namespace,
            args.name,
            durations.prometheus(args.rate_window),
            metric=args.requests_metric,
            route=args.route,
        )
    except graph.GraphError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        series = graph.query_range(address, promql, start, end, step, timeout=args.request_timeout)
        active = graph.query_range(
            address,
            graph.active_color_query(namespace, args.name),
            start,
            end,
            step,
            timeout=args.request_timeout,
        )
        marks = graph.metric_switches(graph.markers(app.get("status") or {}, start, end), active)
        title = (
            f"{namespace}/{args.name}: page requests per second by colour, "
            f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"
        )
        graph.draw_png(series, marks, path, title, start=start, end=end)
    except graph.GraphError as err:
        code = EXIT_UNREACHABLE if err.unreachable else EXIT_NOT_FOUND
        raise CliError(code, f"error: {err.message}") from err
    except OSError as err:
        raise CliError(EXIT_NOT_FOUND, f"error: cannot write {path}: {err}") from err
    if not series:
        _warn(
            f"warning: Prometheus at {address} has no page requests of "
            f"{namespace}/{args.name} in the last {fmt.human_age(args.since)} ({promql})"
        )
    colours = ", ".join(s.color or "?" for s in series) or "none"
    _print(f"wrote {path}: colours {colours}; {len(marks)} release marks")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Cluster, str, argparse.Namespace], int]] = {
    "status": cmd_status,
    "promote": cmd_request,
    "abort": cmd_request,
    "retry": cmd_request,
    "history": cmd_history,
    "timeline": cmd_timeline,
    "graph": cmd_graph,
    "undo": verbs.cmd_undo,
    "set": verbs.cmd_set_image,
    "restart": verbs.cmd_restart,
    "watch": live.cmd_watch,
}
