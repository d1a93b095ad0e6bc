"""Hypothesis strategies for hostile BlueGreenApp specs: the shape the CRD describes, filled
with what an author (or a broken generator upstream of GitOps) may write into it.

    body = hostile_app(prometheus="http://localhost:9090").example()

What they draw, field by field:

- strings: ASCII, other scripts, emoji, combining marks, bidi and zero-width characters,
  C0/C1 controls and NUL; sizes at and around the limits (63, 253, 4096) and huge ones (up
  to about 300 KB, a few times per run), built by repeating a drawn chunk so a large string
  costs no more to draw than a small one;
- numbers: small, at each bound and one past it, int64 and beyond (2**63, 2**64), floats
  up to 1e308 and their negatives, -0.0, subnormals;
- durations: Go syntax at the edges of 1s..1h (`999ms`, `1h0m0.000000001s`, `.5m`, `1.s`,
  `3599999999999ns`), numbers that overflow int64 nanoseconds, and what is not a duration;
- up to 21 metrics per list (20 is the limit), duplicate names, Prometheus queries that do
  not parse, `vector(...)` queries with extreme values, web checks;
- pod templates with unknown fields nested up to 400 deep, many containers, labels and
  annotations the Deployment API refuses;
- canary steps, Ingress (class, host, annotations) and Gateway API routing.

Only loopback is ever addressed: `prometheus` is the tests' own server (reached by the name
the tests' operators allow); every other address is one the operator's endpoint policy
refuses before any request leaves. Images never name an ECR registry, so no AWS call is
made whatever `resolveDigest` says.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Characters that break assumptions: other scripts, emoji, combining marks, zero-width and
# bidi controls, C0/C1 controls, NUL, quotes and template braces.
_NASTY = (
    "é日本語🙂\u0301\u200b\u200d\u202e\u2066\u2069\u2028\ufeff\x00\x07\x1b\x7f\x9b"
    "\t\n\r\"'\\{}$`<>&%"
)
_PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789-."

SIZES = (1, 2, 15, 16, 62, 63, 64, 253, 254, 1024, 4095, 4096, 4097, 65_536, 300_000)
"""Lengths at and past the limits the API has (63 names, 253 hosts, 4096 queries), and two
huge ones: larger than an annotation may be (256 KB in all) but well within one object."""


@st.composite
def texts(draw: st.DrawFn, sizes: tuple[int, ...] = SIZES, plain: bool = False) -> str:
    """A string of a drawn size: a chunk of plain or nasty characters, repeated."""
    alphabet = _PLAIN if plain else st.sampled_from([_PLAIN, _NASTY, _PLAIN + _NASTY])
    chars = alphabet if isinstance(alphabet, str) else draw(alphabet)
    chunk = draw(st.text(alphabet=chars, min_size=1, max_size=24))
    size = draw(st.one_of(st.integers(1, 40), st.sampled_from(sizes)))
    return (chunk * (size // len(chunk) + 1))[:size]


def dns_label(max_size: int = 20) -> st.SearchStrategy[str]:
    return st.from_regex(rf"\A[a-z]([-a-z0-9]{{0,{max_size - 2}}}[a-z0-9])?\Z")


# Ints: everyday values, each bound and one past it, and integers JSON can carry but
# int64 (or a float64) cannot hold exactly.
EXTREME_INTS = (-1, 0, 1, 2, 100, 101, 65535, 65536, 86400, 86401, 10000, 10001)
HUGE_INTS = (2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64)


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Mostly within [low, high]; sometimes at a bound, past it, or absurdly large."""
    return st.one_of(
        st.integers(low, high),
        st.sampled_from(sorted({low, high, low - 1, high + 1, *EXTREME_INTS})),
        st.sampled_from(HUGE_INTS),
    )


FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 0.05, 2**53 + 1.0]),
)

# Go durations at the edges of 1s..1h, and near misses.
ODD_DURATIONS = (
    "1s",
    "1h",
    "15s",
    "999ms",
    "1000ms",
    "0.999999999s",
    "1.000000001s",
    "3600s",
    "3600.000000001s",
    "3600.0000000001s",
    "1h0m0.000000001s",
    "59m60s",
    "60m",
    "61m",
    ".5m",
    "1.s",
    "1h0m0s",
    "3599999999999ns",
    "3600000000001ns",
    "1000000000us",
    "1s1s1s1s1s1s1s1s1s1s",
    "0.0000000001h",
    "99999999999999999999h",
    "9223372036854775807ns",
    "9223372036854775808ns",
    "0s",
    "1ns",
    "1d",
    "1e3s",
    "-1s",
    "1 s",
    "s",
    "",
    "1S",
    "1µs",
)
DURATIONS = st.one_of(
    st.sampled_from(ODD_DURATIONS),
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False).map(repr)),
        st.sampled_from(["ns", "us", "ms", "s", "m", "h"]),
    ),
)
PROMETHEUS_DURATIONS = st.one_of(
    st.sampled_from(["15s", "1m", "0s", "1d", "1w", "1y", "10ms", "1.5s", "1h30m", "99999999999y"]),
    DURATIONS,
)


