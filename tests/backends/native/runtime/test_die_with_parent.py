"""``launch(die_with_parent=True)``: PID 1 ends with the process that launched it.

A helper process (forked from the test) launches ``sleep`` and is then
killed with SIGKILL, as a CLI running a one-off may be. With the option the
container's PID 1 dies with it, even after changing its user (which clears
the kernel's parent-death setting, so it must be armed afterwards); without
it, PID 1 lives on, as a supervisor's containers must.
"""

from __future__ import annotations

import os
import signal
import time

from composer.backends.native.runtime import syscalls
from composer.backends.native.runtime.launch import launch
from composer.backends.native.runtime.spec import LaunchSpec, Stdio
from tests.backends.native.runtime.conftest import Box


def _launch_in_helper(spec: LaunchSpec, die_with_parent: bool) -> tuple[int, int]:
    """Fork a helper that launches ``spec`` and waits; (helper pid, container pid)."""
    r, w = os.pipe()
    helper = os.fork()
    if helper == 0:  # pragma: no cover - runs in the forked helper
        code = 1
        try:
            os.close(r)
            syscalls.set_child_subreaper()
            null = os.open(os.devnull, os.O_RDWR)
            started = launch(spec, Stdio(null, null, null), die_with_parent=die_with_parent)
            os.write(w, str(started.pid).encode())
            os.close(w)
            time.sleep(300)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    assert data, "the helper could not launch the container"
    return helper, int(data)


def _dead(pid: int, limit: float = 10.0) -> bool:
    """Whether ``pid`` ended (gone, or a zombie: orphans come back to this subreaper)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == b"Z":
            return True
        time.sleep(0.02)
    return False


def _kill_helper(helper: int) -> None:
    os.kill(helper, signal.SIGKILL)
    os.waitpid(helper, 0)


def test_pid_one_dies_with_the_launcher_even_as_another_user(box: Box) -> None:
    spec = box.spec("sleep", "300", user="1000:1000")
    helper, pid = _launch_in_helper(spec, die_with_parent=True)
    box.pids.append(pid)
    assert not _dead(pid, limit=0.3)
    _kill_helper(helper)
    assert _dead(pid)


def test_without_the_option_pid_one_outlives_the_launcher(box: Box) -> None:
    spec = box.spec("sleep", "300")
    helper, pid = _launch_in_helper(spec, die_with_parent=False)
    box.pids.append(pid)
    _kill_helper(helper)
    assert not _dead(pid, limit=1.0)
