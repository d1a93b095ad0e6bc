"""The active and preview Services: their ports (one, or a list with a primary port), and
their labels and annotations."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from bluegreen.api.v1alpha1.base import (
    LIST_MAP,
    PORT_NAME_PATTERN,
    TARGET_PORT,
    KeyMap,
    Model,
    cel,
    check_keys,
    keys_rule,
)

# Each rule below is checked twice, as in base.py: a CEL rule in the CRD and a validator in
# the model, with the same message.
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

PRIMARY_PORT = "http"
"""The port of the Services that traffic routing (Ingress, HTTPRoute), analysis Jobs and the
metrics Service use: the one named http, else the first."""

_SERVICE_LABELS_FORBIDDEN = ("app.kubernetes.io/name", "app.kubernetes.io/managed-by")
APP_PROTOCOL_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


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


def checked_target_port(value: int | str | None, message: str) -> int | str | None:
    """`value` when it is absent or `target_port_ok`; else a ValueError with `message`."""
    if value is not None and not target_port_ok(value):
        raise ValueError(message)
    return value


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
        return checked_target_port(value, SERVICE_PORT_TARGET)

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
    (keys_rule("labels", _SERVICE_LABELS_FORBIDDEN), SERVICE_LABELS),
    (keys_rule("annotations", ()), SERVICE_ANNOTATIONS),
)
"""The rules of spec.service that concern its ports, labels and annotations."""


def check_service_keys(labels: dict[str, str], annotations: dict[str, str]) -> None:
    check_keys(labels, _SERVICE_LABELS_FORBIDDEN, SERVICE_LABELS)
    check_keys(annotations, (), SERVICE_ANNOTATIONS)


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
        return checked_target_port(value, TARGET_PORT)

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
