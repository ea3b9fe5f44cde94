"""The lookup service with a small fake of our own Warehouse protocol: cache, single
flight, still-working note, sensitivity rules, account matching, and the arithmetic that
turns rows into an answer."""

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import InputError, NotAllowedError, WarehouseError, WarehouseTimeout
from bot.metric.blocks import (
    build_metric_help,
    build_metric_message,
    build_metric_text,
    build_request_offer,
    format_change,
    format_value,
)
from bot.metric.catalog import Unit, load_catalog
from bot.metric.lookup import MAX_SCAN_DAYS, MetricService
from bot.metric.model import (
    MetricQuery,
    NoData,
    UnknownAccount,
    UnknownMetric,
    check_allowed,
    may_see,
    parse_command,
    prefill_for,
)
from bot.metric.periods import Period
from bot.settings import Settings

D = dt.date
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Mon Nov 23, 10:00 PT
CATALOG = load_catalog()


class FakeWarehouse:
    """Answers account lists and metric queries from a function of the parameters."""

    def __init__(self, rows=None, delay=0.0, error=None):
        self.rows = rows or (lambda sql, params: [])
        self.delay = delay
        self.error = error
        self.calls = []
        self.labels = []
        self._lock = threading.Lock()

    def query(self, sql, params, labels=None):
        with self._lock:
            self.calls.append((sql, params))
            self.labels.append(labels)
        if self.delay:
            time.sleep(self.delay)
        if "salesforce_data.accounts" in sql:
            return [{"account_name": n} for n in ("Acme Corp", "Acme Labs", "Globex", "Initech")]
        if self.error:
            raise self.error
        return self.rows(sql, params)

    def metric_calls(self):
        return [c for c in self.calls if "salesforce_data" not in c[0]]


def scan_dates(params):
    """The Pacific dates a query covers, from whichever parameters it was given."""
    if "start_date" in params:
        return params["start_date"], params["end_date"]
    pt = ZoneInfo("America/Los_Angeles")
    last = params["end_ts"] - dt.timedelta(seconds=1)
    return params["start_ts"].astimezone(pt).date(), last.astimezone(pt).date()


def daily_rows(value_of_day, through=NOW):
    def rows(sql, params):
        (day, end), out = scan_dates(params), []
        while day <= end:
            out.append({"day": day, "value": value_of_day(day), "data_through": through})
            day += dt.timedelta(days=1)
        return out

    return rows


def make(warehouse, settings=None, clock=None):
    settings = settings or Settings(
        metric_still_working_seconds=5, revenue_channels=["CREV"], revenue_users=["UBOSS"]
    )
    return MetricService(CATALOG, warehouse, settings, lambda: NOW, clock or time.monotonic)


def ask(service, text):
    return service.answer(service.parse(text))


# --------------------------------------------------------------------------- arithmetic


def test_daily_mean_metric_averages_every_day_of_the_period_and_compares_to_the_one_before():
    service = make(FakeWarehouse(daily_rows(lambda d: d.day)))  # value = day of month
    answer = ask(service, "dau 7d")  # Nov 16..22
    _, value, previous = answer.headline
    assert answer.period == Period(D(2026, 11, 16), D(2026, 11, 22))
    assert value == pytest.approx(sum(range(16, 23)) / 7)
    assert previous == pytest.approx(sum(range(9, 16)) / 7)
    assert answer.previous_period == Period(D(2026, 11, 9), D(2026, 11, 15))
    assert len(answer.trend) == 14 and answer.trend[-1] == 22
    assert answer.complete


def test_days_without_rows_count_as_zero_in_sums_and_means():
    def rows(sql, params):
        return [{"day": D(2026, 11, 20), "value": 70, "data_through": NOW}]

    answer = ask(make(FakeWarehouse(rows)), "searches 7d")
    assert answer.headline[1] == 70
    answer = ask(make(FakeWarehouse(rows)), "dau 7d")
    assert answer.headline[1] == pytest.approx(10)


