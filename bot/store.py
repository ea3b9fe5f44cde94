"""The state database: SQLite file by default, PostgreSQL in production (DATABASE_URL).

Holds what must survive a restart and be shared by replicas: the intake outbox, dedupe
keys, Slack message mappings, the record of scheduled runs. The schema is owned by Alembic
migrations (bot/migrations); `migrate()` brings any older database up to date in place.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import threading
import weakref
from dataclasses import dataclass
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
# Store.claim's INSERT ... RETURNING needs it (2021; Debian 12 and Python's own builds ship newer).
SQLITE_MIN = (3, 35, 0)
# How long a SQLite writer waits for the write lock before "database is locked".
SQLITE_BUSY_SECONDS = 30
# Execution option marking a connection that only reads (Store.reading).
READ_ONLY = "databot_read_only"
# pg_advisory_xact_lock key held around migrations (any fixed 64-bit number; "databot").
MIGRATION_LOCK = int.from_bytes(b"databot", "big")


@dataclass(eq=False)
class _Claim:
    """One caller's key in a batch of claims (BatchedClaims)."""

    key: str
    inserted: bool = False
    error: Exception | None = None
    settled: bool = False


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

    def reading(self) -> sa.Connection:
        """A connection for reads only. On SQLite its transaction is deferred (plain BEGIN),
        so a reader neither waits for nor holds the write lock: in WAL mode it sees the last
        commit while a writer works. Writes go through `engine.begin()`."""
        return self.engine.connect().execution_options(**{READ_ONLY: True})

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
        with self.reading() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def claim(self, key: str) -> bool:
        """Record `key` once. True for the one caller that inserted it, False for all others,
        also under concurrency: the primary key decides, not a read-then-write."""
        return key in self.insert_new([key])

    def insert_new(self, keys: list[str]) -> set[str]:
        """Insert those of `keys` not there yet, in one transaction (INSERT ... ON CONFLICT
        DO NOTHING RETURNING: PostgreSQL, SQLite 3.35+); the ones inserted."""
        inserted: set[str] = set()
        now = utc_now()
        with self.engine.begin() as connection:
            for start in range(0, len(keys), _INSERT_CHUNK):
                chunk = keys[start : start + _INSERT_CHUNK]
                params: dict[str, object] = {f"k{i}": key for i, key in enumerate(chunk)}
                params.update({f"t{i}": now for i in range(len(chunk))})
                inserted.update(connection.execute(_insert_new(len(chunk)), params).scalars())
        return inserted

    def kv_get(self, key: str) -> str | None:
        with self.reading() as connection:
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


# Every Slack request's delivery claim runs this statement: as text (compiled once per
# row count) it costs half of the same insert built with SQLAlchemy's constructs.
_INSERT_CHUNK = 50


@functools.cache
def _insert_new(rows: int) -> sa.TextClause:
    t = tables.dedupe_keys
    values = ", ".join(f"(:k{i}, :t{i})" for i in range(rows))
    return sa.text(
        f"INSERT INTO {t.name} (key, created_at) VALUES {values} "
        "ON CONFLICT DO NOTHING RETURNING key"
    ).bindparams(
        *[sa.bindparam(f"k{i}", type_=t.c.key.type) for i in range(rows)],
        *[sa.bindparam(f"t{i}", type_=t.c.created_at.type) for i in range(rows)],
    )


