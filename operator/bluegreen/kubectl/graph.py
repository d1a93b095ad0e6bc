"""`kubectl bluegreen graph`: the switch as a picture.

Asks Prometheus (`/api/v1/query_range`) for the page requests per second each colour of an
app served, and draws them with the app's own record of its releases (status.release and
status.history: started, switched, rolled back, done) as vertical marks, plus the switches
of earlier releases, which the history does not time, from the operator's
bluegreen_app_active_color:

    series = query_range(url, rate_query("shop-ns", "shop", "1m"), start, end, step=5)
    active = query_range(url, active_color_query("shop-ns", "shop"), start, end, step=5)
    marks = metric_switches(markers(app["status"], start, end), active)
    draw_png(series, marks, "switch.png", "shop", start=start, end=end)

At a switch the line of the old colour falls as the new colour's rises: the crossover,
measured, next to the moment the operator says it flipped the selector.

The series come from the app's request counter, the demo app's
`http_requests_total{namespace, app, color, route}` unless `--requests-metric` and `--route`
name another, as the operator's ServiceMonitor labels them (route="/": page requests, not
probes or scrapes).

matplotlib is imported only when a picture is drawn (it is the `graph` extra, not
in the operator's image): without it, draw_png raises GraphError saying how to get it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bluegreen.adapters.prometheus import PrometheusError, PrometheusProvider, RangeSeries
from bluegreen.api import timestamps

COLORS = {"blue": "#1f6fd1", "green": "#2ca02c"}
OTHER_COLOR = "#7f7f7f"
MARK_STYLES = {
    # kind: (colour, line style)
    "start": ("#9e9e9e", ":"),
    "switch": ("#222222", "--"),
    "rollback": ("#d62728", "-"),
    "done": ("#555555", ":"),
    "failed": ("#d62728", ":"),
}
FIGSIZE = (12.0, 6.0)  # inches
DPI = 100  # so the PNG is 1200 x 600 pixels
MAX_POINTS = 600  # per series: the automatic step keeps a query_range answer this small
DEFAULT_TIMEOUT = 10.0


class GraphError(PrometheusError):
    """Why no graph could be drawn; `unreachable` when Prometheus did not answer at all."""


@dataclass(frozen=True)
class Series:
    """One line: the colour (or whatever the `color` label says) and its samples."""

    color: str
    times: tuple[float, ...]  # Unix seconds
    values: tuple[float, ...]

    @property
    def peak(self) -> float:
        finite = [v for v in self.values if math.isfinite(v)]
        return max(finite, default=0.0)


@dataclass(frozen=True)
class Marker:
    """A moment of a release, from the app's status (or a switch seen in the metrics)."""

    at: datetime
    kind: str  # start, switch, rollback, done or failed (a key of MARK_STYLES)
    label: str
    color: str = ""  # for a switch or a switch back: the colour traffic went to


# ----------------------------------------------------------------------------- queries


def auto_step(seconds: float) -> float:
    """The query_range step for a range: at most MAX_POINTS points, never under 1 s."""
    return float(max(1, math.ceil(seconds / MAX_POINTS)))


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


REQUESTS_METRIC = "http_requests_total"
"""The demo app's request counter; `--requests-metric` names an app's own."""
PAGE_ROUTE = "/"
"""Page requests, not probes or scrapes: the demo app's route label; `--route` (a regex)."""
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def rate_query(
    namespace: str,
    name: str,
    window: str,
    *,
    metric: str = REQUESTS_METRIC,
    route: str = PAGE_ROUTE,
) -> str:
    """Requests per second each colour of the app served: `metric` (a counter), on the
    routes matching `route` (a regex; empty: no route label)."""
    if not _METRIC_NAME.match(metric):
        raise GraphError(f"{metric!r} is not a Prometheus metric name")
    selector = f'namespace="{_label_value(namespace)}",app="{_label_value(name)}"'
    if route:
        # A plain path matches by equality; anything else as the regex it is.
        match = "=" if re.escape(route) == route else "=~"
        selector += f',route{match}"{_label_value(route)}"'
    return f"sum by (color) (rate({metric}{{{selector}}}[{window}]))"