def test_snapshot_metric_takes_the_last_day_of_the_period():
    def rows(sql, params):
        (day, end), out = scan_dates(params), []
        while day <= end:
            n = day.toordinal() % 100
            out.append({"date": day, "active_subscribers": n, "mrr": 9 * n, "arr": 108 * n})
            out[-1]["data_through"] = NOW
            day += dt.timedelta(days=1)
        return out

    answer = ask(make(FakeWarehouse(rows)), "cody_pro_active 30d")
    assert answer.headline[1] == D(2026, 11, 22).toordinal() % 100
    assert answer.headline[2] == D(2026, 10, 23).toordinal() % 100


def test_bucket_metric_reads_period_zero_and_one_and_the_trend():
    scanned = []

    def rows(sql, params):
        assert params["bucket_days"] == 30
        start, end = scan_dates(params)
        scanned.append((end - start).days + 1)
        return [
            {"bucket": b, "value": 1000 - b, "data_through": NOW} for b in range(scanned[-1] // 30)
        ]

    answer = ask(make(FakeWarehouse(rows)), "mau 30d")
    assert answer.headline[1:] == (1000, 999)
    buckets = scanned[0] // 30
    assert 2 <= buckets and scanned[0] <= MAX_SCAN_DAYS  # a trend, within the scan budget
    assert answer.trend == [1000 - b for b in range(buckets - 1, -1, -1)]


def test_short_period_widens_to_the_metric_minimum_window_and_says_so():
    service = make(FakeWarehouse(lambda s, p: [{"bucket": 0, "value": 5, "data_through": NOW}]))
    answer = ask(service, "mau yesterday")
    assert answer.asked == Period(D(2026, 11, 22), D(2026, 11, 22))
    assert answer.period == Period(D(2026, 10, 24), D(2026, 11, 22))
    assert "30-day minimum" in build_metric_text(answer, service.settings)


def test_breakdown_is_ranked_and_sums_to_the_headline():
    def rows(sql, params):
        data = {"kubernetes": (50, 40), "docker-compose": (70, 80), "<script>": (1, 0)}
        return [
            {"bucket": b, "deployment_type": k, "value": v[b], "data_through": NOW}
            for k, v in data.items()
            for b in (0, 1)
        ]

    service = make(FakeWarehouse(rows))
    answer = ask(service, "instances_by_deployment")
    assert [r.label for r in answer.breakdown] == ["docker-compose", "kubernetes", "<script>"]
    assert answer.headline[1] == 121
    blocks = build_metric_message(answer, service.settings).blocks
    # The breakdown is a table block of raw_text cells, which Slack never parses as
    # mrkdwn; the label shows as typed there, and nowhere as live markup.
    (table,) = [b for b in blocks if b["type"] == "table"]
    cells = [[c["text"] for c in row] for row in table["rows"]]
    assert [row[1] for row in cells[1:]] == ["docker-compose", "kubernetes", "<script>"]
    assert all(c["type"] == "raw_text" for row in table["rows"] for c in row)
    others = json.dumps([b for b in blocks if b["type"] not in ("table", "data_visualization")])
    assert "<script>" not in others


def test_no_rows_for_the_period_says_there_is_no_data():
    service = make(FakeWarehouse(lambda s, p: [{"day": None, "data_through": NOW}]))
    with pytest.raises(NoData) as err:
        ask(service, "dau 2019-03")
    assert "No DAU data" in err.value.user_message
    assert "Mar 1 – Mar 31, 2019" in err.value.user_message


def test_data_still_arriving_is_flagged_not_complete():
    late = dt.datetime(2026, 11, 22, 18, 0, tzinfo=dt.UTC)  # Nov 22, 10:00 PT
    service = make(FakeWarehouse(daily_rows(lambda d: 1, through=late)))
    answer = ask(service, "dau yesterday")  # asked for explicitly: keeps the warning
    assert not answer.complete
    text = build_metric_text(answer, service.settings)
    assert "data through Nov 22, 10:00 PT" in text and "not complete" in text


def test_the_default_period_answers_the_last_complete_day_and_says_so():
    late = dt.datetime(2026, 11, 22, 18, 0, tzinfo=dt.UTC)  # Nov 22, 10:00 PT
    service = make(FakeWarehouse(daily_rows(lambda d: d.day, through=late)))
    answer = ask(service, "dau")
    assert answer.period == Period(D(2026, 11, 21), D(2026, 11, 21))
    assert answer.headline[1] == 21 and answer.complete
    text = build_metric_text(answer, service.settings)
    assert "yesterday, the default for DAU" in text
    assert "last complete day: Sun Nov 22 is not complete yet" in text
    # 30 days, the default for searches: the 30 days ending on the last complete day
    answer = ask(service, "searches")
    assert answer.period == Period(D(2026, 10, 23), D(2026, 11, 21))


def test_an_answer_whose_period_was_a_default_says_so():
    service = make(FakeWarehouse(lambda s, p: [{"bucket": 0, "value": 5, "data_through": NOW}]))
    text = build_metric_text(ask(service, "wau"), service.settings)
    assert "last week, the default for WAU" in text
    text = build_metric_text(ask(service, "wau last week"), service.settings)
    assert "the default" not in text


# --------------------------------------------------------------------------- the query


def test_query_scans_only_the_dates_it_needs_and_passes_only_used_parameters():
    warehouse = FakeWarehouse(daily_rows(lambda d: 1))
    ask(make(warehouse), "searches 2026-10")
    sql, params = warehouse.metric_calls()[0]
    # Oct 2026 and the calendar month before it, in UTC: Sep 1 00:00 PDT .. Nov 1 00:00 PDT.
    assert params["start_ts"] == dt.datetime(2026, 9, 1, 7, tzinfo=dt.UTC)
    assert params["end_ts"] == dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC)
    assert params["account"] == ""
    assert "bucket_days" not in params
    assert "timestamp >= @start_ts AND timestamp < @end_ts" in sql
    assert warehouse.labels[-1] == {"feature": "metric", "metric": "searches"}


