"""The running operator, built once at startup: the typed object behind kopf's `memo`.

    runtime = Runtime(Settings(), loop, peering)          # in kopf's startup handler
    runtime.app_event("MODIFIED", body)                   # from kopf's watch of the apps
    runtime.stop()                                        # in kopf's cleanup handler

It joins the watch caches (what passes read), the gateway (what they write), the scheduler
(when they run) and kopf's peering (whether this replica may run them at all). One pass is
`reconcile.reconcile`; this module only wires it, counts it and logs what it changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bluegreen.adapters.cache import (
    ANALYSIS_TEMPLATES,
    APPS,
    CLUSTER_ANALYSIS_TEMPLATES,
    CONFIG_MAPS,
    HTTP_ROUTES,
    SECRETS,
    WATCHED,
    CachedReader,
    ObjectCache,
)
from bluegreen.adapters.clock import SystemClock
from bluegreen.adapters.cloudwatch import CloudWatchProvider
from bluegreen.adapters.endpoints import EndpointPolicy
from bluegreen.adapters.k8s import KubernetesGateway, load_api_client
from bluegreen.adapters.promauth import Profile, load_profiles
from bluegreen.adapters.promcreds import PrometheusCredentials
from bluegreen.adapters.prometheus import HttpMetricsSource
from bluegreen.adapters.registry import EcrResolver
from bluegreen.adapters.sources import AnalysisSources
from bluegreen.adapters.watch import Watcher
from bluegreen.api import GROUP, BlueGreenAppStatus
from bluegreen.core import configs, naming, templates
from bluegreen.core.errors import TransientError
from bluegreen.core.ingress_guard import IngressPolicy
from bluegreen.runtime import notifications, reconcile, telemetry
from bluegreen.runtime.events import EventQueue
from bluegreen.runtime.peering import Peering
from bluegreen.runtime.scheduler import AppKey, Next, Scheduler
from bluegreen.runtime.settings import Settings

log = logging.getLogger("bluegreen")

TRANSIENT_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0


def backoff(attempt: int) -> float:
    """2 s, 4 s, 8 s, ... at most a minute: a failing API call is retried, not stormed."""
    return float(min(TRANSIENT_RETRY_SECONDS * 2 ** max(attempt, 0), MAX_RETRY_SECONDS))


@dataclass(frozen=True)
class PeeringSettings:
    """kopf's peering, as the command line set it (`--peering`, `--standalone`, `-A`)."""

    name: str
    clusterwide: bool
    priority: int
    standalone: bool


