"""Acks first. Slack waits 3 s for an ack and then shows the user an error (or resends an
event); the answer a request starts has no such deadline. On one machine the two compete
for the same cores and interpreter lock, so under a burst the lookups started by the first
requests slowed the acks of the rest. Work after the ack (handlers/errors.run_after_ack)
therefore starts once this process is acking nothing and no request has come in for
QUIET_SECONDS (requests queued in the web server arrive one after another while a burst
is served), waiting at most MAX_WAIT_SECONDS, so a steady stream cannot starve it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

QUIET_SECONDS = 0.02
MAX_WAIT_SECONDS = 0.5


class AckFirst:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._acking = 0
        self._last_arrival = float("-inf")

    @contextmanager
    def acking(self) -> Iterator[None]:
        """Around one Slack request, from its arrival until its ack is ready to go back."""
        with self._changed:
            self._acking += 1
            self._last_arrival = self._clock()
        try:
            yield
        finally:
            with self._changed:
                self._acking -= 1
                if not self._acking:
                    # One waiter looks (it waits out the quiet time, then lets the rest
                    # go): waking every waiting worker whenever a burst's acks touch zero
                    # took the interpreter from the acks still to come.
                    self._changed.notify()

    def wait_turn(self, timeout: float = MAX_WAIT_SECONDS) -> None:
        """Until acks are quiet (see the module docstring), or `timeout` seconds."""
        deadline = self._clock() + timeout
        with self._changed:
            while True:
                now = self._clock()
                quiet_at = self._last_arrival + QUIET_SECONDS
                if not self._acking and now >= quiet_at:
                    self._changed.notify_all()
                    return
                if now >= deadline:
                    if not self._acking:
                        # The one woken to look leaves before the quiet time: pass it on,
                        # or the others sleep until their own limits.
                        self._changed.notify_all()
                    return
                # While acks are in progress, until the last one ends (it notifies);
                # after that, until the quiet time has passed.
                until = deadline if self._acking else min(deadline, quiet_at)
                self._changed.wait(until - now)
