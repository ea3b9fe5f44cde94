"""One-shot callbacks after a delay ("still working" notes), for the whole process.

A `threading.Timer` per lookup costs a thread for every lookup in flight, and starting it
blocks the caller until the new thread runs: on the ack path, under a burst, that is a wait
for the interpreter lock. An APScheduler job per lookup cost less but still woke the
scheduler's thread on every request. Here callbacks due in the same TICK share one
APScheduler job (a burst of 50 lookups adds one or two), so scheduling one is a list append
and a cancel is a flag; a note is at most TICK late, which nobody notices.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor as JobPool
from apscheduler.schedulers.background import BackgroundScheduler

logger = logging.getLogger(__name__)

TICK = 0.1  # seconds
EXECUTOR = "databot-timers"
# APScheduler logs every job it adds and runs at INFO: one line per tick is noise.
for name in (f"{__name__}.scheduler", f"apscheduler.executors.{EXECUTOR}"):
    logging.getLogger(name).setLevel(logging.WARNING)


class _Pool(JobPool):
    """APScheduler's thread pool, quiet when the interpreter is exiting: Python shuts the
    pool's threads down first, and a note falling due then no longer matters."""

    def _do_submit_job(self, job: Any, run_times: Any) -> None:
        try:
            super()._do_submit_job(job, run_times)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            self._run_job_success(job.id, [])


class Timer:
    """A callback not yet run; `cancel()` is safe at any time, also after it ran."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    def __init__(self, workers: int = 4) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, list[Timer]] = {}  # tick number -> its callbacks
        # The callbacks of one tick run side by side (each posts to Slack).
        self._run = ThreadPoolExecutor(workers, thread_name_prefix="databot-timer")
        self._scheduler = BackgroundScheduler(
            executors={EXECUTOR: _Pool(1)},
            # A late tick still runs (the scheduler thread may be busy in a burst).
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            logger=logging.getLogger(f"{__name__}.scheduler"),
            daemon=True,
        )
        self._scheduler.start()

    def after(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(callback)
        tick = math.ceil((time.time() + seconds) / TICK)
        with self._lock:
            waiting = self._due.get(tick)
            if waiting is not None:
                waiting.append(timer)
                return timer
            self._due[tick] = [timer]
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=dt.datetime.fromtimestamp(tick * TICK, dt.UTC),
            args=[tick],
            executor=EXECUTOR,
        )
        return timer

    def _fire(self, tick: int) -> None:
        with self._lock:
            timers = self._due.pop(tick, [])
        for timer in timers:
            if timer.cancelled:
                continue
            try:
                self._run.submit(self._call, timer)
            except RuntimeError:  # the interpreter is exiting
                return

    @staticmethod
    def _call(timer: Timer) -> None:
        if timer.cancelled:
            return
        try:
            timer.callback()
        except Exception:
            logger.exception("a timer's callback failed")


_shared: Timers | None = None
_shared_lock = threading.Lock()


def shared_timers() -> Timers:
    """The process's one Timers, started on first use (the lookup service starts it when
    it is built, so no request's ack pays for it)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Timers()
    return _shared
