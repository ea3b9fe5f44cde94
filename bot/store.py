"""The state database: SQLite file by default, PostgreSQL in production (DATABASE_URL).

Holds what must survive a restart and be shared by replicas: the intake outbox, dedupe
keys, Slack message mappings, the record of scheduled runs. The schema is owned by Alembic
migrations (bot/migrations); `migrate()` brings any older database up to date in place.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.errors import ConfigError
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
        with self.connect_or_explain() as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def connect_or_explain(self) -> sa.Connection:
        """A connection, or a ConfigError saying in one line why there is none (the first
        thing `serve`, `clock` and the other commands do with the state database)."""
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise ConfigError(
                f"DATABASE_URL: cannot reach the state database: {unreachable_reason(exc)}."
            ) from None

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


# Driver messages (psycopg, sqlite3) -> the reason in plain words. Never the URL: it may
# hold a password.
_REASONS: list[tuple[str, str]] = [
    (r"Connection refused", "connection refused (is the server running, on that host and port?)"),
    (r"password authentication failed", "authentication failed (wrong user or password)"),
    (r'role "[^"]*" does not exist', "authentication failed (no such user)"),
    (r"authentication failed|no password supplied|no pg_hba.conf entry", "authentication failed"),
    (r'database ("[^"]*") does not exist', "the database {} does not exist"),
    (r"failed to resolve host|could not translate host name", "unknown host"),
    (r"timeout expired|timed out", "the connection timed out"),
    (r"unable to open database file", "cannot open the SQLite file (does its folder exist?)"),
]


def unreachable_reason(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig)
    for pattern, reason in _REASONS:
        if match := re.search(pattern, text):
            return reason.format(*match.groups())
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc.orig).__name__}: {first}" if first else type(exc.orig).__name__


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = sa.engine.make_url(url).database
    return Path(path) if path and path != ":memory:" else None


def open_read_only(url: str) -> Store | None:
    """A Store for looking only (`databot check`): SQLite is opened read-only and never
    created; None when its file does not exist yet. PostgreSQL opens as usual."""
    path = sqlite_file(url)
    if path is None:
        return Store(url)
    if not path.exists():
        return None
    # A WAL database opened read-only still creates its -wal/-shm companions. They exist
    # while a process has the database open; otherwise nobody writes it and its file is
    # complete, so it is read as immutable, which creates nothing.
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return Store(url, engine=sa.create_engine(f"sqlite:///file:{path}?{mode}&uri=true"))


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        engine = sa.create_engine(
            url,
            # Several threads (listeners, the outbox worker) share the file; wait for locks
            # instead of failing with "database is locked".
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @sa.event.listens_for(engine, "do_connect")
        def _make_the_folder(*_args) -> None:
            # On first use, not when the engine is built: `databot check` builds one (to
            # list the jobs) and must create nothing.
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)

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
