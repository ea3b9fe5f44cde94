"""Charts, in the two forms Slack shows: the native data visualization block (Block Kit,
drawn by the Slack client) and PNG images uploaded beside a post (for clients, threads and
archives where a picture is wanted). The one PNG renderer of the project: the Cody Pro
daily chart (bot/cody/chart.py) and /metric's shared chart both end in `render_png`.

The block is typed here because slack_sdk has no model for it. Limits are Slack's, as
documented for the block (docs.slack.dev/reference/block-kit/blocks/data-visualization-block):
a title of at most 50 characters; a line, bar or area chart has 1-6 series, each with a
unique name of at most 20 characters and 1-20 data points whose labels (at most 20
characters) are among the axis categories (1-20, at most 20 characters each); axis labels
at most 50 characters; at most two charts in one message. The models refuse what Slack
would refuse, so a bad chart fails where it is built (and the stand-in Slack checks again).

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, never
`pyplot`: pyplot keeps global state and picks a GUI backend, and jobs run in worker threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from pydantic import BaseModel, ConfigDict, Field, model_validator

TITLE_MAX = 50
LABEL_MAX = 20  # series names, categories, data point labels
AXIS_LABEL_MAX = 50
MAX_SERIES = 6
MAX_CATEGORIES = 20
CHARTS_PER_MESSAGE = 2

ChartKind = Literal["line", "bar", "area"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChartPoint(_Strict):
    label: str = Field(min_length=1, max_length=LABEL_MAX)
    value: float

    @model_validator(mode="after")
    def _finite(self) -> ChartPoint:
        if not math.isfinite(self.value):
            raise ValueError("a chart value must be a finite number")
        return self


class ChartSeries(_Strict):
    name: str = Field(min_length=1, max_length=LABEL_MAX)
    data: list[ChartPoint] = Field(min_length=1, max_length=MAX_CATEGORIES)


class AxisConfig(_Strict):
    categories: list[str] = Field(min_length=1, max_length=MAX_CATEGORIES)
    x_label: str | None = Field(None, max_length=AXIS_LABEL_MAX)
    y_label: str | None = Field(None, max_length=AXIS_LABEL_MAX)

    @model_validator(mode="after")
    def _short_unique(self) -> AxisConfig:
        if any(not c or len(c) > LABEL_MAX for c in self.categories):
            raise ValueError(f"categories are 1-{LABEL_MAX} characters")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be unique")
        return self


class XYChart(_Strict):
    type: ChartKind
    series: list[ChartSeries] = Field(min_length=1, max_length=MAX_SERIES)
    axis_config: AxisConfig

    @model_validator(mode="after")
    def _consistent(self) -> XYChart:
        names = [s.name for s in self.series]
        if len(set(names)) != len(names):
            raise ValueError("series names must be unique")
        known = set(self.axis_config.categories)
        for s in self.series:
            if any(p.label not in known for p in s.data):
                raise ValueError(f"series {s.name!r} has a label that is not a category")
        return self


class DataVisualizationBlock(_Strict):
    """Block Kit's `data_visualization` block (line, bar and area charts)."""

    type: Literal["data_visualization"] = "data_visualization"
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    chart: XYChart
    block_id: str | None = Field(None, max_length=255)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def short_label(text: str, limit: int = LABEL_MAX) -> str:
    """`text` cut to `limit` characters with an ellipsis (chart labels and titles)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_chart_block(
    kind: ChartKind,
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    x_label: str | None = None,
    y_label: str | None = None,
    block_id: str | None = None,
) -> DataVisualizationBlock | None:
    """A chart of `series` (name -> one value per category, None for no data) over
    `categories`, keeping the last MAX_CATEGORIES; labels are shortened to Slack's limits
    (and kept unique). A gap (None) is left out of its series, never drawn as 0. None when
    there is nothing to draw."""
    labels = _unique([short_label(c) for c in categories])[-MAX_CATEGORIES:]
    skip = len(categories) - len(labels)
    out: list[ChartSeries] = []
    names = _unique([short_label(n) for n in series])
    for name, values in zip(names, series.values(), strict=True):
        points = [
            ChartPoint(label=label, value=float(v))
            for label, v in zip(labels, list(values)[skip:], strict=False)
            if v is not None and math.isfinite(v)
        ]
        if points:
            out.append(ChartSeries(name=name, data=points))
    if not out:
        return None
    return DataVisualizationBlock(
        title=short_label(title, TITLE_MAX),
        chart=XYChart(
            type=kind,
            series=out[:MAX_SERIES],
            axis_config=AxisConfig(
                categories=labels,
                x_label=short_label(x_label, AXIS_LABEL_MAX) if x_label else None,
                y_label=short_label(y_label, AXIS_LABEL_MAX) if y_label else None,
            ),
        ),
        block_id=block_id,
    )


def _unique(labels: list[str]) -> list[str]:
    """Shortened labels can collide ("Acme Corporation Eu…" twice): number the repeats."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        if n:
            suffix = f" {n + 1}"
            label = label[: LABEL_MAX - len(suffix)] + suffix
        out.append(label)
    return out


# --------------------------------------------------------------------------- PNG


def build_line_figure(
    labels: Sequence[str], values: Sequence[float | None], *, title: str, y_label: str
) -> Figure:
    """One series over labelled points (a gap where a value is None)."""
    fig = Figure(figsize=(8, 3.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs = list(range(len(labels)))
    ys = [math.nan if v is None else v for v in values]
    ax.plot(xs, ys, color="#6B47D6", linewidth=2, marker="o", markersize=3)
    ax.set_title(title)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    step = max(1, len(labels) // 10)
    ax.set_xticks(xs[::step], [labels[i] for i in xs[::step]], rotation=30, ha="right")
    return fig


def render_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": "databot"})
    return buffer.getvalue()


def render_line_png(
    labels: Sequence[str], values: Sequence[float | None], *, title: str, y_label: str
) -> bytes:
    return render_png(build_line_figure(labels, values, title=title, y_label=y_label))
