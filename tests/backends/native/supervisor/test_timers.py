"""The timer thread: callbacks in deadline order, cancellation, errors kept apart."""

from __future__ import annotations

import threading

from composer.backends.native.supervisor.timers import Timers


def test_callbacks_run_in_deadline_order_and_cancelled_ones_never() -> None:
    errors: list[BaseException] = []
    timers = Timers(on_error=errors.append)
    got: list[str] = []
    done = threading.Event()
    timers.call_later(0.15, lambda: (got.append("late"), done.set()))
    timers.call_later(0.05, lambda: got.append("early"))
    timers.call_later(0.0, lambda: 1 / 0)
    timers.call_later(0.1, lambda: got.append("cancelled")).cancel()
    assert done.wait(10)
    timers.close()
    assert got == ["early", "late"]
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)
