"""One thread that runs callbacks at given times (restart delays, healthcheck probes).

A heap of deadlines on the monotonic clock and a condition variable: no
thread per pending timer, so many containers waiting to restart or to be
probed cost one sleeping thread. Callbacks run on the timer thread and
must hand long work (a probe that may take its whole timeout) to a thread
of their own.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    deadline: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + max(delay, 0.0), next(self._seq), callback)
        with self._cond:
            heapq.heappush(self._heap, timer)
            self._cond.notify()
        return timer

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    while self._heap and self._heap[0].cancelled:
                        heapq.heappop(self._heap)
                    if self._heap and self._heap[0].deadline <= time.monotonic():
                        break
                    wait = self._heap[0].deadline - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                timer = heapq.heappop(self._heap)
            try:
                timer.callback()
            except Exception as exc:  # a failing callback must not stop the others
                self._on_error(exc)
