"""bot/charts.py: the typed chart block keeps to Slack's limits (checked again by the
stand-in Slack, which is written from Slack's reference, not from this module), and
bot/render.py shows a chart as text."""

import math

import pytest
from pydantic import ValidationError

from bot.charts import (
    AxisConfig,
    ChartPoint,
    ChartSeries,
    DataVisualizationBlock,
    XYChart,
    build_chart_block,
    render_line_png,
)
from bot.render import render_block
from sandbox.slack_api import block_problems


def test_a_built_chart_passes_slacks_checks():
    block = build_chart_block(
        "line", "DAU", [f"Nov {d}" for d in range(1, 15)], {"DAU": list(range(14))}
    )
    assert block is not None
    assert block_problems([block.to_dict()]) == []


def test_more_than_twenty_points_keep_the_last_twenty():
    labels = [f"day {i}" for i in range(30)]
    block = build_chart_block("line", "Searches", labels, {"Searches": list(range(30))})
    (series,) = block.chart.series
    assert block.chart.axis_config.categories == labels[10:]
    assert [p.value for p in series.data] == list(range(10, 30))


def test_long_labels_and_titles_are_shortened_and_stay_unique():
    names = ["Acme Corporation Europe", "Acme Corporation Eurasia", "Globex"]
    block = build_chart_block("bar", "T" * 80, names, {"Instances by deployment type": [3, 2, 1]})
    categories = block.chart.axis_config.categories
    assert all(len(c) <= 20 for c in categories) and len(set(categories)) == 3
    assert len(block.title) == 50 and block.title.endswith("…")
    assert len(block.chart.series[0].name) <= 20
    assert block_problems([block.to_dict()]) == []


def test_a_gap_is_left_out_not_drawn_as_zero():
    block = build_chart_block("line", "DAU", ["a", "b", "c"], {"DAU": [1, None, 3]})
    assert [(p.label, p.value) for p in block.chart.series[0].data] == [("a", 1), ("c", 3)]
    assert build_chart_block("line", "DAU", ["a"], {"DAU": [None]}) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: DataVisualizationBlock(title="x" * 51, chart=_chart()),
        lambda: AxisConfig(categories=[f"c{i}" for i in range(21)]),
        lambda: AxisConfig(categories=["x" * 21]),
        lambda: ChartSeries(name="n" * 21, data=[ChartPoint(label="a", value=1)]),
        lambda: ChartPoint(label="a", value=math.nan),
        lambda: XYChart(
            type="line",
            series=[
                ChartSeries(name=f"s{i}", data=[ChartPoint(label="a", value=1)]) for i in range(13)
            ],
            axis_config=AxisConfig(categories=["a"]),
        ),
        lambda: XYChart(
            type="line",
            series=[ChartSeries(name="s", data=[ChartPoint(label="b", value=1)])],
            axis_config=AxisConfig(categories=["a"]),
        ),
    ],
)
def test_the_models_refuse_what_slack_would(make):
    with pytest.raises(ValidationError):
        make()


def _chart():
    return XYChart(
        type="line",
        series=[ChartSeries(name="s", data=[ChartPoint(label="a", value=1)])],
        axis_config=AxisConfig(categories=["a"]),
    )


def test_the_terminal_shows_a_chart_as_labelled_bars_with_values():
    block = build_chart_block(
        "line", "DAU · Nov 21 – Nov 22", ["Nov 21", "Nov 22"], {"DAU": [500, 1000]}
    )
    text = render_block(block.to_dict())
    lines = text.splitlines()
    assert lines[0] == "[line chart] DAU · Nov 21 – Nov 22"
    assert lines[1].startswith("  Nov 21") and lines[1].endswith(" 500")
    assert lines[2].startswith("  Nov 22") and lines[2].endswith(" 1,000")
    # The bar is proportional to the value: twice the value, twice the bar.
    assert lines[2].count("█") == 2 * lines[1].count("█")


def test_the_png_is_a_png():
    assert render_line_png(["a", "b"], [1, None], title="t", y_label="y").startswith(b"\x89PNG")


def test_a_chart_keeps_slacks_six_series_at_most():
    # Slack's line, bar and area charts take 1-6 series: a seventh is left out, not refused.
    series = {f"s{n}": [1.0, 2.0] for n in range(7)}
    block = build_chart_block("line", "Seven", ["a", "b"], series)
    assert block is not None
    payload = block.to_dict()
    assert [s["name"] for s in payload["chart"]["series"]] == [f"s{n}" for n in range(6)]
    assert block_problems([payload]) == []
