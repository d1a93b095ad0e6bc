"""Names, the base model and the enums every other part of the API uses."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "bluegreen.dev"
VERSION = "v1alpha1"
KIND = "BlueGreenApp"
PLURAL = "bluegreenapps"
SINGULAR = "bluegreenapp"
SHORT_NAMES = ["bga"]

# Derived object names add at most "-preview"/"-metrics" (8 characters) to the app's name,
# and Services must be DNS-1035 labels of at most 63 characters.
MAX_NAME_LENGTH = 55

# Metric lists are maps keyed by name: the API server rejects duplicate names.
LIST_MAP: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


# Each rule below is checked twice: by the API server (a CEL rule in the CRD) and by the model
# (a validator), with the same message, so the operator never reads what the CRD would reject.
RESERVED_LABELS = (
    "template labels under bluegreen.dev/ are the operator's own (it selects pods by "
    "bluegreen.dev/app and bluegreen.dev/color); app.kubernetes.io/* labels are yours"
)
TARGET_PORT = (
    "service.targetPort must be a port number 1-65535 or a port name: "
    "at most 15 lowercase letters, digits and '-', with at least one letter"
)
# Service.spec.ports[].targetPort by name is an IANA service name (as a container port's name).
PORT_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_TEMPLATE_DEPTH = 64
"""Levels of objects and lists a pod template may nest. A real one needs about 12
(affinity terms are the deepest); the CRD keeps the template's unknown fields, which JSON
Schema and CEL cannot bound, so the model does: a template nested hundreds deep cannot be
copied, hashed or sent on."""
TEMPLATE_DEPTH = f"template nests deeper than {MAX_TEMPLATE_DEPTH} levels"
CANARY_WEIGHTS = "canary step weights must be strictly increasing"
CANARY_NEEDS_INGRESS = "strategy.canary needs spec.ingress or spec.trafficRouting.gatewayAPI"
STEP_QUERY_NEEDS_PROMETHEUS = "query metrics of canary steps need analysis.prometheus.address"
THRESHOLD_EMPTY = "thresholdRange needs min, max or both"
THRESHOLD_ORDER = "thresholdRange.min must not exceed max"
METRIC_KIND = (
    "a metric needs exactly one of query (Prometheus), url (web check), cloudwatch "
    "(Amazon CloudWatch) or job (a Kubernetes Job)"
)
METRIC_THRESHOLD = "a query metric needs thresholdRange"
CLOUDWATCH_THRESHOLD = "a cloudwatch metric needs thresholdRange"
JOB_THRESHOLD = "a job metric takes no thresholdRange: it passes when its Job completes"
GUARD_KIND = "minRequestsQuery and minRequests guard query metrics only (PromQL)"
CLOUDWATCH_QUERY_KIND = "a CloudWatch query needs exactly one of expression or metricStat"
CLOUDWATCH_RETURN = "at least one CloudWatch query must return data (returnData: true, the default)"
CLOUDWATCH_PERIOD = "metricStat.period must be 1, 5, 10, 30 or a multiple of 60 seconds"
CLOUDWATCH_LOOKBACK = "cloudwatch.lookback must be at least 1m and at most 24h"
JOB_TIMEOUT = "job.timeout must be at least 1s and at most 6h"
METRIC_FAILURE_LIMIT = "failureLimit must be lower than count"
MIN_INTERVAL_SECONDS = 1
METRIC_INTERVAL = f"interval must be at least {MIN_INTERVAL_SECONDS}s and at most 1h"
"""A shorter interval is no measurement (Prometheus scrapes every few seconds) but a hot
loop of requests; an interval over an hour is a window nobody waits for."""
METRIC_MIN_REQUESTS = "minRequestsQuery and minRequests go together"
ANALYSIS_PROMETHEUS = "query metrics need analysis.prometheus.address"
INGRESS_HOST = (
    "ingress.host must be a lowercase DNS name such as shop.example.com "
    "(optionally *.example.com), without scheme, port or path"
)
HOST_PATTERN = re.compile(
    r"^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


STORED = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel)
"""An object as the API server stores it: what the operator does not read is ignored."""


class ObjectMeta(BaseModel):
    model_config = STORED

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class StoredObject(BaseModel):
    """apiVersion and metadata of one of the operator's kinds, as the API stores it."""

    model_config = STORED

    api_version: str = f"{GROUP}/{VERSION}"
    metadata: ObjectMeta


class Model(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Color(enum.StrEnum):
    """One of the two Deployments; `other` is the one that is not."""

    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class Phase(enum.StrEnum):
    """Where a BlueGreenApp stands in its release cycle. Each value says what is true."""

    PENDING = "Pending"
    """Nothing serves yet: the first colour is being deployed."""
    HEALTHY = "Healthy"
    """The active colour serves the stable revision; no release is in flight."""
    DEPLOYING = "Deploying"
    """The candidate colour is being rolled to the new revision; traffic is untouched."""
    ANALYZING = "Analyzing"
    """The candidate is saturated; pre-promotion checks run before the switch."""
    PAUSED = "Paused"
    """The release waits for a person: promote or abort."""
    OBSERVING = "Observing"
    """Traffic is on the candidate; the old colour is kept warm for a rollback."""
    ROLLING_BACK = "RollingBack"
    """Traffic is being moved back to the stable colour."""
    DEGRADED = "Degraded"
    """The last release failed; traffic is on the stable revision."""


IN_FLIGHT_PHASES = frozenset(
    {Phase.PENDING, Phase.DEPLOYING, Phase.ANALYZING, Phase.OBSERVING, Phase.ROLLING_BACK}
)


# ----------------------------------------------------------------------------- spec


_Named = TypeVar("_Named")


def unique_names(items: list[_Named], message: str) -> list[_Named]:
    """`items` when their `name`s differ (the CRD's list-map key: the API server answers
    "Duplicate value"), else ValueError(message)."""
    names = [getattr(i, "name", None) for i in items]
    if len(set(names)) != len(names):
        raise ValueError(message)
    return items


def cel(*rules: tuple[str, str]) -> ConfigDict:
    """Validation JSON Schema cannot say, as CEL rules the API server evaluates."""
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]
        },
    )


# Labels and annotations the user gives (pod metadata, the Services): bounded in number, and
# none of them the operator's own.
MAX_ROLE_KEYS = 32
"""Labels (and annotations) of activeMetadata/previewMetadata, service.labels/annotations: a
bound keeps the CEL rules that visit every key within the API server's cost budget."""

KeyMap = Annotated[dict[str, str], Field(max_length=MAX_ROLE_KEYS)]
"""Labels or annotations, at most MAX_ROLE_KEYS of them."""

RESERVED_PREFIX = "bluegreen.dev/"


def keys_rule(field: str, forbidden: tuple[str, ...]) -> str:
    """The CEL rule: no key of `self.<field>` is the operator's own or one of `forbidden`."""
    others = "".join(f" && k != '{f}'" for f in forbidden)
    return f"!has(self.{field}) || self.{field}.all(k, !k.startsWith('{RESERVED_PREFIX}'){others})"


def check_keys(keys: dict[str, str], forbidden: tuple[str, ...], message: str) -> None:
    """The model's twin of `keys_rule`."""
    if any(k.startswith(RESERVED_PREFIX) or k in forbidden for k in keys):
        raise ValueError(message)
