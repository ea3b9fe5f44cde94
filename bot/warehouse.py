"""The warehouse gateway: BigQuery in production, the embedded DuckDB demo warehouse otherwise.

Contract for callers: SQL is always BigQuery Standard SQL with `@named` parameters; user
input only ever travels as a parameter value, never formatted into SQL text. `query`
returns a list of dicts (column name -> Python value: int, float, Decimal, str, bool,
date, aware-UTC datetime, list). Failures raise `WarehouseError` / `WarehouseTimeout`
whose `user_message` is safe to show; details go to the log.

DuckDB translation: `sqlglot.transpile(read="bigquery", write="duckdb")` plus a few
fixes for places where the translation is valid DuckDB but means something else
(see `_fix_bigquery_semantics`). DuckDB sessions run with TimeZone=UTC: sqlglot renders
`DATE(ts, 'America/Los_Angeles')` as `CAST(CAST(ts AS TIMESTAMP) AT TIME ZONE 'UTC' AT TIME
ZONE '...' AS DATE)`, whose first cast uses the session zone; under UTC it is exact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import duckdb
import requests
import sqlglot
from sqlglot import exp

from bot.errors import WarehouseError, WarehouseTimeout, WarehouseTooCostly
from bot.warehouse_demo import ensure_demo_warehouse

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

TIMEOUT_MESSAGE = (
    "The warehouse query took longer than {seconds:g} s and was stopped. "
    "Try a shorter period or a narrower filter."
)
FAILED_MESSAGE = (
    "The warehouse could not run this query (reference {ref}). The team has the details."
)
BAD_PARAMS_MESSAGE = "A query parameter has a type the warehouse does not accept: {name}."
TOO_COSTLY_MESSAGE = (
    "This would scan {bytes}, more than the {cap} one query may scan "
    "(BIGQUERY_MAX_BYTES_BILLED), so it was not run and nothing was billed. "
    "Try a shorter period."
)
# A dry-run price is reused for the same query shape (the text, the non-date parameters
# and the length of the date range) for this long: tables grow by a day's rows a day.
DRY_RUN_CACHE_SECONDS = 3600.0
DRY_RUN_CACHE_SIZE = 1000

# Reports what a query costs: ("estimated" | "processed" | "refused", bytes).
BytesSink = Callable[[str, int], None]


def format_bytes(n: int) -> str:
    """Bytes in the binary units BigQuery bills by: 180 GiB, 1.5 TiB, 12 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


class Warehouse(Protocol):
    @property
    def name(self) -> str: ...

    # Whether a query costs this process's CPU (the embedded DuckDB), not only its wait
    # (BigQuery): work that waits on a remote one need not wait for a burst's acks.
    @property
    def embedded(self) -> bool: ...

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def embedded(warehouse: Warehouse) -> bool:
    """`warehouse.embedded`; stand-ins that do not say are taken as embedded (the
    cautious answer: their work waits for the acks)."""
    return bool(getattr(warehouse, "embedded", True))


def _failure(detail: str) -> WarehouseError:
    # A short reference ties what the user sees to the log line with the details.
    ref = uuid.uuid4().hex[:8]
    logger.warning("Warehouse query failed [%s]: %s", ref, detail)
    return WarehouseError(FAILED_MESSAGE.format(ref=ref), detail=f"[{ref}] {detail}")


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    if isinstance(value, list):
        return [_utc(item) for item in value]
    return value


# --- DuckDB ----------------------------------------------------------------------------


def _as_date(node: exp.Expression) -> exp.Expression:
    return exp.cast(node, exp.DataType.build("DATE"))


