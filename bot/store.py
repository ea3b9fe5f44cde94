"""The state database: SQLite file by default, PostgreSQL in production (DATABASE_URL).

Holds what must survive a restart and be shared by replicas: the intake outbox, dedupe
keys, Slack message mappings, the record of scheduled runs. The schema is owned by Alembic
migrations (bot/migrations); `migrate()` brings any older database up to date in place.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.settings import utc_now

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key held around migrations (any fixed 64-bit number; "databot").
MIGRATION_LOCK = int.from_bytes(b"databot", "big")


class Store:
    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Upgrade the schema to the latest migration (idempotent).

        Replicas start together (deploys, autoscalers): on PostgreSQL the upgrade holds a
        transaction-scoped advisory lock, so one process migrates while the others wait
        and then find the schema current (a no-op); without it two would race to create
        the same tables and types. SQLite serialises writers by itself (BEGIN IMMEDIATE)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def schema_revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def claim(self, key: str) -> bool:
        """Record `key` once. True for the one caller that inserted it, False for all others,
        also under concurrency: the primary key decides, not a read-then-write."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    tables.dedupe_keys.insert().values(key=key, created_at=utc_now())
                )
        except IntegrityError:
            return False
        return True

    def kv_get(self, key: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(tables.kv.c.value).where(tables.kv.c.key == key)
            ).scalar()

    def kv_set(self, key: str, value: str) -> None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                tables.kv.update()
                .where(tables.kv.c.key == key)
                .values(value=value, updated_at=utc_now())
            ).rowcount
            if not updated:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            tables.kv.insert().values(key=key, value=value, updated_at=utc_now())
                        )
                except IntegrityError:  # a concurrent writer inserted first: last write wins
                    connection.execute(
                        tables.kv.update()
                        .where(tables.kv.c.key == key)
                        .values(value=value, updated_at=utc_now())
                    )

    def close(self) -> None:
        self.engine.dispose()


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            # Several threads (listeners, the outbox worker) share the file; wait for locks
            # instead of failing with "database is locked".
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:
            # IMMEDIATE takes the write lock up front, so read-then-write sequences in one
            # transaction cannot deadlock against each other.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
