"""Quiet-period batching on a virtual clock, and which directories are watched."""

from __future__ import annotations

from pathlib import Path

from composer.clock import FakeClock
from composer.watch.watcher import Batcher, Change, watch_plan, watch_roots

A, B, C = Path("/p/a"), Path("/p/b"), Path("/p/c")


def test_nothing_pending() -> None:
    batcher = Batcher(FakeClock(100.0), quiet=0.05)
    assert batcher.due_in() is None
    assert batcher.take() is None


def test_a_batch_closes_after_the_quiet_period() -> None:
    # Binary fractions keep the virtual times exact.
    clock = FakeClock(128.0)
    batcher = Batcher(clock, quiet=0.0625)
    batcher.add([(A, True)])
    assert batcher.due_in() == 0.0625
    clock.advance(0.03125)
    batcher.add([(B, False)])  # a new change restarts the quiet period
    clock.advance(0.0546875)
    assert batcher.take() is None
    assert batcher.due_in() == 0.0078125
    clock.advance(0.0078125)
    assert batcher.take() == [Change(A, True), Change(B, False)]
    assert batcher.take() is None and batcher.due_in() is None


def test_an_editor_save_is_one_batch() -> None:
    """vim: write 4913, remove it, write the swap file, rename over the file."""
    clock = FakeClock(0.0)
    batcher = Batcher(clock, quiet=0.05)
    for path, created in [(A / "4913", True), (A / "4913", False), (A, False), (A, True)]:
        batcher.add([(path, created)])
        clock.advance(0.002)
    clock.advance(0.05)
    batch = batcher.take()
    assert batch == [Change(A / "4913", True), Change(A, True)]


def test_created_sticks_within_a_batch() -> None:
    clock = FakeClock(0.0)
    batcher = Batcher(clock, quiet=0.01)
    batcher.add([(C, True)])
    batcher.add([(C, False)])
    clock.advance(0.01)
    assert batcher.take() == [Change(C, True)]


def test_continuous_changes_are_cut_at_max_wait() -> None:
    clock = FakeClock(0.0)
    batcher = Batcher(clock, quiet=0.05, max_wait=0.2)
    for _ in range(10):
        batcher.add([(A, False)])
        clock.advance(0.03)
        if batcher.take() is not None:
            break
    assert clock.now() >= 0.2 - 1e-9
    assert clock.now() < 0.25


def test_watch_roots(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "compose.yaml").write_text("")
    roots = watch_roots(
        [
            tmp_path / "src",
            tmp_path / "src" / "pkg",
            tmp_path / "compose.yaml",
            tmp_path / "missing" / "deeper",
        ]
    )
    assert roots == [tmp_path]
    assert watch_roots([tmp_path / "src" / "pkg", tmp_path / "src"]) == [tmp_path / "src"]


def test_quiet_time_already_observed_by_the_notifier_counts() -> None:
    clock = FakeClock(64.0)
    batcher = Batcher(clock, quiet=0.0625)
    batcher.add([(A, False)], quiet_for=0.015625)
    assert batcher.due_in() == 0.046875
    clock.advance(0.046875)
    assert batcher.take() == [Change(A, False)]


def test_watch_plan(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "compose.yaml").write_text("")
    recursive, flat = watch_plan(
        [tmp_path / "src", tmp_path / "package.json"], [tmp_path / "compose.yaml"]
    )
    assert recursive == [tmp_path / "src"]
    assert flat == [tmp_path]  # not the whole project: node_modules is left alone
    recursive, flat = watch_plan([tmp_path / "src", tmp_path], [tmp_path / "compose.yaml"])
    assert recursive == [tmp_path] and flat == []
    recursive, _ = watch_plan([tmp_path / "later" / "x"])
    assert recursive == [tmp_path]  # a missing path: its creation must be seen


def test_the_first_changes_go_out_early_and_the_closing_batch_marks_them() -> None:
    clock = FakeClock(0.0)
    batcher = Batcher(clock, quiet=0.0625)
    assert batcher.take_early() is None
    batcher.add([(A, False)])
    assert batcher.take_early() == [Change(A, False)]
    assert batcher.take_early() is None  # once per batch
    clock.advance(0.03125)
    batcher.add([(B, True)])
    clock.advance(0.0625)
    # A was copied early and not touched again; B came later.
    assert batcher.take() == [Change(A, False, True), Change(B, True, False)]
    batcher.add([(A, False)])
    assert batcher.take_early() == [Change(A, False)]  # a new batch has its own early part


def test_a_file_changed_again_after_the_early_copy_is_copied_again() -> None:
    clock = FakeClock(0.0)
    batcher = Batcher(clock, quiet=0.0625)
    batcher.add([(A, True)])
    assert batcher.take_early() == [Change(A, True)]
    batcher.add([(A, False)])  # still being written when it was copied
    clock.advance(0.0625)
    assert batcher.take() == [Change(A, True, False)]
