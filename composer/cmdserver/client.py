"""The caller's side: hand the command to a warm server, or say it cannot.

``call`` returns the command's exit code when a server ran it, or None when
the caller must run it itself (no server, another context, changed code,
``COMPOSER_SERVER=0``). It never runs a command twice:
once a request is sent, the answer is waited for.

``start`` launches a server in the background for the next command, unless
one is running or starting (its lock is held).

Imports here are builtins and C modules only (``_socket``, ``_signal``):
this runs before every command, and the point is to import nothing.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; ``signal`` imports enum
import _socket
import contextlib
import os
import sys
from collections.abc import Mapping
from typing import Any

from composer.cmdserver import identity, protocol

_FORWARDED = (
    _signal.SIGINT,
    _signal.SIGTERM,
    _signal.SIGHUP,
    _signal.SIGQUIT,
    _signal.SIGUSR1,
    _signal.SIGUSR2,
    _signal.SIGWINCH,
)
_ANSWER_TIMEOUT = 30.0


def enabled(verb: str | None, environ: Mapping[str, str]) -> bool:
    """Whether this command may go through a server at all."""
    if environ.get("COMPOSER_SERVER", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return verb is not None


def _paths(environ: Mapping[str, str]) -> tuple[str, str, bytes] | None:
    directory = identity.socket_dir(environ)
    if directory is None:
        return None
    context = identity.context(environ)
    return directory, identity.server_name(context), context


def call(args: list[str], verb: str | None, environ: Mapping[str, str]) -> int | None:
    """Run ``args`` on a warm server; None when the caller must run them itself."""
    if not enabled(verb, environ):
        return None
    found = _paths(environ)
    if found is None:
        return None
    directory, name, context = found
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(os.path.join(directory, name + ".sock"))
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        sock.close()
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    request = protocol.Request(context, [sys.argv[0], *args], dict(environ), umask)
    try:
        protocol.send_request(sock, request, [0, 1, 2, cwd])
    except OSError:  # a closed standard stream, or the server went away
        sock.close()
        return None
    finally:
        os.close(cwd)
    sock.settimeout(_ANSWER_TIMEOUT)
    try:
        answer = sock.recv(1)
    except OSError:
        answer = b""
    if answer == protocol.DECLINED:
        sock.close()
        return None
    if answer != protocol.ACCEPTED:
        # The request may have reached a child: running it again here could
        # do it twice. Say so instead.
        os.write(2, b"composer: the command server did not answer; set COMPOSER_SERVER=0\n")
        return 1
    sock.settimeout(None)
    if environ.get("COMPOSER_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
        os.write(2, f"composer: served by the command server at {directory}\n".encode())
    with _TerminalKept():
        return _wait_for_exit(sock)


class _TerminalKept:
    """The terminal on stdin, if any, as it was: whatever the child did to it.

    A served ``run -t`` or ``exec -it`` puts the caller's terminal in raw
    mode (the child reads and sets it through the descriptor it was handed,
    which needs no controlling terminal) and restores it when it ends; a
    child that dies first cannot, so the client does.
    """

    def __init__(self) -> None:
        self.saved: Any = None

    def __enter__(self) -> None:
        if os.isatty(0):
            import termios

            try:
                self.saved = termios.tcgetattr(0)
            except termios.error:
                self.saved = None

    def __exit__(self, *_exc: object) -> None:
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except termios.error:
                return


def _wait_for_exit(sock: _socket.socket) -> int:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            sock.send(bytes([signum]))

    for signum in _FORWARDED:
        _signal.signal(signum, forward)
    received = b""
    while True:
        chunk = sock.recv(64)
        if not chunk:
            os.write(2, b"composer: the command server went away\n")
            return 1
        received += chunk
        at = received.find(protocol.EXITED)
        if at >= 0 and len(received) > at + 1:
            return received[at + 1]


def start(verb: str | None, environ: Mapping[str, str]) -> None:
    """Start a server for this context in the background, unless one runs."""
    if not enabled(verb, environ):
        return
    found = _paths(environ)
    if found is None:
        return
    directory, name, _context = found
    if not identity.private_dir(directory):
        return
    import fcntl

    try:
        lock = os.open(
            os.path.join(directory, name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # a server holds it: running or starting
    finally:
        os.close(lock)
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "composer.cmdserver", "serve", directory, name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=dict(environ),
            start_new_session=True,
        )
