"""signal_reaches on real processes in their own PID namespaces."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.signal_reach import parse_signal, signal_reaches
from composer.errors import BackendError


def test_parse_signal() -> None:
    assert parse_signal("SIGTERM") == signal.SIGTERM
    assert parse_signal("term") == signal.SIGTERM
    assert parse_signal("9") == 9
    assert parse_signal(2) == 2
    with pytest.raises(BackendError, match="invalid signal"):
        parse_signal("SIGNOPE")


def _init_pid(script: str) -> Iterator[int]:
    """The host pid of ``sh -c script`` running as PID 1 of a new PID namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a PID namespace")
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "/bin/busybox", "sh", "-c", script]
    )
    try:
        deadline = time.monotonic() + 10
        child = None
        while child is None and time.monotonic() < deadline:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            child = int(kids[0]) if kids else None
            time.sleep(0.02)
        assert child is not None
        time.sleep(0.2)  # let the shell install its traps
        yield child
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def plain_init() -> Iterator[int]:
    yield from _init_pid("exec sleep 60")


@pytest.fixture
def trapping_init() -> Iterator[int]:
    yield from _init_pid("trap 'exit 0' TERM; while true; do sleep 0.1; done")


def test_an_init_without_a_handler_never_gets_sigterm(plain_init: int) -> None:
    assert signal_reaches(plain_init, signal.SIGTERM) is False
    assert signal_reaches(plain_init, signal.SIGKILL) is True


def test_an_init_that_traps_the_signal_gets_it(trapping_init: int) -> None:
    assert signal_reaches(trapping_init, signal.SIGTERM) is True
    assert signal_reaches(trapping_init, signal.SIGUSR1) is False


def test_an_ordinary_process_gets_the_default_action() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert signal_reaches(proc.pid, signal.SIGTERM) is True
    finally:
        proc.kill()
        proc.wait()


def test_unknown_processes_are_unknown(tmp_path: Path) -> None:
    assert signal_reaches(999_999_999, signal.SIGTERM) is None


@pytest.fixture
def tini_init() -> Iterator[int]:
    if os.geteuid() != 0:
        pytest.skip("needs root for a PID namespace")
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "/usr/bin/tini-static", "-s", "--",
         "sleep", "60"]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        kids: list[str] = []
        while not kids and time.monotonic() < deadline:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            time.sleep(0.02)
        time.sleep(0.3)
        yield int(kids[0])
    finally:
        proc.kill()
        proc.wait()


def test_tini_waiting_in_sigtimedwait_gets_the_signal(tini_init: int) -> None:
    assert signal_reaches(tini_init, signal.SIGTERM) is True
