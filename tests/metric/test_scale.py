"""Scale (issue 15): a lookup costs what its answer needs. Through the real app (signed
/metric requests, answers at the stand-in Slack's response_url) on the demo warehouse, the
BigQuery emulator behind a pricing proxy, and PostgreSQL state shared by two apps."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.store import Store
from bot.warehouse import BigQueryWarehouse, _translate
from sandbox.bigquery_pricing import PricedBigQuery
from sandbox.harness import BotHarness
from sandbox.slack_requests import send, sign, slash_command
from tests.support.bigquery import EMULATOR_PROJECT
from tests.test_telemetry import get, samples

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Mon Nov 23, 10:00 PT


def responses(bot, url, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while len(bot.slack.responses(url)) < count:
        assert time.monotonic() < deadline, f"expected {count} responses at {url}"
        time.sleep(0.01)
    bot.wait_idle()
    return [r.payload for r in bot.slack.responses(url)]


def all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


# --------------------------------------------------------------------- translate once


def test_catalog_sql_is_translated_at_load_and_never_per_lookup(make_bot, sqlite_store):
    _translate.cache_clear()
    with make_bot(sqlite_store) as bot:
        _, url = bot.slash("/metric", "help")
        bot.wait_idle()
        loaded = _translate.cache_info()
        # Every query the catalog can send was translated when the service was built.
        assert loaded.currsize == len(service(bot).catalog_queries())
        for text in ("dau 7d", "wau", "mau last month", "dau 2026-11-01"):
            _, url = bot.slash("/metric", text)
            assert "metric_share" in all_text(responses(bot, url)[0])  # an answer
        after = _translate.cache_info()
    assert after.misses == loaded.misses
    assert after.hits > loaded.hits


def service(bot):
    from bot.metric.lookup import metric_service

    return metric_service(bot.deps)


# --------------------------------------------------------------- bytes known before running

SLICE = {
    "dotcom_events.events": (
        "SELECT * FROM dotcom_events.events WHERE timestamp >= TIMESTAMPTZ '2026-11-20 08:00:00+00'"
        " AND timestamp < TIMESTAMPTZ '2026-11-23 08:00:00+00' AND instance_id IN (SELECT"
        " instance_id FROM dotcom_events.events GROUP BY instance_id ORDER BY instance_id LIMIT 4)"
    ),
    "sourcegraph_analytics.update_checks": (
        "SELECT * FROM sourcegraph_analytics.update_checks WHERE checked_at >= "
        "TIMESTAMPTZ '2026-11-20 08:00:00+00' AND hash(instance_id) % 8 = 0"
    ),
    "salesforce_data.accounts": "SELECT * FROM salesforce_data.accounts",
}
GIB = 1024**3


@pytest.fixture(scope="module")
def emulator_with_demo_slice(bigquery_emulator, demo_warehouse_path, tmp_path_factory):
    from tests.support.bigquery import copy_demo_slice

    copy_demo_slice(
        bigquery_emulator,
        demo_warehouse_path,
        SLICE,
        slice_path=tmp_path_factory.mktemp("scale") / "slice.duckdb",
    )
    return bigquery_emulator


@pytest.fixture
def priced(emulator_with_demo_slice):
    """The emulator behind the pricing front: 1 GiB a scanned day."""
    with PricedBigQuery(emulator_with_demo_slice, bytes_per_day=GIB) as front:
        yield front


def bigquery_at(url: str, *, cap: int) -> BigQueryWarehouse:
    return BigQueryWarehouse(
        EMULATOR_PROJECT, api_endpoint=url, maximum_bytes_billed=cap, timeout_s=60
    )


def scanned_days(params: dict[str, str]) -> int:
    """Days between a query's timestamp bounds, computed here from what was sent."""
    start = dt.datetime.fromisoformat(params["start_ts"])
    end = dt.datetime.fromisoformat(params["end_ts"])
    return round((end - start).total_seconds() / 86400)


