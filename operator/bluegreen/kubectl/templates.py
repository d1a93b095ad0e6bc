"""What `kubectl bluegreen undo`, `set image` and `restart` change, and when their `--wait`
is over: pure functions over the app and its Deployments as the API server returned them.

undo: every colour's Deployment keeps the app's template as written for the revision it
runs (the annotation bluegreen.dev/template, set by the operator). Undo sets that template
back on the app; the operator then releases it like any new spec, and a colour still warm
with that revision takes traffic at once (no new pod). A revision no Deployment keeps any
more cannot be undone to: it has to be applied again from its manifests. With
spec.configTracking the revision also includes the content of the ConfigMaps (and Secrets)
it tracked (the annotation bluegreen.dev/config): undo sets the template back, and the
revision is the old one again only when their content is too (docs/config-tracking.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bluegreen.api import Phase
from bluegreen.core import naming
from bluegreen.core.images import pinned_digest
from bluegreen.core.revision import revision
from bluegreen.kubectl.format import as_dict
from bluegreen.release.requests import RESTING_PHASES

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod template annotation a restart sets, as `kubectl rollout restart` does."""
RESTART_STRATEGY: dict[str, Any] = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
}
"""One new pod at a time, an old one going only once a new one is ready: the active
Service never has fewer ready endpoints than replicas."""
CONTAINER_KEYS = ("initContainers", "containers")


class TemplateError(ValueError):
    """The change cannot be made; the message says why."""


# ----------------------------------------------------------------------------- undo


def previous_revision(status: Mapping[str, Any]) -> str | None:
    """The revision that was stable before the current one: the newest promoted release in
    status.history of another revision."""
    stable = status.get("stableRevision")
    for item in status.get("history") or []:
        entry = as_dict(item)
        if entry.get("result") == "Promoted" and entry.get("revision") != stable:
            return str(entry["revision"])
    return None


def match_revision(wanted: str, known: Sequence[str]) -> str:
    """`wanted` as given, or the one known revision it is a prefix of."""
    if wanted in known:
        return wanted
    matches = sorted({k for k in known if k.startswith(wanted)})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise TemplateError(f"revision {wanted!r} is ambiguous: {', '.join(matches)}")
    raise TemplateError(
        f"revision {wanted!r} is not in the app's history nor run by a colour "
        "(`kubectl bluegreen history NAME` lists them)"
    )


@dataclass(frozen=True)
class Kept:
    """The template of a revision as a colour's Deployment keeps it."""

    revision: str
    color: str
    template: dict[str, Any]
    warm: bool
    """The Deployment has ready pods: undo to it is a flip, no new pod."""


def kept_template(deployment: Mapping[str, Any]) -> Kept | None:
    """The app's template for the revision `deployment` runs, checked against that revision;
    None when the Deployment keeps none (made by an operator before 0.x kept templates)."""
    meta = as_dict(deployment.get("metadata"))
    labels = as_dict(meta.get("labels"))
    rev = labels.get(naming.LABEL_REVISION)
    raw = as_dict(meta.get("annotations")).get(naming.ANNOTATION_TEMPLATE)
    pod_template = as_dict(as_dict(deployment.get("spec")).get("template"))
    if not rev:
        rev = as_dict(as_dict(pod_template.get("metadata")).get("labels")).get(
            naming.LABEL_REVISION
        )
    if not rev or not raw:
        return None
    try:
        written = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(written, dict):
        return None
    # With spec.image.resolveDigest the colour runs digests: undo goes back to exactly them.
    running = copy.deepcopy(written)
    pod_spec = as_dict(pod_template.get("spec"))
    for key in CONTAINER_KEYS:
        ran = {c.get("name"): c.get("image") for c in pod_spec.get(key) or []}
        for container in as_dict(running.get("spec")).get(key) or []:
            image = ran.get(container.get("name"))
            if isinstance(image, str) and pinned_digest(image) and image != container.get("image"):
                container["image"] = image
    annotations = as_dict(meta.get("annotations"))
    config = _config(annotations.get(naming.ANNOTATION_CONFIG))
    anti_affinity = _json_object(annotations.get(naming.ANNOTATION_ANTI_AFFINITY))
    for template in (written, running):
        if revision(template, config, anti_affinity) == rev:
            status = as_dict(deployment.get("status"))
            warm = (
                int(status.get("readyReplicas") or 0) > 0
                and int(as_dict(deployment.get("spec")).get("replicas") or 0) > 0
            )
            return Kept(str(rev), str(labels.get(naming.LABEL_COLOR, "")), template, warm)
    return None


