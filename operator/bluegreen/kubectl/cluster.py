"""The plugin's access to the cluster: one kubeconfig, clear errors, exit codes.

Every API call of `kubectl bluegreen` goes through `Cluster`; API errors become `CliError`s
with the exit code the README documents.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bluegreen.api import GROUP, PLURAL, VERSION
from bluegreen.core.naming import ANNOTATION_REQUEST
from bluegreen.kubectl import format as fmt
from bluegreen.kubectl import timeline

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TIMEOUT = 4
EXIT_UNREACHABLE = 5
EXIT_UNEXPECTED = 6

FIELD_MANAGER = "kubectl-bluegreen"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


T = TypeVar("T")


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ----------------------------------------------------------------------------- cluster


class Cluster:
    """The few API calls the plugin makes, with errors turned into CliError."""

    def __init__(self, api_client: client.ApiClient, request_timeout: float) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.apps_api = client.AppsV1Api(api_client)
        self.host = str(api_client.configuration.host)
        self.timeout = request_timeout

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApiException as err:
            raise CliError(EXIT_NOT_FOUND, f"error: {what}: {_api_message(err)}") from err
        except (HTTPError, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise CliError(
                EXIT_UNREACHABLE,
                f"error: cannot reach the Kubernetes API server at {self.host}: {reason}",
            ) from err

    def get_app(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._call(
                f'reading {fmt.KIND_TEXT} "{name}"',
                lambda: _as_dict(
                    self.api.get_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
                    )
                ),
            )
        except CliError as err:
            cause = err.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise CliError(EXIT_NOT_FOUND, _not_found(cause, name, namespace)) from cause
            raise

    def list_apps(self, namespace: str | None) -> list[dict[str, Any]]:
        def call() -> Any:
            if namespace is None:
                return self.api.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, _request_timeout=self.timeout
                )
            return self.api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _request_timeout=self.timeout
            )

        body = _as_dict(self._call(f"listing {PLURAL}.{GROUP}", call))
        items = [_as_dict(i) for i in body.get("items") or []]
        return sorted(
            items,
            key=lambda a: (a["metadata"].get("namespace", ""), a["metadata"].get("name", "")),
        )

    def set_request(self, namespace: str, name: str, request: str) -> dict[str, Any]:
        patch = {"metadata": {"annotations": {ANNOTATION_REQUEST: request}}}
        try:
            return self._patch_app(
                f'requesting {request} of {fmt.KIND_TEXT} "{name}"',
                namespace,
                name,
                patch,
                "application/merge-patch+json",
            )
        except CliError as err:
            cause = err.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise CliError(EXIT_NOT_FOUND, _not_found(cause, name, namespace)) from cause
            raise

    def set_template(
        self, namespace: str, name: str, resource_version: str, template: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace spec.template, only if the app is still at `resource_version` (a JSON
        patch with a test: no change made meanwhile is overwritten)."""
        patch: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "replace", "path": "/spec/template", "value": dict(template)},
        ]
        return self._patch_app(
            f'changing the template of {fmt.KIND_TEXT} "{name}"',
            namespace,
            name,
            patch,
            "application/json-patch+json",
        )

    def _patch_app(
        self, doing: str, namespace: str, name: str, patch: Any, content_type: str
    ) -> dict[str, Any]:
        return self._call(
            doing,
            lambda: _as_dict(
                self.api.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    patch,
                    field_manager=FIELD_MANAGER,
                    _content_type=content_type,
                    _request_timeout=self.timeout,
                )
            ),
        )

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment as JSON, or None when there is none."""

        def call() -> Any:
            response: Any = self.apps_api.read_namespaced_deployment(
                name, namespace, _preload_content=False, _request_timeout=self.timeout
            )
            return json.loads(response.data)

        try:
            return _as_dict(self._call(f'reading Deployment "{name}"', call))
        except CliError as err:
            cause = err.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                return None
            raise

    def patch_deployment(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self._call(
            f'patching Deployment "{name}"',
            lambda: self.apps_api.patch_namespaced_deployment(
                name,
                namespace,
                dict(patch),
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
                _request_timeout=self.timeout,
                _preload_content=False,
            ),
        )

    def watch_app(
        self, namespace: str, name: str, resource_version: str, seconds: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, app) for every change of the app after `resource_version`, for at most
        `seconds` (the API server closes the watch then)."""
        w = watch.Watch()  # type: ignore[no-untyped-call]
        stream = w.stream(  # type: ignore[no-untyped-call]
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, math.ceil(seconds)),
            allow_watch_bookmarks=False,
        )
        try:
            while True:
                event = self._call(f'watching {fmt.KIND_TEXT} "{name}"', lambda: next(stream, None))
                if event is None:
                    return
                obj = event.get("raw_object") or event.get("object")
                yield str(event.get("type")), _as_dict(obj)
        finally:
            w.stop()  # type: ignore[no-untyped-call]

    def events(self, app: Mapping[str, Any], quiet: bool = False) -> list[dict[str, Any]]:
        """The events.k8s.io/v1 Events regarding this app (this uid), oldest first.

        Events are an extra: when they cannot be read (RBAC, say) a warning is printed, or
        nothing with `quiet`, and the command goes on without them."""
        try:
            return self._events(app)
        except CliError as err:
            if err.code != EXIT_NOT_FOUND:
                raise
            if not quiet:
                warning = f"warning: {err.message.removeprefix('error: ')}"
                print(fmt.terminal(warning), file=sys.stderr)
            return []

    def _events(self, app: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = app["metadata"]
        selector = f"regarding.name={meta['name']},regarding.kind={app.get('kind', 'BlueGreenApp')}"
        body = _as_dict(
            self._call(
                f'listing the events of {fmt.KIND_TEXT} "{meta["name"]}"',
                lambda: self.api.list_namespaced_custom_object(
                    "events.k8s.io",
                    "v1",
                    meta["namespace"],
                    "events",
                    field_selector=selector,
                    _request_timeout=self.timeout,
                ),
            )
        )
        uid = meta.get("uid")
        out = []
        for item in body.get("items") or []:
            ev = _as_dict(item)
            regarding = ev.get("regarding") or {}
            if uid and regarding.get("uid") and regarding.get("uid") != uid:
                continue  # an earlier app of the same name
            out.append(ev)
        return sorted(out, key=lambda e: timeline.event_time(e) or "")


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise CliError(EXIT_NOT_FOUND, f"error: unexpected answer from the API server: {value!r}")


def _api_message(err: ApiException) -> str:
    try:
        body = json.loads(err.body) if err.body else {}
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return f"{body['message']} (HTTP {err.status})"
    return f"HTTP {err.status} {err.reason or ''}".strip()


def _not_found(err: ApiException, name: str, namespace: str) -> str:
    """A missing app, or a cluster that does not serve BlueGreenApps at all."""
    try:
        body = json.loads(err.body) if err.body else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("reason") == "NotFound" and body.get("details"):
        return f'error: {fmt.KIND_TEXT} "{name}" not found in namespace "{namespace}"'
    return (
        f"error: the server does not serve {PLURAL}.{GROUP}/{VERSION} "
        "(is the BlueGreenApp CRD installed?)"
    )


# ----------------------------------------------------------------------------- config


def connect(
    kubeconfig: str | None, context: str | None, request_timeout: float
) -> tuple[Cluster, str]:
    """The API client and the default namespace, as kubectl finds them: --kubeconfig,
    else KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount."""
    cfg = client.Configuration()
    # One retry at most: a cluster that does not answer should fail fast, as kubectl does.
    cfg.retries = 1
    try:
        if kubeconfig and not Path(kubeconfig).expanduser().is_file():
            raise config.ConfigException(f"the kubeconfig {kubeconfig} does not exist")
        if (
            kubeconfig
            or os.environ.get("KUBECONFIG")
            or Path("~/.kube/config").expanduser().exists()
        ):
            contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            chosen = current
            if context is not None:
                chosen = next((c for c in contexts if c.get("name") == context), None)
                if chosen is None:
                    raise config.ConfigException(f'context "{context}" does not exist')
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            namespace = (
                SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
                if SERVICE_ACCOUNT_NAMESPACE.exists()
                else "default"
            )
        else:
            raise config.ConfigException(
                "no kubeconfig: use --kubeconfig, set KUBECONFIG, or write ~/.kube/config"
            )
    except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as err:
        raise CliError(EXIT_UNREACHABLE, f"error: no usable cluster configuration: {err}") from err
    return Cluster(client.ApiClient(cfg), request_timeout), str(namespace)