def active_color_query(namespace: str, name: str) -> str:
    """The operator's record of the active colour: 0 blue, 1 green, -1 none."""
    selector = f'namespace="{_label_value(namespace)}",name="{_label_value(name)}"'
    return f"max(bluegreen_app_active_color{{{selector}}})"


def query_range(
    address: str,
    promql: str,
    start: datetime,
    end: datetime,
    step: float,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Series]:
    """The series of a range query, by colour name; GraphError for anything but a matrix."""
    try:
        found = PrometheusProvider(address, timeout).query_range(promql, start, end, step)
    except PrometheusError as err:
        raise GraphError(err.message, unreachable=err.unreachable) from err
    return by_color(found)


def by_color(found: Sequence[RangeSeries]) -> list[Series]:
    """Series named by their `color` label, blue and green first."""
    out = [Series(s.labels.get("color", ""), s.times, s.values) for s in found]
    return sorted(out, key=lambda s: (s.color not in COLORS, s.color))


def markers(status: Mapping[str, Any], start: datetime, end: datetime) -> list[Marker]:
    """The moments of the app's releases between start and end, in time order.

    The current (or last) release gives every moment it recorded; earlier releases, from
    status.history, give when they started and how they ended. A moment recorded twice
    (the last release is also the first history entry) is marked once."""
    found: dict[tuple[datetime, str], Marker] = {}

    def add(ts: Any, kind: str, label: str, color: str = "") -> None:
        t = timestamps.parse_or_none(ts)
        if t is not None and start <= t <= end:
            found.setdefault((t, kind), Marker(t, kind, label, color))

    for entry in status.get("history") or []:
        if not isinstance(entry, Mapping):
            continue
        revision = _short(entry.get("revision"))
        result = str(entry.get("result") or "")
        add(entry.get("startedAt"), "start", f"{revision} started")
        add(entry.get("completedAt"), _end_kind(result), f"{revision} {result}".strip())

    release = status.get("release")
    if isinstance(release, Mapping):
        revision = _short(release.get("revision"))
        color = str(release.get("color") or "")
        previous = str(release.get("previousColor") or "")
        result = str(release.get("result") or "")
        add(release.get("startedAt"), "start", f"{revision} started")
        add(release.get("switchedAt"), "switch", f"switch to {color}".strip(), color)
        add(release.get("rollbackStartedAt"), "rollback", "rollback started", previous)
        add(
            release.get("switchedBackAt"),
            "rollback",
            f"back to {previous}" if previous else "switched back",
            previous,
        )
        if result:
            add(release.get("completedAt"), _end_kind(result), f"{revision} {result}")
    # A history entry and the release share completedAt: keep one mark per moment and kind.
    return sorted(found.values(), key=lambda m: (m.at, list(MARK_STYLES).index(m.kind)))


def metric_switches(
    known: Sequence[Marker], active: Sequence[Series], lag: float = 120.0
) -> list[Marker]:
    """`known` plus the switches bluegreen_app_active_color shows that `known` does not.

    status.history keeps no switch time, so the switches of earlier releases come from the
    operator's metric: a mark where the active colour changed, at the first sample with
    the new colour. A change to a colour that a known switch (or switch back) went to at
    most `lag` seconds before (a scrape interval and a step, say) is that known switch."""
    names = {0.0: "blue", 1.0: "green"}
    found = list(known)
    for series in active:
        previous: float | None = None
        for ts, value in zip(series.times, series.values, strict=True):
            if not math.isfinite(value):
                continue
            if previous is not None and value != previous and value in names:
                at = datetime.fromtimestamp(ts, UTC)
                color = names[value]
                seen = any(
                    m.color == color and -2.0 <= (at - m.at).total_seconds() <= lag
                    for m in known
                    if m.kind in ("switch", "rollback")
                )
                if not seen:
                    found.append(Marker(at, "switch", f"switch to {color}", color))
            previous = value
    return sorted(found, key=lambda m: (m.at, list(MARK_STYLES).index(m.kind)))