def _fix_bigquery_semantics(tree: exp.Expression) -> exp.Expression:
    """Rewrite the BigQuery AST where sqlglot's DuckDB output would run but mean something else.

    Gaps found (sqlglot 30.11, DuckDB 1.5.5):
    - EXTRACT(DAYOFWEEK ...) is 1 (Sunday) .. 7 in BigQuery, 0 .. 6 in DuckDB.
    - DATE_TRUNC(d, WEEK) starts weeks on Sunday in BigQuery, Monday in DuckDB;
      ISOWEEK is not a DuckDB unit (it is WEEK(MONDAY)).
    - DATE_TRUNC / DATE_ADD / DATE_SUB on a DATE return DATE in BigQuery but TIMESTAMP
      in DuckDB, which would change result types (and comparisons with DATE params).
    """

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Extract) and node.name.upper() == "DAYOFWEEK":
            return exp.paren(exp.Add(this=node.copy(), expression=exp.Literal.number(1)))
        if isinstance(node, exp.DateTrunc):
            unit = node.args.get("unit")
            unit_name = unit.name.upper() if isinstance(unit, exp.Literal) else None
            if isinstance(unit, exp.WeekStart):
                unit_name = f"WEEK({unit.name.upper()})"
            if unit_name in ("WEEK", "WEEK(SUNDAY)"):
                day = _as_date(node.this.copy())
                dow = exp.Extract(this=exp.var("DAYOFWEEK"), expression=day.copy())
                return exp.paren(exp.Sub(this=day, expression=exp.cast(dow, "INT")))
            if unit_name == "ISOWEEK":
                node = node.copy()
                node.set("unit", exp.Literal.string("WEEK"))
            return _as_date(node)
        if isinstance(node, exp.DateAdd | exp.DateSub):
            return _as_date(node)
        return node

    return tree.transform(fix, copy=True)


def translate_to_duckdb(sql: str) -> str:
    """BigQuery SQL -> DuckDB SQL; `@name` params become `$name`."""
    return _translate(sql)[0]


def prepare_duckdb(sqls: list[str]) -> int:
    """Translate these query texts now (at catalog load), so no lookup pays for sqlglot
    (pure Python, 5-20 ms a query, and it holds the GIL). Returns how many translated; a
    text that does not translate is logged and left for its lookup to report."""
    done = 0
    for sql in sqls:
        try:
            _translate(sql)
            done += 1
        except (sqlglot.errors.SqlglotError, ValueError) as exc:
            logger.warning("catalog query does not translate to DuckDB: %s", exc)
    return done


# Every distinct query text is translated once per process: the lookup service's texts
# depend only on the catalog (parameters are bound, never formatted in).
@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> tuple[str, frozenset[str]]:
    """(DuckDB SQL, names of the parameters it uses), cached per SQL text."""
    trees = sqlglot.parse(sql, read="bigquery")
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise ValueError("expected exactly one SQL statement")
    tree = _fix_bigquery_semantics(cast(exp.Expression, statements[0]))
    names = frozenset(node.name for node in tree.find_all(exp.Parameter, exp.Placeholder))
    return tree.sql(dialect="duckdb"), names