class BatchedClaims:
    """`Store.claim` for the gate's Slack delivery ids: claims made at the same time in this
    process share one transaction (group commit). Every Slack request claims its id before
    its ack, and a burst of them one transaction each queued on the state database's
    commits (on SQLite behind its single write lock). Only for keys of bounded length that
    nothing else writes, so no other transaction holds one of them for long: one slow or
    bad key would hold up or fail the whole batch."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._changed = threading.Condition(threading.Lock())
        self._waiting: list[_Claim] = []
        self._writing = False

    def claim(self, key: str) -> bool:
        ask = _Claim(key)
        with self._changed:
            self._waiting.append(ask)
            while not ask.settled:
                if self._writing:
                    self._changed.wait()
                    continue
                # No batch is being written: this caller writes every claim waiting now.
                self._writing = True
                batch, self._waiting = self._waiting, []
                self._changed.release()
                try:
                    self._write(batch)
                finally:
                    self._changed.acquire()
                    self._writing = False
                    self._changed.notify_all()
        if ask.error is not None:
            raise ask.error
        return ask.inserted

    def _write(self, batch: list[_Claim]) -> None:
        # Sorted, so two replicas writing overlapping batches take the keys' locks in one
        # order (PostgreSQL): neither can wait on the other in a cycle.
        firsts: dict[str, _Claim] = {}
        for ask in sorted(batch, key=lambda a: a.key):
            firsts.setdefault(ask.key, ask)
        try:
            inserted = self.store.insert_new(list(firsts))
            for key, ask in firsts.items():
                ask.inserted = key in inserted
        except Exception as exc:  # noqa: BLE001 - handed to every caller in the batch
            for ask in batch:
                ask.inserted, ask.error = False, exc
        except BaseException:
            for ask in batch:
                ask.inserted, ask.error = False, RuntimeError("claim interrupted")
            raise
        finally:
            for ask in batch:  # a repeat within the batch is a repeat
                if firsts[ask.key] is not ask:
                    ask.inserted = False
                ask.settled = True


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


class WriterTurn:
    """This process's SQLite writers, one at a time. SQLite has one write lock per file,
    and a writer that finds it taken sleeps in SQLite's busy handler (backing off to 100 ms
    between tries) even after the lock is free again; under a burst (every Slack request
    records its delivery id) that sleep is most of a request's time. Writers of one process
    instead queue here and start the moment the one before them ends; other processes
    (the clock) still meet SQLite's own lock. A second write transaction opened by a
    thread that holds the turn does not wait here (SQLite's lock decides, as without it).

    The turn is given back when its transaction commits or rolls back, and also when its
    driver connection goes back to the pool or is invalidated without either (a connection
    dropped unclosed, a disconnect): a turn never given back would stop every writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # around `_holder`
        # (the transaction's connection, weakly: a connection dropped unclosed must stay
        # collectable, so the pool's checkin can give the turn back; its driver
        # connection; the thread)
        self._holder: tuple[weakref.ref[sa.Connection], object, int] | None = None

    def enter(self, connection: sa.Connection) -> None:
        me = threading.get_ident()
        held = self._holder
        if held is not None and held[2] == me:
            return
        driver = connection.connection.dbapi_connection
        if not self._lock.acquire(timeout=SQLITE_BUSY_SECONDS):
            # A long write transaction, or one left open: go on without the turn and meet
            # SQLite's own lock, which answers "database is locked" if it stays taken (so
            # a writer gives up after twice the busy timeout, not never).
            logger.warning(
                "no SQLite write turn within %s s: a long or abandoned write transaction",
                SQLITE_BUSY_SECONDS,
            )
            return
        with self._guard:
            self._holder = (weakref.ref(connection), driver, me)

    def leave(self, connection: sa.Connection | None = None, driver: object = None) -> None:
        with self._guard:
            held = self._holder
            ours = connection is not None and held is not None and held[0]() is connection
            if held is None or not (ours or (driver is not None and held[1] is driver)):
                return
            self._holder = None
        self._lock.release()


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < SQLITE_MIN:
            raise ConfigError(
                f"DATABASE_URL: the state database needs SQLite {'.'.join(map(str, SQLITE_MIN))}"
                f" or newer; this Python has {sqlite3.sqlite_version}. Use PostgreSQL, or a "
                "Python built with a newer SQLite."
            )
        path = url.removeprefix("sqlite:///")
        engine = sa.create_engine(
            url,
            # Several threads (listeners, the outbox worker) share the file; wait for locks
            # instead of failing with "database is locked".
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
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
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

        turn = WriterTurn()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:
            if connection.get_execution_options().get(READ_ONLY):
                connection.exec_driver_sql("BEGIN")
                return
            # IMMEDIATE takes the write lock up front, so read-then-write sequences in one
            # transaction cannot deadlock against each other.
            turn.enter(connection)
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                turn.leave(connection)
                raise

        # SQLAlchemy calls these before it ends the transaction; it is ended here, so the
        # turn passes on only once SQLite's lock is free (the driver's own commit or
        # rollback that follows finds no transaction and does nothing).
        @sa.event.listens_for(engine, "commit")
        def _sqlite_commit(connection) -> None:
            try:
                connection.connection.driver_connection.commit()
            finally:
                turn.leave(connection)

        @sa.event.listens_for(engine, "rollback")
        def _sqlite_rollback(connection) -> None:
            try:
                connection.connection.driver_connection.rollback()
            except Exception:  # an invalidated connection has no transaction to end
                logger.debug("rollback on a connection that is gone", exc_info=True)
            finally:
                turn.leave(connection)

        @sa.event.listens_for(engine, "checkin")
        @sa.event.listens_for(engine, "invalidate")
        def _sqlite_returned(dbapi_connection, *_args) -> None:
            turn.leave(driver=dbapi_connection)

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
