"""The daily Cody Pro post as the scheduler sees it: CodyDailyJob.build on real data."""

import datetime as dt
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from bot.cody.blocks import fmt_money
from bot.cody.job import CodyDailyJob
from bot.cody.report import load_report
from bot.deps import Deps, build_deps
from bot.ids import Job
from bot.scheduling.job import NotReady, Post
from bot.settings import Settings
from bot.store import Store
from bot.warehouse import DuckDBWarehouse
from tests.support.cody_warehouse import (
    PT,
    RawSSC,
    ReopeningWarehouse,
    copy_ssc,
    set_synced_through,
)

DAY = dt.date(2026, 11, 22)
PERIOD = DAY.isoformat()


@pytest.fixture
def make_deps(tmp_path):
    made = []

    def make(warehouse, **values):
        # The post's channel may show revenue unless a test says otherwise.
        values = {"cody_channel": "C0CODY", "revenue_channels": ["C0CODY"], **values}
        settings = Settings(_env_file=None, data_dir=tmp_path, **values)
        deps = build_deps(settings, warehouse=warehouse, store=Store(f"sqlite:///{tmp_path}/s.db"))
        made.append(deps)
        return deps

    yield make
    for deps in made:
        deps.work.shutdown(wait=False)
        deps.store.close()


@pytest.fixture
def demo_warehouse(demo_warehouse_path):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60)
    yield warehouse
    warehouse.close()


