"""`kubectl bluegreen`: the kubectl plugin for BlueGreenApps.

    kubectl bluegreen status [NAME] [-A] [-o table|wide|json|yaml]
    kubectl bluegreen promote|abort|retry NAME [--force] [--wait [--timeout 2m]]
    kubectl bluegreen history NAME
    kubectl bluegreen timeline NAME [--events]
    kubectl bluegreen graph NAME [--since 15m] [-o switch.png] [--prometheus URL]
    kubectl bluegreen undo NAME [--to-revision REV] [--wait]
    kubectl bluegreen set image NAME CONTAINER=IMAGE... [--wait]
    kubectl bluegreen restart NAME [--wait]
    kubectl bluegreen watch NAME [--until-settled] [--timeout 10m]
    kubectl bluegreen lint FILE...

promote, abort and retry set the annotation bluegreen.dev/request on the app (a JSON
merge patch of metadata.annotations); the operator carries the request out and removes
the annotation. undo and set image replace the app's spec.template (the operator releases
it), restart patches the active colour's Deployment (bluegreen.kubectl.verbs); nothing here
writes the app's status. watch follows the app through a Kubernetes watch; lint needs no
cluster (bluegreen.kubectl.lint). graph reads the app's status and asks Prometheus for its
request rate per colour (bluegreen.kubectl.graph draws it).

Exit codes:
    0  done (with --wait: the app came to rest in the phase the request leads to)
    1  the app does not exist, or the API server refused the call (graph: or Prometheus
       refused the query, or matplotlib is missing; set image: no such container;
       lint: a manifest is invalid or cannot be read)
    2  usage error (argparse; graph: no Prometheus address)
    3  the request makes no sense in the app's phase (--force sends it anyway); undo: no
       colour keeps that revision, or the app runs it already
    4  --wait timed out
    5  the cluster cannot be reached (no usable kubeconfig, or the API server does not answer;
       graph: or Prometheus does not answer)
    6  --wait: the operator ignored the request, or the app came to rest in another phase
       than the request leads to (for example a promoted release that rolled back)

This module does the API calls; what it prints comes from the pure bluegreen.kubectl.format.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from bluegreen.api import durations
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import graph, lint
from bluegreen.kubectl.cluster import CliError, connect
from bluegreen.kubectl.commands import COMMANDS, PROMETHEUS_ENV, prometheus_address

EPILOG = """\
requests:
  promote   Analyzing or Paused: switch traffic to the candidate
  abort     Deploying, Analyzing, Paused or Observing: roll the release back
  retry     Degraded: release the revision that failed again
  They set the annotation bluegreen.dev/request on the app; the operator acts and removes it.
  undo and set image change the app's template: the operator releases it.

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

    def command(
        name: str,
        help_: str,
        outputs: Sequence[str] = ("table", "json", "yaml"),
        *,
        one_app: bool = True,
    ) -> Any:
        """A verb with -o; `one_app`: it takes the app's NAME."""
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[connection(False)],
        )
        p.add_argument("-o", "--output", choices=outputs, default="table", help="output format")
        if one_app:
            p.add_argument("name", metavar="NAME")
        return p

    status = command(
        "status",
        "show the apps of a namespace, or one app in detail",
        ("table", "wide", "json", "yaml"),
        one_app=False,
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
    add_change_commands(sub, command, connection)
    command("history", "the app's last releases (status.history)")
    timeline = command("timeline", "the current or last release, moment by moment")
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
    p.add_argument(
        "--requests-metric",
        default=graph.REQUESTS_METRIC,
        metavar="NAME",
        help=f"the app's request counter (default {graph.REQUESTS_METRIC}); the operator's "
        "ServiceMonitor adds its namespace, app and color labels",
    )
    p.add_argument(
        "--route",
        default=graph.PAGE_ROUTE,
        metavar="REGEX",
        help=f"the route label of the requests drawn (default {graph.PAGE_ROUTE}: page "
        "requests; '' for a counter without a route label)",
    )
    return parser


def _waiting(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--wait", action="store_true", help=f"wait until {what}")
    p.add_argument(
        "--timeout",
        type=_duration,
        default=120.0,
        metavar="DURATION",
        help="how long --wait (watch: the watch) lasts (default 2m)",
    )


def add_change_commands(sub: Any, command: Any, connection: Any) -> None:
    """undo, set image, restart, watch and lint."""
    p = command("undo", "release an earlier revision again (by default the previous one)")
    p.add_argument(
        "--to-revision",
        metavar="REVISION",
        help="the revision to go back to (as `history` lists it, or a unique prefix)",
    )
    p.add_argument("--force", action="store_true", help="even a revision that failed before")
    _waiting(p, "the release came to rest; print its phase")
    set_ = sub.add_parser(
        "set",
        help="change the app's template",
        description="change the app's template",
        parents=[connection(False)],
    )
    set_sub = set_.add_subparsers(dest="set_command", required=True, metavar="WHAT")
    p = set_sub.add_parser(
        "image",
        help="set container images: CONTAINER=IMAGE ... ('*=IMAGE': every container)",
        description="set container images of the app's template; the operator releases it",
        parents=[connection(False)],
    )
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    p.add_argument("name", metavar="NAME")
    p.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE")
    _waiting(p, "the release came to rest; print its phase")
    p = command("restart", "replace the active colour's pods one at a time, without a release")
    p.add_argument("--force", action="store_true", help="even while a release is in flight")
    _waiting(p, "every pod of the active colour is new and ready")
    p = command("watch", "print the app's status at every change (a watch, not polling)")
    p.add_argument(
        "--until-settled",
        action="store_true",
        help="exit once the app is at rest (Healthy, Degraded, or Paused for a person)",
    )
    p.add_argument(
        "--timeout",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="how long to watch (default 10m)",
    )
    p = sub.add_parser(
        "lint",
        help="validate BlueGreenApp manifests offline, with the API server's rules and messages",
        description="validate BlueGreenApp manifests offline (FILE, or - for stdin)",
        parents=[connection(False)],
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)  # exits with EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "status" and args.all_namespaces and args.name is not None:
        _usage_error(parser, "a NAME cannot be combined with --all-namespaces")
    if args.command == "lint":
        return lint.cmd_lint(args)
    try:
        cluster, default_namespace = connect(args.kubeconfig, args.context, args.request_timeout)
        namespace = args.namespace or default_namespace
        return COMMANDS[args.command](cluster, namespace, args)
    except CliError as err:
        print(fmt.terminal(err.message), file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PROMETHEUS_ENV", "build_parser", "main", "prometheus_address"]