class Runtime:
    def __init__(
        self, settings: Settings, loop: asyncio.AbstractEventLoop, peering: PeeringSettings
    ) -> None:
        self.settings = settings
        credentials = PrometheusCredentials(prometheus_profiles(settings))
        api = load_api_client(settings.kubeconfig, pool_size=settings.workers)
        kinds = [*WATCHED, SECRETS] if settings.track_secrets else [*WATCHED]
        self.config_users = ConfigUsers()
        self.cache = ObjectCache(on_change=self.object_changed, watched=kinds)
        self.reader = CachedReader(self.cache)
        self.gateway = KubernetesGateway(
            api,
            timeout=settings.api_timeout_seconds,
            on_request=telemetry.API_REQUESTS.inc,
            cache=self.cache,
        )
        self.events = EventQueue(self.gateway, on_dropped=telemetry.EVENTS_DROPPED.inc)
        self.peering = Peering(
            self.cache,
            name=peering.name,
            clusterwide=peering.clusterwide,
            priority=peering.priority,
            standalone=peering.standalone,
        )
        watched = kinds if peering.standalone else [*kinds, self.peering.kind]
        namespaces: list[str | None] = list(settings.watch_namespaces) or [None]
        self.cache.watch_namespaces(settings.watch_namespaces)
        # A namespaced install watches its namespaces only: no cluster-scoped kind (the
        # cache takes those as absent).
        self.watchers = [
            Watcher(
                api,
                kind,
                self.cache,
                namespace=ns,
                on_request=telemetry.API_REQUESTS.inc,
                on_recovered=self._api_recovered,
            )
            for kind in watched
            if not (kind.cluster_scoped and settings.watch_namespaces)
            for ns in ([None] if kind.cluster_scoped else namespaces)
        ]
        self.scheduler = Scheduler(
            loop,
            ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="pass"),
            self.run_pass,
            ready=self.cache.synced,
            active=self.peering.active,
            on_error=self.failed,
            burst=settings.pass_burst,
            rate=settings.pass_rate,
            on_throttled=telemetry.PASSES_THROTTLED.inc,
        )
        policy = EndpointPolicy(
            prometheus=settings.analysis_prometheus_allowed,
            web=settings.analysis_web_allowed,
            notifications=settings.notifications_allowed,
        )
        self.metrics = AnalysisSources(
            HttpMetricsSource(
                timeout=settings.analysis_timeout_seconds, policy=policy, credentials=credentials
            ),
            CloudWatchProvider(
                timeout_seconds=settings.analysis_timeout_seconds,
                endpoint_url=settings.cloudwatch_endpoint_url,
                max_attempts=settings.cloudwatch_max_attempts,
            ),
        )
        self.notifier, routing = notifications.build(settings, policy, self.events)
        self.defaults = reconcile.AppDefaults(
            service_monitor_labels=dict(settings.service_monitor_labels),
            notifications=routing,
        )
        self.images = EcrResolver(
            ttl_seconds=settings.image_cache_seconds,
            timeout_seconds=settings.registry_timeout_seconds,
        )
        self.ingress_policy = IngressPolicy(
            classes=settings.ingress_allowed_classes,
            annotations=settings.ingress_allowed_annotations,
            hosts=settings.ingress_allowed_hosts,
        )
        self.clock = SystemClock()
        self.failures: dict[AppKey, int] = {}

    def start(self) -> None:
        self.events.start()
        self.notifier.start()
        for watcher in self.watchers:
            watcher.start()
        threading.Thread(target=self._resume_when_synced, name="sync", daemon=True).start()

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
        self.notifier.stop(notifications.STOP_SECONDS)  # its failures are Events: first
        self.events.stop()

    def _resume_when_synced(self) -> None:
        """Passes wait for the first list of every kind; then what was asked meanwhile runs."""
        while not self.cache.synced():
            threading.Event().wait(0.05)
        log.info("watch caches filled: %s", self.cache.counts())
        self.scheduler.resume()

    # ------------------------------------------------------------------ wake-ups

    def app_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        """An event of a BlueGreenApp from kopf's watch. A pass runs when the spec changed, a
        person's request arrived, or the app is new or going; not for status-only changes
        (which are the operator's own writes)."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self.config_users.update(key, None if type_ == "DELETED" else body)
        if type_ == "DELETED":
            self.cache.remove(APPS.name, dict(body))
            self.scheduler.forget(key)
            telemetry.forget(*key)
            return
        before = self.cache.get(APPS.name, *key)
        self.cache.upsert(APPS.name, dict(body))
        if _worth_a_pass(before, body):
            self.scheduler.wake(key, "app")

    def object_changed(self, namespace: str, app: str | None, kind: str, name: str) -> None:
        """Something of an app changed (a watch thread): look at the app again. An HTTPRoute
        or an analysis template belongs to its author; the apps that name it are woken."""
        if kind in (CONFIG_MAPS.name, SECRETS.name):
            for user in self.config_users.of(namespace, kind, name) | ({app} if app else set()):
                self.scheduler.wake((namespace, user), "object")
            return
        if kind in (ANALYSIS_TEMPLATES.name, CLUSTER_ANALYSIS_TEMPLATES.name):
            self._wake_users_of(kind == CLUSTER_ANALYSIS_TEMPLATES.name, namespace, name)
            return
        if kind == HTTP_ROUTES.name:
            for body in self.cache.all(APPS.name):
                meta = body.get("metadata") or {}
                routing = ((body.get("spec") or {}).get("trafficRouting") or {}).get("gatewayAPI")
                if meta.get("namespace") == namespace and (routing or {}).get("httpRoute") == name:
                    self.scheduler.wake((namespace, str(meta.get("name"))), "object")
            return
        if app and self.cache.get(APPS.name, namespace, app) is not None:
            self.scheduler.wake((namespace, app), "object")

    def _wake_users_of(self, cluster: bool, namespace: str, name: str) -> None:
        """A template was created, changed or deleted: wake the apps that name it (of its
        namespace, or of any namespace for a ClusterAnalysisTemplate)."""
        for body in self.cache.all(APPS.name):
            meta = body.get("metadata") or {}
            if not cluster and meta.get("namespace") != namespace:
                continue
            if (cluster, name) in templates.referenced(body.get("spec") or {}):
                self.scheduler.wake((str(meta.get("namespace")), str(meta.get("name"))), "object")

    # ------------------------------------------------------------------ passes

    def run_pass(self, key: AppKey, reasons: frozenset[str]) -> Next:
        """One pass of one app, in a worker thread (the scheduler runs one per app)."""
        telemetry.PASSES.labels(trigger=telemetry.trigger_of(reasons)).inc()
        with telemetry.reconcile_timer():
            result = reconcile.reconcile(
                key[0],
                key[1],
                self.reader,
                self.gateway,
                self.clock,
                events=self.events,
                metrics=self.metrics,
                resolver=self.images,
                ingress_policy=self.ingress_policy,
                defaults=self.defaults,
                notices=self.notifier,
            )
        self.failures.pop(key, None)
        if not result.exists:
            telemetry.forget(*key)
            return Next(forget=True)
        if result.plan is not None:
            telemetry.observe_pass(key[0], key[1], result.previous, result.plan.status)
            _log_transition(key, result.previous, result.plan.status)
        return Next(after=result.requeue_after)

    def _api_recovered(self) -> None:
        """A watch listed again after failing (the API server was down or refused)."""
        self.scheduler.retry_failed()

    def failed(self, key: AppKey, err: BaseException) -> float:
        """A pass raised: retry it with a growing delay."""
        attempt = self.failures.get(key, 0)
        self.failures[key] = attempt + 1
        delay = backoff(attempt)
        kind = "transient" if isinstance(err, TransientError) else "unexpected"
        telemetry.RECONCILE_ERRORS.labels(kind=kind).inc()
        if isinstance(err, TransientError):
            log.warning("%s/%s: %s; retrying in %.0fs", *key, err, delay)
        else:
            log.exception("%s/%s: pass failed; retrying in %.0fs", *key, delay, exc_info=err)
        return delay


class ConfigUsers:
    """Which apps reference a ConfigMap or Secret (spec.configTracking), by namespace and
    name: a change of one wakes exactly those apps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[AppKey, frozenset[tuple[str, str]]] = {}
        self._users: dict[tuple[str, str, str], set[str]] = {}

    def update(self, key: AppKey, body: Mapping[str, Any] | None) -> None:
        """The app's body as it is now (None: gone)."""
        spec = (body or {}).get("spec") or {}
        refs: frozenset[tuple[str, str]] = frozenset()
        if ((spec.get("configTracking") or {}).get("enabled")) is True:
            template = spec.get("template") or {}
            refs = frozenset((r.kind, r.name) for r in configs.references(template))
        with self._lock:
            old = self._refs.pop(key, frozenset())
            for kind, name in old - refs:
                users = self._users.get((key[0], kind, name))
                if users is not None:
                    users.discard(key[1])
                    if not users:
                        del self._users[(key[0], kind, name)]
            for kind, name in refs:
                self._users.setdefault((key[0], kind, name), set()).add(key[1])
            if refs:
                self._refs[key] = refs

    def of(self, namespace: str, kind: str, name: str) -> set[str]:
        with self._lock:
            return set(self._users.get((namespace, kind, name), ()))


