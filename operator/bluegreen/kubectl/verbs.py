"""`kubectl bluegreen undo`, `set image` and `restart`: the commands that change what runs.

undo and set image change the app's spec.template (a JSON patch that fails if the app
changed meanwhile); the operator releases the new template as it releases any other, so
traffic moves only through a release. restart changes no template of the app and starts no
release: it replaces the active colour's pods one at a time (see `templates.restart_patch`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bluegreen.api import Color, Phase
from bluegreen.core import naming
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import templates
from bluegreen.kubectl.cluster import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    CliError,
    Cluster,
)
from bluegreen.release.requests import RESTING_PHASES

POLL_SECONDS = 0.5


def _print(text: str) -> None:
    """Standard output, escaped for the terminal (`format.terminal`)."""
    if text:
        print(fmt.terminal(text), flush=True)


def _err(text: str) -> None:
    print(fmt.terminal(text), file=sys.stderr, flush=True)


def _report(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    if args.output in ("json", "yaml"):
        _print(fmt.dump(result, args.output))
    else:
        _print(text)


def _wait_release(
    cluster: Cluster, namespace: str, name: str, generation: int, timeout: float
) -> tuple[dict[str, Any], str | None]:
    """The app once the operator has seen `generation` and it came to rest, with its phase;
    phase None when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while True:
        app = cluster.get_app(namespace, name)
        phase = templates.release_outcome(generation, fmt.status_of(app))
        if phase is not None or time.monotonic() >= deadline:
            return app, phase
        time.sleep(POLL_SECONDS)


def _release_result(
    args: argparse.Namespace, result: dict[str, Any], app: Mapping[str, Any], phase: str | None
) -> int:
    """Print how the release of a new template ended; its exit code."""
    st = fmt.status_of(app)
    wanted = result.get("revision")
    if phase is None:
        code, outcome = EXIT_TIMEOUT, "timed out"
    elif phase == Phase.DEGRADED.value:
        code, outcome = EXIT_UNEXPECTED, "failed"
    elif wanted and phase == Phase.HEALTHY.value and st.get("stableRevision") != wanted:
        code, outcome = EXIT_UNEXPECTED, "ended elsewhere"
    else:
        code, outcome = EXIT_OK, "done" if phase == Phase.HEALTHY.value else "waiting"
    result.update({"outcome": outcome, "phase": fmt.phase_of(app), "status": st})
    line = (
        f"{fmt.RESOURCE}/{args.name} {args.command}: {outcome}, phase {fmt.phase_of(app)} "
        f"(active {st.get('activeColor') or fmt.NONE}, stable {st.get('stableRevision') or fmt.NONE})"
    )
    if st.get("message"):
        line += f": {st['message']}"
    _report(args, result, line)
    if phase is None:
        _err(f"error: the release did not come to rest within {args.timeout:g}s")
    return code


# ----------------------------------------------------------------------------- undo


