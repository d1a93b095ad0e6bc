"""Hypothesis strategies for hostile BlueGreenApp specs: the shape the CRD describes, filled
with what an author (or a broken generator upstream of GitOps) may write into it.

    spec = hostile_spec(prometheus="http://localhost:9090")   # a strategy of spec dicts

Most fields hold values the schema accepts, chosen to hurt: strings of other scripts,
emoji, combining marks, bidi and zero-width characters, C0/C1 controls and NUL, at their
length limit (63, 253, 4096) or huge where there is none (up to 300 KB); numbers at each
bound, floats up to 1e308, -0.0 and subnormals; Go durations at the edges of 1s..1h
(`1h0m0.000000001s`, `.5m`, `1.s`, `3599999999999ns`); up to 20 metrics a list; PromQL that
does not parse or answers NaN; pod templates with unknown fields nested 60 deep, 64
containers, labels and annotations the Deployment API refuses. Now and then (`RARE`) a
field holds what the schema refuses instead: one past a bound, int64 overflow, a
duration that is none, a duplicate metric name. Large strings are a drawn chunk repeated,
so they cost no more to draw than small ones.

Only loopback is ever addressed: `prometheus` is the tests' own server (reached by the name
the tests' operators allow), every other address is one the operator's endpoint policy
refuses before any request leaves, or a loopback port nothing listens on. Images never name
an ECR registry, so no AWS call is made whatever `resolveDigest` says.
"""

from __future__ import annotations

from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

RARE = 80
"""One field in about RARE holds a value the schema refuses: a spec draws from 20 to a few
hundred fields, so a small one is mostly valid and one with 40 metrics mostly is not."""

# Characters that break assumptions: other scripts, emoji, combining marks, zero-width and
# bidi controls, C0/C1 controls, NUL, quotes and template braces.
_NASTY = (
    "é日本語🙂\u0301\u200b\u200d\u202e\u2066\u2069\u2028\ufeff\x00\x07\x1b\x7f\x9b"
    "\t\n\r\"'\\{}$`<>&%"
)
_PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789-."


def mostly(good: st.SearchStrategy[T], bad: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`good`, and `bad` about once in RARE draws."""
    # Hypothesis draws bounds (and small numbers) far more often than the rest: the one
    # number that picks `bad` is in the middle.
    return st.integers(0, RARE).flatmap(lambda i: bad if i == RARE // 2 else good)


@st.composite
def texts(draw: st.DrawFn, limit: int = 300_000, plain: bool = False) -> str:
    """A string of up to `limit` characters (sometimes exactly `limit`, rarely one more):
    a chunk of plain or nasty characters, repeated."""
    alphabet = _PLAIN if plain else draw(st.sampled_from([_PLAIN, _NASTY, _PLAIN + _NASTY]))
    chunk = draw(st.text(alphabet=alphabet, min_size=1, max_size=24))
    sizes = [s for s in (1, 2, 63, 64, 253, 1024, 4096, 65_536, limit) if s <= limit]
    size = draw(
        mostly(
            st.one_of(st.integers(1, min(limit, 40)), st.sampled_from(sizes)), st.just(limit + 1)
        )
    )
    return (chunk * (size // len(chunk) + 1))[:size]


def dns_label(max_size: int = 20) -> st.SearchStrategy[str]:
    return st.from_regex(rf"\A[a-z]([-a-z0-9]{{0,{max_size - 2}}}[a-z0-9])?\Z")


def dns_name(max_size: int = 253) -> st.SearchStrategy[str]:
    """A DNS name, sometimes exactly `max_size` long."""
    long = st.just(".".join(["a" * 62] * 5)[: max_size - 1] + "z")
    return st.one_of(st.lists(dns_label(), min_size=1, max_size=4).map(".".join), long)


HUGE_INTS = (-1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64)


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Within [low, high], often at a bound; rarely past it, or beyond int64."""
    good = st.one_of(st.integers(low, high), st.sampled_from([low, high]))
    return mostly(good, st.sampled_from([low - 1, high + 1, *HUGE_INTS]))


FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 0.05, 2**53 + 1.0]),
)

