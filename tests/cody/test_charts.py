import datetime as dt
import io

from PIL import Image

from bot.cody.chart import build_trend_figure, render_trend_png
from bot.cody.report import CodyDay

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_days(n: int, end: dt.date = dt.date(2026, 11, 22)) -> list[CodyDay]:
    days = []
    for i in range(n):
        active, new, retained, canceled = 500 + 3 * i, i % 4, i % 3, i % 2
        days.append(
            CodyDay(
                date=end - dt.timedelta(days=n - 1 - i),
                daily_subscribers=new + retained,
                new_subscribers=new,
                retained_subscribers=retained,
                canceled_subscribers=canceled,
                active_subscribers=active,
                daily_revenue=(new + retained) * 9,
                daily_revenue_added=new * 9,
                daily_revenue_retained=retained * 9,
                mrr=active * 9,
                arr=active * 108,
            )
        )
    return days


def test_trend_png_is_a_valid_png_image():
    png = render_trend_png(make_days(30), price_usd=9)

    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.verify()  # raises on a truncated or corrupt file
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size[0] >= 600 and image.size[1] >= 300


def test_trend_chart_plots_one_point_per_day_in_date_order():
    days = make_days(30)
    fig = build_trend_figure(days, price_usd=9)
    top, bottom = fig.axes[:2]

    (line,) = top.get_lines()
    assert len(line.get_xdata()) == 30
    assert list(line.get_ydata()) == [d.active_subscribers for d in days]
    # new (up) and canceled (down) bars: one of each per day
    heights = [patch.get_height() for patch in bottom.patches]
    assert heights == [d.new_subscribers for d in days] + [-d.canceled_subscribers for d in days]


def test_trend_title_names_the_first_and_last_day():
    fig = build_trend_figure(make_days(30), price_usd=9)
    assert fig.axes[0].get_title() == "Cody Pro, Oct 24 – Nov 22"