class DuckDBWarehouse:
    """Read-only DuckDB file queried with BigQuery SQL. Thread-safe: one cursor per call."""

    name = "duckdb"
    embedded = True

    def __init__(
        self, path: Path, *, timeout_s: float, rollups: tuple[Path, str] | None = None
    ) -> None:
        """`rollups`: (file, dataset name) of the writable rollup database, attached beside
        the read-only demo data so `<dataset>.<table>` names it as in BigQuery."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._use: str | None = None
        if rollups is None:
            self._con = duckdb.connect(str(self.path), read_only=True)
        else:
            # A read-only database cannot attach a writable one: an in-memory session holds
            # both, and every cursor reads the demo data by default (USE).
            file, dataset = rollups
            self._con = duckdb.connect(":memory:")
            self._con.execute(f"ATTACH '{self.path}' AS demo_data (READ_ONLY)")
            try:
                self._con.execute(f"ATTACH '{file}' AS {dataset}")
            except duckdb.IOException as exc:  # another process writes it: read only
                logger.warning("rollups %s opened read-only: %s", file, exc)
                if Path(file).exists():
                    self._con.execute(f"ATTACH '{file}' AS {dataset} (READ_ONLY)")
            self._use = "demo_data"
            self._con.execute("USE demo_data")
        self._con.execute("SET TimeZone = 'UTC'")

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        del labels  # BigQuery job labels have no DuckDB counterpart
        try:
            duck_sql, used = _translate(sql)
        except (sqlglot.errors.SqlglotError, ValueError) as exc:
            raise _failure(f"translation failed: {exc}; sql={sql!r}") from exc
        cursor = self._con.cursor()
        timed_out = threading.Event()

        def interrupt() -> None:
            timed_out.set()
            cursor.interrupt()

        timer = threading.Timer(self.timeout_s, interrupt)
        timer.daemon = True
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            if self._use:
                cursor.execute(f"USE {self._use}")
            timer.start()
            try:
                # BigQuery ignores unused parameters; DuckDB refuses them.
                bound = {k: v for k, v in (params or {}).items() if k in used}
                cursor.execute(duck_sql, bound)
                columns = [column[0] for column in cursor.description or []]
                rows = cursor.fetchall()
            finally:
                timer.cancel()
        except duckdb.Error as exc:
            if timed_out.is_set():
                logger.warning("DuckDB query interrupted after %.1f s: %s", self.timeout_s, sql)
                raise WarehouseTimeout(
                    TIMEOUT_MESSAGE.format(seconds=self.timeout_s), detail=str(exc)
                ) from exc
            raise _failure(f"{type(exc).__name__}: {exc}; sql={duck_sql!r}") from exc
        finally:
            cursor.close()
        return [dict(zip(columns, map(_utc, row), strict=True)) for row in rows]

    def close(self) -> None:
        self._con.close()


# --- BigQuery --------------------------------------------------------------------------


def _bq_type(value: Any) -> str:
    # bool before int: bool is an int subclass. datetime before date: same reason.
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    raise TypeError(type(value).__name__)


def bigquery_parameters(params: Mapping[str, Any]) -> list[Any]:
    """Python values -> named BigQuery query parameters (types inferred from the values)."""
    from google.cloud import bigquery

    result: list[Any] = []
    for name, value in params.items():
        try:
            if isinstance(value, list | tuple):
                if not value:
                    raise TypeError("empty list (its element type is unknown)")
                result.append(bigquery.ArrayQueryParameter(name, _bq_type(value[0]), list(value)))
            elif value is None:
                raise TypeError("None (use a typed value or leave the parameter out)")
            else:
                if isinstance(value, dt.datetime) and value.tzinfo is None:
                    raise TypeError("naive datetime (use an aware one)")
                result.append(bigquery.ScalarQueryParameter(name, _bq_type(value), value))
        except TypeError as exc:
            raise WarehouseError(BAD_PARAMS_MESSAGE.format(name=name), detail=str(exc)) from exc
    return result


def _shape(sql: str, params: Mapping[str, Any]) -> tuple:
    """A query's price key: its text, its non-date parameters, and its date parameters as
    offsets from the earliest one (a partitioned scan costs by the range's length)."""
    temporal = [v for v in params.values() if isinstance(v, dt.date)]

    def seconds(v: dt.date) -> float:
        if isinstance(v, dt.datetime):
            return v.timestamp()
        return dt.datetime.combine(v, dt.time(0), dt.UTC).timestamp()

    base = min((seconds(v) for v in temporal), default=0.0)
    parts: list[tuple[str, str, Any]] = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, dt.date):
            parts.append((name, "offset", seconds(value) - base))
        elif isinstance(value, list):
            parts.append((name, "list", tuple(map(repr, value))))
        else:
            parts.append((name, type(value).__name__, repr(value)))
    return (sql, tuple(parts))