# --------------------------------------------------------------------------- speed


def test_a_calendar_month_and_the_month_before_are_looked_up_side_by_side():
    # MAU of October is compared with September's own distinct count: the two queries run
    # at once (the answer takes one query's time, not two). Each waits for the other.
    both = threading.Barrier(2, timeout=10)

    def rows(sql, params):
        if "bucket_days" not in params:
            return []
        both.wait()
        (first, last) = scan_dates(params)
        days = (last - first).days + 1
        return [
            {"bucket": b, "value": 100 + b, "data_through": NOW}
            for b in range(days // params["bucket_days"])
        ]

    warehouse = FakeWarehouse(rows)
    with ThreadPoolExecutor(4) as pool:
        service = MetricService(
            CATALOG, warehouse, Settings(), lambda: NOW, time.monotonic, executor=pool
        )
        answer = ask(service, "mau 2026-10")
    assert answer.previous_period == Period(dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert len(warehouse.metric_calls()) == 2
    assert answer.headline[2] is not None  # September's value, for the change


def bucket_rows(sql, params):
    if "bucket_days" not in params:
        return []
    first, last = scan_dates(params)
    days = (last - first).days + 1
    return [
        {"bucket": b, "value": 100 + b, "data_through": NOW}
        for b in range(days // params["bucket_days"])
    ]


def test_callers_on_every_worker_asking_for_months_all_get_answers():
    # Share buttons, mentions and account cards wait for their answer on a worker: the
    # month-before lookup must not queue behind them on the same (full) pool.
    with ThreadPoolExecutor(2) as pool:
        service = MetricService(
            CATALOG, FakeWarehouse(bucket_rows), Settings(), lambda: NOW, executor=pool
        )
        asked = [pool.submit(ask, service, text) for text in ("mau 2026-10", "wau 2025-10")]
        answers = [f.result(timeout=30) for f in asked]
    assert [a.previous_period.start.month for a in answers] == [9, 9]


def test_a_month_widened_to_the_minimum_window_runs_one_query():
    # February is shorter than MAU's 30 days: its answer covers Jan 30 - Feb 28 and is
    # compared within that query, so no lookup of January is made.
    warehouse = FakeWarehouse(bucket_rows)
    with ThreadPoolExecutor(2) as pool:
        service = MetricService(CATALOG, warehouse, Settings(), lambda: NOW, executor=pool)
        answer = ask(service, "mau 2026-02")
    assert answer.period == Period(dt.date(2026, 1, 30), dt.date(2026, 2, 28))
    assert len(warehouse.metric_calls()) == 1


def test_identical_lookups_within_the_freshness_window_come_from_the_cache():
    now = [0.0]
    warehouse = FakeWarehouse(daily_rows(lambda d: 3))
    service = make(warehouse, clock=lambda: now[0])
    first = ask(service, "dau 7d")
    second = ask(service, "DAU 7d")
    assert not first.from_cache and second.from_cache
    assert len(warehouse.metric_calls()) == 1
    now[0] += 60 * service.settings.metric_cache_minutes + 1
    ask(service, "dau 7d")
    assert len(warehouse.metric_calls()) == 2


def test_concurrent_identical_lookups_run_one_query():
    warehouse = FakeWarehouse(daily_rows(lambda d: 3), delay=0.3)
    service = make(warehouse)
    query = service.parse("dau 30d")
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(service.answer(query))) for _ in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 10
    assert len(warehouse.metric_calls()) == 1
    assert len({a.headline[1] for a in answers}) == 1


def test_a_failed_query_is_shared_by_waiters_not_cached_and_says_it_was_not_billed_twice():
    warehouse = FakeWarehouse(delay=0.2, error=WarehouseError("quota exceeded"))
    service = make(warehouse)
    query = service.parse("wau")
    errors = []

    def run():
        try:
            service.answer(query)
        except WarehouseError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 5 and len(warehouse.metric_calls()) == 1
    assert "billed twice" in errors[0].user_message and "quota exceeded" in errors[0].user_message
    with pytest.raises(WarehouseError):
        service.answer(query)
    assert len(warehouse.metric_calls()) == 2


def test_timeout_says_what_happened():
    service = make(FakeWarehouse(error=WarehouseTimeout("timed out")))
    with pytest.raises(WarehouseTimeout) as err:
        ask(service, "mau")
    assert "cancelled" in err.value.user_message and "once" in err.value.user_message
    assert "https://" in err.value.user_message


def test_slow_lookup_calls_still_working_once_and_fast_one_never():
    settings = Settings(metric_still_working_seconds=0.05)
    notes = []
    slow = make(FakeWarehouse(daily_rows(lambda d: 1), delay=0.3), settings)
    slow.answer(slow.parse("dau"), on_slow=lambda: notes.append("slow"))
    assert notes == ["slow"]
    fast = make(FakeWarehouse(daily_rows(lambda d: 1)), Settings(metric_still_working_seconds=1))
    fast.answer(fast.parse("dau"), on_slow=lambda: notes.append("fast"))
    time.sleep(0.1)
    assert notes == ["slow"]


# --------------------------------------------------------------------------- accounts


def test_account_matches_case_insensitively_or_by_unique_prefix():
    service = make(FakeWarehouse(daily_rows(lambda d: 1)))
    assert service.resolve_account("globex") == "Globex"
    assert service.resolve_account("init") == "Initech"
    answer = ask(service, "dau 7d for GLOBEX")
    assert answer.account == "Globex"
    assert warehouse_param(service, "account") == "Globex"


def warehouse_param(service, name):
    return service.warehouse.metric_calls()[-1][1][name]


def test_unknown_or_ambiguous_account_says_so_with_close_names():
    service = make(FakeWarehouse())
    with pytest.raises(UnknownAccount) as err:
        service.resolve_account("Globx")
    assert "Globex" in err.value.suggestions
    with pytest.raises(UnknownAccount) as err:
        service.resolve_account("acme")  # two accounts start with it
    assert set(err.value.suggestions) >= {"Acme Corp", "Acme Labs"}
    with pytest.raises(UnknownAccount) as err:
        service.resolve_account("<!channel>")
    assert "<!" not in err.value.user_message


# --------------------------------------------------------------------------- sensitivity


def test_revenue_metrics_only_in_revenue_channels_or_to_revenue_users():
    settings = Settings(revenue_channels=["CREV"], revenue_users=["UBOSS"])
    mrr, dau = CATALOG.get("mrr"), CATALOG.get("dau")
    assert may_see(dau, settings, user="UANY", channel="CANY")
    assert may_see(mrr, settings, user="UANY", channel="CREV")
    assert may_see(mrr, settings, user="UBOSS", channel="CANY")
    assert not may_see(mrr, settings, user="UANY", channel="CANY")
    # Sharing: the whole channel will see it, so the asker's own right does not count.
    assert not may_see(mrr, settings, user=None, channel="CANY")
    with pytest.raises(NotAllowedError) as err:
        check_allowed(CATALOG.get("arr"), settings, user="UANY", channel="CANY")
    assert "<#CREV>" in err.value.user_message


def test_refusal_without_any_revenue_channel_names_the_owner():
    with pytest.raises(NotAllowedError) as err:
        check_allowed(CATALOG.get("mrr"), Settings(), user="U1", channel="C1")
    assert "@analytics-team" in err.value.user_message


# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "metric", "start", "end", "account"),
    [
        ("dau", "dau", D(2026, 11, 22), D(2026, 11, 22), None),
        ("MAU last month for Acme Corp", "mau", D(2026, 10, 1), D(2026, 10, 31), "Acme Corp"),
        ("mau for 'Acme Corp'", "mau", D(2026, 10, 1), D(2026, 10, 31), "Acme Corp"),
        ("wau", "wau", D(2026, 11, 16), D(2026, 11, 22), None),
        ("searches 2026-10-01..2026-10-31", "searches", D(2026, 10, 1), D(2026, 10, 31), None),
        ("daily active users 7d", "dau", D(2026, 11, 16), D(2026, 11, 22), None),
        ("active_instances for Acme for Good", "active_instances", None, None, "Acme for Good"),
    ],
)
def test_command_grammar(text, metric, start, end, account):
    query = parse_command(text, CATALOG, D(2026, 11, 23))
    assert isinstance(query, MetricQuery)
    assert query.metric.name == metric and query.account == account
    if start:
        assert (query.period.start, query.period.end) == (start, end)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,
        "dau; DROP TABLE events; --",
        "' OR 1=1 --",
        "<!channel> dau",
        "<!here|here>",
        "dau <@U123>",
        "dau for",
        "mrr for Acme",
        "ｄａｕ",
        "🤖 7d",
        "dau 7d\x00",
        "dau\u202e7d",
    ],
)
def test_hostile_input_is_a_helpful_input_error_never_a_crash(text):
    with pytest.raises(InputError) as err:
        parse_command(text, CATALOG, D(2026, 11, 23))
    message = err.value.user_message
    assert len(message) < 1500
    assert "<!" not in message and "<@" not in message


