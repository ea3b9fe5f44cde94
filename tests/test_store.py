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
from bot.store import Store
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
