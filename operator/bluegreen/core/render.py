"""Desired objects, built from the app alone. Pure: no I/O, no clock.

Every object carries an ownerReference to its BlueGreenApp, so deleting the app lets the
garbage collector remove everything it owned.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from bluegreen.api import BlueGreenApp, Color
from bluegreen.core import configs, naming, placement
from bluegreen.core.revision import image_tag, revision

Manifest = dict[str, Any]


def template_dict(app: BlueGreenApp) -> dict[str, Any]:
    return app.spec.template.model_dump(mode="json", by_alias=True)


def pinned_template(app: BlueGreenApp, pins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The user's template with every image replaced by its pinned (digest) form, if any."""
    template = copy.deepcopy(template_dict(app))
    if pins:
        for key in ("containers", "initContainers"):
            for container in template["spec"].get(key) or []:
                image = str(container.get("image", ""))
                container["image"] = pins.get(image, image)
    return template


def template_json(app: BlueGreenApp) -> str:
    """The template as the user wrote it, compact JSON: what `kubectl bluegreen undo` sets
    back on the app (the Deployment's own pod template has the API server's defaults)."""
    return json.dumps(template_dict(app), sort_keys=True, separators=(",", ":"))


TEMPLATE_ANNOTATION_LIMIT = 128 * 1024
"""The API server refuses an object whose annotations total more than 256 KiB: a template
larger than this is not kept (undo cannot go back to it; the release is unaffected)."""


def _deployment_annotations(
    app: BlueGreenApp, config: Mapping[str, str] | None = None
) -> dict[str, str]:
    out = {naming.ANNOTATION_IMAGE: primary_image(app)}
    anti_affinity = placement.anti_affinity_input(app)
    if anti_affinity is not None:
        out[naming.ANNOTATION_ANTI_AFFINITY] = json.dumps(anti_affinity, sort_keys=True)
    kept = template_json(app)
    if len(kept.encode()) <= TEMPLATE_ANNOTATION_LIMIT:
        out[naming.ANNOTATION_TEMPLATE] = kept
    if config:
        out[naming.ANNOTATION_CONFIG] = json.dumps(dict(config), sort_keys=True)
    return out


def images(app: BlueGreenApp) -> list[str]:
    """Every image the template runs, in order, once each."""
    seen: dict[str, None] = {}
    for key in ("initContainers", "containers"):
        for container in app.spec.template.spec.get(key) or []:
            seen[str(container.get("image", ""))] = None
    return list(seen)


def target_revision(
    app: BlueGreenApp,
    pins: Mapping[str, str] | None = None,
    config: Mapping[str, str] | None = None,
) -> str:
    """The revision the spec asks for: the template as it will run, digests included,
    so a tag pushed again with new content is a new revision; the content of the
    ConfigMaps and Secrets it tracks (`config`, spec.configTracking); and the anti-affinity
    between the colours, which their pod templates carry."""
    return revision(pinned_template(app, pins), config, placement.anti_affinity_input(app))


def primary_image(app: BlueGreenApp) -> str:
    containers = app.spec.template.spec.get("containers") or [{}]
    return str(containers[0].get("image", ""))