def test_unknown_metric_suggests_close_names():
    with pytest.raises(UnknownMetric) as err:
        parse_command("mua 7d", CATALOG, D(2026, 11, 23))
    assert "mau" in err.value.suggestions
    assert "`mau`" in err.value.user_message


# --------------------------------------------------------------------------- blocks


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1234.0, Unit.COUNT, "1,234"),
        (1234.4, Unit.COUNT, "1,234"),
        (12.25, Unit.COUNT, "12.2"),
        (0.2345, Unit.RATIO, "0.23"),
        (12.345, Unit.PERCENT, "12.3%"),
        (123456.0, Unit.USD, "$123,456"),
        (None, Unit.COUNT, "no data"),
    ],
)
def test_values_are_formatted_for_their_unit(value, unit, text):
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("value", "previous", "unit", "text"),
    [
        (110, 100, Unit.COUNT, "▲ 10.0%"),
        (90, 100, Unit.USD, "▼ 10.0%"),
        (100, 100, Unit.COUNT, "no change"),
        (5, 0, Unit.COUNT, "▲ from 0"),
        (0.22, 0.20, Unit.RATIO, "▲ 0.02"),
        (10, None, Unit.COUNT, "no data to compare"),
    ],
)
def test_change_vs_previous(value, previous, unit, text):
    assert format_change(value, previous, unit) == text


