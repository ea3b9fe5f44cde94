"""Pytest fixtures for the warehouse: the demo DuckDB file and a local BigQuery emulator.

Loaded by tests/conftest.py through `pytest_plugins`.

- `demo_warehouse_path` (session): the demo warehouse generated as of DEMO_AS_OF, cached in
  `.databot/test-cache` across runs (the file name carries the generator version).
- `bigquery_emulator` (session): URL of a `bqemulator` started offline for this session.
  Outside CI a failure to start skips the BigQuery tests with the reason; in CI it fails.
- `load_into_bigquery(url, ...)` / `copy_demo_slice(...)`: put rows into the emulator.
  The emulator rejects the client's multipart loads, so rows go in with insert_rows_json.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from bot.warehouse_demo import ensure_demo_warehouse

IN_CI = bool(os.environ.get("CI"))
REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_CACHE = REPO_ROOT / ".databot" / "test-cache"
# Monday Nov 23 2026, 10:00 Pacific: the same instant as conftest.TEST_NOW.
DEMO_AS_OF = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
EMULATOR_PROJECT = "databot-test"
EMULATOR_START_TIMEOUT_S = 60.0

_DUCKDB_TO_BIGQUERY = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "HUGEINT": "INT64",
    "BOOLEAN": "BOOL",
    "DOUBLE": "FLOAT64",
    "DATE": "DATE",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP",
}


@pytest.fixture(scope="session")
def demo_warehouse_path() -> Path:
    return ensure_demo_warehouse(TEST_CACHE, as_of=DEMO_AS_OF)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _offline_home(base: Path) -> Path:
    """A HOME whose ~/.duckdb holds the spatial extension from the PyPI wheel.

    bqemulator runs `INSTALL spatial`, which downloads; with the file already in DuckDB's
    extension directory the install is a no-op and the emulator starts offline.
    """
    import duckdb_extension_spatial

    source = next(Path(duckdb_extension_spatial.__file__).parent.rglob("*.duckdb_extension"))
    platform = duckdb.sql("PRAGMA platform").fetchone()[0]
    target = base / ".duckdb" / "extensions" / f"v{duckdb.__version__}" / platform
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target / source.name)
    return base


def _wait_ready(url: str, process: subprocess.Popen, deadline: float) -> None:
    probe = f"{url}/bigquery/v2/projects/{EMULATOR_PROJECT}/datasets"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bqemulator exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"bqemulator not ready after {EMULATOR_START_TIMEOUT_S:g} s")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"BigQuery emulator unavailable: {reason} (CI must run these tests)")
    pytest.skip(f"BigQuery emulator unavailable: {reason}")


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of a bqemulator for this test session."""
    executable = shutil.which("bqemulator") or str(Path(sys.executable).parent / "bqemulator")
    if not Path(executable).exists():
        _unavailable("the bqemulator command is not installed (pip install -e '.[dev]')")
    # Without explicit credentials google-auth would probe the cloud metadata address.
    os.environ["NO_GCE_CHECK"] = "true"
    workdir = Path(tempfile.mkdtemp(prefix="databot-bqemulator-"))
    try:
        home = _offline_home(workdir)
    except Exception as exc:  # noqa: BLE001 - reported as skip/fail
        shutil.rmtree(workdir, ignore_errors=True)
        _unavailable(f"cannot stage the DuckDB spatial extension: {exc}")
    port = _free_port()
    log_path = workdir / "bqemulator.log"
    env = {**os.environ, "HOME": str(home), "NO_GCE_CHECK": "true"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                executable, "start",
                "--rest-port", str(port),
                "--grpc-port", "0",
                "--project", EMULATOR_PROJECT,
                "--log-level", "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait_ready(url, process, time.monotonic() + EMULATOR_START_TIMEOUT_S)
        except RuntimeError as exc:
            tail = log_path.read_text(errors="replace")[-2000:]
            _unavailable(f"{exc}; log tail:\n{tail}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def emulator_client(url: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=EMULATOR_PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": url},
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def load_into_bigquery(
    url: str,
    table: str,
    schema: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
    *,
    chunk: int = 5000,
) -> None:
    """Create `dataset.table` in the emulator (replacing it) and insert `rows`.

    schema: (column name, BigQuery type) pairs.
    """
    from google.cloud import bigquery

    client = emulator_client(url)
    try:
        dataset_id, table_id = table.split(".")
        client.create_dataset(dataset_id, exists_ok=True)
        ref = f"{EMULATOR_PROJECT}.{dataset_id}.{table_id}"
        client.delete_table(ref, not_found_ok=True)
        client.create_table(
            bigquery.Table(ref, schema=[bigquery.SchemaField(n, t) for n, t in schema])
        )
        for start in range(0, len(rows), chunk):
            batch = [
                {key: _json_value(value) for key, value in row.items()}
                for row in rows[start : start + chunk]
            ]
            errors = client.insert_rows_json(ref, batch)
            if errors:
                raise RuntimeError(f"insert into {table} failed: {errors[:3]}")
    finally:
        client.close()


# A slice of the demo warehouse small enough for the emulator: Oct 25 .. Nov 2 2026 in
# Pacific time (the DST change inside), events of six instances with full telemetry.
SLICE_FROM = "TIMESTAMPTZ '2026-10-25 07:00:00+00'"
SLICE_TO = "TIMESTAMPTZ '2026-11-03 08:00:00+00'"
SLICE_INSTANCES = (
    "SELECT instance_id FROM sourcegraph_analytics.update_checks "
    "WHERE telemetry_status = 'full pings + event data' AND account_name IS NOT NULL "
    "GROUP BY instance_id ORDER BY instance_id LIMIT 6"
)


def demo_slices(*, tables: Sequence[str] = ()) -> dict[str, str]:
    """`copy_demo_slice`'s `slices` for the slice above: events of the six instances,
    the pings of a quarter of all instances and of those six, the reference tables whole,
    and each of `tables` (`dotcom_events.cody`, ...) cut like the events."""
    events = f"timestamp >= {SLICE_FROM} AND timestamp < {SLICE_TO}"
    slices = {
        "dotcom_events.events": (
            f"SELECT * FROM dotcom_events.events WHERE {events} "
            f"AND instance_id IN ({SLICE_INSTANCES})"
        ),
        "sourcegraph_analytics.update_checks": (
            "SELECT * FROM sourcegraph_analytics.update_checks "
            f"WHERE checked_at >= {SLICE_FROM} AND checked_at < {SLICE_TO} "
            f"AND (hash(instance_id) % 4 = 0 OR instance_id IN ({SLICE_INSTANCES}))"
        ),
        "salesforce_data.accounts": "SELECT * FROM salesforce_data.accounts",
        "sourcegraph_analytics.releases": "SELECT * FROM sourcegraph_analytics.releases",
        "sourcegraph_analytics.instances": "SELECT * FROM sourcegraph_analytics.instances",
    }
    for table in tables:
        slices[table] = (
            f"SELECT * FROM {table} WHERE {events} AND instance_id IN ({SLICE_INSTANCES})"
        )
    return slices


def copy_demo_slice(
    url: str,
    duckdb_path: Path,
    slices: Mapping[str, str],
    *,
    slice_path: Path,
) -> Path:
    """Copy a slice of demo tables into the emulator AND into a new DuckDB file.

    slices: "dataset.table" -> DuckDB SELECT over that table (the rows to copy; constants
    only, this is test code). Returns the DuckDB file holding exactly the same rows, so the
    two backends can be compared on identical data.
    """
    source = duckdb.connect(str(duckdb_path), read_only=True)
    target = duckdb.connect(str(slice_path))
    try:
        for con in (source, target):
            con.execute("SET TimeZone = 'UTC'")
        for table, select_sql in slices.items():
            result = source.execute(select_sql)
            columns = [(d[0], str(d[1])) for d in result.description]
            rows = [dict(zip([c for c, _ in columns], r, strict=True)) for r in result.fetchall()]
            dataset = table.split(".")[0]
            target.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
            target.execute(
                f"CREATE TABLE {table} ("
                + ", ".join(f'"{name}" {kind}' for name, kind in columns)
                + ")"
            )
            if rows:
                target.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})",
                    [tuple(row.values()) for row in rows],
                )
            schema = [(name, _DUCKDB_TO_BIGQUERY[kind]) for name, kind in columns]
            load_into_bigquery(url, table, schema, rows)
    finally:
        source.close()
        target.close()
    return slice_path