def owner_reference(app: BlueGreenApp) -> dict[str, Any]:
    return {
        "apiVersion": app.api_version,
        "kind": app.kind,
        "name": app.metadata.name,
        "uid": app.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(app: BlueGreenApp, name: str, extra_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": app.metadata.namespace,
        "labels": {**naming.owned_labels(app.metadata.name), **extra_labels},
        "ownerReferences": [owner_reference(app)],
    }


def pod_template(
    app: BlueGreenApp, color: Color, rev: str, pins: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The user's template, pinned to its revision (and its images to their digests),
    labelled with its app, colour and revision, and given APP_COLOR / APP_VERSION unless the
    user set them. The user's own labels stay as written; `app.kubernetes.io/name` is the
    app's name unless the template says otherwise, as earlier versions always set it (what
    selects pods by it, a NetworkPolicy or a dashboard, goes on finding them)."""
    template = pinned_template(app, pins)
    metadata = template.setdefault("metadata", {}) or {}
    template["metadata"] = metadata
    metadata["labels"] = {
        naming.LABEL_NAME: app.metadata.name,
        **(metadata.get("labels") or {}),
        **naming.selector(app.metadata.name, color),
        naming.LABEL_REVISION: rev,
    }
    written = [str(c.get("image", "")) for c in template_dict(app)["spec"].get("containers", [])]
    for index, container in enumerate(template["spec"].get("containers", [])):
        env = list(container.get("env") or [])
        present = {e.get("name") for e in env}
        # The version a person reads is the tag they wrote, not the digest it resolved to.
        version = image_tag(written[index] if index < len(written) else "") or rev
        if naming.ENV_COLOR not in present:
            env.append({"name": naming.ENV_COLOR, "value": color.value})
        if naming.ENV_VERSION not in present:
            env.append({"name": naming.ENV_VERSION, "value": version})
        container["env"] = env
    placement.with_anti_affinity(template["spec"], app, color)
    return template


def deployment(
    app: BlueGreenApp,
    color: Color,
    replicas: int,
    pins: Mapping[str, str] | None = None,
    config: configs.Choice | None = None,
) -> Manifest:
    """`config`: what spec.configTracking tracks; the pods reference its copies."""
    tracked = config.config if config is not None else None
    rev = target_revision(app, pins, tracked)
    template = pod_template(app, color, rev, pins)
    if config is not None:
        configs.rewrite(template, configs.copies(config, rev))
    name = app.metadata.name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_meta(app, naming.deployment(name, color), {naming.LABEL_COLOR: color.value}),
            "annotations": _deployment_annotations(app, tracked),
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": naming.selector(name, color)},
            # The colour being replaced serves no traffic: start every new pod at once, and
            # let the old ones go meanwhile (Recreate would first wait for them to end,
            # up to their grace period, before starting a single new one).
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "100%"},
            },
            "template": template,
        },
    }


def config_copy(app: BlueGreenApp, ref: configs.Ref, rev: str) -> Manifest:
    """The immutable copy of a tracked ConfigMap or Secret for revision `rev`, without its
    content (the gateway copies that from the object, checked against the revision's
    digest)."""
    meta = _meta(
        app,
        configs.copy_name(ref.name, rev),
        {naming.LABEL_REVISION: rev, naming.LABEL_CONFIG_COPY: "true"},
    )
    meta["annotations"] = {naming.ANNOTATION_COPY_OF: ref.name}
    return {"apiVersion": "v1", "kind": ref.kind, "metadata": meta, "immutable": True}


def _ports(app: BlueGreenApp) -> list[dict[str, Any]]:
    out = []
    for port in app.spec.service.all_ports:
        rendered: dict[str, Any] = {
            "name": port.name,
            "port": port.port,
            "targetPort": port.target,
            "protocol": port.protocol.value,
        }
        if port.app_protocol is not None:
            rendered["appProtocol"] = port.app_protocol
        out.append(rendered)
    return out


def _metrics_ports(app: BlueGreenApp) -> list[dict[str, Any]]:
    """The primary port only, named http whatever its name: the ServiceMonitor scrapes it."""
    primary = app.spec.service.primary
    return [{"name": "http", "port": primary.port, "targetPort": primary.target, "protocol": "TCP"}]


def active_service(
    app: BlueGreenApp, color: Color, selector: Mapping[str, str] | None = None
) -> Manifest:
    """The Service users reach: it selects the active colour (`selector`: the labels that
    colour's pods carry, by default `naming.selector`)."""
    return _colour_service(app, naming.active_service(app.metadata.name), "active", color, selector)


def preview_service(
    app: BlueGreenApp, color: Color, selector: Mapping[str, str] | None = None
) -> Manifest:
    """The Service that reaches the candidate before the switch (else the active colour)."""
    return _colour_service(
        app, naming.preview_service(app.metadata.name), "preview", color, selector
    )


def _colour_service(
    app: BlueGreenApp, name: str, role: str, color: Color, selector: Mapping[str, str] | None
) -> Manifest:
    service = app.spec.service
    metadata = _meta(app, name, {**service.labels, naming.LABEL_ROLE: role})
    metadata["annotations"] = dict(service.annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector or naming.selector(app.metadata.name, color)),
            "ports": _ports(app),
        },
    }


def metrics_service(app: BlueGreenApp) -> Manifest:
    """Headless, over both colours: every pod is scraped exactly once, whatever the
    active selector says."""
    return _metrics_service(
        app, naming.metrics_service(app.metadata.name), naming.app_selector(app.metadata.name)
    )


