"""The kinds the operator watches (or reads from its cache): where each lives in the API,
which objects are the operator's, what of each it keeps (trimmed to the fields the decision
reads, by `bluegreen.adapters.trim`), and which app an object belongs to.
`bluegreen.adapters.cache` holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bluegreen.adapters import trim
from bluegreen.adapters.trim import Obj
from bluegreen.api import GROUP, PLURAL, VERSION
from bluegreen.api.v1alpha1 import (
    CLUSTER_TEMPLATE_KIND,
    CLUSTER_TEMPLATE_PLURAL,
    TEMPLATE_KIND,
    TEMPLATE_PLURAL,
)
from bluegreen.core import configs, naming


@dataclass(frozen=True)
class Kind:
    """A kind the operator watches: where it lives in the API, which objects are its, what
    to keep of each, and which app an object belongs to."""

    name: str
    api: str  # "/apis/apps/v1" or "/api/v1"
    plural: str
    selector: str
    trim: Callable[[Obj], Obj]
    app_of: Callable[[Obj], str | None]
    index_of: Callable[[Obj], str | None] = lambda _: None
    optional: bool = False
    """A kind whose API may not be served (a CRD not installed): absent, not an error."""
    cluster_scoped: bool = False
    """Listed and watched once for the whole cluster; a namespaced install, which reads
    nothing cluster-scoped, takes it as absent."""
    forbidden_is_absent: bool = False
    """A list the operator has no right to make (a namespaced install) is taken as an
    absent kind, not as an error."""

    def path(self, namespace: str | None = None) -> str:
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{self.api}{where}/{self.plural}"


def _owner_app(obj: Obj) -> str | None:
    """The BlueGreenApp that owns `obj` (its controller ownerReference)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "BlueGreenApp":
            return str(ref.get("name"))
    return None


def _label(*names: str) -> Callable[[Obj], str | None]:
    """The value of the first of `names` the object's labels have."""

    def read(obj: Obj) -> str | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        value = next((labels[n] for n in names if n in labels), None)
        return str(value) if value is not None else None

    return read


_APP_OF_LABELS = _label(naming.LABEL_APP, naming.LABEL_NAME)
"""The app of a pod (or of an EndpointSlice, by its Service's labels): `bluegreen.dev/app`;
objects an earlier operator version made carry only `app.kubernetes.io/name`, and its
pods keep running until their colour's next release (docs/upgrade.md)."""


_OWNED = f"{naming.LABEL_MANAGED_BY}={naming.MANAGER}"

DEPLOYMENTS = Kind(
    "Deployment", "/apis/apps/v1", "deployments", _OWNED, trim.deployment, _owner_app
)
SERVICES = Kind("Service", "/api/v1", "services", _OWNED, trim.service, _owner_app)
PODS = Kind(
    "Pod",
    "/api/v1",
    "pods",
    naming.LABEL_COLOR,  # every pod of every app carries its colour
    trim.pod,
    _APP_OF_LABELS,
    index_of=_APP_OF_LABELS,
)
ENDPOINT_SLICES = Kind(
    "EndpointSlice",
    "/apis/discovery.k8s.io/v1",
    "endpointslices",
    _OWNED,  # the EndpointSlice controller copies the Service's labels
    trim.endpoint_slice,
    _APP_OF_LABELS,
    index_of=_label("kubernetes.io/service-name"),
)
PDBS = Kind(
    "PodDisruptionBudget",
    "/apis/policy/v1",
    "poddisruptionbudgets",
    _OWNED,
    trim.budget,
    _owner_app,
    forbidden_is_absent=True,
)
"""The colours' budgets (spec.podDisruptionBudget). Without the right to list them (the RBAC
of an older chart), they are absent: apps that ask for one retry writing it, the others go
on."""
INGRESSES = Kind(
    "Ingress", "/apis/networking.k8s.io/v1", "ingresses", _OWNED, trim.with_spec, _owner_app
)
SERVICE_MONITORS = Kind(
    "ServiceMonitor",
    "/apis/monitoring.coreos.com/v1",
    "servicemonitors",
    _OWNED,
    trim.with_spec,
    _owner_app,
    optional=True,
)