def _end_kind(result: str) -> str:
    return "done" if result in ("Promoted", "Superseded", "") else "failed"


def _short(revision: Any) -> str:
    text = str(revision or "?")
    return text if len(text) <= 12 else text[:10]


# ----------------------------------------------------------------------------- the picture

LABEL_CHAR_WIDTH = 0.0064  # of the axes' width, per character at 8 pt in a 12-inch figure
LABEL_ROW_HEIGHT = 0.065  # of the axes' height
MAX_LABEL_ROWS = 8


@dataclass(frozen=True)
class LabelPlace:
    row: int  # 0 is the top row
    align: str  # "left": the text starts at the mark; "right": it ends there


def label_places(marks: Sequence[Marker], start: datetime, end: datetime) -> list[LabelPlace]:
    """A row for each mark's label, so that labels of marks close in time do not overlap:
    each label takes the top-most row that is free where it would be drawn."""
    span = max((end - start).total_seconds(), 1e-9)
    row_ends: list[float] = []  # the right end of the last label in each row
    places = []
    for mark in marks:
        x = (mark.at - start).total_seconds() / span
        width = (len(mark_text(mark)) + 1) * LABEL_CHAR_WIDTH
        left, right, align = (x, x + width, "left") if x + width <= 1 else (x - width, x, "right")
        free = [i for i, used in enumerate(row_ends) if used < left]
        if free:
            row = free[0]
        elif len(row_ends) < MAX_LABEL_ROWS:
            row = len(row_ends)
            row_ends.append(0.0)
        else:
            row = min(range(len(row_ends)), key=row_ends.__getitem__)
        row_ends[row] = right
        places.append(LabelPlace(row, align))
    return places


def mark_text(mark: Marker) -> str:
    return f"{mark.label} {mark.at:%H:%M:%S}"


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional: only `graph` needs it

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as err:
        raise GraphError(
            "`kubectl bluegreen graph` needs matplotlib, which is not installed in the "
            f"plugin's Python ({err}); install the plugin with its graph extra: `pipx install 'bluegreen[graph]'` (or `pip install 'bluegreen[graph]'`)"
        ) from err
    return plt


def draw_png(
    series: Sequence[Series],
    marks: Sequence[Marker],
    path: str,
    title: str,
    *,
    start: datetime,
    end: datetime,
) -> None:
    """Write the graph: one line per colour, a vertical line and a label per mark."""
    plt = _pyplot()
    import matplotlib.dates as mdates  # noqa: PLC0415 - with matplotlib, see _pyplot

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        for s in series:
            name = s.color or "(no colour label)"
            ax.plot(
                [datetime.fromtimestamp(t, UTC) for t in s.times],
                list(s.values),
                color=COLORS.get(s.color, OTHER_COLOR),
                linewidth=2.5,
                label=name,
            )
        places = label_places(marks, start, end)
        rows = max((p.row for p in places), default=-1) + 1
        # The data stays under the lowest row of labels.
        free_height = 0.97 - rows * LABEL_ROW_HEIGHT - 0.03
        peak = max((s.peak for s in series), default=0.0)
        ax.set_ylim(0, peak / max(free_height, 0.3) if peak > 0 else 1.0)
        ax.set_xlim(start, end)
        if not series:
            ax.text(
                0.5,
                0.5,
                "no page requests in Prometheus for this app and range",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color=OTHER_COLOR,
            )
        for mark, place in zip(marks, places, strict=True):
            colour, style = MARK_STYLES[mark.kind]
            ax.axvline(mark.at, color=colour, linestyle=style, linewidth=1.4)
            ax.text(
                mark.at,
                0.97 - place.row * LABEL_ROW_HEIGHT,
                f" {mark_text(mark)} " if place.align == "left" else f"{mark_text(mark)} ",
                transform=ax.get_xaxis_transform(),
                color=colour,
                fontsize=8,
                ha=place.align,
                va="top",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))  # type: ignore[no-untyped-call]
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("page requests per second (route /)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if series:
            ax.legend(loc="lower left", title="colour")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=DPI)
    finally:
        plt.close(fig)
