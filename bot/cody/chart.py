"""The Cody Pro daily chart (PNG, uploaded with the post), drawn and encoded through the
project's one chart module, bot/charts.py. The text sparkline that stands in for it where a
Slack client shows no images is bot/sparkline.py (shared with /metric).

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, never
`pyplot`: pyplot keeps global state and picks a GUI backend, and jobs run in worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from bot.charts import render_png
from bot.cody.report import CodyDay


def build_trend_figure(days: Sequence[CodyDay], *, price_usd: float | None) -> Figure:
    """Two panels over the same dates: active subscribers (with MRR on the right axis),
    and each day's new (up) and canceled (down) subscribers. `price_usd=None`: no MRR axis,
    for a channel where revenue may not be shown."""
    dates = [d.date for d in days]
    active = [d.active_subscribers for d in days]
    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])

    top.plot(dates, active, color="#6B47D6", linewidth=2, marker="o", markersize=3)
    top.set_ylabel("active subscribers")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    top.grid(True, alpha=0.3)
    if price_usd is not None:
        mrr_axis = top.secondary_yaxis(
            "right", functions=(lambda n: n * price_usd, lambda usd: usd / price_usd)
        )
        mrr_axis.set_ylabel("MRR (USD)")
        mrr_axis.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
    if days:
        top.set_title(f"Cody Pro, {dates[0]:%b} {dates[0].day} – {dates[-1]:%b} {dates[-1].day}")

    bottom.bar(dates, [d.new_subscribers for d in days], color="#2E9E5B", label="new")
    bottom.bar(dates, [-d.canceled_subscribers for d in days], color="#D64747", label="canceled")
    bottom.axhline(0, color="#555555", linewidth=0.8)
    bottom.set_ylabel("per day")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    bottom.legend(loc="upper left", ncols=2, fontsize="small", framealpha=0.9)
    bottom.grid(True, axis="y", alpha=0.3)
    bottom.xaxis.set_major_formatter(DateFormatter("%b %d"))
    fig.autofmt_xdate()
    return fig


def render_trend_png(days: Sequence[CodyDay], *, price_usd: float | None) -> bytes:
    return render_png(build_trend_figure(days, price_usd=price_usd))


def trend_alt_text(days: Sequence[CodyDay], *, show_revenue: bool) -> str:
    """What the chart shows, for screen readers and clients without images."""
    if not days:
        return "Cody Pro chart: no days to show."
    first, last = days[0], days[-1]
    new = sum(d.new_subscribers for d in days)
    canceled = sum(d.canceled_subscribers for d in days)
    text = (
        f"Cody Pro active subscribers from {first.date:%b} {first.date.day} to "
        f"{last.date:%b} {last.date.day}, {last.date.year}: {first.active_subscribers:,} to "
        f"{last.active_subscribers:,} (lowest {min(d.active_subscribers for d in days):,}, "
        f"highest {max(d.active_subscribers for d in days):,}); {new:,} new and "
        f"{canceled:,} canceled over the {len(days)} days."
    )
    if show_revenue:
        text += " The right axis shows MRR."
    return text
