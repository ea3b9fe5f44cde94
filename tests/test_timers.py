"""The "still working" note's timer: once, late or never, and no thread per lookup."""

from __future__ import annotations

import threading
import time

from bot.metric.lookup import StillWorking
from bot.timers import shared_timers


def test_a_note_not_finished_in_time_is_sent_once():
    sent: list[str] = []
    fired = threading.Event()

    def note() -> None:
        sent.append("still working")
        fired.set()

    working = StillWorking(0.05, note)
    assert fired.wait(timeout=10)
    working.finish()  # the answer after the note: nothing more
    time.sleep(0.1)
    assert sent == ["still working"]


def test_a_finished_lookup_sends_no_note():
    sent: list[str] = []
    working = StillWorking(0.2, lambda: sent.append("still working"))
    working.finish()
    time.sleep(0.4)
    assert sent == []


def test_a_thousand_lookups_in_flight_hold_no_thread_each():
    shared_timers()  # the process's one scheduler, started
    before = threading.active_count()
    notes = [StillWorking(60, lambda: None) for _ in range(1000)]
    during = threading.active_count()
    for working in notes:
        working.finish()
    assert during - before <= 5  # the scheduler's own few, at most


def test_a_failing_note_is_logged_and_does_not_stop_the_others(caplog):
    fired = threading.Event()

    def broken() -> None:
        raise RuntimeError("Slack said no")

    StillWorking(0.01, broken)
    StillWorking(0.05, fired.set)
    assert fired.wait(timeout=10)
    deadline = time.monotonic() + 10  # callbacks due together run side by side
    while "could not post the still-working note" not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.01)


def test_the_first_lookups_of_a_burst_start_one_scheduler(monkeypatch):
    # The first /metric lookups of a process arrive together: they must share one
    # scheduler, not start one each (that once cost every ack of the burst).
    import bot.timers

    monkeypatch.setattr(bot.timers, "_shared", None)
    barrier = threading.Barrier(16)
    got: list[object] = []

    def first() -> None:
        barrier.wait()
        got.append(bot.timers.shared_timers())

    threads = [threading.Thread(target=first) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(got) == 16 and len({id(t) for t in got}) == 1