def prometheus_profiles(settings: Settings) -> tuple[Profile, ...]:
    """The administrator's Prometheus credentials (AuthConfigError when they are wrong),
    logged without secrets: what goes where."""
    profiles = load_profiles(
        addresses=settings.prometheus_auth_addresses,
        bearer_token_file=settings.prometheus_bearer_token_file,
        ca_file=settings.prometheus_ca_file,
        sigv4=settings.prometheus_sigv4,
        sigv4_region=settings.prometheus_sigv4_region,
        auth_file=settings.prometheus_auth_file,
    )
    for profile in profiles:
        log.info("Prometheus credentials: %s", profile.describe())
        if any(rule.scheme == "http" for rule in profile.rules) and (
            profile.bearer_token_file or profile.headers
        ):
            log.warning("Prometheus credentials sent without TLS: %s", profile.describe())
    return profiles


def _worth_a_pass(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """New, going, a new spec (generation), or a change of the operator's own annotations
    (a person's request, consent to adopt)."""
    if before is None:
        return True
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    if new.get("deletionTimestamp") or old.get("generation") != new.get("generation"):
        return True
    if naming.ANNOTATION_REQUEST in (new.get("annotations") or {}):
        return True
    return _ours(old) != _ours(new)


def _ours(meta: Mapping[str, Any]) -> dict[str, str]:
    annotations = meta.get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith(f"{GROUP}/")}


def _log_transition(
    key: AppKey, before: BlueGreenAppStatus | None, after: BlueGreenAppStatus
) -> None:
    """One INFO line per release transition, with the app, revision, phase and reason."""
    if before is not None and before.phase is after.phase:
        return
    release = after.release
    log.info(
        "%s/%s is %s",
        *key,
        after.phase.value,
        extra={
            "app": f"{key[0]}/{key[1]}",
            "revision": release.revision if release else after.stable_revision,
            "phase": after.phase.value,
            "previous_phase": before.phase.value if before is not None else None,
            "reason": release.reason if release else "",
            "active_color": after.active_color.value if after.active_color else None,
        },
    )
