"""What an app may put into the Ingress the operator writes for it: the administrator's
allow-lists, never the app author's choice.

The operator writes `spec.ingress` into an Ingress with its own rights, and an ingress
controller turns that Ingress into proxy configuration for every tenant of the cluster.
ingress-nginx's annotations have a long record of letting one Ingress change the proxy for
all (`*-snippet`, CVE-2021-25742; `auth-url` and the mirror annotations, CVE-2025-1974 and
its kin). So what an app asks for is checked against the operator's settings
(BLUEGREEN_INGRESS_ALLOWED_*, chart values `ingressGuard.*`) before any Ingress is written:

    policy = IngressPolicy(classes=("nginx",),
                           annotations=("nginx.ingress.kubernetes.io/proxy-*",))
    check(policy, app.spec.ingress, "shop")   # (): admitted; else one Refusal per field

- className: exact IngressClass names, or `*` for any. Empty (the default): an app may not
  name a class, and its Ingress gets the cluster's default IngressClass.
- annotation keys: exact keys or patterns where `*` stands for any characters. Empty (the
  default): none besides the ones the operator writes itself. Keys that write raw proxy
  configuration or were the way in of known CVEs (`EXACT_ONLY`) are allowed only by their
  exact name, never through a pattern; the canary keys are the operator's, never the app's.
- host: exact names, `*.example.com` (any name under it) or `*` (any, the default);
  `{namespace}` in a rule stands for the app's namespace (`*.{namespace}.apps.example.com`).
  A wildcard host of an app (`*.shop.example.com`) needs a rule that covers all of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.api.text import clip, printable, readable
from bluegreen.api.v1alpha1 import IngressSpec

CLASSES_SETTING = "BLUEGREEN_INGRESS_ALLOWED_CLASSES"
ANNOTATIONS_SETTING = "BLUEGREEN_INGRESS_ALLOWED_ANNOTATIONS"
HOSTS_SETTING = "BLUEGREEN_INGRESS_ALLOWED_HOSTS"
CHART_VALUES = {
    CLASSES_SETTING: "ingressGuard.allowedClasses",
    ANNOTATIONS_SETTING: "ingressGuard.allowedAnnotations",
    HOSTS_SETTING: "ingressGuard.allowedHosts",
}

ANY = "*"
NGINX = "nginx.ingress.kubernetes.io/"
EXACT_ONLY = (
    re.compile(r".*snippet$"),  # configuration-, server-, stream-, modsecurity-snippet ...
    re.compile(re.escape(NGINX) + r"(auth-url|auth-tls-match-cn|mirror-target|mirror-host)$"),
)
"""Keys a pattern never allows: they write raw proxy configuration, or were the way in of
known ingress-nginx CVEs. An administrator who wants one names it exactly."""
OPERATOR_KEYS = re.compile(re.escape(NGINX) + r"canary(-.*)?$")
"""The canary annotations: the operator writes them on the canary Ingress itself."""
LISTED = 10
"""Refused values a message names; more are counted ("and 1990 more")."""
VALUE_LIMIT = 120
"""Characters of one refused value in a message (an annotation key has no length limit)."""


@dataclass(frozen=True)
class IngressPolicy:
    classes: tuple[str, ...] = ()
    """IngressClass names apps may set in spec.ingress.className (`*`: any). Empty: apps
    leave className unset, and get the cluster's default IngressClass."""
    annotations: tuple[str, ...] = ()
    """Annotation keys apps may set in spec.ingress.annotations: exact keys or patterns
    with `*`. Empty: none."""
    hosts: tuple[str, ...] = (ANY,)
    """Hosts apps may route: exact names, `*.domain` (any name under it), `*` (any);
    `{namespace}` is the app's namespace."""


