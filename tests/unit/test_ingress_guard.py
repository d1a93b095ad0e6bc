"""The Ingress guard: what an app may put into the Ingress the operator writes for it.

Table-driven over the pure decision (`bluegreen.core.ingress_guard`): each case names a
policy (the operator's settings), what spec.ingress asks for, and what is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bluegreen.api.text import MESSAGE_LIMIT
from bluegreen.api.v1alpha1 import IngressSpec
from bluegreen.core.ingress_guard import (
    ANNOTATIONS_SETTING,
    CLASSES_SETTING,
    HOSTS_SETTING,
    LISTED,
    IngressPolicy,
    annotation_allowed,
    check,
    host_allowed,
    message,
)
from bluegreen.runtime.settings import Settings

SNIPPET = "nginx.ingress.kubernetes.io/server-snippet"
CONFIG_SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"
NEXT_UPSTREAM = "nginx.ingress.kubernetes.io/proxy-next-upstream"
BODY_SIZE = "nginx.ingress.kubernetes.io/proxy-body-size"
AUTH_URL = "nginx.ingress.kubernetes.io/auth-url"
CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_BY_HEADER = "nginx.ingress.kubernetes.io/canary-by-header"
PROXY_ANY = "nginx.ingress.kubernetes.io/proxy-*"
NGINX_ANY = "nginx.ingress.kubernetes.io/*"


@dataclass(frozen=True)
class Case:
    policy: IngressPolicy
    host: str = "shop.example.com"
    class_name: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    refused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """field -> the values refused; empty: admitted."""


DEFAULT = IngressPolicy()
CASES = {
    "default: no class, no annotations, any host": Case(DEFAULT),
    "default: a class is refused (only the cluster's default class)": Case(
        DEFAULT, class_name="nginx", refused={"className": ("nginx",)}
    ),
    "default: any annotation is refused": Case(
        DEFAULT, annotations={NEXT_UPSTREAM: "off"}, refused={"annotations": (NEXT_UPSTREAM,)}
    ),
    "default: a snippet is refused": Case(
        DEFAULT, annotations={SNIPPET: "return 200;"}, refused={"annotations": (SNIPPET,)}
    ),
    "a listed class": Case(IngressPolicy(classes=("nginx", "internal")), class_name="internal"),
    "an unlisted class": Case(
        IngressPolicy(classes=("nginx",)), class_name="public", refused={"className": ("public",)}
    ),
    "any class": Case(IngressPolicy(classes=("*",)), class_name="whatever"),
    "no class under a class list": Case(IngressPolicy(classes=("nginx",))),
    "an exact key": Case(
        IngressPolicy(annotations=(NEXT_UPSTREAM,)), annotations={NEXT_UPSTREAM: "off"}
    ),
    "a pattern": Case(
        IngressPolicy(annotations=(PROXY_ANY,)), annotations={NEXT_UPSTREAM: "off", BODY_SIZE: "8m"}
    ),
    "a pattern refuses what it does not match": Case(
        IngressPolicy(annotations=(PROXY_ANY,)),
        annotations={NEXT_UPSTREAM: "off", "nginx.ingress.kubernetes.io/rewrite-target": "/"},
        refused={"annotations": ("nginx.ingress.kubernetes.io/rewrite-target",)},
    ),
    "a pattern never allows a snippet": Case(
        IngressPolicy(annotations=(NGINX_ANY,)),
        annotations={SNIPPET: "x", CONFIG_SNIPPET: "y", BODY_SIZE: "1m"},
        refused={"annotations": (CONFIG_SNIPPET, SNIPPET)},
    ),
    "a pattern never allows auth-url (CVE-2025-24514)": Case(
        IngressPolicy(annotations=("*",)),
        annotations={AUTH_URL: "http://x"},
        refused={"annotations": (AUTH_URL,)},
    ),
    "a snippet named exactly": Case(
        IngressPolicy(annotations=(SNIPPET,)), annotations={SNIPPET: "return 200;"}
    ),
    "the canary keys are the operator's, whatever the policy": Case(
        IngressPolicy(annotations=(NGINX_ANY, CANARY)),
        annotations={CANARY: "true", CANARY_BY_HEADER: "x"},
        refused={"annotations": (CANARY, CANARY_BY_HEADER)},
    ),
    "keys are case-sensitive": Case(
        IngressPolicy(annotations=(NEXT_UPSTREAM,)),
        annotations={NEXT_UPSTREAM.upper(): "off"},
        refused={"annotations": (NEXT_UPSTREAM.upper(),)},
    ),
    "a host under a wildcard rule": Case(
        IngressPolicy(hosts=("*.apps.example.com",)), host="shop.apps.example.com"
    ),
    "a host outside the rules": Case(
        IngressPolicy(hosts=("*.apps.example.com",)),
        host="bank.example.com",
        refused={"host": ("bank.example.com",)},
    ),
    "the rule's domain itself is not under it": Case(
        IngressPolicy(hosts=("*.apps.example.com",)),
        host="apps.example.com",
        refused={"host": ("apps.example.com",)},
    ),
    "a suffix that is not a label boundary": Case(
        IngressPolicy(hosts=("*.example.com",)),
        host="evilexample.com",
        refused={"host": ("evilexample.com",)},
    ),
    "the app's namespace in the rule": Case(
        IngressPolicy(hosts=("*.{namespace}.apps.example.com",)), host="web.shop.apps.example.com"
    ),
    "another namespace's domain": Case(
        IngressPolicy(hosts=("*.{namespace}.apps.example.com",)),
        host="web.bank.apps.example.com",
        refused={"host": ("web.bank.apps.example.com",)},
    ),
    "a wildcard host under a wider rule": Case(
        IngressPolicy(hosts=("*.example.com",)), host="*.shop.example.com"
    ),
    "a wildcard host needs a rule that covers all of it": Case(
        IngressPolicy(hosts=("shop.example.com",)),
        host="*.example.com",
        refused={"host": ("*.example.com",)},
    ),
    "an exact host": Case(IngressPolicy(hosts=("shop.example.com",)), host="shop.example.com"),
    "everything refused at once": Case(
        IngressPolicy(hosts=("*.internal",)),
        class_name="nginx",
        annotations={SNIPPET: "x"},
        refused={"className": ("nginx",), "annotations": (SNIPPET,), "host": ("shop.example.com",)},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_guard(case: Case) -> None:
    spec = IngressSpec(host=case.host, class_name=case.class_name, annotations=case.annotations)
    refusals = check(case.policy, spec, "shop")
    got: dict[str, tuple[str, ...]] = {}
    for r in refusals:
        got[r.field] = got.get(r.field, ()) + r.values
    assert got == case.refused


def test_the_message_names_what_is_refused_and_the_setting_that_would_allow_it() -> None:
    spec = IngressSpec(
        host="shop.example.com", class_name="nginx", annotations={SNIPPET: "return 200;"}
    )
    text = message(check(IngressPolicy(hosts=("*.internal",)), spec, "shop"))
    assert text.startswith("Ingress not written: ")
    assert f"spec.ingress.annotations {SNIPPET} not allowed" in text
    assert f"{ANNOTATIONS_SETTING} (chart value ingressGuard.allowedAnnotations; now: none)" in text
    assert f"spec.ingress.className nginx not allowed by the operator's {CLASSES_SETTING}" in text
    assert "leave className unset for the cluster's default IngressClass" in text
    assert (
        f"spec.ingress.host shop.example.com not allowed by the operator's {HOSTS_SETTING}" in text
    )
    assert "now: *.internal" in text
    # The value of the annotation is the author's: it is not repeated.
    assert "return 200" not in text


def test_a_snippet_under_a_pattern_says_it_needs_its_exact_name() -> None:
    spec = IngressSpec(host="shop.example.com", annotations={SNIPPET: "x"})
    text = message(check(IngressPolicy(annotations=(NGINX_ANY,)), spec, "shop"))
    assert f"{SNIPPET} only by exact name, never through a pattern" in text
    assert f"now: {NGINX_ANY}" in text


def test_the_message_quotes_what_the_author_wrote_escaped_and_clipped() -> None:
    link = "\x1b]8;;https://evil.example/\x1b\\nginx\x1b]8;;\x1b\\"
    keys = {f"{i:04d}-" + "k" * 195 + "\x1b[2J\u202e": "v" for i in range(2000)}
    spec = IngressSpec(host="shop.example.com", class_name=link, annotations=keys)
    text = message(check(IngressPolicy(), spec, "shop"))
    assert len(text) <= MESSAGE_LIMIT, len(text)
    assert "\x1b" not in text and "\u202e" not in text
    assert r"spec.ingress.className \x1b]8;;https://evil.example/\x1b\nginx" in text
    # The first keys, each cut short, and how many more: never 2000 keys of 200 characters.
    assert "0000-kkkk" in text and f"{LISTED - 1:04d}-kkkk" in text
    assert f"{LISTED:04d}-kkkk" not in text
    assert f"and {2000 - LISTED} more not allowed" in text
    assert message(check(IngressPolicy(), spec, "shop")) == text  # the same on every pass


@pytest.mark.parametrize(
    ("rules", "key", "allowed"),
    [
        ((), NEXT_UPSTREAM, False),
        ((PROXY_ANY,), NEXT_UPSTREAM, True),
        (("*",), "example.com/team", True),
        (("example.com/*",), "example.com/team", True),
        (("example.com/*",), "example.org/team", False),
        (("*-snippet",), SNIPPET, False),
        ((SNIPPET,), SNIPPET, True),
        (("nginx.ingress.kubernetes.io/proxy-.*",), NEXT_UPSTREAM, False),  # no regex
    ],
)
def test_annotation_rules(rules: tuple[str, ...], key: str, allowed: bool) -> None:
    assert annotation_allowed(rules, key) is allowed


@pytest.mark.parametrize(
    ("rules", "host", "allowed"),
    [
        (("*",), "anything.example.com", True),
        ((), "shop.example.com", False),
        (("SHOP.example.com",), "shop.example.com", True),
        (("*.example.com",), "a.b.example.com", True),
        (("*.example.com",), "*.example.com", True),
        (("*.b.example.com",), "*.example.com", False),
    ],
)
def test_host_rules(rules: tuple[str, ...], host: str, allowed: bool) -> None:
    assert host_allowed(rules, host, "shop") is allowed


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        Settings().ingress_allowed_classes,
        Settings().ingress_allowed_annotations,
        Settings().ingress_allowed_hosts,
    ) == ((), (), ("*",))
    monkeypatch.setenv(CLASSES_SETTING, "nginx, internal")
    monkeypatch.setenv(ANNOTATIONS_SETTING, f"{PROXY_ANY},{SNIPPET}")
    monkeypatch.setenv(HOSTS_SETTING, "*.{namespace}.apps.example.com")
    s = Settings()
    assert s.ingress_allowed_classes == ("nginx", "internal")
    assert s.ingress_allowed_annotations == (PROXY_ANY, SNIPPET)
    assert s.ingress_allowed_hosts == ("*.{namespace}.apps.example.com",)
    monkeypatch.setenv(CLASSES_SETTING, "")
    assert Settings().ingress_allowed_classes == ()
