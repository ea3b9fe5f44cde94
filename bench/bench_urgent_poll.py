"""Urgent-issue poller benchmark: prints figures, asserts nothing.

    python -m bench.bench_urgent_poll            (from the repo root)

Against the loopback GitHub (sandbox.FakeGitHub, which answers `If-None-Match` with 304
and does not count 304s against the rate limit, as GitHub does) and the loopback Slack:

1. Requests per poll when nothing changed (target: one conditional request, answered 304,
   costing no rate limit).
2. Requests per poll when one issue changed, for repos of 500, 5,000 and 20,000 issues
   (target: constant, not proportional to the repo), next to what a naive poller (no
   `since`, no ETag: it must list every issue to notice a removed label) would spend.
3. Latency of a poll (304) and of a poll that posts one alert.
4. Webhook path: signed delivery -> Slack message, per delivery (p50/p95), with the state
   on SQLite and on PostgreSQL (when the server on 127.0.0.1:5432 is reachable).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.deps import Deps
from bot.github import IssuesClient
from bot.settings import Settings
from bot.store import Store
from bot.urgent.poller import poll_once
from bot.urgent.webhook import receive, sign
from sandbox.github_api import FakeGitHub
from sandbox.slack_api import FakeSlack

REPO = "acme/analytics"
TOKEN = "ghp_bench_token"
SECRET = "bench-secret"
POSTGRES_URL = os.environ.get(
    "DATABOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class InlineExecutor:
    def submit(self, fn, *args, **kwargs):
        fn(*args, **kwargs)

    def shutdown(self, *args, **kwargs) -> None:
        pass


def make_store(tmp: Path, postgres: bool = False) -> Store:
    if postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
        store = Store(POSTGRES_URL, engine=engine)
        store.bench_schema = schema  # dropped by drop_store
    else:
        store = Store(f"sqlite:///{tmp / f'state-{uuid.uuid4().hex[:6]}.db'}")
    store.migrate()
    return store


def drop_store(store: Store) -> None:
    store.close()
    schema = getattr(store, "bench_schema", None)
    if schema:
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - the figure is simply left out
        return False


def make_deps(tmp: Path, github: FakeGitHub, slack: FakeSlack, *, postgres: bool = False) -> Deps:
    settings = Settings(
        _env_file=None,
        github_repo=REPO,
        github_api_url=github.url,
        github_token=TOKEN,
        github_webhook_secret=SECRET,
        analytics_channel="#analytics",
        slack_bot_token="xoxb-bench",
    )
    store = make_store(tmp, postgres)
    return Deps(
        settings=settings,
        store=store,
        warehouse=None,
        slack=WebClient(token="xoxb-bench", base_url=slack.api_url),
        github=None,
        work=InlineExecutor(),
    )


def seed(github: FakeGitHub, n: int, urgent_every: int = 250) -> None:
    now = dt.datetime.now(dt.UTC)
    github.add_many_issues(
        n,
        factory=lambda i: {
            "title": f"Request {i + 1}",
            "labels": ["urgent"] if (i + 1) % urgent_every == 0 else ["data-request"],
            "state": "closed" if i % 3 == 0 else "open",
        },
        start=now - dt.timedelta(days=700),
        spacing=dt.timedelta(days=699) / n,
    )


def label_urgent(github: FakeGitHub, number: int) -> None:
    response = requests.post(
        f"{github.url}/repos/{REPO}/issues/{number}/labels",
        json={"labels": ["urgent"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - started) * 1000


def per_repo_size(tmp: Path, n: int) -> dict:
    with FakeGitHub(repo=REPO, token=TOKEN) as github, FakeSlack() as slack:
        seed(github, n)
        deps = make_deps(tmp, github, slack)
        client = IssuesClient(github.url, TOKEN)
        poll_once(deps, client=client)  # first start: open urgent issues only
        poll_once(deps, client=client)  # first incremental poll
        # Nothing changed.
        idle = []
        used_before = github.rate_limit_used
        statuses = []
        for _ in range(20):
            mark = len(github.requests)
            result, ms = timed(lambda: poll_once(deps, client=client))
            idle.append((result.requests, ms))
            statuses += [r.status for r in github.requests[mark:]]
        idle_rate_used = github.rate_limit_used - used_before
        # One issue changed.
        label_urgent(github, n // 2 + 1)
        changed, changed_ms = timed(lambda: poll_once(deps, client=client))
        settled = poll_once(deps, client=client)
        deps.store.close()
        return {
            "n": n,
            "idle_requests": statistics.mean(r for r, _ in idle),
            "idle_statuses": sorted(set(statuses)),
            "idle_rate_used": idle_rate_used,
            "idle_ms": statistics.median(ms for _, ms in idle),
            "changed_requests": changed.requests,
            "changed_seen": changed.issues_seen,
            "changed_ms": changed_ms,
            "settled_304": settled.not_modified,
            "posts": len(slack.calls("chat.postMessage")),
            # A poller without `since`/ETag must list every issue to notice a removed label.
            "naive_all": math.ceil(n / 100),
        }


def webhook_latency(tmp: Path, deliveries: int = 200, *, postgres: bool = False) -> list[float]:
    with FakeGitHub(repo=REPO, token=TOKEN) as github, FakeSlack() as slack:
        deps = make_deps(tmp, github, slack, postgres=postgres)
        now = dt.datetime.now(dt.UTC)
        timings = []
        for i in range(deliveries):
            issue = github.create_issue(f"Incident {i}", labels=["urgent"], created_at=now)
            payload = {
                "action": "labeled",
                "issue": issue,
                "label": {"name": "urgent"},
                "repository": {"full_name": REPO},
                "sender": {"login": "alice"},
            }
            body = json.dumps(payload).encode()
            headers = {
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(SECRET.encode(), body),
                "Content-Type": "application/json",
            }
            _, ms = timed(lambda h=headers, b=body: receive(deps, h, b))
            timings.append(ms)
        drop_store(deps.store)
        return timings


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print("Requests to GitHub per poll (state: SQLite; GitHub, Slack: loopback)")
        print(
            f"{'issues':>7} | {'idle: req/poll':>14} {'status':>6} {'rate used':>9} "
            f"{'ms':>6} | {'1 changed: req':>14} {'seen':>4} {'ms':>6} {'then 304':>8} | "
            f"{'naive req':>9}"
        )
        for n in (500, 5000, 20000):
            r = per_repo_size(tmp, n)
            statuses = ",".join(map(str, r["idle_statuses"]))
            print(
                f"{r['n']:>7} | {r['idle_requests']:>14.1f} {statuses:>6} "
                f"{r['idle_rate_used']:>9} {r['idle_ms']:>6.1f} | {r['changed_requests']:>14} "
                f"{r['changed_seen']:>4} {r['changed_ms']:>6.1f} {r['settled_304']!s:>8} | "
                f"{r['naive_all']:>9}"
            )
        print(
            "targets: idle = 1 request answered 304 (rate used 0); one change = constant "
            "requests whatever the repo size.\n"
            "naive = pages a poller without since/ETag needs per poll to see label removals "
            "(every issue, 100 per page)."
        )
        print("\nWebhook delivery -> verified, recorded, Slack message posted:")
        for postgres in (False, True):
            if postgres and not postgres_available():
                print(f"  PostgreSQL: not reachable at {POSTGRES_URL}, skipped")
                continue
            timings = webhook_latency(tmp, postgres=postgres)
            q = statistics.quantiles(timings, n=20)
            print(
                f"  {'PostgreSQL' if postgres else 'SQLite    '}: "
                f"p50 {statistics.median(timings):.1f} ms, p95 {q[18]:.1f} ms "
                f"({len(timings)} deliveries)"
            )


if __name__ == "__main__":
    main()
