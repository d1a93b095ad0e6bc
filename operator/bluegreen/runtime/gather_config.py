"""Gather, for config tracking: the ConfigMaps and Secrets an app's template references
and the app's copies of them, from the watch caches (digests only, never content)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bluegreen.api import BlueGreenApp, Color
from bluegreen.core import configs, naming, render
from bluegreen.core.configs import Copy, Found, Ref
from bluegreen.core.ports import ClusterReader
from bluegreen.core.world import DeploymentState


def referenced(app: BlueGreenApp, reader: ClusterReader) -> dict[Ref, Found]:
    """The referenced objects that exist, when the app tracks config (Secrets only when it
    asks for them and the operator watches them)."""
    tracking = app.spec.config_tracking
    if not tracking.enabled:
        return {}
    secrets = tracking.secrets and reader.secrets_tracked()
    out: dict[Ref, Found] = {}
    for ref in configs.references(render.template_dict(app)):
        if ref.kind == configs.SECRET and not secrets:
            continue
        obj = reader.get(ref.kind, app.metadata.namespace, ref.name)
        if obj is not None:
            out[ref] = _found(obj)
    return out


def serving(
    app: BlueGreenApp, reader: ClusterReader, deployments: Mapping[Color, DeploymentState]
) -> dict[Ref, Found]:
    """What the colours' Deployments were made from: each tracked object and its copy for
    the colour's revision, those that exist (by name: a copy whose labels were edited is
    still the one the pods reference). Whether the app tracks config now does not matter:
    the pods reference the copies as long as they run."""
    secrets = reader.secrets_tracked()
    out: dict[Ref, Found] = {}
    for dep in deployments.values():
        if not dep.revision or not dep.has_owner:
            continue
        for key in dep.config:
            kind, _, name = key.partition("/")
            if kind not in (configs.CONFIG_MAP, configs.SECRET) or (
                kind == configs.SECRET and not secrets
            ):
                continue
            for ref in (Ref(kind, name), Ref(kind, configs.copy_name(name, dep.revision))):
                obj = reader.get(kind, app.metadata.namespace, ref.name)
                if obj is not None:
                    out[ref] = _found(obj)
    return out


def deployment_config(obj: Mapping[str, Any]) -> dict[str, str]:
    """The digests a Deployment's revision tracked (its `bluegreen.dev/config` annotation);
    nothing when it has none or it is not what the operator writes."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        parsed = json.loads(annotations.get(naming.ANNOTATION_CONFIG) or "{}")
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items() if isinstance(v, str)}


def copies(app: BlueGreenApp, reader: ClusterReader) -> tuple[Copy, ...]:
    """The app's copies (its ownerReference, its labels), of any revision."""
    out = []
    for obj in reader.config_copies(app.metadata.namespace, app.metadata.name):
        meta = obj.get("metadata") or {}
        owners = {str(o.get("uid")) for o in meta.get("ownerReferences") or []}
        revision = (meta.get("labels") or {}).get(naming.LABEL_REVISION)
        if app.metadata.uid not in owners or not revision:
            continue
        kind = configs.SECRET if obj.get("kind") == configs.SECRET else configs.CONFIG_MAP
        out.append(Copy(kind, str(meta.get("name")), str(revision)))
    return tuple(sorted(out, key=lambda c: (c.kind, c.name)))


def _found(obj: dict[str, Any]) -> Found:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return Found(
        digest=str(obj.get("digest") or ""),
        copy=labels.get(naming.LABEL_CONFIG_COPY) == "true",
        type=str(obj.get("type") or ""),
    )
