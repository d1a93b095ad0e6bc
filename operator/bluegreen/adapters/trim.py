"""What the cache keeps of each kind: an object trimmed to the fields the decision reads
(its identity, owners and managers, and per kind a few fields of its spec and status).
`bluegreen.adapters.kinds` names the trimming of each kind.
"""

from __future__ import annotations

from typing import Any

from bluegreen.core import configs, naming
from bluegreen.core.ports import WRITTEN_AT

Obj = dict[str, Any]


def _meta(obj: Obj, *, annotations: bool = False) -> Obj:
    m = obj.get("metadata") or {}
    out: Obj = {
        "name": m.get("name"),
        "namespace": m.get("namespace"),
        "resourceVersion": m.get("resourceVersion", ""),
        "labels": dict(m.get("labels") or {}),
        "ownerReferences": [
            {"uid": o.get("uid"), "kind": o.get("kind"), "name": o.get("name")}
            for o in m.get("ownerReferences") or []
        ],
    }
    for key in ("generation", "deletionTimestamp", "uid"):
        if key in m:
            out[key] = m[key]
    managers = sorted({str(f.get("manager")) for f in m.get("managedFields") or []})
    if managers:
        out["managers"] = managers  # who else writes it, for a conflict's message
    if annotations:
        out["annotations"] = dict(m.get("annotations") or {})
        out["ownAnnotations"] = _own_annotations(m)
    return out


def _own_annotations(meta: Obj, part: str = "f:annotations") -> list[str]:
    """The annotation (or label) keys the operator's own writes set (its managedFields
    entries), so one taken out of the spec is taken off the object too."""
    keys: set[str] = set()
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") != naming.MANAGER:
            continue
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(part)
        keys.update(k[2:] for k in fields or {} if k.startswith("f:"))
    return sorted(keys)


def _marks(obj: Obj) -> Obj:
    """The labels and annotations the operator set on a pod (strategy.activeMetadata and
    previewMetadata), with their values now; nothing else of its annotations is kept."""
    m = obj.get("metadata") or {}
    out: Obj = {}
    for part in ("labels", "annotations"):
        values = m.get(part) or {}
        own = {k: values[k] for k in _own_annotations(m, f"f:{part}") if k in values}
        if own:
            out[part] = own
    return out


def deployment(obj: Obj) -> Obj:
    """Its identity, replicas, selector, pod labels and status; of its annotations only the
    config digests (`bluegreen.dev/config`: which copies its pods reference), never the
    template kept for undo."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    meta = _meta(obj)
    config = ((obj.get("metadata") or {}).get("annotations") or {}).get(naming.ANNOTATION_CONFIG)
    if config:
        meta["annotations"] = {naming.ANNOTATION_CONFIG: config}
    return {
        "metadata": meta,
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": spec.get("selector") or {},
            "template": {"metadata": {"labels": (template.get("metadata") or {}).get("labels")}},
        },
        "status": {
            k: status[k]
            for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas")
            if k in status
        },
    }


def service(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    meta = _meta(obj, annotations=True)
    meta["ownLabels"] = _own_annotations(obj.get("metadata") or {}, "f:labels")
    return {
        "metadata": meta,
        "spec": {k: spec[k] for k in ("selector", "ports", "clusterIP") if k in spec},
    }


def pod(obj: Obj) -> Obj:
    conditions = (obj.get("status") or {}).get("conditions") or []
    out = {
        "metadata": _meta(obj),
        "status": {"conditions": [c for c in conditions if c.get("type") == "Ready"]},
    }
    marks = _marks(obj)
    if marks:
        out["marks"] = marks
    return out


def budget(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    return {
        "metadata": _meta(obj),
        "spec": {k: spec[k] for k in ("selector", "minAvailable", "maxUnavailable") if k in spec},
    }


def endpoint_slice(obj: Obj) -> Obj:
    written = [
        str(f["time"])
        for f in (obj.get("metadata") or {}).get("managedFields") or []
        if f.get("time")
    ]
    return {
        "metadata": _meta(obj),
        # The API server's time of the last write (to the second): when this version was made,
        # for a view that was not watched as it changed (after a restart).
        WRITTEN_AT: max(written, default=None),
        "endpoints": [
            {
                "targetRef": {"name": (e.get("targetRef") or {}).get("name")},
                "conditions": {"ready": (e.get("conditions") or {}).get("ready")},
            }
            for e in obj.get("endpoints") or []
        ],
    }


def with_spec(obj: Obj) -> Obj:
    return {"metadata": _meta(obj, annotations=True), "spec": obj.get("spec") or {}}


def route(obj: Obj) -> Obj:
    rules = (obj.get("spec") or {}).get("rules") or []
    return {
        "metadata": _meta(obj),
        "spec": {
            "rules": [{"name": r.get("name"), "backendRefs": r.get("backendRefs")} for r in rules]
        },
    }


def template(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "spec": obj.get("spec") or {}}


def job(obj: Obj) -> Obj:
    """An analysis Job: its identity, when it was made, and its terminal conditions."""
    meta = _meta(obj)
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if created:
        meta["creationTimestamp"] = created
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {
        "metadata": meta,
        "status": {
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message")}
                for c in conditions
                if c.get("type") in ("Complete", "Failed")
            ]
        },
    }


def config(obj: Obj) -> Obj:
    """A ConfigMap or Secret: its identity and a digest of its content, never the content
    (the gateway reads that when it makes a copy)."""
    out: Obj = {"metadata": _meta(obj), "digest": configs.object_digest(obj)}
    if obj.get("type"):
        out["type"] = obj["type"]
    return out


def peering(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "status": dict(obj.get("status") or {})}
