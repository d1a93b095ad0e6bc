"""Where the colours run and what marks them: anti-affinity between the colours, the labels
and annotations of the active and preview pods, a PodDisruptionBudget per colour, and the
ports, labels and annotations of the active and preview Services."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from bluegreen.api.v1alpha1.base import LIST_MAP, PORT_NAME_PATTERN, TARGET_PORT, Model, cel

# Each rule below is checked twice, as in base.py: a CEL rule in the CRD and a validator in
# the model, with the same message.
ANTI_AFFINITY_KIND = (
    "strategy.antiAffinity needs exactly one of preferredDuringSchedulingIgnoredDuringExecution "
    "or requiredDuringSchedulingIgnoredDuringExecution"
)
POD_METADATA_LABELS = (
    "activeMetadata and previewMetadata labels must not be the operator's own "
    "(bluegreen.dev/*) or used by a selector (app.kubernetes.io/name, pod-template-hash)"
)
POD_METADATA_ANNOTATIONS = (
    "activeMetadata and previewMetadata annotations under bluegreen.dev/ are the operator's own"
)
POD_METADATA_TEMPLATE = (
    "activeMetadata and previewMetadata labels must not repeat a label of the template "
    "(the pod would lose it when its colour leaves the role)"
)
PDB_KIND = "podDisruptionBudget needs exactly one of minAvailable or maxUnavailable"
PDB_VALUE = "podDisruptionBudget values are a number >= 0 or a percentage from 0% to 100%"
SERVICE_PORT_FORMS = (
    "service takes either ports (a list) or port/targetPort/appProtocol (one port), not both"
)
SERVICE_PORT_UNIQUE = "service.ports must not repeat a name, nor a port number per protocol"
SERVICE_PRIMARY_TCP = (
    "the service's primary port (the one named http, else the first) must be TCP: "
    "traffic routing, analysis and metrics use it"
)
SERVICE_PORT_TARGET = (
    "service.ports[].targetPort must be a port number 1-65535 or a port name: "
    "at most 15 lowercase letters, digits and '-', with at least one letter"
)
SERVICE_LABELS = (
    "service.labels must not be the operator's own (bluegreen.dev/*, "
    "app.kubernetes.io/name, app.kubernetes.io/managed-by)"
)
SERVICE_ANNOTATIONS = "service.annotations under bluegreen.dev/ are the operator's own"

MAX_ROLE_KEYS = 32
"""Labels (and annotations) of activeMetadata/previewMetadata, service.labels/annotations: a
bound keeps the CEL rules that visit every key within the API server's cost budget."""

PRIMARY_PORT = "http"
"""The port of the Services that traffic routing (Ingress, HTTPRoute), analysis Jobs and the
metrics Service use: the one named http, else the first."""

_POD_LABELS_FORBIDDEN = ("app.kubernetes.io/name", "pod-template-hash")
_SERVICE_LABELS_FORBIDDEN = ("app.kubernetes.io/name", "app.kubernetes.io/managed-by")
_RESERVED_PREFIX = "bluegreen.dev/"
APP_PROTOCOL_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


def _keys_rule(field: str, forbidden: tuple[str, ...]) -> str:
    others = "".join(f" && k != '{f}'" for f in forbidden)
    return f"!has(self.{field}) || self.{field}.all(k, !k.startsWith('{_RESERVED_PREFIX}'){others})"


def _check_keys(keys: dict[str, str], forbidden: tuple[str, ...], message: str) -> None:
    if any(k.startswith(_RESERVED_PREFIX) or k in forbidden for k in keys):
        raise ValueError(message)


KeyMap = Annotated[dict[str, str], Field(max_length=MAX_ROLE_KEYS)]
"""Labels or annotations, at most MAX_ROLE_KEYS of them."""


# ----------------------------------------------------------------------------- anti-affinity


class PreferredAntiAffinity(Model):
    weight: Annotated[
        int,
        Field(ge=1, le=100, description="Weight of the scheduler's preference, 1 to 100."),
    ] = 1


def _no_properties(schema: dict[str, Any]) -> None:
    """An object without fields, as `maxProperties: 0`: the API server drops an empty
    `properties` when it stores the CRD, and a stored CRD that differs from the file makes
    `helm install` (server-side apply) conflict with whoever installed it first."""
    schema.pop("properties", None)
    schema["maxProperties"] = 0


class RequiredAntiAffinity(Model):
    """No field: a candidate pod never shares a node with a pod of the other colour."""

    model_config = ConfigDict(json_schema_extra=_no_properties)