GOOD_DURATIONS = (
    "1s",
    "1h",
    "15s",
    "1000ms",
    "1.000000001s",
    "3600s",
    "1h0m0s",
    "59m60s",
    "60m",
    ".5m",
    "1.s",
    "3599999999999ns",
    "3600000000000ns",
    "1000000000us",
    "1s1s1s1s1s1s1s1s1s1s",
    "0.0002778h",
    "3600.0000000001s",
    "1h0m0.0000000001s",
)
"""Durations within 1s..1h, written oddly; the last two are 1h plus less than a
nanosecond, which Go (and CEL) truncate to exactly 1h."""
BAD_DURATIONS = (
    "999ms",
    "0.999999999s",
    "1h0m0.000000001s",
    "61m",
    "0s",
    "1d",
    "1e3s",
    "-1s",
    "1 s",
    "",
    "1S",
    "1µs",
    "99999999999999999999h",
    "9223372036854775808ns",
)
DURATIONS = mostly(st.sampled_from(GOOD_DURATIONS), st.sampled_from(BAD_DURATIONS))
PROMETHEUS_DURATIONS = mostly(
    st.sampled_from(["15s", "1m", "0s", "1d", "1w", "1y", "10ms", "1h30m", "99999999999y"]),
    st.sampled_from(["1.5s", "15", "-1m", "1h 30m"]),
)


def queries() -> st.SearchStrategy[str]:
    """PromQL that answers (with extreme values, NaN, several series), that does not
    parse, or that is long and full of nasty characters."""
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
                "vector(1) or label_replace(vector(2), 'a', 'b', '', '')",
            ]
        ),
        texts(limit=4096),
    )


def addresses(prometheus: str) -> st.SearchStrategy[str]:
    """The tests' Prometheus, loopback ports nothing listens on or that speak no TLS, and
    addresses the operator's policy refuses before sending anything."""
    return st.sampled_from(
        [
            prometheus,
            prometheus,
            prometheus,
            prometheus.replace("http://", "https://", 1),
            "http://localhost:1",
            "http://127.0.0.1:9090",
            "http://169.254.169.254/latest/meta-data",
            "http://evil.example:9090",
            "http://user:pass@localhost:9090",
            "http://[::1]:9090",
            "https://",
            "http://" + "a" * 2040,
            "http://localhost:99999",
            "http://local\u202ehost:9090",
        ]
    )


@st.composite
def metrics(draw: st.DrawFn, prometheus: str, name: str) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if draw(st.integers(0, 3)):
        m["query"] = draw(queries())
        bounds = draw(mostly(st.sampled_from(["min", "max", "both"]), st.just("none")))
        if bounds != "none":
            low, high = sorted([draw(FLOATS), draw(FLOATS)])
            rng = {"min": low, "max": high}
            m["thresholdRange"] = {k: v for k, v in rng.items() if bounds in (k, "both")}
    else:
        m["url"] = draw(
            st.one_of(
                addresses(prometheus).map(lambda a: a + "/-/healthy"),
                texts(limit=2041).map(lambda t: "http://" + t),
            )
        )
    if draw(st.booleans()):
        m["interval"] = draw(DURATIONS)
    if draw(st.booleans()):
        count = draw(ints(1, 100))
        m["count"] = count
        if draw(st.booleans()):
            m["failureLimit"] = draw(mostly(st.integers(0, max(count - 1, 0)), st.just(count)))
    if draw(st.booleans()):
        m["noData"] = draw(
            mostly(st.sampled_from(["Inconclusive", "Fail", "Pass"]), st.just("pass"))
        )
    if draw(st.integers(0, 3)) == 0:
        m["minRequestsQuery"] = draw(queries())
        m["minRequests"] = draw(mostly(FLOATS.map(abs), st.just(-1.0)))
    return m


@st.composite
def metric_lists(draw: st.DrawFn, prometheus: str) -> list[dict[str, Any]]:
    """Up to 20 metrics (rarely 21), with unique names (rarely a duplicate or a name
    that is not a DNS label)."""
    size = draw(mostly(st.sampled_from([0, 0, 1, 2, 3, 20]), st.just(21)))
    names = draw(st.lists(dns_label(63), min_size=size, max_size=size, unique=True))
    if names and draw(mostly(st.just(False), st.just(True))):
        names[-1] = names[0] if len(names) > 1 else "Not_A_Label"
    return [draw(metrics(prometheus, n)) for n in names]


