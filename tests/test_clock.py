"""FakeClock: virtual time that is deterministic under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import pytest

from composer.clock import FakeClock, RealClock


def test_sequential_sleep_advances_immediately() -> None:
    clock = FakeClock(start=100.0)
    clock.sleep(5)
    clock.sleep(0.5)
    assert clock.now() == 105.5


def test_zero_and_negative_sleep_do_not_move_time() -> None:
    clock = FakeClock()
    clock.sleep(0)
    clock.sleep(-3)
    assert clock.now() == 0.0


def test_advance_by_hand_and_backwards_is_an_error() -> None:
    clock = FakeClock()
    clock.advance(2.5)
    assert clock.now() == 2.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_end_task_without_begin_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        FakeClock().end_task()


def test_time_waits_for_every_task_in_flight() -> None:
    """A sleeper does not move time while another task is still awake."""
    clock = FakeClock()
    clock.begin_task()
    clock.begin_task()
    woke_at: list[float] = []

    def sleeper() -> None:
        clock.sleep(10)
        woke_at.append(clock.now())
        clock.end_task()

    thread = threading.Thread(target=sleeper)
    thread.start()
    # The other task is still "awake": the sleeper must stay parked.
    thread.join(timeout=0.2)
    assert thread.is_alive()
    assert clock.now() == 0.0
    assert clock.sleepers == 1
    clock.end_task()  # the awake task finishes: now only sleepers remain
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert woke_at == [10.0]
    assert clock.tasks == 0


def test_concurrent_sleepers_wake_in_deadline_order() -> None:
    clock = FakeClock()
    events: list[tuple[str, float]] = []
    lock = threading.Lock()

    def worker(name: str, delays: list[float]) -> None:
        for delay in delays:
            clock.sleep(delay)
            with lock:
                events.append((name, clock.now()))
        clock.end_task()

    plan = {"a": [3.0, 3.0], "b": [5.0], "c": [1.0, 1.0, 1.0, 4.0]}
    for _ in plan:
        clock.begin_task()
    threads = [threading.Thread(target=worker, args=(n, d)) for n, d in plan.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert all(not t.is_alive() for t in threads)
    assert sorted(events, key=lambda e: (e[1], e[0])) == [
        ("c", 1.0),
        ("c", 2.0),
        ("a", 3.0),
        ("c", 3.0),
        ("b", 5.0),
        ("a", 6.0),
        ("c", 7.0),
    ]
    assert clock.now() == 7.0


def test_executor_pattern_successor_starts_when_predecessor_ends() -> None:
    """The documented coordinator pattern: no time jump between a step and its successor.

    ``slow`` sleeps 10 s; ``quick`` ends at once and enables ``next``, which
    must start at t=0 (not after ``slow``'s sleep) and then sleep 2 s.
    """
    clock = FakeClock()
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    durations = {"slow": 10.0, "quick": 0.0, "next": 2.0}
    successors = {"quick": ["next"]}

    def run(step: str) -> str:
        started[step] = clock.now()
        clock.sleep(durations[step])
        finished[step] = clock.now()
        return step

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: set[Future[str]] = set()
        first_batch = ("slow", "quick")
        for _ in first_batch:
            clock.begin_task()
        for step in first_batch:
            futures.add(pool.submit(run, step))
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                for nxt in successors.get(fut.result(), []):
                    clock.begin_task()
                    futures.add(pool.submit(run, nxt))
                clock.end_task()
    assert started == {"slow": 0.0, "quick": 0.0, "next": 0.0}
    assert finished == {"slow": 10.0, "quick": 0.0, "next": 2.0}
    assert clock.now() == 10.0


def test_real_clock_moves_forward() -> None:
    clock = RealClock()
    before = clock.now()
    clock.begin_task()
    clock.sleep(0.01)
    clock.end_task()
    assert clock.now() >= before + 0.01
