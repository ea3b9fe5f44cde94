"""Fixtures shared by the whole suite.

- `store`: a migrated state store, once on SQLite and once on the PostgreSQL server on
  127.0.0.1:5432 (each test gets its own schema there, so parallel runs don't clash).
  Outside CI a missing server skips the PostgreSQL half with a visible reason; in CI
  (CI=true) it fails.
- `clock`: a controllable aware-UTC clock for deps.now.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa

from bot.store import Store

pytest_plugins = ["tests.support.bigquery"]

POSTGRES_URL = os.environ.get(
    "DATABOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def postgres_engine():
    engine = sa.create_engine(POSTGRES_URL, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as skip/fail below
        engine.dispose()
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    yield engine
    engine.dispose()


def make_postgres_store(postgres_engine) -> tuple[Store, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(
        POSTGRES_URL,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=20,
        max_overflow=20,
    )
    return Store(POSTGRES_URL, engine=engine), schema


def drop_postgres_schema(postgres_engine, schema: str) -> None:
    with postgres_engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'state.db'}")
        s.migrate()
        yield s
        s.close()
        return
    postgres_engine = request.getfixturevalue("postgres_engine")
    s, schema = make_postgres_store(postgres_engine)
    s.migrate()
    yield s
    s.close()
    drop_postgres_schema(postgres_engine, schema)


@pytest.fixture
def postgres_store(postgres_engine):
    s, schema = make_postgres_store(postgres_engine)
    s.migrate()
    yield s
    s.close()
    drop_postgres_schema(postgres_engine, schema)


class Clock:
    """deps.now for tests: starts at `start`, moves only when told."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def set(self, when: dt.datetime) -> None:
        self.current = when.astimezone(dt.UTC)

    def advance(self, **delta) -> None:
        self.current += dt.timedelta(**delta)


# Monday Nov 23 2026, 10:00 Pacific: the demo warehouse used by tests is generated as of then.
TEST_NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(TEST_NOW)


# --- the bot on loopback ---------------------------------------------------------------


@pytest.fixture(scope="session")
def warehouse(demo_warehouse_path):
    """The demo warehouse (generated once per session, as of TEST_NOW)."""
    from bot.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(demo_warehouse_path, timeout_s=30)
    yield wh
    wh.close()


@pytest.fixture
def sqlite_store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def _harness(tmp_path, store, warehouse, clock, **overrides):
    from sandbox.harness import BotHarness

    # A "still working" note that a loaded machine makes (a lookup past 3 s) is noise in a
    # test of something else; tests of the note set their own.
    overrides.setdefault("metric_still_working_seconds", 30)
    return BotHarness(data_dir=tmp_path, store=store, warehouse=warehouse, now=clock, **overrides)


@pytest.fixture
def bot(tmp_path, sqlite_store, warehouse, clock):
    """The whole bot served on loopback (SQLite state), with FakeSlack and FakeGitHub."""
    with _harness(tmp_path, sqlite_store, warehouse, clock) as harness:
        yield harness


@pytest.fixture
def bot_pg(tmp_path, postgres_store, warehouse, clock):
    """The same on PostgreSQL state, for exactly-once and concurrency tests."""
    with _harness(tmp_path, postgres_store, warehouse, clock) as harness:
        yield harness


@pytest.fixture
def make_bot(tmp_path, warehouse, clock):
    """Factory for a harness with settings overrides: `with make_bot(store, x=1) as bot:`."""

    def factory(store, **overrides):
        return _harness(tmp_path, store, warehouse, clock, **overrides)

    return factory


# Tests that start databot as a process (or several): `make test-fast` leaves them out for
# the inner loop; CI runs everything.
SLOW_MODULES = {"test_cli.py", "test_demo.py", "test_serve.py", "test_socket_mode.py"}
SLOW_TESTS = {
    "test_the_clock_process_posts_what_is_due_once_and_stops_on_sigterm",
    "test_clock_process_polls_for_urgent_issues",
    "test_replicas_starting_together_on_an_empty_postgres_database_all_migrate",
    "test_terminal_help_and_typos_need_no_warehouse",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        if item.path.name in SLOW_MODULES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
