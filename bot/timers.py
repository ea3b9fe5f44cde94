"""One-shot callbacks after a delay ("still working" notes), for the whole process.

A `threading.Timer` per lookup costs a thread for every lookup in flight, and starting it
blocks the caller until the new thread runs: on the ack path, under a burst, that is a wait
for the interpreter lock. Here one APScheduler thread holds every pending callback, and
scheduling one only records it.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

EXECUTOR = "databot-timers"
# APScheduler logs every job it adds and runs at INFO: one line per lookup is noise.
for name in (f"{__name__}.scheduler", f"apscheduler.executors.{EXECUTOR}"):
    logging.getLogger(name).setLevel(logging.WARNING)


class _Pool(ThreadPoolExecutor):
    """APScheduler's thread pool, quiet when the interpreter is exiting: Python shuts the
    pool's threads down first, and a note falling due then no longer matters."""

    def _do_submit_job(self, job: Any, run_times: Any) -> None:
        try:
            super()._do_submit_job(job, run_times)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            self._run_job_success(job.id, [])


class Timer:
    """A callback not yet run; `cancel()` is safe at any time, also after it ran."""

    def __init__(self, scheduler: BackgroundScheduler, job_id: str) -> None:
        self._scheduler = scheduler
        self._job_id = job_id

    def cancel(self) -> None:
        try:
            self._scheduler.remove_job(self._job_id)
        except JobLookupError:
            pass  # ran already (or cancelled)


class Timers:
    def __init__(self, workers: int = 4) -> None:
        self._scheduler = BackgroundScheduler(
            executors={EXECUTOR: _Pool(workers)},
            # A late callback still runs (the scheduler thread may be busy in a burst).
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            logger=logging.getLogger(f"{__name__}.scheduler"),
            daemon=True,
        )
        self._scheduler.start()

    def after(self, seconds: float, callback: Callable[[], None]) -> Timer:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        job = self._scheduler.add_job(
            callback, "date", run_date=when, executor=EXECUTOR, replace_existing=False
        )
        return Timer(self._scheduler, job.id)


@functools.cache
def shared_timers() -> Timers:
    """The process's timers, started on first use."""
    return Timers()