@dataclass(frozen=True)
class Refusal:
    """One field of spec.ingress the policy refuses, and the setting that would allow it."""

    field: str
    """`className`, `annotations` or `host`."""
    values: tuple[str, ...]
    """What the app asked for and may not have (annotation keys, a class, a host)."""
    setting: str
    """The operator setting that decides it (one of the *_SETTING names), or "" when no
    setting can allow it."""
    allowed: tuple[str, ...]
    """What the setting allows now."""
    why: str = ""

    @property
    def message(self) -> str:
        values = _listing(self.values)
        if not self.setting:
            return f"spec.ingress.{self.field} {values}: {self.why}"
        now = ", ".join(self.allowed) if self.allowed else "none"
        text = (
            f"spec.ingress.{self.field} {values} not allowed by the operator's "
            f"{self.setting} (chart value {CHART_VALUES[self.setting]}; now: {now})"
        )
        return f"{text}; {self.why}" if self.why else text


def check(policy: IngressPolicy, ingress: IngressSpec, namespace: str) -> tuple[Refusal, ...]:
    """Every part of `ingress` the policy refuses; empty when the Ingress may be written."""
    refusals = []
    cls = _check_class(policy, ingress.class_name)
    if cls is not None:
        refusals.append(cls)
    reserved = sorted(k for k in ingress.annotations if OPERATOR_KEYS.match(k))
    if reserved:
        refusals.append(
            Refusal(
                "annotations",
                tuple(reserved),
                "",
                (),
                "the canary annotations are the operator's (strategy.canary sets them)",
            )
        )
    unlisted = sorted(
        k
        for k in ingress.annotations
        if not OPERATOR_KEYS.match(k) and not annotation_allowed(policy.annotations, k)
    )
    if unlisted:
        exact = [k for k in unlisted if _exact_only(k)]
        why = (
            f"{_listing(exact)} only by exact name, never through a pattern"
            if exact and policy.annotations
            else ""
        )
        refusals.append(
            Refusal("annotations", tuple(unlisted), ANNOTATIONS_SETTING, policy.annotations, why)
        )
    if not host_allowed(policy.hosts, ingress.host, namespace):
        rules = tuple(r.replace("{namespace}", namespace) for r in policy.hosts)
        refusals.append(Refusal("host", (ingress.host,), HOSTS_SETTING, rules))
    return tuple(refusals)


def message(refusals: Sequence[Refusal]) -> str:
    """One line for a condition and an Event: every refused field, with its setting."""
    return readable("Ingress not written: " + "; ".join(r.message for r in refusals))


def _listing(values: Sequence[str]) -> str:
    """What an author asked for, as a message may quote it: escaped, each value clipped,
    at most LISTED of them."""
    shown = [clip(printable(v), VALUE_LIMIT) for v in values[:LISTED]]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _check_class(policy: IngressPolicy, name: str | None) -> Refusal | None:
    if name is None or ANY in policy.classes or name in policy.classes:
        return None
    why = (
        "leave className unset for the cluster's default IngressClass" if not policy.classes else ""
    )
    return Refusal("className", (name,), CLASSES_SETTING, policy.classes, why)


def annotation_allowed(rules: Sequence[str], key: str) -> bool:
    """An exact rule allows its key; a pattern allows any key it matches but those of
    `EXACT_ONLY`."""
    if key in rules:
        return True
    if _exact_only(key):
        return False
    return any("*" in rule and _pattern(rule).fullmatch(key) for rule in rules)


def _exact_only(key: str) -> bool:
    return any(p.match(key) for p in EXACT_ONLY)


def _pattern(rule: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in rule.split("*")))


def host_allowed(rules: Sequence[str], host: str, namespace: str) -> bool:
    """Every name `host` routes (one, or all under a wildcard) is under a rule."""
    host = host.lower()
    for raw in rules:
        rule = raw.strip().lower().replace("{namespace}", namespace)
        if rule == ANY:
            return True
        if rule.startswith("*."):
            # `a.b.c` and `*.b.c` (as `.b.c`) are under `*.c`: they end in `.c`.
            name = host[1:] if host.startswith("*.") else host
            if name.endswith(rule[1:]):
                return True
        elif host == rule:
            return True
    return False