def legacy_metrics_service(app: BlueGreenApp) -> Manifest:
    """Headless, over the pods of Deployments an earlier operator version made (selected by
    `app.kubernetes.io/name`): while the app has one, the two metrics Services together
    cover both colours (readiness in the EndpointSlices, scraping)."""
    return _metrics_service(
        app,
        naming.legacy_metrics_service(app.metadata.name),
        naming.legacy_app_selector(app.metadata.name),
    )


def _metrics_service(app: BlueGreenApp, name: str, selector: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(app, name, {naming.LABEL_ROLE: "metrics"}),
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": _metrics_ports(app),
            "publishNotReadyAddresses": False,
        },
    }


def service_monitor(app: BlueGreenApp, legacy: bool = False) -> Manifest:
    """Scrapes the app's metrics Services. `legacy`: the app still has a Deployment of an
    earlier operator version, so `<name>-legacy` is there too; a pod that both select (its
    template sets `app.kubernetes.io/name` to the app's name) is scraped through
    `<name>-metrics` only."""
    name = app.metadata.name
    sm = app.spec.monitoring.service_monitor
    color_label = "__meta_kubernetes_pod_label_" + _prom_label(naming.LABEL_COLOR)
    revision_label = "__meta_kubernetes_pod_label_" + _prom_label(naming.LABEL_REVISION)
    relabelings: list[dict[str, Any]] = []
    if legacy:
        relabelings.append(
            {
                "sourceLabels": [
                    "__meta_kubernetes_service_name",
                    "__meta_kubernetes_pod_labelpresent_" + _prom_label(naming.LABEL_APP),
                ],
                "regex": f"{naming.legacy_metrics_service(name)};true",
                "action": "drop",
            }
        )
    relabelings += [
        {"sourceLabels": [color_label], "targetLabel": "color"},
        {"sourceLabels": [revision_label], "targetLabel": "revision"},
        {"targetLabel": "app", "replacement": name},
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(app, naming.service_monitor(name), dict(sm.labels)),
        "spec": {
            "selector": {"matchLabels": {naming.LABEL_APP: name, naming.LABEL_ROLE: "metrics"}},
            "namespaceSelector": {"matchNames": [app.metadata.namespace]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": sm.interval,
                    # The target's labels win over what the app exports (kept as
                    # exported_<name>): pods of one namespace cannot publish series with
                    # another namespace's labels and sway its analysis.
                    "honorLabels": False,
                    "relabelings": relabelings,
                }
            ],
        },
    }


def _ingress(app: BlueGreenApp, name: str, service: str, annotations: dict[str, str]) -> Manifest:
    spec = app.spec.ingress
    assert spec is not None
    port = app.spec.service.primary.name
    body: dict[str, Any] = {
        "rules": [
            {
                "host": spec.host,
                "http": {
                    "paths": [
                        {
                            "path": spec.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service, "port": {"name": port}}},
                        }
                    ]
                },
            }
        ],
    }
    if spec.class_name is not None:
        body["ingressClassName"] = spec.class_name
    if spec.tls_secret_name:
        body["tls"] = [{"hosts": [spec.host], "secretName": spec.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {**_meta(app, name, {}), "annotations": annotations},
        "spec": body,
    }


def stable_ingress(app: BlueGreenApp) -> Manifest:
    """The Ingress users reach the app through: always the active Service."""
    assert app.spec.ingress is not None
    name = app.metadata.name
    return _ingress(
        app, naming.ingress(name), naming.active_service(name), dict(app.spec.ingress.annotations)
    )


def canary_ingress(app: BlueGreenApp, weight: int) -> Manifest:
    """ingress-nginx's canary: the same host and path, `weight` percent to the preview
    Service (the candidate colour)."""
    assert app.spec.ingress is not None
    name = app.metadata.name
    annotations = {
        **app.spec.ingress.annotations,
        naming.CANARY: "true",
        naming.CANARY_WEIGHT: str(weight),
    }
    return _ingress(app, naming.canary_ingress(name), naming.preview_service(name), annotations)


def pod_disruption_budget(
    app: BlueGreenApp, color: Color, selector: Mapping[str, str] | None = None
) -> Manifest:
    """The colour's budget (spec.podDisruptionBudget), over the pods `selector` selects (by
    default `naming.selector`)."""
    spec = placement.pdb_spec(app, selector or naming.selector(app.metadata.name, color))
    assert spec is not None
    name = placement.pdb_name(app.metadata.name, color)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(app, name, {naming.LABEL_COLOR: color.value}),
        "spec": spec,
    }


def _prom_label(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)
