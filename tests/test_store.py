from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot import tables
from bot.errors import ConfigError
from bot.settings import utc_now
from bot.store import BatchedClaims, Store
from tests.conftest import POSTGRES_URL
from tests.support.checkout import checkout_env


def test_migrations_create_every_table_and_rerun_safely(store):
    store.migrate()  # a second start must not fail or lose anything
    names = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in tables.metadata.sorted_tables} <= names
    assert store.schema_revision() is not None


def test_upgrade_keeps_existing_state(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = Store(url)
    first.migrate()
    first.kv_set("cursor", "42")
    first.close()
    again = Store(url)
    again.migrate()
    assert again.kv_get("cursor") == "42"


def test_claim_is_true_once_then_false(store):
    assert store.claim("delivery:1") is True
    assert store.claim("delivery:1") is False
    assert store.claim("delivery:2") is True


def test_claim_under_concurrency_has_exactly_one_winner(store):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        barrier.wait()
        results.append(store.claim("race"))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert results.count(False) == 7


def _replica(store: Store) -> Store:
    """A second Store on the same database, as another replica has: its own claim batches
    (and, on SQLite, its own engine, so SQLite's file lock decides between the two)."""
    if store.dialect == "sqlite":
        return Store(store.url)
    return Store(store.url, engine=store.engine)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-by-one"])
def test_claims_from_two_replicas_and_many_threads_have_one_winner_per_key(store, batched):
    # Slack's retries and replays of 40 deliveries arrive at two replicas at once, in
    # different orders (batches overlap both ways: on PostgreSQL that would deadlock
    # without one lock order). The gate batches its claims (BatchedClaims); every other
    # caller claims one by one; both may meet on one key.
    other = _replica(store)
    claimers = {id(r): (BatchedClaims(r).claim if batched else r.claim) for r in (store, other)}
    keys = [f"slack-req:event_id:Ev{n:03d}" for n in range(40)]
    wins: dict[str, int] = dict.fromkeys(keys, 0)
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def contend(replica: Store, order: list[str]) -> None:
        claim = claimers[id(replica)]
        barrier.wait()
        for key in order:
            if claim(key):
                with lock:
                    wins[key] += 1

    threads = [
        threading.Thread(
            target=contend,
            args=(store if i % 2 else other, keys[i:] + keys[:i] if i % 3 else keys[::-1]),
        )
        for i in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert wins == dict.fromkeys(keys, 1)
    if other.engine is not store.engine:
        other.close()


def test_a_failed_claim_reaches_every_caller_waiting_on_it(tmp_path):
    # No schema: the batch's insert fails. Every caller hears why; none waits forever.
    broken = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    claims = BatchedClaims(broken)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            claims.claim(f"key-{i % 3}")
        except sa.exc.OperationalError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert len(errors) == 8
    broken.migrate()
    assert claims.claim("key-0") is True  # nothing was left half-claimed
    assert claims.claim("key-0") is False


def test_a_sqlite_reader_sees_the_last_commit_while_a_writer_holds_the_lock(tmp_path):
    # Readers (cache lookups, "was this posted?") must not queue behind the write lock
    # that every Slack request's delivery claim takes.
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    store.kv_set("cursor", "1")
    writing, read_done = threading.Event(), threading.Event()

    def writer() -> None:
        with store.engine.begin() as connection:
            connection.execute(
                tables.kv.update().where(tables.kv.c.key == "cursor").values(value="2")
            )
            writing.set()
            read_done.wait(timeout=30)

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(timeout=10)
    seen: list[str | None] = []
    reader = threading.Thread(target=lambda: seen.append(store.kv_get("cursor")))
    reader.start()
    reader.join(timeout=10)
    finished_while_writing = not reader.is_alive() and thread.is_alive()
    read_done.set()
    thread.join(timeout=30)
    assert finished_while_writing
    assert seen == ["1"]  # the committed value, not the writer's uncommitted one
    assert store.kv_get("cursor") == "2"
    store.close()


def test_a_write_that_fails_midway_lets_the_next_writer_in(tmp_path):
    # SQLite writers of one process take turns: a transaction that ends in an error, or
    # whose connection is invalidated, must still give the turn back.
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    with pytest.raises(ValueError, match="listener bug"), store.engine.begin() as connection:
        connection.execute(tables.kv.insert().values(key="a", value="1", updated_at=utc_now()))
        raise ValueError("listener bug")
    with pytest.raises(ValueError, match="gone"), store.engine.begin() as connection:
        connection.execute(tables.kv.insert().values(key="b", value="1", updated_at=utc_now()))
        connection.invalidate()
        raise ValueError("gone")
    done = threading.Event()
    writer = threading.Thread(target=lambda: (store.kv_set("c", "3"), done.set()))
    writer.start()
    writer.join(timeout=10)
    assert done.is_set()
    assert (store.kv_get("a"), store.kv_get("b"), store.kv_get("c")) == (None, None, "3")
    store.close()


def test_an_old_sqlite_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("bot.store.sqlite3.sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr("bot.store.sqlite3.sqlite_version", "3.31.1")
    with pytest.raises(ConfigError) as raised:
        Store(f"sqlite:///{tmp_path / 'state.db'}")
    assert "SQLite 3.35.0 or newer" in str(raised.value)
    assert "3.31.1" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_kv_set_overwrites_and_survives_concurrent_writers(store):
    store.kv_set("etag", "a")
    barrier = threading.Barrier(6)

    def write(i: int) -> None:
        barrier.wait()
        store.kv_set("etag", f"v{i}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.kv_get("etag") in {f"v{i}" for i in range(6)}
    assert store.kv_get("missing") is None


def test_migrated_schema_matches_the_tables_the_code_describes(store):
    # bot/tables.py must describe the schema after the last migration: a column added to
    # one and not the other fails here, on SQLite and PostgreSQL alike.
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, tables.metadata)
    assert diff == []


@pytest.mark.postgres
def test_replicas_starting_together_on_an_empty_postgres_database_all_migrate(postgres_engine):
    # Three processes, as a deploy starts them: the first migrates, the others wait for its
    # lock and find the schema current. Without the lock one dies in CREATE TABLE/TYPE.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    # Each process imports first, then all start migrating at the same instant.
    script = (
        "import sys, time; from bot.store import Store; store = Store(sys.argv[1]); "
        "time.sleep(max(0, float(sys.argv[2]) - time.time())); store.migrate()"
    )
    start_at = str(time.time() + 4)
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, url, start_at],
                env=checkout_env(dict(os.environ)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in results]
        store = Store(url)
        assert store.schema_revision() is not None
        store.close()
    finally:
        with postgres_engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