def cmd_undo(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    st = fmt.status_of(app)
    kept: dict[str, templates.Kept] = {}
    running: list[str] = []
    for color in Color:
        dep = cluster.get_deployment(namespace, naming.deployment(args.name, color))
        if dep is None:
            continue
        rev = fmt.as_dict(fmt.as_dict(dep.get("metadata")).get("labels")).get(naming.LABEL_REVISION)
        if rev:
            running.append(str(rev))
        found = templates.kept_template(dep)
        if found is not None:
            kept[found.revision] = found
    known = [str(h.get("revision")) for h in st.get("history") or []] + running
    try:
        if args.to_revision:
            target = templates.match_revision(args.to_revision, known)
        else:
            found_previous = templates.previous_revision(st)
            if found_previous is None:
                raise templates.TemplateError(
                    f'{fmt.KIND_TEXT} "{args.name}" has no earlier promoted revision to undo to'
                )
            target = found_previous
    except templates.TemplateError as err:
        raise CliError(EXIT_REFUSED, f"error: {err}") from err
    spec = fmt.as_dict(app.get("spec"))
    template = fmt.as_dict(spec.get("template"))
    k = kept.get(target)
    same_template = k is not None and k.template == template
    current = templates.app_revision(spec)
    if target == current or (same_template and target == st.get("stableRevision")):
        raise CliError(EXIT_REFUSED, f"error: the app's template is revision {target} already")
    if same_template:
        raise CliError(
            EXIT_REFUSED,
            f"error: revision {target} has the app's template already and differs from it only "
            "in its tracked ConfigMaps or Secrets (spec.configTracking) or in "
            "strategy.antiAffinity: undo sets templates, not their content; put the ConfigMap "
            "or Secret (or the antiAffinity) back (the operator's copy of "
            f"revision {target} is named <name>-{target})",
        )
    if target in (st.get("failedRevisions") or []) and not args.force:
        raise CliError(
            EXIT_REFUSED,
            f"error: revision {target} failed before: the operator does not release it again "
            f"until `kubectl bluegreen retry {args.name}` (--force sets it anyway)",
        )
    if k is None:
        raise CliError(
            EXIT_REFUSED,
            f"error: no colour keeps the template of revision {target} any more (only the "
            "revisions the two colours' Deployments run can be undone to); apply it again "
            "from your manifests",
        )
    active = st.get("activeColor")
    how = (
        f"{k.color} still runs it warm: traffic flips back without new pods"
        if k.warm and k.color != active
        else f"{k.color} is scaled down: a release deploys it again"
    )
    meta = fmt.as_dict(app.get("metadata"))
    patched = cluster.set_template(namespace, args.name, str(meta["resourceVersion"]), k.template)
    result: dict[str, Any] = {
        "name": args.name,
        "namespace": namespace,
        "request": "undo",
        "revision": target,
        "color": k.color,
        "warm": k.warm and k.color != active,
    }
    if not args.wait:
        result["outcome"] = "Requested"
        _report(args, result, f"{fmt.RESOURCE}/{args.name} undo to revision {target}: {how}")
        return EXIT_OK
    _err(f"undo to revision {target}: {how}")
    generation = int(fmt.as_dict(patched.get("metadata")).get("generation") or 0)
    app, phase = _wait_release(cluster, namespace, args.name, generation, args.timeout)
    return _release_result(args, result, app, phase)


# ----------------------------------------------------------------------------- set image


def cmd_set_image(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    try:
        images = templates.parse_assignments(args.images)
    except templates.TemplateError as err:
        raise CliError(EXIT_USAGE, f"error: {err}") from err
    app = cluster.get_app(namespace, args.name)
    template = fmt.as_dict(fmt.as_dict(app.get("spec")).get("template"))
    try:
        changed, changes = templates.set_images(template, images)
    except templates.TemplateError as err:
        raise CliError(EXIT_NOT_FOUND, f"error: {err}") from err
    result: dict[str, Any] = {
        "name": args.name,
        "namespace": namespace,
        "request": "set image",
        "changes": [{"container": c, "from": a, "to": b} for c, a, b in changes],
    }
    if not changes:
        result["outcome"] = "Unchanged"
        _report(args, result, f"{fmt.RESOURCE}/{args.name} image unchanged")
        return EXIT_OK
    meta = fmt.as_dict(app.get("metadata"))
    patched = cluster.set_template(namespace, args.name, str(meta["resourceVersion"]), changed)
    text = "\n".join(f"{fmt.RESOURCE}/{args.name} {c} image updated to {b}" for c, _a, b in changes)
    if not args.wait:
        result["outcome"] = "Requested"
        _report(args, result, text)
        return EXIT_OK
    _err(text)
    generation = int(fmt.as_dict(patched.get("metadata")).get("generation") or 0)
    app, phase = _wait_release(cluster, namespace, args.name, generation, args.timeout)
    return _release_result(args, result, app, phase)


# ----------------------------------------------------------------------------- restart


def cmd_restart(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    app = cluster.get_app(namespace, args.name)
    st = fmt.status_of(app)
    phase = fmt.phase_of(app)
    resting = {p.value for p in RESTING_PHASES}
    if phase not in resting and not args.force:
        raise CliError(
            EXIT_REFUSED,
            f'error: cannot restart {fmt.KIND_TEXT} "{args.name}" in phase {phase}: a release '
            f"is in flight; restart applies in {fmt.or_list(sorted(resting))} "
            "(--force restarts anyway)",
        )
    active = st.get("activeColor")
    if not active:
        raise CliError(EXIT_REFUSED, f'error: {fmt.KIND_TEXT} "{args.name}" has no active colour')
    deployment = naming.deployment(args.name, Color(active))
    if cluster.get_deployment(namespace, deployment) is None:
        raise CliError(EXIT_NOT_FOUND, f'error: Deployment "{deployment}" not found')
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.patch_deployment(namespace, deployment, templates.restart_patch(at))
    result: dict[str, Any] = {
        "name": args.name,
        "namespace": namespace,
        "request": "restart",
        "color": active,
        "deployment": deployment,
        "restartedAt": at,
    }
    if not args.wait:
        result["outcome"] = "Requested"
        _report(args, result, f"{fmt.RESOURCE}/{args.name} restart of {active} requested")
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while True:
        dep = cluster.get_deployment(namespace, deployment) or {}
        if templates.restart_done(dep):
            result["outcome"] = "done"
            _report(args, result, f"{fmt.RESOURCE}/{args.name} restart of {active}: done")
            return EXIT_OK
        if time.monotonic() >= deadline:
            result["outcome"] = "timed out"
            _report(args, result, f"{fmt.RESOURCE}/{args.name} restart of {active}: timed out")
            _err(f"error: the restart did not finish within {args.timeout:g}s")
            return EXIT_TIMEOUT
        time.sleep(POLL_SECONDS)
