"""Acks first: work after the ack waits while this process acks a burst, but never long."""

from __future__ import annotations

import threading
import time

from bot.ack_first import AckFirst


def _waiting(acks: AckFirst, timeout: float = 10) -> tuple[threading.Thread, threading.Event]:
    started = threading.Event()

    def work() -> None:
        acks.wait_turn(timeout)
        started.set()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, started


def test_work_starts_once_every_ack_in_progress_is_done():
    acks = AckFirst()
    first, second = acks.acking(), acks.acking()
    first.__enter__()
    second.__enter__()
    thread, started = _waiting(acks)
    assert not started.wait(timeout=0.2)
    first.__exit__(None, None, None)
    assert not started.wait(timeout=0.2)  # one ack still in progress
    second.__exit__(None, None, None)
    assert started.wait(timeout=5)
    thread.join()


def test_work_is_not_held_back_longer_than_its_limit_by_a_steady_stream():
    acks = AckFirst()
    with acks.acking():
        thread, started = _waiting(acks, timeout=0.1)
        assert started.wait(timeout=5)  # while the ack is still in progress
    thread.join()


def test_an_ack_that_fails_still_ends():
    acks = AckFirst()
    try:
        with acks.acking():
            raise ValueError("listener bug")
    except ValueError:
        pass
    thread, started = _waiting(acks)
    assert started.wait(timeout=5)
    thread.join()


def test_with_no_burst_work_starts_at_once():
    thread, started = _waiting(AckFirst(), timeout=30)
    assert started.wait(timeout=5)
    thread.join()


def test_every_waiting_worker_starts_when_the_acks_end():
    # One waiter is woken when the acks end; once the quiet time has passed it lets every
    # other go too, long before their own limits.
    acks = AckFirst()
    with acks.acking():
        waiting = [_waiting(acks, timeout=60) for _ in range(10)]
        assert not any(started.wait(timeout=0.05) for _, started in waiting)
    assert all(started.wait(timeout=10) for _, started in waiting)
    for thread, _ in waiting:
        thread.join()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_waiter_leaving_at_its_limit_before_the_quiet_time_lets_the_others_go():
    # The waiter woken when the acks end may reach its own limit before the quiet time;
    # the others must not then sleep until theirs.
    clock = Clock()
    acks = AckFirst(clock=clock)
    with acks.acking():
        soon, soon_started = _waiting(acks, timeout=1.0)
        time.sleep(0.1)
        late, late_started = _waiting(acks, timeout=1000)
        time.sleep(0.1)  # both waiting, the first one first
        clock.now = 0.995
        with acks.acking():  # a last request: the quiet time is now 1.015
            pass
    # The acks ended: the first waiter is woken to look.
    clock.now = 1.005  # past the first waiter's limit, before the quiet time
    assert soon_started.wait(timeout=10)
    clock.now = 1.1  # quiet
    assert late_started.wait(timeout=10)
    soon.join()
    late.join()
