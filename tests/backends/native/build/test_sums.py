"""Context file digests remembered between builds: content decides, the stat only saves reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.backends.native.build import sums as S
from composer.backends.native.build.sums import RACY_NS, FileSums, file_digest


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _sums(tmp_path: Path, clock: Clock) -> FileSums:
    return FileSums(tmp_path / "cache" / "sums.json", clock_ns=clock)


def _quiet(clock: Clock, path: Path) -> None:
    """Move the clock past the racy window of ``path``'s last change."""
    clock.now = os.lstat(path).st_ctime_ns + RACY_NS


def test_an_unchanged_quiet_file_is_read_once(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "a.txt"
    f.write_text("hello\n")
    _quiet(clock, f)
    sums = _sums(tmp_path, clock)
    first = sums.digest(f, os.lstat(f))
    assert first == file_digest(f)
    assert sums.digest(f, os.lstat(f)) == first
    sums.save()
    again = _sums(tmp_path, clock)  # a later build: the digests come back from disk
    assert again.digest(f, os.lstat(f)) == first
    assert (sums.reads, again.reads) == (1, 0)


def test_a_file_read_within_the_racy_window_is_read_every_time(
    tmp_path: Path, clock: Clock
) -> None:
    f = tmp_path / "a.txt"
    f.write_text("hello\n")
    clock.now = os.lstat(f).st_ctime_ns + RACY_NS - 1
    sums = _sums(tmp_path, clock)
    sums.digest(f, os.lstat(f))
    sums.digest(f, os.lstat(f))
    assert sums.reads == 2


def test_same_size_same_mtime_new_content_is_read_again(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "a.txt"
    f.write_text("aaaa\n")
    old = os.lstat(f)
    _quiet(clock, f)
    sums = _sums(tmp_path, clock)
    before = sums.digest(f, os.lstat(f))
    f.write_text("bbbb\n")
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))  # size and mtime as before
    now = os.lstat(f)
    assert (now.st_size, now.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    after = sums.digest(f, now)
    assert after != before and after == file_digest(f)


def test_a_touched_file_is_read_again_and_hashes_the_same(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "a.txt"
    f.write_text("same\n")
    _quiet(clock, f)
    sums = _sums(tmp_path, clock)
    before = sums.digest(f, os.lstat(f))
    os.utime(f, (1, 1))
    _quiet(clock, f)
    assert sums.digest(f, os.lstat(f)) == before
    assert sums.reads == 2


def test_a_replaced_file_is_read_again(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "a.txt"
    f.write_text("one\n")
    _quiet(clock, f)
    sums = _sums(tmp_path, clock)
    sums.digest(f, os.lstat(f))
    new = tmp_path / "b.txt"
    new.write_text("two\n")
    os.replace(new, f)
    _quiet(clock, f)
    assert sums.digest(f, os.lstat(f)) == file_digest(f)
    assert sums.reads == 2


def test_a_broken_or_missing_store_only_costs_reads(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "a.txt"
    f.write_text("x\n")
    _quiet(clock, f)
    store = tmp_path / "cache" / "sums.json"
    store.parent.mkdir()
    store.write_text("{not json")
    sums = FileSums(store, clock_ns=clock)
    assert sums.digest(f, os.lstat(f)) == file_digest(f)
    sums.save()
    assert FileSums(store, clock_ns=clock).digest(f, os.lstat(f)) == file_digest(f)


def test_deleted_files_are_dropped_when_saving(tmp_path: Path, clock: Clock) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a\n")
    b.write_text("b\n")
    sums = _sums(tmp_path, clock)
    sums.digest(a, os.lstat(a))
    sums.digest(b, os.lstat(b))
    b.unlink()
    sums.save()
    assert list(S.read_json(tmp_path / "cache" / "sums.json")) == [str(a)]