def block_text(blocks: list[dict]) -> str:
    """Every mrkdwn/plain string in the blocks, as a reader would see them."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(found)


def field_value(text: str, label: str) -> str:
    """The value line under a bold field label ('*MRR*\\n$40,248\\n...')."""
    match = re.search(rf"\*{re.escape(label)}\*[^\n]*\n([^\n]+)", text)
    assert match, f"{label!r} not in post"
    return match.group(1)


def test_job_identity():
    job = CodyDailyJob()
    assert job.id is Job.CODY_DAILY
    assert job.id == "cody-daily"


def test_post_shows_every_field_equal_to_the_independent_computation(
    demo_warehouse, demo_warehouse_path, make_deps
):
    deps = make_deps(demo_warehouse)

    post = CodyDailyJob().build(deps, PERIOD)

    assert isinstance(post, Post)
    assert post.channel == "C0CODY"
    expected = RawSSC(demo_warehouse_path).fields(DAY)
    text = block_text(post.blocks)
    counts = {
        "Active subscribers": "active_subscribers",
        "New subscribers": "new_subscribers",
        "Retained subscribers": "retained_subscribers",
        "Canceled subscribers": "canceled_subscribers",
        "Daily subscribers": "daily_subscribers",
    }
    for label, name in counts.items():
        assert field_value(text, label) == f"{expected[name]:,}", label
    money = {
        "MRR": "mrr",
        "ARR": "arr",
        "Daily revenue": "daily_revenue",
        "Revenue added": "daily_revenue_added",
        "Revenue retained": "daily_revenue_retained",
    }
    for label, name in money.items():
        assert field_value(text, label) == f"${expected[name]:,.0f}", label
    assert "Sun, Nov 22, 2026" in text
    # the fallback text (notifications, clients without blocks) has the headline numbers
    assert f"{expected['active_subscribers']:,} active subscribers" in post.text
    assert fmt_money(expected["mrr"]) in post.text


def test_post_shows_changes_and_net_against_the_independent_computation(
    demo_warehouse, demo_warehouse_path, make_deps
):
    post = CodyDailyJob().build(make_deps(demo_warehouse), PERIOD)

    raw = RawSSC(demo_warehouse_path)
    today, yesterday = raw.fields(DAY), raw.fields(DAY - dt.timedelta(days=1))
    week_ago = raw.fields(DAY - dt.timedelta(days=7))
    text = block_text(post.blocks)
    active_block = text[text.index("*Active subscribers*") :].split("\n")[2]
    d1 = today["active_subscribers"] - yesterday["active_subscribers"]
    d7 = today["active_subscribers"] - week_ago["active_subscribers"]
    assert active_block.startswith(f"{'+' if d1 > 0 else '−'}{abs(d1):,} (")
    assert f"{'+' if d7 > 0 else '−'}{abs(d7):,} (" in active_block
    assert "vs Sat" in active_block and "vs last Sun" in active_block
    net_day = today["new_subscribers"] - today["canceled_subscribers"]
    month = [raw.fields(dt.date(2026, 11, d)) for d in range(1, 23)]
    net_month = sum(f["new_subscribers"] - f["canceled_subscribers"] for f in month)
    assert f"{net_day:+,d} on the day · {net_month:+,d} month to date" in text


def test_post_carries_a_30_day_chart_and_a_text_sparkline(demo_warehouse, make_deps):
    post = CodyDailyJob().build(make_deps(demo_warehouse), PERIOD)

    (chart,) = post.files
    assert chart.filename == "cody-pro-2026-11-22.png"
    image = Image.open(io.BytesIO(chart.content))
    assert image.format == "PNG"
    spark = re.search(r"`([▁▂▃▄▅▆▇█]+)`", block_text(post.blocks))
    assert spark and len(spark.group(1)) == 30
    assert re.search(r"30-day trend: [▁▂▃▄▅▆▇█]{30}", post.text)


def test_blocks_are_within_slack_limits(demo_warehouse, make_deps):
    deps = make_deps(demo_warehouse, cody_stripe_reconciliation=True)
    post = CodyDailyJob().build(deps, PERIOD)

    assert len(post.blocks) <= 50
    assert len(json.dumps(post.blocks)) < 40_000
    for block in post.blocks:
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


def test_reconciliation_appears_in_the_post_when_configured(demo_warehouse, make_deps):
    plain = CodyDailyJob().build(make_deps(demo_warehouse), PERIOD)
    assert "Stripe reconciliation" not in block_text(plain.blocks)

    deps = make_deps(demo_warehouse, cody_stripe_reconciliation=True)
    post = CodyDailyJob().build(deps, PERIOD)
    rec = load_report(demo_warehouse, deps.settings, DAY).reconciliation
    text = block_text(post.blocks)
    assert f"*Stripe reconciliation:* {rec.match_rate_pct:.1f}% match" in text
    assert rec.match_rate_pct > 95  # the demo's Stripe mirrors SSC ~96%: no flag
    assert ":warning:" not in text

    strict = make_deps(
        demo_warehouse, cody_stripe_reconciliation=True, cody_stripe_match_threshold_pct=99
    )
    flagged = block_text(CodyDailyJob().build(strict, PERIOD).blocks)
    assert ":warning: below the 99%" in flagged
    assert "*Unusual:* SSC and Stripe agree on only" in flagged


# --- late data ------------------------------------------------------------------------------


def test_incomplete_reference_date_is_not_posted(demo_warehouse_path, tmp_path, make_deps):
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    # the export stopped at 23:00 PT on the reference date: the day is not complete
    set_synced_through(db, dt.datetime(2026, 11, 22, 23, 0, tzinfo=PT), table="billing_cycles")
    warehouse = ReopeningWarehouse(db)
    deps = make_deps(warehouse)

    result = CodyDailyJob().build(deps, PERIOD)

    assert isinstance(result, NotReady)
    assert "ssc.billing_cycles has complete data only through Sat, Nov 21, 2026" in result.reason
    assert "synced through Nov 22 23:00 PST" in result.reason
    # no numbers were read for a day that is not complete
    assert not any("cody_pro_daily" in q or "GENERATE_DATE_ARRAY" in q for q in warehouse.queries)

    set_synced_through(db, dt.datetime(2026, 11, 23, 0, 0, tzinfo=PT))
    assert isinstance(CodyDailyJob().build(deps, PERIOD), Post)


def test_broken_numbers_are_held_back(demo_warehouse, make_deps):
    class Corrupting:
        """The real warehouse, but the daily row for the reference date is inconsistent."""

        name = "duckdb"

        def query(self, sql, params=None, *, labels=None):
            rows = demo_warehouse.query(sql, params)
            for row in rows:
                if row.get("date") == DAY and "daily_subscribers" in row:
                    row["daily_subscribers"] += 1
            return rows

        def close(self):
            pass

    result = CodyDailyJob().build(make_deps(Corrupting()), PERIOD)

    assert isinstance(result, NotReady)
    assert "failed a consistency check" in result.reason
    assert "daily_subscribers" in result.reason


def test_a_bad_period_is_a_clear_error(demo_warehouse, make_deps):
    from bot.errors import InputError

    with pytest.raises(InputError, match="YYYY-MM-DD"):
        CodyDailyJob().build(make_deps(demo_warehouse), "yesterday")


# --- on demand -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, current, previous, expected",
    [
        ("active_subscribers", 4472, 4459, "+13 (+0.3%)"),
        ("canceled_subscribers", 10, 17, "−7 (−41.2%)"),
        ("new_subscribers", 5, 5, "±0"),
        ("new_subscribers", 5, 0, "+5 (from 0)"),
        ("mrr", 40248.0, 40131.0, "+$117 (+0.3%)"),
        ("mrr", 110.5, 100.0, "+$10.50 (+10.5%)"),
    ],
)
def test_changes_read_with_one_sign_convention(name, current, previous, expected):
    from bot.cody.blocks import fmt_change
    from bot.cody.report import Change

    assert fmt_change(name, Change(current=current, previous=previous)) == expected


def test_a_broken_earlier_day_also_holds_the_post_back(demo_warehouse, make_deps):
    week_ago = DAY - dt.timedelta(days=7)

    class NegativeWeekAgo:
        name = "duckdb"

        def query(self, sql, params=None, *, labels=None):
            rows = demo_warehouse.query(sql, params)
            for row in rows:
                if row.get("date") == week_ago and "canceled_subscribers" in row:
                    row["canceled_subscribers"] = -3
            return rows

        def close(self):
            pass

    result = CodyDailyJob().build(make_deps(NegativeWeekAgo()), PERIOD)

    assert isinstance(result, NotReady)
    assert "Sun, Nov 15, 2026: canceled_subscribers is negative (-3)" in result.reason


# --- through the runner: late data, retries, one notice, the numbers once ------------------


def pacific_at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PT).astimezone(dt.UTC)


@pytest.fixture
def slack():
    from sandbox.slack_api import FakeSlack

    with FakeSlack() as fake:
        yield fake


def runner_deps(store, slack, warehouse, clock, **values) -> Deps:
    from slack_sdk import WebClient

    settings = Settings(
        _env_file=None,
        cody_channel="#cody-pro-metrics",
        owner_channel="U0OWNER",
        **values,
    )
    return Deps(
        settings=settings,
        store=store,
        warehouse=warehouse,
        slack=WebClient(token=slack.token, base_url=slack.api_url),
        github=None,
        work=ThreadPoolExecutor(1),
        now=clock,
    )


def top_level(slack, channel="#cody-pro-metrics") -> list[dict]:
    """Messages in the channel, without thread replies (a parent with replies carries
    thread_ts equal to its own ts)."""
    return [m for m in slack.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]


def test_late_data_retries_then_one_notice_then_the_numbers_once(
    store, slack, clock, demo_warehouse_path, tmp_path
):
    from bot.scheduling import runner, runs
    from bot.scheduling.runs import RunStatus

    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    set_synced_through(db, pacific_at(DAY, 22))  # the export stopped at 22:00 PT on Nov 22
    warehouse = ReopeningWarehouse(db)
    # CODY_CHANNEL is a #name; REVENUE_CHANNELS has its ID (found with conversations.list)
    revenue_id = slack.add_channel(name="cody-pro-metrics")
    deps = runner_deps(store, slack, warehouse, clock, revenue_channels=[revenue_id])
    job = CodyDailyJob(deps.settings)
    morning = DAY + dt.timedelta(days=1)

    def run_at(hour, minute=0):
        clock.set(pacific_at(morning, hour, minute))
        assert job.period_for(clock(), PT) == PERIOD
        return runner.run_period(deps, job, PERIOD)

    first = run_at(9)
    assert first.status == RunStatus.WAITING
    assert top_level(slack) == []
    # before the next retry is due nobody may run it (a second clock, an eager sweep)
    assert run_at(9, 10) is None
    for hour, minute in [(9, 30), (10, 0), (10, 30), (11, 0), (11, 30)]:
        assert run_at(hour, minute).status == RunStatus.WAITING
    assert top_level(slack) == []  # retries are silent until the give-up time

    run_at(12, 0)
    (notice,) = top_level(slack)
    assert "is late" in notice["text"]
    assert "ssc.subscriptions has complete data only through Sat, Nov 21, 2026" in notice["text"]
    run_at(12, 30)
    assert len(top_level(slack)) == 1  # the notice is posted once

    set_synced_through(db, pacific_at(morning, 0, 15))
    posted = run_at(13, 0)
    assert posted.status == RunStatus.POSTED
    notice_again, numbers = top_level(slack)
    assert notice_again == notice
    expected = RawSSC(db).fields(DAY)
    assert f"{expected['active_subscribers']:,} active subscribers" in numbers["text"]
    assert field_value(block_text(numbers["blocks"]), "MRR") == f"${expected['mrr']:,.0f}"
    (chart,) = [f for f in slack.files() if f.filename == "cody-pro-2026-11-22.png"]
    assert chart.content.startswith(b"\x89PNG")
    assert chart.thread_ts == numbers["ts"]
    # Alt text says what the picture shows, for screen readers.
    assert chart.alt_txt and "Cody Pro active subscribers" in chart.alt_txt
    assert f"to {expected['active_subscribers']:,}" in chart.alt_txt

    # later retries, a second clock, a restart: the period is done
    assert run_at(13, 30) is None
    assert run_at(17, 0) is None
    assert len(top_level(slack)) == 2
    assert runs.get_run(store, "cody-daily", PERIOD).ts == numbers["ts"]


def test_complete_data_posts_at_nine_without_a_notice(store, slack, clock, demo_warehouse):
    from bot.scheduling import runner

    deps = runner_deps(store, slack, demo_warehouse, clock)
    clock.set(pacific_at(DAY + dt.timedelta(days=1), 9))
    job = CodyDailyJob(deps.settings)

    record = runner.run_period(deps, job, job.period_for(clock(), PT))

    assert record.status == "posted"
    (post,) = top_level(slack)
    assert "is late" not in post["text"]
    assert runner.run_period(deps, job, PERIOD) is None


def test_cli_dry_run_prints_numbers_equal_to_the_independent_computation(
    demo_warehouse_path, tmp_path, monkeypatch, capsys
):
    import bot.deps
    import bot.warehouse
    from bot.cli import main
    from tests.conftest import TEST_NOW

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CODY_CHANNEL", "C0REVENUE")
    monkeypatch.setenv("REVENUE_CHANNELS", '["C0REVENUE"]')
    monkeypatch.setattr(bot.deps, "utc_now", lambda: TEST_NOW)
    monkeypatch.setattr(
        bot.deps,
        "make_warehouse",
        lambda settings: bot.warehouse.DuckDBWarehouse(demo_warehouse_path, timeout_s=60),
    )

    code = main(["post", "cody-daily", "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "dry run" in out and "Cody Pro · Sun, Nov 22, 2026" in out
    expected = RawSSC(demo_warehouse_path).fields(DAY)
    for label, name in [
        ("Active subscribers", "active_subscribers"),
        ("New subscribers", "new_subscribers"),
        ("Retained subscribers", "retained_subscribers"),
        ("Canceled subscribers", "canceled_subscribers"),
        ("Daily subscribers", "daily_subscribers"),
    ]:
        assert field_value(out, label) == f"{expected[name]:,}", label
    for label, name in [
        ("MRR", "mrr"),
        ("ARR", "arr"),
        ("Daily revenue", "daily_revenue"),
        ("Revenue added", "daily_revenue_added"),
        ("Revenue retained", "daily_revenue_retained"),
    ]:
        assert field_value(out, label) == f"${expected[name]:,.0f}", label
    assert "cody-pro-2026-11-22.png" in out


def test_cody_daily_is_registered_with_its_schedule(demo_warehouse, make_deps):
    from bot.features import build_jobs, find_job

    job = find_job(build_jobs(make_deps(demo_warehouse)), "cody-daily")
    assert isinstance(job, CodyDailyJob)
    assert Settings(_env_file=None).job_schedules["cody-daily"] == "0 9 * * *"
    moved = Settings(_env_file=None, cody_post_cron="30 8 * * *")
    assert moved.job_schedules["cody-daily"] == "30 8 * * *"
    off = Settings(_env_file=None, job_schedules={"cody-daily": "off"})
    assert off.job_schedules["cody-daily"] == "off"


def test_a_bad_post_cron_is_a_settings_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="CODY_POST_CRON"):
        Settings(_env_file=None, cody_post_cron="at nine")


# --- the demo scene -------------------------------------------------------------------------


def test_demo_scene_shows_late_notice_then_the_post_with_its_chart_once(
    demo_warehouse, tmp_path, clock
):
    from sandbox.demo import DemoHarness
    from sandbox.scenes import cody as scene

    out = io.StringIO()
    with DemoHarness(out=out, data_dir=tmp_path, warehouse=demo_warehouse, now=clock) as h:
        scene.run(h)
        h.show_new()
        files = h.slack.files()
    text = out.getvalue()

    assert text.count("The Cody Pro daily post for 2026-11-22 is late") == 1
    assert "ssc.subscriptions has complete data only through Sat, Nov 21, 2026" in text
    assert text.count("\nCody Pro · Sun, Nov 22, 2026") == 1
    assert "*Stripe reconciliation:*" in text
    # the demo's #cody-pro-metrics is a revenue channel: the full post
    assert "*MRR*" in text and "*ARR*" in text
    assert "REVENUE_CHANNELS" not in text
    assert "finds the period done: nothing posted again." in text
    (chart,) = [f for f in files if f.filename == "cody-pro-2026-11-22.png"]
    assert (tmp_path / chart.filename).read_bytes() == chart.content


# --- revenue only where it may be shown -----------------------------------------------------

DOLLAR_AMOUNT = re.compile(r"\$\s?\d")
REVENUE_WORDS = re.compile(r"\b(MRR|ARR)\b")


def chart_texts(monkeypatch, build) -> tuple[str, Post]:
    """Every string drawn on the chart the job attaches (titles, labels, tick labels),
    and the post."""
    from matplotlib.text import Text

    import bot.cody.chart

    figures = []
    real = bot.cody.chart.render_png

    def capture(fig):
        figures.append(fig)
        return real(fig)  # renders, which also lays out the tick labels

    monkeypatch.setattr(bot.cody.chart, "render_png", capture)
    post = build()
    (fig,) = figures
    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_text()), post


def assert_no_revenue(post: Post, chart: str) -> None:
    for where, text in [
        ("blocks", json.dumps(post.blocks, ensure_ascii=False)),
        ("fallback text", post.text),
        ("chart", chart),
    ]:
        assert not DOLLAR_AMOUNT.search(text), f"a $ amount in the {where}"
        assert not REVENUE_WORDS.search(text), f"MRR/ARR in the {where}"


def test_outside_revenue_channels_the_post_shows_counts_but_no_revenue(
    demo_warehouse, demo_warehouse_path, make_deps, monkeypatch
):
    deps = make_deps(
        demo_warehouse, revenue_channels=["C0FINANCE"], cody_stripe_reconciliation=True
    )

    chart, post = chart_texts(monkeypatch, lambda: CodyDailyJob().build(deps, PERIOD))

    assert isinstance(post, Post) and post.channel == "C0CODY"
    assert_no_revenue(post, chart)
    raw = RawSSC(demo_warehouse_path)
    expected = raw.fields(DAY)
    text = block_text(post.blocks)
    for label, name in [
        ("Active subscribers", "active_subscribers"),
        ("New subscribers", "new_subscribers"),
        ("Retained subscribers", "retained_subscribers"),
        ("Canceled subscribers", "canceled_subscribers"),
        ("Daily subscribers", "daily_subscribers"),
    ]:
        assert field_value(text, label) == f"{expected[name]:,}", label
    net_day = expected["new_subscribers"] - expected["canceled_subscribers"]
    assert f"{net_day:+,d} on the day" in text
    assert re.search(r"`[▁▂▃▄▅▆▇█]{30}`", text)
    assert "*Stripe reconciliation:*" in text  # counts only: still shown
    assert f"{expected['active_subscribers']:,} active subscribers" in post.text
    assert re.search(r"30-day trend: [▁▂▃▄▅▆▇█]{30}", post.text)
    # one line says why, and what to change
    (hidden,) = [line for line in text.split("\n") if "REVENUE_CHANNELS" in line]
    assert "Revenue figures are hidden" in hidden and "not in `REVENUE_CHANNELS`" in hidden
    assert "active subscribers" in chart  # the chart is still the subscriber chart


def test_in_a_revenue_channel_the_chart_has_its_mrr_axis(demo_warehouse, make_deps, monkeypatch):
    deps = make_deps(demo_warehouse)  # C0CODY is in REVENUE_CHANNELS

    chart, post = chart_texts(monkeypatch, lambda: CodyDailyJob().build(deps, PERIOD))

    assert "MRR (USD)" in chart and DOLLAR_AMOUNT.search(chart)
    assert "REVENUE_CHANNELS" not in block_text(post.blocks)


@pytest.fixture
def slack_deps(make_deps, slack, demo_warehouse):
    """make_deps with its WebClient on the fake Slack (channel names resolve there)."""

    def make(**values):
        return make_deps(
            demo_warehouse, slack_api_url=slack.api_url, slack_bot_token=slack.token, **values
        )

    return make


def test_a_channel_name_shows_revenue_when_its_id_is_a_revenue_channel(
    slack, slack_deps, demo_warehouse_path
):
    finance = slack.add_channel(name="cody-finance")
    slack.add_channel(name="general")
    expected = RawSSC(demo_warehouse_path).fields(DAY)

    allowed = CodyDailyJob().build(
        slack_deps(cody_channel="#cody-finance", revenue_channels=[finance]), PERIOD
    )
    hidden = CodyDailyJob().build(
        slack_deps(cody_channel="#general", revenue_channels=[finance]), PERIOD
    )

    text = block_text(allowed.blocks)
    assert field_value(text, "MRR") == f"${expected['mrr']:,.0f}"
    assert field_value(text, "ARR") == f"${expected['arr']:,.0f}"
    assert f"MRR {fmt_money(expected['mrr'])}" in allowed.text
    assert "REVENUE_CHANNELS" not in text
    assert not DOLLAR_AMOUNT.search(json.dumps(hidden.blocks) + hidden.text)
    assert "REVENUE_CHANNELS" in block_text(hidden.blocks)


def test_a_channel_listed_by_name_in_revenue_channels_shows_revenue(slack_deps, slack):
    deps = slack_deps(cody_channel="#cody-finance", revenue_channels=["#cody-finance"])

    post = CodyDailyJob().build(deps, PERIOD)

    assert "*MRR*" in block_text(post.blocks)
    assert slack.calls("conversations.list") == []


def test_a_channel_given_by_id_shows_revenue_when_revenue_channels_names_it(slack_deps, slack):
    finance = slack.add_channel(name="cody-finance")
    slack.add_channel(name="general")
    allowed = CodyDailyJob().build(
        slack_deps(cody_channel=finance, revenue_channels=["#cody-finance"]), PERIOD
    )
    hidden = CodyDailyJob().build(
        slack_deps(cody_channel="#general", revenue_channels=["#cody-finance"]), PERIOD
    )
    assert "*MRR*" in block_text(allowed.blocks)
    assert not DOLLAR_AMOUNT.search(json.dumps(hidden.blocks) + hidden.text)


def test_revenue_is_hidden_when_the_channel_name_cannot_be_resolved(
    demo_warehouse, make_deps, monkeypatch
):
    import socket

    with socket.socket() as sock:  # a port nobody listens on: Slack is unreachable
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    deps = make_deps(
        demo_warehouse,
        cody_channel="#cody-pro-metrics",
        revenue_channels=["C0FINANCE"],
        slack_api_url=f"http://127.0.0.1:{closed}/api/",
    )

    chart, post = chart_texts(monkeypatch, lambda: CodyDailyJob().build(deps, PERIOD))

    assert isinstance(post, Post)
    assert_no_revenue(post, chart)
    assert "REVENUE_CHANNELS" in block_text(post.blocks)


def test_a_broken_revenue_identity_names_no_figure_outside_revenue_channels(
    demo_warehouse, make_deps
):
    class WrongMRR:
        name = "duckdb"

        def query(self, sql, params=None, *, labels=None):
            rows = demo_warehouse.query(sql, params)
            for row in rows:
                if row.get("date") == DAY and "mrr" in row:
                    row["mrr"] += 9
            return rows

        def close(self):
            pass

    hidden = CodyDailyJob().build(make_deps(WrongMRR(), revenue_channels=[]), PERIOD)
    shown = CodyDailyJob().build(make_deps(WrongMRR()), PERIOD)

    assert isinstance(hidden, NotReady) and isinstance(shown, NotReady)
    assert "mrr is not its subscriber count × the seat price" in hidden.reason
    assert not re.search(r"\$|\d+\.\d", hidden.reason)
    assert "at $9 a seat" in shown.reason  # where revenue may be shown, the figures help


def test_cli_dry_run_outside_revenue_channels_prints_no_revenue(
    demo_warehouse_path, tmp_path, monkeypatch, capsys
):
    import bot.deps
    import bot.warehouse
    from bot.cli import main
    from tests.conftest import TEST_NOW

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr(bot.deps, "utc_now", lambda: TEST_NOW)
    monkeypatch.setattr(
        bot.deps,
        "make_warehouse",
        lambda settings: bot.warehouse.DuckDBWarehouse(demo_warehouse_path, timeout_s=60),
    )

    code = main(["post", "cody-daily", "--dry-run"])  # default settings: no REVENUE_CHANNELS

    out = capsys.readouterr().out
    assert code == 0, out
    assert "Cody Pro · Sun, Nov 22, 2026" in out
    expected = RawSSC(demo_warehouse_path).fields(DAY)
    assert field_value(out, "Active subscribers") == f"{expected['active_subscribers']:,}"
    assert not DOLLAR_AMOUNT.search(out) and not REVENUE_WORDS.search(out)
    assert "REVENUE_CHANNELS" in out