def test_answer_message_respects_slack_limits_and_carries_a_share_button():
    service = make(FakeWarehouse(daily_rows(lambda d: d.day)))
    answer = ask(service, "dau 90d")
    blocks = build_metric_message(answer, service.settings).blocks
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["action_id"] == "metric_share"
    shared = build_metric_message(answer, service.settings, shared_by="U1").blocks
    assert "<@U1>" in str(shared) and "actions" not in str([b["type"] for b in shared])


def test_help_lists_every_metric_grouped_and_marks_revenue():
    blocks = build_metric_help(CATALOG).blocks
    text = str(blocks)
    for metric in CATALOG.metrics:
        assert f"`{metric.name}`" in text
    assert "*Revenue*" in text and "revenue" in text
    assert "metric_open_request" in text


def test_request_offer_button_carries_the_prefill_as_json():
    import json

    prefill = prefill_for("churn by plan " + "x" * 3000, "the catalog has no such metric")
    block = build_request_offer("No such metric.", prefill).blocks[0]
    value = json.loads(block["accessory"]["value"])
    assert value["title"].startswith("Metric request: churn by plan")
    assert "churn by plan" in value["problem"]
    assert len(block["accessory"]["value"]) <= 2000


# --------------------------------------------------------------------------- terminal


def test_terminal_lookup_prints_the_answer(warehouse):
    """`databot metric dau 30d` on the demo warehouse (tests/conftest.py: as of TEST_NOW)."""
    import io

    from bot.metric.cli import print_metric_lookup
    from tests.conftest import TEST_NOW

    out = io.StringIO()
    settings = Settings(_env_file=None)
    status = print_metric_lookup(
        settings, "dau 30d", out, warehouse=warehouse, now=lambda: TEST_NOW
    )
    text = out.getvalue()
    assert status == 0
    assert text.startswith("DAU: ") and "Oct 24 – Nov 22, 2026" in text
    # revenue is not refused in a terminal: whoever runs it holds warehouse credentials
    out = io.StringIO()
    assert print_metric_lookup(settings, "mrr", out, warehouse=warehouse, now=lambda: TEST_NOW) == 0
    assert "$" in out.getvalue()


