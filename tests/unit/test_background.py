"""Background work: waited for on the way out, abandoned (never dropped) past the wait."""

import threading

from glance_lite import background


def test_drain_waits_for_work_that_ends_in_time():
    done, abandoned = threading.Event(), []
    release = threading.Timer(0.05, done.set)
    release.start()
    background.start("quick", done.wait, lambda: abandoned.append("quick"))
    background.drain(5)
    assert done.is_set() and abandoned == []
    assert background.running() == 0


def test_work_still_running_after_the_wait_is_abandoned_and_logged(caplog):
    release, abandoned = threading.Event(), []
    background.start("stuck copy", release.wait, lambda: abandoned.append("stuck"))
    background.drain(0.05)
    assert abandoned == ["stuck"]
    assert "stuck copy: still running as the process exits; abandoned" in caplog.text
    release.set()


def test_an_error_of_the_work_is_logged_and_forgotten(caplog):
    def fail():
        raise RuntimeError("boom")

    background.start("failing", fail, lambda: None)
    background.drain(5)
    assert "failing failed" in caplog.text and "boom" in caplog.text
    assert background.running() == 0