@pytest.mark.bigquery
def test_a_lookup_over_the_byte_cap_is_not_sent_and_the_user_hears_why(
    tmp_path, sqlite_store, clock, priced
):
    warehouse = bigquery_at(priced.url, cap=50 * GIB)
    try:
        with BotHarness(
            data_dir=tmp_path, store=sqlite_store, warehouse=warehouse, now=clock
        ) as bot:
            _, url = bot.slash("/metric", "mau last month")
            text = all_text(responses(bot, url)[0])
            # Priced by a dry run, never run: October's lookup, and September's (the
            # comparison, priced beside it on its own thread), both over the cap.
            deadline = time.monotonic() + 10
            while len([d for d in priced.dry_runs if "@bucket_days" in d.sql]) < 2:
                assert time.monotonic() < deadline, priced.dry_runs
                time.sleep(0.02)
            dry, september = [d for d in priced.dry_runs if "@bucket_days" in d.sql]
            assert not [j for j in priced.jobs if "@bucket_days" in j.sql]
            days = max(scanned_days(d.params) for d in (dry, september))
            assert days * GIB > 50 * GIB
            assert f"would scan {days} GiB, more than the 50 GiB one lookup may scan" in text
            assert "nothing was billed" in text and "Try a shorter period" in text
            assert "reference" not in text  # a plain answer, not the error path

            # Under the cap, the same bot answers (priced first, then run).
            _, url = bot.slash("/metric", "dau yesterday")
            assert "metric_share" in all_text(responses(bot, url)[0])
            assert [j for j in priced.jobs if "dotcom_events.events" in j.sql]

            status, body = get(bot.url + "/metrics")
        assert status == 200
        found = samples(body)
        refused = found[("databot_warehouse_refused_queries_total", (("backend", "bigquery"),))]
        assert refused == 2
        estimated = found[("databot_warehouse_estimated_bytes_sum", (("backend", "bigquery"),))]
        assert estimated == sum(d.bytes for d in priced.dry_runs)
        billed = found[("databot_warehouse_bytes_total", (("backend", "bigquery"),))]
        assert billed == sum(j.bytes for j in priced.jobs)
    finally:
        warehouse.close()


@pytest.mark.bigquery
def test_identical_query_shapes_are_priced_once(priced):
    warehouse = bigquery_at(priced.url, cap=100 * GIB)
    try:
        from bot.metric.catalog import load_catalog
        from bot.metric.lookup import MetricService
        from bot.metric.model import NoData
        from bot.settings import Settings

        svc = MetricService(load_catalog(), warehouse, Settings(_env_file=None), lambda: NOW)
        texts = ("dau 2026-11-21", "dau 2026-11-22", "dau 2026-10-01..2026-10-31")
        for text in texts:
            try:
                svc.answer(svc.parse(text))
            except NoData:
                pass  # the slice holds three days; the price is what counts here

        # The lookups themselves (a "no data" answer also asks how far the data goes).
        def lookups(seen):
            return [s for s in seen if "dotcom_events.events" in s.sql and "SELECT m.*" in s.sql]

        shapes = lookups(priced.dry_runs)
        # Two single days scan equally long ranges: one price. The month: another.
        assert len(shapes) == 2
        assert shapes[0].bytes < shapes[1].bytes
        assert len(lookups(priced.jobs)) == 3
    finally:
        warehouse.close()


# ------------------------------------------------------------- one cache for all replicas


