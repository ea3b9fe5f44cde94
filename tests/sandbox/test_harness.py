"""The loopback harness itself: what tests and the demo rely on when they wait."""

import threading
import time

from sandbox.harness import BotHarness


def test_wait_idle_waits_for_work_a_listener_hands_off_after_its_ack(tmp_path):
    # Bolt runs a listener after the ack has gone back (process_before_response=False), so
    # the work it hands to deps.work may not exist yet when the HTTP response arrives.
    done = threading.Event()
    with BotHarness(data_dir=tmp_path) as bot:

        def slow_listener(ack):
            ack()
            time.sleep(0.3)
            bot.deps.work.submit(lambda: (time.sleep(0.2), done.set()))

        bot.app.command("/harness-test")(slow_listener)
        response, _ = bot.slash("/harness-test")
        assert response.status == 200
        assert not done.is_set()

        bot.wait_idle(timeout=5)

        assert done.is_set()


def test_wait_idle_gives_up_with_a_timeout_error(tmp_path):
    release = threading.Event()
    with BotHarness(data_dir=tmp_path) as bot:

        def stuck_listener(ack):
            ack()
            release.wait(5)

        bot.app.command("/harness-test")(stuck_listener)
        bot.slash("/harness-test")
        started = time.monotonic()
        try:
            bot.wait_idle(timeout=0.3)
        except TimeoutError:
            pass
        else:
            raise AssertionError("wait_idle returned while a listener was still running")
        finally:
            release.set()
        assert time.monotonic() - started < 2
