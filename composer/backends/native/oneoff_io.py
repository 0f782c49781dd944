"""The stdio, signals and exit code of a one-off the CLI process runs (``oneoff.py``).

``relay`` gives the container pipes (or a pseudo-terminal with ``tty``),
starts it, copies its output into the caller's streams and the caller's
stdin into it until either ends, forwards the signals the CLI receives to
its PID 1 (as ``docker run``'s signal proxy does; a second SIGINT or
SIGTERM kills it), follows the terminal's size with ``tty``, and returns the
exit code (``128 + signal`` when a signal ended it). The CLI process is a
child subreaper meanwhile, which the runtime needs to wait for PID 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import termios
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from composer.backends.native.runtime.spec import Launched, Stdio

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
"""What reaches PID 1 when the CLI gets it; SIGWINCH resizes the terminal instead."""
ENDING = (signal.SIGINT, signal.SIGTERM)


def relay(
    start: Callable[[Stdio], Launched],
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
    tty: bool,
) -> int:
    """Start the container with ``start(stdio)`` and relay until it ends; its exit code."""
    from composer.backends.native.exec_io import (
        _SUBREAPER,
        _feed,
        _feed_tty,
        _pump,
        exit_code,
        pipe_stdio,
    )
    from composer.backends.native.runtime.spec import Stdio

    ours: list[int] = []
    theirs: list[int] = []
    try:
        if tty:
            master, slave = os.openpty()
            ours.append(master)
            theirs.append(slave)
            _copy_size(stdin, stdout, master)
            stdio = Stdio(slave, slave, slave)
            targets = {master: stdout}
        else:
            stdio, out_r, err_r = pipe_stdio(stdin is not None, ours, theirs)
            targets = {out_r: stdout, err_r: stderr}
        with _SUBREAPER.held():
            launched = start(stdio)
            for fd in theirs:
                os.close(fd)
            theirs = []
            with _forwarding(launched.pid, stdin, stdout, ours[0] if tty else -1):
                if stdin is not None:
                    # The feeder owns its fd (closing it under a blocked writer could hit a
                    # reused number); it ends at the stdin's end or the container's.
                    fd = os.dup(ours[0]) if tty else ours.pop(0)
                    feed = _feed_tty if tty else _feed
                    threading.Thread(target=feed, args=(stdin, fd), daemon=True).start()
                _pump(targets)
                _, status = os.waitpid(launched.pid, 0)
        return exit_code(status)
    finally:
        for fd in (*ours, *theirs):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def _forwarding(
    pid: int, stdin: BinaryIO | None, stdout: BinaryIO | None, master: int
) -> Iterator[None]:
    """Signals to the CLI go to PID 1 while the block runs (only the main thread can
    handle signals: elsewhere, nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pidfd = os.pidfd_open(pid)
    ended = 0

    def forward(signo: int, _frame: object) -> None:
        nonlocal ended
        if signo in ENDING:
            ended += 1
            if ended > 1:
                signo = signal.SIGKILL
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signo)

    def resize(_signo: int, _frame: object) -> None:
        _copy_size(stdin, stdout, master)

    handled = [*FORWARDED, signal.SIGWINCH] if master >= 0 else list(FORWARDED)
    saved = {s: signal.getsignal(s) for s in handled}
    try:
        for s in FORWARDED:
            signal.signal(s, forward)
        if master >= 0:
            signal.signal(signal.SIGWINCH, resize)
        yield
    finally:
        for s, handler in saved.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(s, handler)
        os.close(pidfd)


def _copy_size(stdin: BinaryIO | None, stdout: BinaryIO | None, master: int) -> None:
    """The caller's terminal size onto the container's terminal (nothing without one)."""
    for stream in (stdout, stdin):
        try:
            fd = stream.fileno() if stream is not None else -1
            if fd < 0 or not os.isatty(fd):
                continue
            size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            return
        except (OSError, ValueError, AttributeError):
            continue