class Unhurried:
    """The demo warehouse, every query taking at least `delay` s (a remote warehouse's wall
    time), so lookups sent together are in flight together."""

    def __init__(self, inner, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.name = inner.name

    def query(self, sql, params=None, **kwargs):
        started = time.monotonic()
        rows = self.inner.query(sql, params, **kwargs)
        time.sleep(max(0.0, self.delay - (time.monotonic() - started)))
        return rows

    def close(self) -> None:
        pass


def scrape(bot) -> dict:
    status, body = get(bot.url + "/metrics")
    assert status == 200
    return samples(body)


def counted(found: dict, name: str, **labels) -> float:
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


@pytest.fixture(params=["postgres", "sqlite"])
def shared_state(request, tmp_path):
    """Two Store objects (two replicas' connections) on one migrated state database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        first, second = Store(url), Store(url)
        first.migrate()
        yield first, second
        first.close()
        second.close()
        return
    import sqlalchemy as sa

    from tests.conftest import POSTGRES_URL, drop_postgres_schema, make_postgres_store

    postgres_engine = request.getfixturevalue("postgres_engine")
    first, schema = make_postgres_store(postgres_engine)
    first.migrate()
    second = Store(
        POSTGRES_URL,
        engine=sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}),
    )
    yield first, second
    first.close()
    second.close()
    drop_postgres_schema(postgres_engine, schema)


def test_two_replicas_on_one_state_database_run_a_lookup_once(
    tmp_path, shared_state, warehouse, clock
):
    slow = Unhurried(warehouse, delay=0.5)
    first, second = shared_state
    with (
        BotHarness(data_dir=tmp_path / "a", store=first, warehouse=slow, now=clock) as a,
        BotHarness(data_dir=tmp_path / "b", store=second, warehouse=slow, now=clock) as b,
    ):
        urls = []
        for bot in (a, b, a, b, a, b):
            urls.append((bot, bot.slash("/metric", "dau 7d")[1]))
        answers = [responses(bot, url)[0] for bot, url in urls]
        headlines = {answer["blocks"][0]["text"]["text"] for answer in answers}
        assert len(headlines) == 1 and "DAU" in next(iter(headlines))
        # Later, on either replica: from the shared cache.
        _, url = b.slash("/metric", "dau 7d")
        assert responses(b, url)[0]["blocks"][0]["text"]["text"] in headlines
        found = [scrape(a), scrape(b)]
    queries = sum(counted(f, "databot_warehouse_queries_total", outcome="ok") for f in found)
    assert queries == 1
    cache = {
        result: sum(counted(f, "databot_lookup_cache_total", result=result) for f in found)
        for result in ("miss", "shared", "hit")
    }
    assert cache["miss"] == 1
    assert cache["shared"] + cache["hit"] == 6


def test_one_signed_lookup_delivered_to_two_replicas_at_once_is_answered_once(
    tmp_path, shared_state, warehouse, clock
):
    # A replay (or a load balancer's retry) of one request reaches both replicas together:
    # both ack at once, and the claim each makes after its ack lets one of them answer.
    first, second = shared_state
    secret = "one-app-" + "0" * 24  # the replicas of one Slack app share its secret
    replicas = [
        BotHarness(
            data_dir=tmp_path / name,
            store=store,
            warehouse=warehouse,
            now=clock,
            slack_signing_secret=secret,
        )
        for name, store in (("a", first), ("b", second))
    ]
    with replicas[0] as a, replicas[1] as b:
        url = a.slack.response_url("C0ANALYTICS")
        body = slash_command("/metric", "dau 7d", response_url=url)
        headers = sign(secret, body)
        with ThreadPoolExecutor(2) as pool:
            acks = list(
                pool.map(lambda bot: send(bot.url + "/slack/events", body, headers=headers), (a, b))
            )
        a.wait_idle()
        b.wait_idle()
        assert [ack.status for ack in acks] == [200, 200]
        (answer,) = a.slack.responses(url)  # a's stand-in Slack holds the response URL
        assert "DAU" in json.dumps(answer.payload)


# ------------------------------------------------------------------ waiting costs no thread


class Gated:
    """The demo warehouse; queries of `metric` wait until the test opens the gate."""

    def __init__(self, inner, metric: str) -> None:
        self.inner = inner
        self.metric = metric
        self.name = inner.name
        self.gate = threading.Event()
        self.held = threading.Event()

    def query(self, sql, params=None, *, labels=None):
        if (labels or {}).get("metric") == self.metric:
            self.held.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return self.inner.query(sql, params, labels=labels)

    def close(self) -> None:
        pass


def test_identical_lookups_wait_for_the_query_in_flight_without_holding_a_worker(
    tmp_path, sqlite_store, warehouse, clock
):
    gated = Gated(warehouse, metric="wau")
    with BotHarness(
        data_dir=tmp_path, store=sqlite_store, warehouse=gated, now=clock, worker_threads=2
    ) as bot:
        _, first = bot.slash("/metric", "wau")
        assert gated.held.wait(30)  # one worker now runs (and waits in) the WAU query
        waiting = [bot.slash("/metric", "wau")[1] for _ in range(4)]
        # The second worker is free: the four identical lookups hold none, so a different
        # lookup is answered while the WAU query is still running.
        _, other = bot.slash("/metric", "dau 7d")
        deadline = time.monotonic() + 30
        while not any("metric_share" in all_text(r.payload) for r in bot.slack.responses(other)):
            assert time.monotonic() < deadline, "a waiting lookup held the free worker"
            time.sleep(0.01)
        (answer,) = [r.payload for r in bot.slack.responses(other)]
        assert "DAU" in all_text(answer)  # the answer, with no "still working" note first
        assert all(not bot.slack.responses(url) for url in [first, *waiting])
        gated.gate.set()
        answers = [responses(bot, url)[0] for url in [first, *waiting]]
        found = scrape(bot)
    assert len({a["blocks"][0]["text"]["text"] for a in answers}) == 1
    assert counted(found, "databot_warehouse_queries_total", outcome="ok") == 2
    assert counted(found, "databot_lookup_cache_total", result="shared") == 4


def test_a_lookup_claimed_by_a_replica_that_died_is_taken_over_and_answered(
    tmp_path, postgres_store, warehouse, clock
):
    from bot.metric.lookup import StoreResults, cache_key, metric_service

    with BotHarness(data_dir=tmp_path, store=postgres_store, warehouse=warehouse, now=clock) as bot:
        service = metric_service(bot.deps)
        query = service.parse("wau")
        plan = service.plan(query.metric, query.period, None)
        # Another replica claimed this very query, then died: its lease runs out unrenewed.
        dead = StoreResults(postgres_store)
        assert dead.claim(cache_key(plan.sql, plan.params), lease_s=1.0)
        _, url = bot.slash("/metric", "wau")
        answer = responses(bot, url)[0]
        found = scrape(bot)
    assert "WAU" in all_text(answer) and "metric_share" in all_text(answer)
    assert counted(found, "databot_warehouse_queries_total", outcome="ok") == 1


class Failing(Gated):
    """Like Gated, and then the gated query fails as a broken warehouse would."""

    def query(self, sql, params=None, *, labels=None):
        if (labels or {}).get("metric") == self.metric:
            self.held.set()
            assert self.gate.wait(60), "the test never opened the gate"
            from bot.errors import WarehouseError

            raise WarehouseError("The warehouse could not run this query (reference test).")
        return self.inner.query(sql, params, labels=labels)


def test_a_failed_query_is_reported_to_every_replica_waiting_for_it_and_not_rerun(
    tmp_path, shared_state, warehouse, clock
):
    failing = Failing(warehouse, metric="mau")
    first, second = shared_state
    with (
        BotHarness(data_dir=tmp_path / "a", store=first, warehouse=failing, now=clock) as a,
        BotHarness(data_dir=tmp_path / "b", store=second, warehouse=failing, now=clock) as b,
    ):
        _, on_a = a.slash("/metric", "mau")
        assert failing.held.wait(30)  # replica A runs the query
        _, on_b = b.slash("/metric", "mau")  # replica B waits for A's row
        b.listeners.wait_idle(30)
        failing.gate.set()
        texts = [all_text(responses(bot, url)[0]) for bot, url in ((a, on_a), (b, on_b))]
        found = [scrape(a), scrape(b)]
    for text in texts:
        assert "could not answer the MAU lookup" in text and "It was not retried" in text
    assert sum(counted(f, "databot_warehouse_queries_total", outcome="error") for f in found) == 1
    assert sum(counted(f, "databot_warehouse_queries_total", outcome="ok") for f in found) == 0


# ------------------------------------------------------------ remote lookups start at once


class Starting:
    """The demo warehouse, saying whether it is embedded (BigQuery is not); notes when a
    query starts."""

    def __init__(self, inner, *, embedded: bool) -> None:
        self.inner = inner
        self.name = inner.name
        self.embedded = embedded
        self.started = threading.Event()

    def query(self, sql, params=None, **kwargs):
        self.started.set()
        return self.inner.query(sql, params, **kwargs)

    def close(self) -> None:
        pass


class StoppedClock:
    """deps.acks' clock, moved only by the test: a burst's quiet time never comes alone."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("embedded", [False, True], ids=["remote", "embedded"])
def test_a_remote_lookup_starts_while_acks_go_back_and_answers_after_them(
    tmp_path, sqlite_store, warehouse, clock, embedded
):
    from bot.ack_first import AckFirst

    stand_in = Starting(warehouse, embedded=embedded)
    with BotHarness(
        data_dir=tmp_path,
        store=sqlite_store,
        warehouse=stand_in,
        now=clock,
        metric_still_working_seconds=60,
    ) as bot:
        acks_clock = StoppedClock()
        bot.deps.acks = AckFirst(clock=acks_clock)
        response, url = bot.slash("/metric", "searches")
        assert response.status == 200
        # Until the acks are quiet, a lookup on a remote warehouse has its query running
        # (it costs this process nothing but the wait); one on the embedded warehouse,
        # whose queries take this process's CPU, has not started.
        assert stand_in.started.wait(5 if not embedded else 1) is not embedded
        assert not bot.slack.responses(url)  # either way the answer waits for the acks
        acks_clock.now += 1.0
        (answer,) = responses(bot, url)
    assert stand_in.started.is_set()
    assert "Searches" in all_text(answer) and "metric_share" in all_text(answer)


class Broken(Starting):
    """A remote warehouse whose every query fails."""

    def query(self, sql, params=None, **kwargs):
        raise RuntimeError("BigQuery answered 500")


def test_a_replayed_remote_lookup_that_fails_apologises_once(
    tmp_path, sqlite_store, warehouse, clock
):
    # A remote lookup claims its delivery before each effect, the apology included: the
    # replay of the same signed request runs (it may ask the warehouse) but says nothing.
    with BotHarness(
        data_dir=tmp_path,
        store=sqlite_store,
        warehouse=Broken(warehouse, embedded=False),
        now=clock,
        metric_still_working_seconds=60,
    ) as bot:
        url = bot.slack.response_url("C0ANALYTICS")
        body = slash_command("/metric", "dau 7d", response_url=url, channel_id="C0ANALYTICS")
        headers = sign(bot.signing_secret, body)
        for _ in range(2):
            assert send(bot.url + "/slack/events", body, headers=headers).status == 200
            bot.wait_idle()
        (apology,) = [r.payload for r in bot.slack.responses(url)]
    assert "went wrong" in apology["text"] and "ref" in apology["text"]
