"""A server's child turning itself into the caller, then running the command.

The child is a fresh process for one command, so setting its standard
streams, working directory, umask and environment here is what the kernel
and the interpreter do at the start of any process, not a change of global
state under running code: after this, ``composer.cli`` runs exactly as in
a process the caller had started (``isatty``, terminal size, ``-f -`` on
stdin, relative paths and the environment of the programs it starts all
behave as they would there).

Signals the caller receives arrive as bytes on the connection and are raised
here; the connection closing early means the caller died, which here, as for
a terminal that goes away, is SIGHUP.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from composer.cmdserver import protocol

if TYPE_CHECKING:
    import socket

_BOOT_FAILED = 70
_INTERRUPTED = 130  # what a shell reports for a process ended by Ctrl-C


def _text_stream(fd: int, reading: bool, like: TextIO | None) -> TextIO:
    """A standard stream as the interpreter builds it: line-buffered on a terminal."""
    raw = io.FileIO(fd, "rb" if reading else "wb", closefd=False)
    buffered: io.BufferedReader | io.BufferedWriter = (
        io.BufferedReader(raw) if reading else io.BufferedWriter(raw)
    )
    return io.TextIOWrapper(
        buffered,
        encoding=getattr(like, "encoding", None),
        errors=getattr(like, "errors", None),
        line_buffering=fd == 2 or (not reading and os.isatty(fd)),
    )


def _become_caller(request: protocol.Request, fds: list[int]) -> None:
    stdin, stdout, stderr, cwd = fds
    for target, fd in enumerate((stdin, stdout, stderr)):
        os.dup2(fd, target)
    os.fchdir(cwd)
    for fd in fds:
        os.close(fd)
    os.umask(request.umask)
    os.environ.clear()
    os.environ.update(request.environ)
    sys.argv = list(request.argv)
    sys.stdin = _text_stream(0, True, sys.__stdin__)
    sys.stdout = _text_stream(1, False, sys.__stdout__)
    sys.stderr = _text_stream(2, False, sys.__stderr__)


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as the interpreter sets it


def _relay_signals(conn: socket.socket, finished: threading.Event) -> None:
    while True:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if not data:
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGHUP)
            return
        for signum in data:
            os.kill(os.getpid(), signum)


def run_request(
    conn: socket.socket,
    request: protocol.Request,
    fds: list[int],
    inherited: list[int],
    commands: dict[str | None, Any],
) -> NoReturn:
    """In the forked child: become the caller, run the command, report, leave."""
    finished = threading.Event()
    try:
        for fd in inherited:
            os.close(fd)
        _reset_signals()
        _become_caller(request, fds)
        conn.settimeout(None)
        threading.Thread(target=_relay_signals, args=(conn, finished), daemon=True).start()
    except KeyboardInterrupt:  # Ctrl-C before the command began
        os._exit(_INTERRUPTED)
    except BaseException as error:
        os.write(2, f"composer: could not take over the command: {error}\n".encode())
        os._exit(_BOOT_FAILED)
    from composer.cli import run_process

    try:
        code = run_process(list(request.argv[1:]), commands)
    except KeyboardInterrupt:  # before the command's own handling began
        code = _INTERRUPTED
    except BaseException:
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    finished.set()
    _leave(conn, code)


def _leave(conn: socket.socket, code: int) -> NoReturn:
    """Tell the client the exit code (the server only knows of deaths by signal)."""
    with contextlib.suppress(OSError):
        conn.sendall(protocol.exit_message(code))
    os._exit(code)