def test_terminal_help_and_typos_need_no_warehouse():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "metric", "help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "DATA_DIR": "/nonexistent", "HOME": "/tmp"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    assert "dau" in run.stdout and "mrr" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "metric", "<!channel>", "7d"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "DATA_DIR": "/nonexistent", "HOME": "/tmp"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "I don't know a metric called" in run.stdout


def test_a_metric_with_several_value_columns_shows_them_as_fields(tmp_path):
    import yaml

    from bot.metric.catalog import CATALOG_PATH

    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["metrics"].append(
        {
            "name": "cody_pro_test",
            "group": "Cody Pro",
            "label": "Cody Pro",
            "description": "Cody Pro summary.",
            "unit": "count",
            "grain": "day",
            "shape": "daily",
            "rollup": "last",
            "source": "ssc",
            "sql_file": "cody_pro_daily.sql",
            "day_column": "date",
            "value": "active_subscribers",
            "fields": [
                {"column": "new_subscribers", "label": "New", "rollup": "sum"},
                {"column": "mrr", "label": "MRR", "unit": "USD"},
            ],
            "dashboard": "https://looker.example.com/dashboards/cody-pro",
            "owner": "@analytics-team",
        }
    )
    path = tmp_path / "metrics.yml"
    path.write_text(yaml.safe_dump(raw))
    catalog = load_catalog(path)

    def rows(sql, params):
        (day, end), out = scan_dates(params), []
        while day <= end:
            out.append({"date": day, "active_subscribers": 100, "new_subscribers": 2, "mrr": 900.0})
            out[-1]["data_through"] = NOW
            day += dt.timedelta(days=1)
        return out

    settings = Settings()
    service = MetricService(catalog, FakeWarehouse(rows), settings, lambda: NOW)
    answer = ask(service, "cody_pro_test 7d")
    assert [(f.label, v) for f, v, _ in answer.values] == [
        ("Cody Pro", 100),
        ("New", 14),
        ("MRR", 900),
    ]
    text = str(build_metric_message(answer, settings).blocks)
    assert "*New*" in text and "$900" in text


