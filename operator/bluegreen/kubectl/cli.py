"""`kubectl bluegreen`: the kubectl plugin for BlueGreenApps.

    kubectl bluegreen status [NAME] [-A] [-o table|wide|json|yaml]
    kubectl bluegreen promote|abort|retry NAME [--force] [--wait [--timeout 2m]]
    kubectl bluegreen history NAME
    kubectl bluegreen timeline NAME [--events]
    kubectl bluegreen graph NAME [--since 15m] [-o switch.png] [--prometheus URL]

promote, abort and retry set the annotation bluegreen.dev/request on the app (a JSON
merge patch of metadata.annotations); the operator carries the request out and removes
the annotation. Nothing here writes the app's spec or status. graph reads the app's
status and asks Prometheus for its request rate per colour (bluegreen.kubectl.graph draws it).

Exit codes:
    0  done (with --wait: the app came to rest in the phase the request leads to)
    1  the app does not exist, or the API server refused the call (graph: or Prometheus
       refused the query, or matplotlib is missing)
    2  usage error (argparse; graph: no Prometheus address)
    3  the request makes no sense in the app's phase (--force sends it anyway)
    4  --wait timed out
    5  the cluster cannot be reached (no usable kubeconfig, or the API server does not answer;
       graph: or Prometheus does not answer)
    6  --wait: the operator ignored the request, or the app came to rest in another phase
       than the request leads to (for example a promoted release that rolled back)

This module does the API calls; what it prints comes from the pure bluegreen.kubectl.format.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bluegreen.api import GROUP, PLURAL, VERSION, durations
from bluegreen.core.naming import ANNOTATION_REQUEST
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import graph
from bluegreen.release.requests import RULES, Request

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TIMEOUT = 4
EXIT_UNREACHABLE = 5
EXIT_UNEXPECTED = 6

FIELD_MANAGER = "kubectl-bluegreen"
POLL_SECONDS = 0.5
IGNORED_REASONS = ("RequestIgnored", "RequestRejected")
PROMETHEUS_ENV = "BLUEGREEN_PROMETHEUS_URL"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

EPILOG = """\
requests:
  promote   Analyzing or Paused: switch traffic to the candidate
  abort     Deploying, Analyzing, Paused or Observing: roll the release back
  retry     Degraded: release the revision that failed again
  They set the annotation bluegreen.dev/request on the app; the operator acts and removes it.

exit codes:
  0  done (with --wait: the app came to rest in the phase the request leads to)
  1  the app does not exist, or the API server refused the call
  2  usage error
  3  the request makes no sense in the app's phase (--force sends it anyway)
  4  --wait timed out
  5  the cluster cannot be reached (no usable kubeconfig, or no answer);
     graph: Prometheus cannot be reached
  6  --wait: the operator ignored the request, or the app came to rest elsewhere