class AntiAffinity(Model):
    model_config = cel(
        (
            "has(self.preferredDuringSchedulingIgnoredDuringExecution) != "
            "has(self.requiredDuringSchedulingIgnoredDuringExecution)",
            ANTI_AFFINITY_KIND,
        ),
    )

    preferred_during_scheduling_ignored_during_execution: PreferredAntiAffinity | None = Field(
        default=None,
        description="The scheduler prefers nodes without pods of the other colour.",
    )
    required_during_scheduling_ignored_during_execution: RequiredAntiAffinity | None = Field(
        default=None,
        description="Never on a node (kubernetes.io/hostname) with a pod of the other "
        "colour: with too few nodes the candidate stays Pending and takes no traffic.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AntiAffinity:
        preferred = self.preferred_during_scheduling_ignored_during_execution is not None
        required = self.required_during_scheduling_ignored_during_execution is not None
        if preferred == required:
            raise ValueError(ANTI_AFFINITY_KIND)
        return self


# ----------------------------------------------------------------------------- pod metadata


class PodMetadata(Model):
    model_config = cel(
        (_keys_rule("labels", _POD_LABELS_FORBIDDEN), POD_METADATA_LABELS),
        (_keys_rule("annotations", ()), POD_METADATA_ANNOTATIONS),
    )

    labels: KeyMap = Field(
        default_factory=dict,
        description="Labels the pods of the colour in this role carry while it has it.",
    )
    annotations: KeyMap = Field(
        default_factory=dict,
        description="Annotations the pods of the colour in this role carry while it has it.",
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        _check_keys(labels, _POD_LABELS_FORBIDDEN, POD_METADATA_LABELS)
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        _check_keys(annotations, (), POD_METADATA_ANNOTATIONS)
        return annotations


# ----------------------------------------------------------------------------- disruption


def _pdb_value_rule(field: str) -> str:
    f = f"self.{field}"
    return (
        f"!has({f}) || (type({f}) == int ? int({f}) >= 0"
        f" : string({f}).matches('^(100|[1-9]?[0-9])%$'))"
    )


class PodDisruptionBudgetSpec(Model):
    model_config = cel(
        ("has(self.minAvailable) != has(self.maxUnavailable)", PDB_KIND),
        (_pdb_value_rule("minAvailable"), PDB_VALUE),
        (_pdb_value_rule("maxUnavailable"), PDB_VALUE),
    )

    min_available: Annotated[
        int | str | None,
        Field(description="Pods of the colour that must stay available: a number or a percent."),
    ] = None
    max_unavailable: Annotated[
        int | str | None,
        Field(description="Pods of the colour that may be unavailable: a number or a percent."),
    ] = None

    @field_validator("min_available", "max_unavailable")
    @classmethod
    def _value(cls, value: int | str | None) -> int | str | None:
        if value is None:
            return None
        ok = value >= 0 if isinstance(value, int) else bool(_PERCENT.fullmatch(value))
        if not ok:
            raise ValueError(PDB_VALUE)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PodDisruptionBudgetSpec:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError(PDB_KIND)
        return self


# ----------------------------------------------------------------------------- Services


class Protocol(enum.StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


def target_port_ok(value: int | str) -> bool:
    """A port number, or a port name (an IANA service name, as a container port's name)."""
    if isinstance(value, int):
        return 1 <= value <= 65535
    return (
        len(value) <= 15
        and "--" not in value
        and bool(PORT_NAME_PATTERN.fullmatch(value))
        and any(c.isalpha() for c in value)
    )


def target_port_rule(field: str) -> str:
    """The CEL twin of `target_port_ok` for the field `field` of `self`."""
    f = f"self.{field}"
    return (
        f"!has({f}) || (type({f}) == int ? {f} >= 1 && {f} <= 65535"
        f" : size({f}) <= 15 && !{f}.contains('--')"
        f" && {f}.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')"
        f" && {f}.matches('[a-z]'))"
    )


AppProtocol = Annotated[
    str | None, Field(min_length=1, max_length=316, pattern=APP_PROTOCOL_PATTERN)
]
"""A Service port's appProtocol: an IANA name, or a prefixed one (kubernetes.io/h2c)."""


class ServicePort(Model):
    model_config = cel((target_port_rule("targetPort"), SERVICE_PORT_TARGET))

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=15,
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            description="The port's name on the Services (the one named http is the primary).",
        ),
    ]
    port: Annotated[int, Field(ge=1, le=65535, description="The Services' port.")]
    target_port: Annotated[
        int | str | None,
        Field(
            description="Container port: a name or a number; default: the same number.",
            # Bounds the CEL rule's cost (a name is at most 15 characters anyway).
            json_schema_extra={"maxLength": 15},
        ),
    ] = None
    protocol: Protocol = Protocol.TCP
    app_protocol: AppProtocol = Field(
        default=None, description="The port's appProtocol (http, h2c, kubernetes.io/ws, ...)."
    )

    @field_validator("target_port")
    @classmethod
    def _target_port(cls, value: int | str | None) -> int | str | None:
        if value is not None and not target_port_ok(value):
            raise ValueError(SERVICE_PORT_TARGET)
        return value

    @property
    def target(self) -> int | str:
        return self.port if self.target_port is None else self.target_port


def primary_port(ports: list[ServicePort]) -> ServicePort:
    """The port named http, else the first."""
    return next((p for p in ports if p.name == PRIMARY_PORT), ports[0])


def check_ports(ports: list[ServicePort]) -> None:
    names = [p.name for p in ports]
    numbers = [(p.port, p.protocol) for p in ports]
    if len(set(names)) != len(names) or len(set(numbers)) != len(numbers):
        raise ValueError(SERVICE_PORT_UNIQUE)
    if primary_port(ports).protocol is not Protocol.TCP:
        raise ValueError(SERVICE_PRIMARY_TCP)


PORTS_CEL = (
    (
        "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.port == p.port"
        " && (has(q.protocol) ? q.protocol : 'TCP') == (has(p.protocol) ? p.protocol : 'TCP')))",
        SERVICE_PORT_UNIQUE,
    ),
    (
        "!has(self.ports) || (self.ports.exists(p, p.name == 'http') ? "
        "self.ports.all(p, p.name != 'http' || !has(p.protocol) || p.protocol == 'TCP') : "
        "(!has(self.ports[0].protocol) || self.ports[0].protocol == 'TCP'))",
        SERVICE_PRIMARY_TCP,
    ),
    (
        "!has(self.ports) || (!has(self.port) && !has(self.targetPort) && !has(self.appProtocol))",
        SERVICE_PORT_FORMS,
    ),
    (_keys_rule("labels", _SERVICE_LABELS_FORBIDDEN), SERVICE_LABELS),
    (_keys_rule("annotations", ()), SERVICE_ANNOTATIONS),
)
"""The rules of spec.service that concern its ports, labels and annotations."""


def check_service_keys(labels: dict[str, str], annotations: dict[str, str]) -> None:
    _check_keys(labels, _SERVICE_LABELS_FORBIDDEN, SERVICE_LABELS)
    _check_keys(annotations, (), SERVICE_ANNOTATIONS)


class ServiceSpec(Model):
    model_config = cel((target_port_rule("targetPort"), TARGET_PORT), *PORTS_CEL)

    port: Annotated[
        int | None,
        Field(
            ge=1,
            le=65535,
            description="Port of the active and preview Services (named http); default 80. "
            "Or list them in ports.",
        ),
    ] = None
    target_port: Annotated[
        int | str | None,
        Field(
            description="Container port the Services send to: a name or a number; default: http."
        ),
    ] = None
    app_protocol: AppProtocol = Field(
        default=None, description="appProtocol of the http port (h2c, kubernetes.io/ws, ...)."
    )
    ports: Annotated[
        list[ServicePort] | None,
        Field(
            min_length=1,
            max_length=16,
            json_schema_extra=LIST_MAP,
            description="The Services' ports, instead of port/targetPort. The one named "
            "http (else the first) is the primary port: Ingress, HTTPRoute, analysis Jobs "
            "and the metrics Service use it.",
        ),
    ] = None
    labels: KeyMap = Field(
        default_factory=dict, description="Labels of the active and preview Services."
    )
    annotations: KeyMap = Field(
        default_factory=dict, description="Annotations of the active and preview Services."
    )

    @field_validator("target_port")
    @classmethod
    def _target_port(cls, value: int | str | None) -> int | str | None:
        if value is not None and not target_port_ok(value):
            raise ValueError(TARGET_PORT)
        return value

    @model_validator(mode="after")
    def _one_form(self) -> ServiceSpec:
        single = (self.port, self.target_port, self.app_protocol) != (None, None, None)
        if self.ports is not None:
            if single:
                raise ValueError(SERVICE_PORT_FORMS)
            check_ports(self.ports)
        check_service_keys(self.labels, self.annotations)
        return self

    @property
    def all_ports(self) -> list[ServicePort]:
        """The Services' ports, whichever form the spec uses."""
        if self.ports is not None:
            return list(self.ports)
        return [
            ServicePort(
                name=PRIMARY_PORT,
                port=80 if self.port is None else self.port,
                target_port="http" if self.target_port is None else self.target_port,
                app_protocol=self.app_protocol,
            )
        ]

    @property
    def primary(self) -> ServicePort:
        """The port traffic routing, analysis Jobs and the metrics Service use."""
        return primary_port(self.all_ports)