def queries() -> st.SearchStrategy[str]:
    """PromQL that answers (with extreme values), that does not parse, or that is huge."""
    value = FLOATS.map(lambda f: repr(f).replace("inf", "Inf"))
    return st.one_of(
        value.map(lambda v: f"vector({v})"),
        st.sampled_from(
            [
                "vector(NaN)",
                "vector(+Inf)",
                "vector(-Inf)",
                "up",
                'sum(rate(http_requests_total{namespace="{{namespace}}",app="{{name}}",'
                'color="{{color}}"}[1m]))',
                "{{namespace}}{{name}}{{color}}{{revision}}{{unknown}}{{",
                "sum(",
                "label_replace(vector(1), 'a', '$1', 'b', '(.*)')",
                "count_values('x', vector(1)) or vector(2) or vector(3)",
            ]
        ),
        texts(sizes=(1, 64, 4095, 4096, 4097)),
    )


def addresses(prometheus: str) -> st.SearchStrategy[str]:
    """The tests' Prometheus, one port on loopback that nothing listens on, and addresses
    the operator's policy refuses before sending anything."""
    return st.sampled_from(
        [
            prometheus,
            prometheus,
            prometheus.replace("http://", "https://", 1),
            "http://localhost:1",
            "http://127.0.0.1:9090",
            "http://169.254.169.254/latest/meta-data",
            "http://evil.example:9090",
            "http://user:pass@localhost:9090",
            "http://[::1]:9090",
            "http://xn--nxasmq6b.example",
            "https://",
            "http://" + "a" * 2040,
            "http://localhost:99999",
            "http://local\u202ehost:9090",
        ]
    )


@st.composite
def metrics(draw: st.DrawFn, prometheus: str, names: st.SearchStrategy[str]) -> dict[str, Any]:
    m: dict[str, Any] = {"name": draw(names)}
    if draw(st.booleans()):
        m["query"] = draw(queries())
        if draw(st.integers(0, 9)):  # sometimes missing: the CRD's rule refuses it
            bounds = draw(st.sampled_from(["min", "max", "both", "both", "neither"]))
            rng: dict[str, float] = {}
            if bounds in ("min", "both"):
                rng["min"] = draw(FLOATS)
            if bounds in ("max", "both"):
                rng["max"] = draw(FLOATS)
            m["thresholdRange"] = rng
    else:
        m["url"] = draw(
            st.one_of(
                addresses(prometheus).map(lambda a: a + "/-/healthy"),
                texts(sizes=(8, 2048, 2049)).map(lambda t: "http://" + t),
            )
        )
    if draw(st.booleans()):
        m["interval"] = draw(DURATIONS)
    if draw(st.booleans()):
        count = draw(ints(1, 100))
        m["count"] = count
        if draw(st.booleans()):
            m["failureLimit"] = draw(st.one_of(st.just(count), st.just(count - 1), ints(0, 100)))
    if draw(st.booleans()):
        m["noData"] = draw(st.sampled_from(["Inconclusive", "Fail", "Pass", "pass", ""]))
    if draw(st.integers(0, 3)) == 0:
        m["minRequestsQuery"] = draw(queries())
        m["minRequests"] = draw(FLOATS)
    return m