def test_databot_check_reports_the_catalog_and_missing_revenue_settings():
    from bot.checks import CheckReport
    from bot.metric.catalog import check_catalog

    report = CheckReport()
    check_catalog(Settings(_env_file=None), report)
    rendered = report.render()
    assert f"metric catalog: {len(CATALOG.metrics)} metrics valid" in rendered
    assert "REVENUE_CHANNELS" in rendered
    report = CheckReport()
    check_catalog(Settings(_env_file=None, revenue_channels=["C1"]), report)
    assert "REVENUE_CHANNELS" not in report.render()


def test_cache_stays_bounded():
    from bot.metric import lookup as metrics

    warehouse = FakeWarehouse(daily_rows(lambda d: 1))
    service = make(warehouse)
    for n in range(1, metrics.MAX_CACHED + 20):
        ask(service, f"searches {n % 400 + 1}d" if n < 400 else f"dau {n % 400 + 1}d")
    assert len(service._flights.results._rows) <= metrics.MAX_CACHED


def test_notification_text_of_an_answer_escapes_the_account_name():
    from bot.metric.blocks import build_metric_message
    from bot.metric.model import Answer

    metric = CATALOG.get("mau")
    period = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    answer = Answer(
        metric=metric,
        asked=period,
        period=period,
        previous_period=Period(dt.date(2026, 8, 31), dt.date(2026, 9, 30)),
        account="<!channel> & Co <https://evil|x>",
        values=[(metric.all_fields[0], 120.0, 100.0)],
        trend=[],
        trend_label="",
        breakdown=[],
        data_through=None,
        complete=True,
    )
    text = build_metric_message(answer, Settings(_env_file=None)).text
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &amp; Co" in text


def test_terminal_json_gives_the_same_numbers_as_the_text_answer(warehouse):
    import io
    import json

    from bot.metric.cli import print_metric_lookup
    from tests.conftest import TEST_NOW

    settings = Settings(_env_file=None)
    text, data = io.StringIO(), io.StringIO()

    def now():
        return TEST_NOW

    assert print_metric_lookup(settings, "dau 7d", text, warehouse=warehouse, now=now) == 0
    assert (
        print_metric_lookup(settings, "dau 7d", data, warehouse=warehouse, now=now, as_json=True)
        == 0
    )
    answer = json.loads(data.getvalue())
    assert answer["metric"] == "dau"
    assert answer["period"] == {"start": "2026-11-16", "end": "2026-11-22"}
    [headline, *_] = answer["values"]
    assert f"{headline['value']:,.0f}" in text.getvalue()


def test_a_default_day_without_any_data_yet_answers_the_last_complete_day():
    through = dt.datetime(2026, 11, 22, 11, 0, tzinfo=dt.UTC)  # Nov 22, 03:00 PT

    def rows(sql, params):
        if "start_ts" not in params:  # the source's freshness query alone
            return [{"data_through": through}]
        out = daily_rows(lambda d: d.day, through=through)(sql, params)
        return [r for r in out if r["day"] < D(2026, 11, 22)] or [{"data_through": through}]

    service = make(FakeWarehouse(rows))
    answer = ask(service, "dau")
    assert answer.period == Period(D(2026, 11, 21), D(2026, 11, 21)) and answer.headline[1] == 21
    assert answer.shifted_from == Period(D(2026, 11, 22), D(2026, 11, 22))
    with pytest.raises(NoData) as err:  # asked for by name: no silent move
        ask(service, "dau yesterday")
    assert "The data goes through Nov 22, 03:00 PT" in err.value.user_message