HTTP_ROUTES = Kind(
    "HTTPRoute",
    "/apis/gateway.networking.k8s.io/v1",
    "httproutes",
    "",  # the user's routes: not labelled by the operator (few, and trimmed to their rules)
    trim.route,
    lambda _: None,
    optional=True,
)
"""The HTTPRoutes apps route through (spec.trafficRouting.gatewayAPI): owned by their
authors, so they carry no label of the operator's; a change wakes the apps that name it."""

ANALYSIS_TEMPLATES = Kind(
    TEMPLATE_KIND,
    f"/apis/{GROUP}/{VERSION}",
    TEMPLATE_PLURAL,
    "",  # the users' templates: not labelled by the operator
    trim.template,
    lambda _: None,
    optional=True,
    forbidden_is_absent=True,
)
CLUSTER_ANALYSIS_TEMPLATES = Kind(
    CLUSTER_TEMPLATE_KIND,
    f"/apis/{GROUP}/{VERSION}",
    CLUSTER_TEMPLATE_PLURAL,
    "",
    trim.template,
    lambda _: None,
    optional=True,
    cluster_scoped=True,
    forbidden_is_absent=True,
)
"""The analysis templates apps name: a change wakes the apps that name it. Without the
right to list them (RBAC of an older install), they are absent: the apps that name one
wait with AnalysisTemplateNotFound, the others go on."""

JOBS = Kind(
    "Job",
    "/apis/batch/v1",
    "jobs",
    f"{_OWNED},{naming.LABEL_ROLE}={naming.ROLE_ANALYSIS}",
    trim.job,
    _owner_app,
    index_of=_owner_app,
)
"""The analysis Jobs of job metrics: a finished Job wakes its app at once."""


def _copy_of_app(obj: Obj) -> str | None:
    """The app of one of the operator's config copies; None for any other object."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(naming.LABEL_CONFIG_COPY) != "true":
        return None
    return _owner_app(obj)


CONFIG_MAPS = Kind(
    configs.CONFIG_MAP,
    "/api/v1",
    "configmaps",
    "",  # the users' ConfigMaps: an app may reference any of its namespace
    trim.config,
    _copy_of_app,
    index_of=_copy_of_app,
    forbidden_is_absent=True,
)
"""ConfigMaps, for config tracking: a change wakes the apps that reference it. Kept as a
digest each. Without the right to list them (RBAC of an older install) they are absent:
the apps that track config wait with ConfigMissing."""
SECRETS = Kind(
    configs.SECRET,
    "/api/v1",
    "secrets",
    "",
    trim.config,
    _copy_of_app,
    index_of=_copy_of_app,
    forbidden_is_absent=True,
)
"""Secrets, watched only when the administrator allows tracking them
(BLUEGREEN_TRACK_SECRETS): kept as a digest each, never their data."""

APPS = Kind("BlueGreenApp", f"/apis/{GROUP}/{VERSION}", PLURAL, "", lambda o: o, _label(""))
"""Apps are not watched here (kopf watches them); the cache keeps their latest bodies."""


def _nobody(_: Obj) -> str | None:
    return None


CLUSTER_PEERINGS = Kind(
    "ClusterKopfPeering",
    "/apis/kopf.dev/v1",
    "clusterkopfpeerings",
    "",
    trim.peering,
    _nobody,
    optional=True,
)
PEERINGS = Kind(
    "KopfPeering", "/apis/kopf.dev/v1", "kopfpeerings", "", trim.peering, _nobody, optional=True
)
"""kopf's peering records (who else runs): read to know whether this replica is active.
Optional: without kopf's peering CRDs kopf runs standalone, and so does the operator."""

WATCHED = (
    DEPLOYMENTS,
    SERVICES,
    PODS,
    ENDPOINT_SLICES,
    PDBS,
    INGRESSES,
    SERVICE_MONITORS,
    HTTP_ROUTES,
    ANALYSIS_TEMPLATES,
    CLUSTER_ANALYSIS_TEMPLATES,
    JOBS,
    CONFIG_MAPS,
)
KINDS = {k.name: k for k in (*WATCHED, SECRETS, APPS, CLUSTER_PEERINGS, PEERINGS)}