def metric_lists(prometheus: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """0 to 21 metrics; names mostly unique (a duplicate is refused by the list map)."""
    names = st.one_of(
        dns_label(),
        dns_label(63),
        texts(sizes=(63, 64)),
        st.sampled_from(["a", "error-rate", "-bad", "Upper"]),
    )
    return st.lists(
        metrics(prometheus, names),
        max_size=21,
        unique_by=lambda m: m["name"] if len(m["name"]) % 7 else object(),
    )


def deep(depth: int, leaf: Any) -> Any:
    """An object nested `depth` levels (dicts, with a list every tenth level)."""
    node = leaf
    for i in range(depth):
        node = [node] if i % 10 == 9 else {"x": node}
    return node


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    image = "registry.example/shop" + draw(
        st.one_of(st.just(":v1"), texts(sizes=(1, 64, 4070, 4071, 5000)).map(lambda t: ":" + t))
    )
    containers: list[dict[str, Any]] = [
        {
            "name": "app",
            "image": image,
            "ports": [{"name": "http", "containerPort": draw(ints(1, 65535))}],
        }
    ]
    for i in range(draw(st.sampled_from([0, 0, 0, 1, 63, 64]))):
        containers.append({"name": f"side-{i}", "image": "registry.example/side:v1"})
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["x-deep"] = deep(draw(st.sampled_from([1, 10, 31, 32, 33, 100, 400])), "leaf")
    metadata: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(texts(sizes=(63, 64, 253)), texts(), max_size=3))
    if draw(st.booleans()):
        metadata["annotations"] = draw(
            st.dictionaries(st.one_of(dns_label(), texts(sizes=(63, 64))), texts(), max_size=3)
        )
    return {"metadata": metadata, "spec": spec}


@st.composite
def hostile_spec(draw: st.DrawFn, prometheus: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": draw(templates())}
    if draw(st.booleans()):
        spec["replicas"] = draw(ints(0, 10000))
    if draw(st.booleans()):
        spec["service"] = {
            "port": draw(ints(1, 65535)),
            "targetPort": draw(st.one_of(ints(1, 65535), st.just("http"), texts(sizes=(15, 16)))),
        }
    strategy: dict[str, Any] = {"scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 1}
    for key, low, high in (
        ("autoPromotionSeconds", 0, 86400),
        ("previewReplicas", 0, 10000),
        ("scaleDownDelaySeconds", 0, 86400),
        ("abortScaleDownDelaySeconds", 0, 86400),
        ("progressDeadlineSeconds", 1, 86400),
    ):
        if draw(st.integers(0, 2)) == 0:
            strategy[key] = draw(ints(low, high))
    if draw(st.integers(0, 3)) == 0:
        strategy["autoPromotion"] = False
    if draw(st.integers(0, 2)) == 0:
        weights = draw(st.lists(ints(1, 100), min_size=1, max_size=21))
        strategy["canary"] = {
            "steps": [
                {"weight": w, "pauseSeconds": draw(st.sampled_from([0, 1, 86400, 86401]))}
                for w in (weights if draw(st.booleans()) else sorted(set(weights)))
            ]
        }
        if draw(st.booleans()):
            strategy["canary"]["steps"][0]["metrics"] = draw(metric_lists(prometheus))
    spec["strategy"] = strategy
    if draw(st.booleans()):
        spec["analysis"] = {
            "prometheus": {"address": draw(addresses(prometheus))},
            "prePromotion": draw(metric_lists(prometheus)),
            "postPromotion": draw(metric_lists(prometheus)),
        }
        if draw(st.integers(0, 5)) == 0:
            del spec["analysis"]["prometheus"]
    if draw(st.booleans()):
        ingress: dict[str, Any] = {
            "host": draw(
                st.one_of(
                    st.just("shop.example.com"),
                    st.just("*.example.com"),
                    texts(sizes=(253, 254), plain=True),
                    texts(),
                )
            )
        }
        if draw(st.booleans()):
            ingress["className"] = draw(st.one_of(st.just("nginx"), texts(sizes=(253, 254))))
        if draw(st.booleans()):
            ingress["annotations"] = draw(
                st.dictionaries(
                    st.one_of(
                        st.sampled_from(
                            [
                                "nginx.ingress.kubernetes.io/proxy-next-upstream",
                                "nginx.ingress.kubernetes.io/configuration-snippet",
                                "nginx.ingress.kubernetes.io/canary-weight",
                            ]
                        ),
                        texts(sizes=(63, 64, 253, 254)),
                    ),
                    texts(),
                    max_size=3,
                )
            )
        spec["ingress"] = ingress
    if draw(st.integers(0, 4)) == 0:
        spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": draw(dns_label())}}
    if draw(st.integers(0, 2)) == 0:
        spec["monitoring"] = {
            "serviceMonitor": {
                "interval": draw(PROMETHEUS_DURATIONS),
                "labels": draw(st.dictionaries(texts(sizes=(63, 64)), texts(), max_size=2)),
            }
        }
    if draw(st.integers(0, 3)) == 0:
        spec["image"] = {
            "resolveDigest": draw(st.sampled_from(["Never", "IfPossible", "Required"]))
        }
    return spec