@dataclasses.dataclass
class _BigQueryConfig:
    project: str
    maximum_bytes_billed: int
    timeout_s: float
    location: str | None


class BigQueryWarehouse:
    """google-cloud-bigquery client; every query is a cached, byte-capped, labelled job."""

    name = "bigquery"
    embedded = False

    def __init__(
        self,
        project: str,
        *,
        api_endpoint: str | None = None,
        location: str | None = None,
        maximum_bytes_billed: int,
        timeout_s: float,
        credentials: Any = None,
        client: Any = None,
    ) -> None:
        from google.cloud import bigquery

        self._config = _BigQueryConfig(project, maximum_bytes_billed, timeout_s, location)
        if client is None:
            client_options = None
            if api_endpoint:
                from google.auth.credentials import AnonymousCredentials

                # An emulator: without explicit credentials google-auth would probe the
                # cloud metadata server.
                credentials = credentials or AnonymousCredentials()
                client_options = {"api_endpoint": api_endpoint}
            client = bigquery.Client(
                project=project,
                credentials=credentials,
                location=location,
                client_options=client_options,
            )
        self.client = client
        self.on_bytes: BytesSink | None = None
        self._prices: dict[tuple, tuple[float, int]] = {}
        self._prices_lock = threading.Lock()

    @property
    def maximum_bytes_billed(self) -> int:
        return self._config.maximum_bytes_billed

    def _report(self, kind: str, n: int) -> None:
        if self.on_bytes is not None:
            try:
                self.on_bytes(kind, n)
            except Exception:
                logger.exception("could not record warehouse bytes")

    def _retries(self) -> tuple[Any, Any]:
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

        # The client's defaults retry 5xx and transport errors for 600 s (and re-issue the
        # whole job on some errors); a chat user should hear back within the time limit.
        deadline = self._config.timeout_s
        return DEFAULT_RETRY.with_deadline(deadline), DEFAULT_JOB_RETRY.with_deadline(deadline)

    def _timeout(self, job: Any, exc: BaseException) -> WarehouseTimeout:
        self._cancel(job)
        logger.warning(
            "BigQuery query timed out after %.1f s (job %s): %s",
            self._config.timeout_s,
            getattr(job, "job_id", None),
            exc,
        )
        return WarehouseTimeout(
            TIMEOUT_MESSAGE.format(seconds=self._config.timeout_s), detail=str(exc)
        )

    def estimate_bytes(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """What the query would scan, from a BigQuery dry run (free, no job runs), reused
        for the same query shape for DRY_RUN_CACHE_SECONDS."""
        key = _shape(sql, params or {})
        now = time.monotonic()
        with self._prices_lock:
            found = self._prices.get(key)
            if found and found[0] > now:
                return found[1]
        estimated = self._guarded(lambda: self._dry_run(sql, params or {}), None)
        with self._prices_lock:
            if len(self._prices) >= DRY_RUN_CACHE_SIZE:
                self._prices.clear()
            self._prices[key] = (now + DRY_RUN_CACHE_SECONDS, estimated)
        logger.info(
            "BigQuery dry run: %s (%d bytes; cap %d)",
            format_bytes(estimated),
            estimated,
            self._config.maximum_bytes_billed,
        )
        return estimated

    def _dry_run(self, sql: str, params: Mapping[str, Any]) -> int:
        from google.cloud import bigquery

        job_config = bigquery.QueryJobConfig(
            dry_run=True,
            use_query_cache=False,
            query_parameters=bigquery_parameters(params),
        )
        retry, _ = self._retries()
        job = self.client.query(
            sql,
            job_config=job_config,
            location=self._config.location,
            retry=retry,
            job_retry=None,
            timeout=self._config.timeout_s,
        )
        return int(job.total_bytes_processed or 0)

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        params = params or {}
        # Priced first: a query over the cap is not sent, and the user hears why.
        estimated = self.estimate_bytes(sql, params)
        cap = self._config.maximum_bytes_billed
        self._report("estimated", estimated)
        if estimated > cap:
            self._report("refused", estimated)
            logger.warning(
                "BigQuery query not sent: it would scan %s, over the %s cap",
                format_bytes(estimated),
                format_bytes(cap),
            )
            raise WarehouseTooCostly(
                TOO_COSTLY_MESSAGE.format(bytes=format_bytes(estimated), cap=format_bytes(cap)),
                estimated=estimated,
                cap=cap,
            )
        job_config = bigquery.QueryJobConfig(
            use_query_cache=True,
            maximum_bytes_billed=cap,
            labels={"app": "databot", **dict(labels or {})},
            query_parameters=bigquery_parameters(params),
        )
        retry, job_retry = self._retries()
        deadline = time.monotonic() + self._config.timeout_s
        jobs: list[Any] = []

        def run() -> list[dict[str, Any]]:
            job = self.client.query(
                sql,
                job_config=job_config,
                location=self._config.location,
                retry=retry,
                # Any job_retry here wraps jobs.insert in the client's own 10-minute retry.
                job_retry=None,
                timeout=self._config.timeout_s,
            )
            jobs.append(job)
            remaining = max(0.5, deadline - time.monotonic())
            rows = job.result(timeout=remaining, retry=retry, job_retry=job_retry)
            out = [{key: _utc(value) for key, value in row.items()} for row in rows]
            processed = job.total_bytes_billed or job.total_bytes_processed
            if processed:
                self._report("processed", int(processed))
            return out

        return self._guarded(run, jobs)

    def _guarded(self, call: Callable[[], Any], jobs: list[Any] | None) -> Any:
        """Run `call` (a dry run or a job), mapping the client's failures to ours."""
        import concurrent.futures

        from google.api_core import exceptions as gexc

        def job() -> Any:
            return jobs[-1] if jobs else None

        try:
            return call()
        except (
            concurrent.futures.TimeoutError,
            TimeoutError,
            gexc.DeadlineExceeded,
            requests.exceptions.Timeout,
        ) as exc:
            raise self._timeout(job(), exc) from exc
        except gexc.RetryError as exc:
            # Retries ran out of time: a timeout if the last attempt timed out.
            if isinstance(exc.cause, requests.exceptions.Timeout | TimeoutError):
                raise self._timeout(job(), exc) from exc
            job_id = getattr(job(), "job_id", None)
            raise _failure(f"job {job_id}: retries exhausted: {exc.cause!r}") from exc
        except gexc.GoogleAPIError as exc:
            job_id = getattr(job(), "job_id", None)
            what = "dry run" if jobs is None else f"job {job_id}"
            raise _failure(f"{what}: {type(exc).__name__}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise _failure(f"transport: {type(exc).__name__}: {exc}") from exc

    def _cancel(self, job: Any) -> None:
        if job is None:
            return
        try:
            job.cancel(retry=self._retries()[0], timeout=10)
        except Exception:
            logger.warning("Could not cancel BigQuery job %s", job.job_id, exc_info=True)

    def close(self) -> None:
        self.client.close()


def make_warehouse(settings: Settings) -> Warehouse:
    """BigQuery when GCP_PROJECT is set, else the generated DuckDB demo warehouse."""
    if settings.gcp_project:
        return BigQueryWarehouse(
            settings.gcp_project,
            api_endpoint=settings.bigquery_api_endpoint,
            location=settings.bigquery_location,
            maximum_bytes_billed=settings.bigquery_max_bytes_billed,
            timeout_s=settings.query_timeout_seconds,
        )
    path = ensure_demo_warehouse(settings.data_dir)
    rollups = None
    if settings.rollup_dataset:
        rollups = (settings.data_dir / "rollups.duckdb", settings.rollup_dataset)
    return DuckDBWarehouse(path, timeout_s=settings.query_timeout_seconds, rollups=rollups)