def deep(depth: int, leaf: Any) -> Any:
    """An object nested `depth` levels (dicts, with a list every tenth level)."""
    node = leaf
    for i in range(depth):
        node = [node] if i % 10 == 9 else {"x": node}
    return node


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    tag = draw(st.one_of(st.just("v1"), texts(limit=4096 - len("registry.example/shop:"))))
    containers: list[dict[str, Any]] = [
        {
            "name": "app",
            "image": "registry.example/shop:" + tag,
            "ports": [{"name": "http", "containerPort": draw(ints(1, 65535))}],
        }
    ]
    sidecars = draw(mostly(st.sampled_from([0, 0, 0, 1, 63]), st.just(64)))
    containers += [
        {"name": f"side-{i}", "image": "registry.example/side:v1"} for i in range(sidecars)
    ]
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["x-deep"] = deep(draw(mostly(st.sampled_from([1, 10, 30, 60]), st.just(400))), "leaf")
    metadata: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata["labels"] = draw(
            st.dictionaries(st.one_of(dns_label(), texts(limit=253)), texts(limit=63), max_size=3)
        )
    if draw(st.booleans()):
        metadata["annotations"] = draw(
            st.dictionaries(st.one_of(dns_label(), texts(limit=253)), texts(), max_size=2)
        )
    return {"metadata": metadata, "spec": spec}


@st.composite
def ingresses(draw: st.DrawFn) -> dict[str, Any]:
    host = draw(mostly(st.one_of(dns_name(), dns_name(251).map("*.".__add__)), texts(limit=253)))
    ingress: dict[str, Any] = {"host": host}
    if draw(st.booleans()):
        ingress["className"] = draw(st.one_of(st.just("nginx"), texts(limit=253)))
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
                    texts(limit=253),
                ),
                texts(limit=4096),
                max_size=3,
            )
        )
    return ingress


@st.composite
def hostile_spec(draw: st.DrawFn, prometheus: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": draw(templates())}
    if draw(st.booleans()):
        spec["replicas"] = draw(ints(0, 10000))
    if draw(st.booleans()):
        spec["service"] = {
            "port": draw(ints(1, 65535)),
            "targetPort": draw(
                st.one_of(ints(1, 65535), st.just("http"), mostly(dns_label(15), texts(16)))
            ),
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
    if draw(st.booleans()):
        spec["analysis"] = {
            "prometheus": {"address": draw(addresses(prometheus))},
            "prePromotion": draw(metric_lists(prometheus)),
            "postPromotion": draw(metric_lists(prometheus)),
        }
        if draw(mostly(st.just(False), st.just(True))):
            del spec["analysis"]["prometheus"]
    if draw(st.booleans()):
        spec["ingress"] = draw(ingresses())
    if draw(st.integers(0, 4)) == 0:
        spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": draw(dns_name())}}
    routed = "ingress" in spec or "trafficRouting" in spec
    if draw(st.integers(0, 2)) == 0 and (routed or draw(mostly(st.just(False), st.just(True)))):
        weights = sorted(set(draw(st.lists(st.integers(1, 100), min_size=1, max_size=20))))
        if draw(mostly(st.just(False), st.just(True))):
            weights = [*weights[::-1], 101]
        steps = [{"weight": w, "pauseSeconds": draw(ints(0, 86400))} for w in weights]
        if "analysis" in spec and draw(st.booleans()):
            steps[0]["metrics"] = draw(metric_lists(prometheus))
        strategy["canary"] = {"steps": steps}
    spec["strategy"] = strategy
    if draw(st.integers(0, 2)) == 0:
        spec["monitoring"] = {
            "serviceMonitor": {
                "interval": draw(PROMETHEUS_DURATIONS),
                "labels": draw(st.dictionaries(texts(limit=63), texts(limit=63), max_size=2)),
            }
        }
    if draw(st.integers(0, 3)) == 0:
        spec["image"] = {
            "resolveDigest": draw(st.sampled_from(["Never", "IfPossible", "Required"]))
        }
    return spec
