"""A pricing front for the BigQuery emulator: real BigQuery REST, real query execution,
plus the byte estimates the emulator does not model.

bqemulator answers every dry run with `totalBytesProcessed: 0` (it has no cost model), so a
lookup over `BIGQUERY_MAX_BYTES_BILLED` could never be seen. `PricedBigQuery` sits between
the google-cloud-bigquery client and the emulator on loopback: every request is forwarded
unchanged (the emulator parses and runs the SQL, so a bad query still fails as it would),
and the job resources coming back carry `statistics.totalBytesProcessed` /
`statistics.query.totalBytesProcessed` (and `totalBytesBilled` for jobs that ran) from a
small model of a day-partitioned table:

    bytes = bytes_per_day x the days between the query's earliest and latest DATE /
            TIMESTAMP parameter (a partitioned scan costs by its range), or
            `bytes_flat` for a query with no date parameters.

It records what reached it: `dry_runs` and `jobs` (queries that ran), each a `Seen`
(sql, {parameter name: value text}, the bytes it was priced at).

    with PricedBigQuery(emulator_url, bytes_per_day=2 * 1024**3) as priced:
        BigQueryWarehouse(project, api_endpoint=priced.url, ...)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from typing import Any

import requests
from flask import Flask, Response, request

from sandbox import LoopbackServer

_HOP_BY_HOP = {
    "connection",
    "content-encoding",
    "content-length",
    "keep-alive",
    "transfer-encoding",
    "host",
    "accept-encoding",
}


@dataclasses.dataclass(frozen=True)
class Seen:
    sql: str
    params: dict[str, str]
    bytes: int


def _instant(kind: str, text: str) -> dt.datetime | None:
    try:
        if kind == "DATE":
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), dt.UTC)
        value = dt.datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class PricedBigQuery(LoopbackServer):
    def __init__(
        self, upstream: str, *, bytes_per_day: int = 1024**3, bytes_flat: int = 10 * 1024**2
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.bytes_per_day = bytes_per_day
        self.bytes_flat = bytes_flat
        self.dry_runs: list[Seen] = []
        self.jobs: list[Seen] = []
        self._job_bytes: dict[str, int] = {}

        self._session = requests.Session()
        self._session_lock = threading.Lock()
        super().__init__()

    # --- the price model ---------------------------------------------------------------
    def price(self, params: list[dict[str, Any]]) -> int:
        """Bytes a query with these (REST-encoded) parameters scans, by the model above:
        DATE bounds are inclusive days, TIMESTAMP bounds a half-open range (rounded to
        whole days, so a 23- or 25-hour DST day counts as one)."""
        found: dict[str, list[dt.datetime]] = {"DATE": [], "TIMESTAMP": []}
        for param in params:
            kind = param.get("parameterType", {}).get("type")
            text = param.get("parameterValue", {}).get("value")
            if kind in ("DATE", "TIMESTAMP", "DATETIME") and text:
                value = _instant(kind, text)
                if value is not None:
                    found["DATE" if kind == "DATE" else "TIMESTAMP"].append(value)
        days = 0
        if found["DATE"]:
            days = (max(found["DATE"]) - min(found["DATE"])).days + 1
        if found["TIMESTAMP"]:
            span = (max(found["TIMESTAMP"]) - min(found["TIMESTAMP"])).total_seconds()
            days = max(days, round(span / 86400))
        if not days:
            return self.bytes_flat
        return days * self.bytes_per_day

    # --- HTTP ----------------------------------------------------------------------------
    def _make_app(self) -> Flask:
        app = Flask(__name__)

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def forward(path: str) -> Response:
            body = request.get_data()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = self._session.request(
                request.method,
                f"{self.upstream}/{path}",
                params=list(request.args.items(multi=True)),
                data=body,
                headers=headers,
                timeout=60,
            )
            content = upstream.content
            if upstream.ok and path.endswith("/jobs") and request.method == "POST":
                content = self._priced_insert(body, content)
            elif upstream.ok and "/jobs/" in path and request.method == "GET":
                content = self._priced_get(content)
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            return Response(content, status=upstream.status_code, headers=out_headers)

        return app

    def _priced_insert(self, sent: bytes, received: bytes) -> bytes:
        try:
            job = json.loads(sent)
            answer = json.loads(received)
        except ValueError:
            return received
        config = job.get("configuration", {})
        query = config.get("query", {})
        params = query.get("queryParameters", [])
        n = self.price(params)
        record = Seen(
            str(query.get("query", "")),
            {str(p.get("name")): str(p.get("parameterValue", {}).get("value")) for p in params},
            n,
        )
        stats = answer.setdefault("statistics", {})
        stats["totalBytesProcessed"] = str(n)
        stats.setdefault("query", {})["totalBytesProcessed"] = str(n)
        with self._lock:
            if config.get("dryRun"):
                self.dry_runs.append(record)
            else:
                self.jobs.append(record)
                job_id = answer.get("jobReference", {}).get("jobId")
                if job_id:
                    self._job_bytes[job_id] = n
                stats["query"]["totalBytesBilled"] = str(n)
            self._changed.notify_all()
        return json.dumps(answer).encode()

    def _priced_get(self, received: bytes) -> bytes:
        try:
            answer = json.loads(received)
        except ValueError:
            return received
        job_id = answer.get("jobReference", {}).get("jobId") if isinstance(answer, dict) else None
        with self._lock:
            n = self._job_bytes.get(job_id or "")
        if n is None:
            return received
        stats = answer.setdefault("statistics", {})
        stats["totalBytesProcessed"] = str(n)
        query = stats.setdefault("query", {})
        query["totalBytesProcessed"] = str(n)
        query["totalBytesBilled"] = str(n)
        return json.dumps(answer).encode()