def _config(raw: object) -> dict[str, str]:
    """The content digests a config-tracking revision includes (none: not tracking)."""
    try:
        found = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _json_object(raw: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def app_revision(spec: Mapping[str, Any]) -> str:
    """The revision of the app's template as written (before digests are resolved), with
    its strategy.antiAffinity as the operator counts it."""
    anti_affinity = as_dict(spec.get("strategy")).get("antiAffinity")
    return revision(
        as_dict(spec.get("template")),
        None,
        {k: v for k, v in anti_affinity.items() if v is not None}
        if isinstance(anti_affinity, dict)
        else None,
    )


# ----------------------------------------------------------------------------- set image


def parse_assignments(values: Sequence[str]) -> dict[str, str]:
    """`CONTAINER=IMAGE` pairs, as `kubectl set image` takes them (`*=IMAGE`: every one)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, image = value.partition("=")
        if not sep or not name or not image or any(c.isspace() for c in image):
            raise TemplateError(f"expected CONTAINER=IMAGE, got {value!r}")
        if name in out and out[name] != image:
            raise TemplateError(f"container {name!r} is given two images")
        out[name] = image
    return out


def set_images(
    template: Mapping[str, Any], images: Mapping[str, str]
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """The template with the images set, and each change (container, old, new). Every
    named container must exist (containers or initContainers)."""
    out = copy.deepcopy(dict(template))
    spec = as_dict(out.get("spec"))
    containers = [c for key in CONTAINER_KEYS for c in spec.get(key) or []]
    names = [str(c.get("name")) for c in containers]
    missing = [n for n in images if n != "*" and n not in names]
    if missing:
        raise TemplateError(
            f"unable to find container named {', '.join(repr(n) for n in missing)} "
            f"(the template has {', '.join(names) or 'none'})"
        )
    changes = []
    for container in containers:
        name = str(container.get("name"))
        image = images.get(name, images.get("*"))
        if image is not None and container.get("image") != image:
            changes.append((name, str(container.get("image") or ""), image))
            container["image"] = image
    return out, changes


# ----------------------------------------------------------------------------- waiting


def release_outcome(generation: int, status: Mapping[str, Any]) -> str | None:
    """Once the operator has seen `generation` of the app and the app is at rest: its
    phase (Healthy, Paused for a manual gate, Degraded); else None."""
    if int(status.get("observedGeneration") or 0) < generation:
        return None
    phase = str(status.get("phase") or "")
    if phase not in {p.value for p in RESTING_PHASES}:
        return None
    release = as_dict(status.get("release"))
    if phase == Phase.PAUSED.value and release.get("promotionRequestedAt"):
        return None
    return phase


def restart_done(deployment: Mapping[str, Any]) -> bool:
    """The Deployment controller has rolled the restart out: every pod is of the newest
    template and ready, and no older pod is left."""
    meta, spec = as_dict(deployment.get("metadata")), as_dict(deployment.get("spec"))
    st = as_dict(deployment.get("status"))
    want = int(spec.get("replicas") or 0)
    return (
        int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) == want
        and int(st.get("readyReplicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
    )


def restart_patch(at: str) -> dict[str, Any]:
    """The merge patch of a restart: the surge-only strategy and a new restartedAt."""
    return {
        "spec": {
            "strategy": RESTART_STRATEGY,
            "template": {"metadata": {"annotations": {RESTARTED_AT: at}}},
        }
    }
