"""Waiting for container processes to end: pidfds in one selector thread.

A pidfd (``pidfd_open``) becomes readable when its process ends, whether
or not it is our child, so the same code watches the containers this
supervisor started (their exit status is then read with
``waitid(P_PIDFD)``) and the ones it re-adopted from a predecessor (not
our children: their status cannot be known, ``EXIT_UNKNOWN``).

Being a child subreaper, the supervisor also inherits stray orphans; the
sweep reaps zombies that nobody watches. It peeks with ``WNOWAIT`` and
reaps a zombie only when it saw the same one, still unclaimed, on its
previous round a second earlier: the runtime reaps its own helper
processes within milliseconds, and a container's PID is claimed
(``own``) as soon as ``launch`` returns, so no status anyone waits for is
ever taken.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from collections.abc import Callable
from dataclasses import dataclass

from composer.backends.native.supervisor.records import EXIT_UNKNOWN

SWEEP_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    known: bool


def exit_code_of(result: os.waitid_result) -> int:
    """Docker's exit code: the status for a normal exit, 128+signal for a killed process."""
    if result.si_code == os.CLD_EXITED:
        return result.si_status
    return 128 + result.si_status


def reap(pidfd: int) -> Exit:
    """The exit of the process behind ``pidfd``: its status if it is our child, else unknown."""
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        return Exit(EXIT_UNKNOWN, False)
    if result is None:
        return Exit(EXIT_UNKNOWN, False)
    return Exit(exit_code_of(result), True)


class ExitWatcher:
    """Calls ``on_exit(Exit)`` once for each watched pidfd, after reaping it if it is ours.

    The pidfd is not closed here: whoever watches it closes it once no
    other thread can still signal through it.
    """

    def __init__(self) -> None:
        self._candidate = 0
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, Callable[[Exit], None]]] = []
        self._watched: dict[int, int] = {}  # pidfd -> pid
        self._owned: set[int] = set()  # pids whose status someone else waits for
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, pid: int, pidfd: int, on_exit: Callable[[Exit], None]) -> None:
        with self._lock:
            self._pending.append((pid, pidfd, on_exit))
        self._wake()

    def own(self, pid: int) -> None:
        """Keep the sweep off ``pid`` (a process some thread reaps itself)."""
        with self._lock:
            self._owned.add(pid)

    def disown(self, pid: int) -> None:
        with self._lock:
            self._owned.discard(pid)

    def close(self) -> None:
        self._closed = True
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                pending, self._pending = self._pending, []
                for pid, pidfd, cb in pending:
                    self._watched[pidfd] = pid
                    self._sel.register(pidfd, selectors.EVENT_READ, cb)
            events = self._sel.select(SWEEP_INTERVAL)
            for key, _ in events:
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                pidfd = int(key.fd)
                self._sel.unregister(pidfd)
                with self._lock:
                    self._watched.pop(pidfd, None)
                key.data(reap(pidfd))  # the pidfd stays open: its owner closes it
            self._sweep()
        self._sel.close()

    def _sweep(self) -> None:
        """Reap a zombie orphan that no one claimed for a whole round (see the module notes)."""
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            self._candidate = 0
            return
        with self._lock:
            busy = info.si_pid in self._watched.values() or info.si_pid in self._owned
        if busy:
            return  # its owner reaps it
        if info.si_pid != self._candidate:
            self._candidate = info.si_pid
            return
        self._candidate = 0
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, os.WNOHANG)
