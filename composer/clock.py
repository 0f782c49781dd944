"""Time as a parameter: the ``Clock`` protocol, the real clock and a fake one.

Anything that waits (the executor polling health, ``up --wait`` timeouts,
watch debouncing, the fake backend's scripted containers) takes a ``Clock``
instead of calling ``time`` directly, so tests run in virtual time: a
healthcheck that takes 30 seconds passes in microseconds, and the timings a
test asserts are exact rather than approximate.

Concurrency and ``FakeClock``
-----------------------------
A fake clock must not advance while some thread still has work to do at the
current instant, or a concurrent executor would see time jump under it. So
``FakeClock`` counts *tasks in flight*:

* ``begin_task()`` announces one more unit of work (an executor step);
  ``end_task()`` retires it. Both are no-ops on ``RealClock``.
* ``sleep(s)`` parks the calling thread until virtual time reaches
  ``now + s``. Time moves forward only when every task in flight is parked
  in ``sleep``; it then jumps straight to the earliest deadline and wakes
  every sleeper due at that instant.
* With no task in flight (plain sequential code), ``sleep`` simply advances
  time by ``s`` and returns.

Usage in an executor with a thread pool (the coordinator never sleeps; it
waits on futures)::

    for step in first_batch:      # announce the whole batch BEFORE
        clock.begin_task()        # submitting any of it, or the first
    for step in first_batch:      # step could sleep and move time
        futures.add(pool.submit(run_step, step))   # before the others start
    ...
    done, _ = wait(futures, return_when=FIRST_COMPLETED)
    for fut in done:
        ...                       # record the result
        for nxt in newly_ready:   # begin successors first ...
            clock.begin_task()
            futures.add(pool.submit(run_step, nxt))
        clock.end_task()          # ... then retire the finished step

A finished step stays "in flight" until the coordinator has handled it, so
time cannot advance between a step finishing and its successors starting:
a successor starts at the same virtual instant as its predecessor ended.
Step bodies call ``clock.sleep`` as they would with a real clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Wall time in seconds plus the ability to wait; see the module notes."""

    def now(self) -> float:
        """Seconds since the epoch (virtual on a fake clock)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    def begin_task(self) -> None:
        """One more unit of concurrent work is in flight (see module notes)."""
        ...

    def end_task(self) -> None:
        """A unit of work announced with ``begin_task`` is finished."""
        ...


class RealClock:
    """The system clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def begin_task(self) -> None:
        """Nothing to track in real time."""

    def end_task(self) -> None:
        """Nothing to track in real time."""


@dataclass(eq=False)
class _Sleeper:
    deadline: float
    woken: bool = False


class FakeClock:
    """Virtual time that advances only when every task in flight sleeps.

    Thread-safe. ``advance`` moves time by hand (and wakes sleepers due by
    then); ``tasks`` and ``sleepers`` expose the counters for tests.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._tasks = 0
        self._sleepers: list[_Sleeper] = []
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            return self._now

    @property
    def tasks(self) -> int:
        with self._cond:
            return self._tasks

    @property
    def sleepers(self) -> int:
        with self._cond:
            return len(self._sleepers)

    def begin_task(self) -> None:
        with self._cond:
            self._tasks += 1

    def end_task(self) -> None:
        with self._cond:
            if self._tasks == 0:
                raise RuntimeError("end_task() without a matching begin_task()")
            self._tasks -= 1
            self._maybe_advance()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            sleeper = _Sleeper(self._now + max(seconds, 0.0))
            self._sleepers.append(sleeper)
            self._maybe_advance()
            while not sleeper.woken:
                self._cond.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking every sleeper due by then."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        with self._cond:
            self._now += seconds
            self._wake_due()

    def _maybe_advance(self) -> None:
        """Jump to the earliest deadline once no task in flight is awake.

        Called with the lock held. Sleepers due now are woken first, so a
        zero-length sleep returns without moving time.
        """
        self._wake_due()
        while self._sleepers and len(self._sleepers) >= self._tasks:
            self._now = max(self._now, min(s.deadline for s in self._sleepers))
            self._wake_due()

    def _wake_due(self) -> None:
        due = [s for s in self._sleepers if s.deadline <= self._now]
        if not due:
            return
        for sleeper in due:
            sleeper.woken = True
        self._sleepers = [s for s in self._sleepers if not s.woken]
        self._cond.notify_all()