"""

T = TypeVar("T")


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ----------------------------------------------------------------------------- cluster


class Cluster:
    """The few API calls the plugin makes, with errors turned into CliError."""

    def __init__(self, api_client: client.ApiClient, request_timeout: float) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.host = str(api_client.configuration.host)
        self.timeout = request_timeout

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApiException as err:
            raise CliError(EXIT_NOT_FOUND, f"error: {what}: {_api_message(err)}") from err
        except (HTTPError, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise CliError(
                EXIT_UNREACHABLE,
                f"error: cannot reach the Kubernetes API server at {self.host}: {reason}",
            ) from err

    def get_app(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._call(
                f'reading {fmt.KIND_TEXT} "{name}"',
                lambda: _as_dict(
                    self.api.get_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
                    )
                ),
            )
        except CliError as err:
            cause = err.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise CliError(EXIT_NOT_FOUND, _not_found(cause, name, namespace)) from cause
            raise

    def list_apps(self, namespace: str | None) -> list[dict[str, Any]]:
        def call() -> Any:
            if namespace is None:
                return self.api.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, _request_timeout=self.timeout
                )
            return self.api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _request_timeout=self.timeout
            )

        body = _as_dict(self._call(f"listing {PLURAL}.{GROUP}", call))
        items = [_as_dict(i) for i in body.get("items") or []]
        return sorted(
            items,
            key=lambda a: (a["metadata"].get("namespace", ""), a["metadata"].get("name", "")),
        )

    def set_request(self, namespace: str, name: str, request: str) -> dict[str, Any]:
        patch = {"metadata": {"annotations": {ANNOTATION_REQUEST: request}}}
        try:
            return self._call(
                f'requesting {request} of {fmt.KIND_TEXT} "{name}"',
                lambda: _as_dict(
                    self.api.patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        name,
                        patch,
                        field_manager=FIELD_MANAGER,
                        _content_type="application/merge-patch+json",
                        _request_timeout=self.timeout,
                    )
                ),
            )
        except CliError as err:
            cause = err.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise CliError(EXIT_NOT_FOUND, _not_found(cause, name, namespace)) from cause
            raise

    def events(self, app: Mapping[str, Any], quiet: bool = False) -> list[dict[str, Any]]:
        """The events.k8s.io/v1 Events regarding this app (this uid), oldest first.

        Events are an extra: when they cannot be read (RBAC, say) a warning is printed, or
        nothing with `quiet`, and the command goes on without them."""
        try:
            return self._events(app)
        except CliError as err:
            if err.code != EXIT_NOT_FOUND:
                raise
            if not quiet:
                print(f"warning: {err.message.removeprefix('error: ')}", file=sys.stderr)
            return []

    def _events(self, app: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = app["metadata"]
        selector = f"regarding.name={meta['name']},regarding.kind={app.get('kind', 'BlueGreenApp')}"
        body = _as_dict(
            self._call(
                f'listing the events of {fmt.KIND_TEXT} "{meta["name"]}"',
                lambda: self.api.list_namespaced_custom_object(
                    "events.k8s.io",
                    "v1",
                    meta["namespace"],
                    "events",
                    field_selector=selector,
                    _request_timeout=self.timeout,
                ),
            )
        )
        uid = meta.get("uid")
        out = []
        for item in body.get("items") or []:
            ev = _as_dict(item)
            regarding = ev.get("regarding") or {}
            if uid and regarding.get("uid") and regarding.get("uid") != uid:
                continue  # an earlier app of the same name
            out.append(ev)
        return sorted(out, key=lambda e: fmt.event_time(e) or "")


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise CliError(EXIT_NOT_FOUND, f"error: unexpected answer from the API server: {value!r}")


def _api_message(err: ApiException) -> str:
    try:
        body = json.loads(err.body) if err.body else {}
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return f"{body['message']} (HTTP {err.status})"
    return f"HTTP {err.status} {err.reason or ''}".strip()


def _not_found(err: ApiException, name: str, namespace: str) -> str:
    """A missing app, or a cluster that does not serve BlueGreenApps at all."""
    try:
        body = json.loads(err.body) if err.body else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("reason") == "NotFound" and body.get("details"):
        return f'error: {fmt.KIND_TEXT} "{name}" not found in namespace "{namespace}"'
    return (
        f"error: the server does not serve {PLURAL}.{GROUP}/{VERSION} "
        "(is the BlueGreenApp CRD installed?)"
    )


# ----------------------------------------------------------------------------- config


def connect(
    kubeconfig: str | None, context: str | None, request_timeout: float
) -> tuple[Cluster, str]:
    """The API client and the default namespace, as kubectl finds them: --kubeconfig,
    else KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount."""
    cfg = client.Configuration()
    # One retry at most: a cluster that does not answer should fail fast, as kubectl does.
    cfg.retries = 1
    try:
        if kubeconfig and not Path(kubeconfig).expanduser().is_file():
            raise config.ConfigException(f"the kubeconfig {kubeconfig} does not exist")
        if (
            kubeconfig
            or os.environ.get("KUBECONFIG")
            or Path("~/.kube/config").expanduser().exists()
        ):
            contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            chosen = current
            if context is not None:
                chosen = next((c for c in contexts if c.get("name") == context), None)
                if chosen is None:
                    raise config.ConfigException(f'context "{context}" does not exist')
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            namespace = (
                SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
                if SERVICE_ACCOUNT_NAMESPACE.exists()
                else "default"
            )
        else:
            raise config.ConfigException(
                "no kubeconfig: use --kubeconfig, set KUBECONFIG, or write ~/.kube/config"
            )
    except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as err:
        raise CliError(EXIT_UNREACHABLE, f"error: no usable cluster configuration: {err}") from err
    return Cluster(client.ApiClient(cfg), request_timeout), str(namespace)


# ----------------------------------------------------------------------------- commands


def _print(text: str) -> None:
    if text:
        print(text)


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
        print(fmt.no_apps_text(scope), file=sys.stderr)
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
    refusal = fmt.request_refusal(request, args.name, phase_before)
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
            _print(fmt.request_sent_text(request, args.name))
        return EXIT_OK

    before = sent.get("status") or {}
    deadline = time.monotonic() + args.timeout
    outcome, code, note = "", EXIT_OK, ""
    while True:
        current = cluster.get_app(namespace, args.name)
        pending = ANNOTATION_REQUEST in (current["metadata"].get("annotations") or {})
        if not pending:
            status = current.get("status") or {}
            if fmt.request_settled(request, before, status):
                if fmt.request_expected(request, fmt.phase_of(current)):
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
        _print(fmt.request_result_text(request, current, outcome))
        if note:
            print(f"{'error' if code == EXIT_TIMEOUT else 'note'}: {note}", file=sys.stderr)
    return code


def cmd_history(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    history = list((app.get("status") or {}).get("history") or [])
    if args.output in ("json", "yaml"):
        _print(fmt.dump(history, args.output))
    elif not history:
        print(f'No releases in the history of {fmt.KIND_TEXT} "{args.name}".', file=sys.stderr)
    else:
        _print(fmt.history_table(history))
    return EXIT_OK


def cmd_timeline(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    release = (app.get("status") or {}).get("release") or None
    events = cluster.events(app) if args.events and release else []
    entries = fmt.timeline_entries(release, events) if release else []
    if args.output in ("json", "yaml"):
        _print(fmt.dump(fmt.timeline_data(release, entries), args.output))
    elif not release:
        print(f'{fmt.KIND_TEXT} "{args.name}" has not started a release yet.', file=sys.stderr)
    else:
        _print(fmt.timeline_text(release, entries))
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
    promql = graph.rate_query(namespace, args.name, durations.prometheus(args.rate_window))
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
        print(
            f"warning: Prometheus at {address} has no page requests of "
            f"{namespace}/{args.name} in the last {fmt.human_age(args.since)} ({promql})",
            file=sys.stderr,
        )
    colours = ", ".join(s.color or "?" for s in series) or "none"
    print(f"wrote {path}: colours {colours}; {len(marks)} release marks")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Cluster, str, argparse.Namespace], int]] = {
    "status": cmd_status,
    "promote": cmd_request,
    "abort": cmd_request,
    "retry": cmd_request,
    "history": cmd_history,
    "timeline": cmd_timeline,
    "graph": cmd_graph,
}


# ----------------------------------------------------------------------------- parser


def _duration(value: str) -> float:
    """A Go duration (90s, 2m, 1h30m), or a plain number of seconds as kubectl takes it;
    more than zero."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = durations.parse(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    # The connection options work before and after the command, as with kubectl; the
    # sub-parsers' copies default to SUPPRESS so they do not overwrite the main ones.
    def connection(defaults: bool) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(add_help=False)
        d: Any = None if defaults else argparse.SUPPRESS
        g = p.add_argument_group("cluster")
        g.add_argument("--kubeconfig", default=d, help="path to the kubeconfig file")
        g.add_argument("--context", default=d, help="the kubeconfig context to use")
        g.add_argument(
            "-n",
            "--namespace",
            default=d,
            help="namespace of the app (default: the context's namespace, else default)",
        )
        g.add_argument(
            "--request-timeout",
            type=_duration,
            default=10.0 if defaults else argparse.SUPPRESS,
            metavar="DURATION",
            help="timeout of each API call (default 10s)",
        )
        return p

    parser = argparse.ArgumentParser(
        prog="kubectl bluegreen",
        description="Inspect BlueGreenApps and ask the bluegreen operator to promote, "
        "abort or retry a release.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[connection(True)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, outputs: Sequence[str] = ("table", "json", "yaml")) -> Any:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[connection(False)],
        )
        p.add_argument("-o", "--output", choices=outputs, default="table", help="output format")
        return p

    status = command(
        "status",
        "show the apps of a namespace, or one app in detail",
        ("table", "wide", "json", "yaml"),
    )
    status.add_argument("name", nargs="?", metavar="NAME")
    status.add_argument(
        "-A", "--all-namespaces", action="store_true", help="the apps of every namespace"
    )
    for request, help_ in (
        ("promote", "switch traffic to the candidate (phase Analyzing or Paused)"),
        ("abort", "roll back the release in flight (Deploying, Analyzing, Paused, Observing)"),
        ("retry", "release a revision that failed before again (phase Degraded)"),
    ):
        p = command(request, help_)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--force", action="store_true", help="send the request whatever the phase")
        p.add_argument(
            "--wait",
            action="store_true",
            help="wait until the operator acted and the app came to rest; print its phase",
        )
        p.add_argument(
            "--timeout",
            type=_duration,
            default=120.0,
            metavar="DURATION",
            help="how long --wait waits (default 2m)",
        )
    history = command("history", "the app's last releases (status.history)")
    history.add_argument("name", metavar="NAME")
    timeline = command("timeline", "the current or last release, moment by moment")
    timeline.add_argument("name", metavar="NAME")
    timeline.add_argument(
        "--events", action="store_true", help="merge in the app's Kubernetes Events"
    )
    graph_help = "draw the app's page requests per second by colour, with its releases, as a PNG"
    p = sub.add_parser(
        "graph",
        help=graph_help,
        description=graph_help + ". The switch shows as a crossover: the old colour's "
        "line falls as the new colour's rises. Needs matplotlib.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[connection(False)],
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--since",
        type=_duration,
        default=900.0,
        metavar="DURATION",
        help="how far back the graph goes (default 15m)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="the PNG to write (default NAME-switch.png)"
    )
    p.add_argument(
        "--prometheus",
        metavar="URL",
        help=f"Prometheus to ask (default: ${PROMETHEUS_ENV}, else the app's "
        "spec.analysis.prometheus.address)",
    )
    p.add_argument(
        "--rate-window",
        type=_duration,
        default=60.0,
        metavar="DURATION",
        help="window of rate() (default 1m; at least 4 scrape intervals)",
    )
    p.add_argument(
        "--step",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="resolution of the graph (default: the range / 600, at least 1s)",
    )
    return parser


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)  # exits with EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "status" and args.all_namespaces and args.name is not None:
        _usage_error(parser, "a NAME cannot be combined with --all-namespaces")
    try:
        cluster, default_namespace = connect(args.kubeconfig, args.context, args.request_timeout)
        namespace = args.namespace or default_namespace
        return COMMANDS[args.command](cluster, namespace, args)
    except CliError as err:
        print(err.message, file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
