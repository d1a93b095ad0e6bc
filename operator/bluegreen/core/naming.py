"""Names and labels of everything the operator owns. One word, one meaning."""

from __future__ import annotations

from bluegreen.api import GROUP, Color

MANAGER = "bluegreen-operator"  # the server-side apply field manager

LABEL_APP = f"{GROUP}/app"  # the app a pod belongs to: what every selector selects by
LABEL_NAME = "app.kubernetes.io/name"  # never selected on; the template may set it on pods
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COLOR = f"{GROUP}/color"
LABEL_REVISION = f"{GROUP}/revision"
LABEL_ROLE = f"{GROUP}/role"  # active | preview | metrics on Services; analysis on Jobs
LABEL_ANALYSIS_WINDOW = f"{GROUP}/analysis-window"  # the window an analysis Job measures
LABEL_METRIC = f"{GROUP}/metric"  # the job metric an analysis Job measures
ROLE_ANALYSIS = "analysis"

ANNOTATION_IMAGE = f"{GROUP}/image"  # the image as the user wrote it (tag), on Deployments
ANNOTATION_TEMPLATE = f"{GROUP}/template"
"""On each colour's Deployment: the app's pod template as written (JSON) for the revision it
runs, so `kubectl bluegreen undo` can set it back on the app exactly."""
ANNOTATION_ANTI_AFFINITY = f"{GROUP}/anti-affinity"
"""On each colour's Deployment, when the app sets strategy.antiAffinity: the setting (JSON) its
revision was computed with, so `kubectl bluegreen undo` can check a kept template's revision."""
ANNOTATION_CONFIG = f"{GROUP}/config"
"""On each colour's Deployment of a config-tracking app: the content digests of the
ConfigMaps and Secrets its revision tracks (JSON, `Kind/name` -> digest), part of the
revision with the template (`kubectl bluegreen undo` checks both)."""
ANNOTATION_COPY_OF = f"{GROUP}/copy-of"
"""On a config copy: the name of the ConfigMap or Secret it copies."""
LABEL_CONFIG_COPY = f"{GROUP}/config-copy"
"""On a config copy ("true"): an immutable copy of a ConfigMap or Secret for one revision."""
ANNOTATION_REQUEST = f"{GROUP}/request"  # promote | abort | retry, set by a person on the app
ANNOTATION_ADOPT = f"{GROUP}/adopt"
"""On the app, "true": take over existing objects of the names the app owns (a migration
from hand-made manifests). Without it such objects are never written."""

ENV_COLOR = "APP_COLOR"
ENV_VERSION = "APP_VERSION"


def deployment(app: str, color: Color) -> str:
    return f"{app}-{color.value}"


def active_service(app: str) -> str:
    return app


def preview_service(app: str) -> str:
    return f"{app}-preview"


def metrics_service(app: str) -> str:
    return f"{app}-metrics"


def legacy_metrics_service(app: str) -> str:
    """The headless Service over the pods of Deployments that an earlier operator version
    made (they select `app.kubernetes.io/name`), while the app still has one: with
    `<app>-metrics` it covers both colours during the migration. At most 7 characters are
    added, as `MAX_NAME_LENGTH` allows."""
    return f"{app}-legacy"


def ingress(app: str) -> str:
    return app


def canary_ingress(app: str) -> str:
    return f"{app}-canary"


CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def service_monitor(app: str) -> str:
    return app


def selector(app: str, color: Color) -> dict[str, str]:
    """Pods of one colour of one app: the operator's own labels only, so the template may
    carry any `app.kubernetes.io/*` label (a Helm chart's selectorLabels)."""
    return {LABEL_APP: app, LABEL_COLOR: color.value}


def app_selector(app: str) -> dict[str, str]:
    """Pods of both colours of one app."""
    return {LABEL_APP: app}


def legacy_selector(app: str, color: Color) -> dict[str, str]:
    """The selector of a Deployment that an earlier operator version made. A Deployment's
    selector cannot change: such a Deployment keeps it until its colour's next release
    replaces it (docs/upgrade.md)."""
    return {LABEL_NAME: app, LABEL_COLOR: color.value}


def legacy_app_selector(app: str) -> dict[str, str]:
    """Pods of both colours as earlier operator versions labelled them."""
    return {LABEL_NAME: app}


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def owned_labels(app: str) -> dict[str, str]:
    """The metadata labels of every object the operator owns (not of its pods)."""
    return {LABEL_NAME: app, LABEL_APP: app, LABEL_MANAGED_BY: MANAGER}
