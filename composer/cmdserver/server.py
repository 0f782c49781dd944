"""The server: warm up, then accept one connection per command and fork.

One server per context (``composer.cmdserver.identity``), guarded by a lock
file that it holds for its whole life (a second one started at the same time
gives up). It binds its socket only once warm, so that a command arriving
earlier runs in its own process instead of waiting. The loop is
single-threaded, which keeps ``fork`` safe; SIGCHLD wakes it through a pipe.

A request is refused (the client then runs the command itself) when the
caller's context differs from the server's, or when the code on disk changed
since the server started; in the latter case the server also leaves, so that
the next command starts a fresh one. It leaves as well after ``idle``
seconds without a command and without a running child, and on SIGTERM.
Children outlive the server: each holds its own connection to its client.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import select
import signal
import socket
import struct
import time
from typing import Any

from composer.cmdserver import identity, protocol, warm

DEFAULT_IDLE = 600.0
_LOCK_WAIT = 5.0
_PEERCRED = struct.Struct("3i")


def _take_lock(path: str) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


class Server:
    """One listening socket, the children it forked, and when to stop."""

    def __init__(self, directory: str, name: str, idle: float) -> None:
        self.socket_path = os.path.join(directory, name + ".sock")
        self.lock_path = os.path.join(directory, name + ".lock")
        self.idle = idle
        self.context = identity.context(os.environ)
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.commands: dict[str | None, Any] = {}
        self.stamp: tuple[tuple[str, int, int], ...] = ()

    def serve(self) -> int:
        lock = _take_lock(self.lock_path)
        if lock is None:
            return 0  # another server holds this context
        self.commands = warm.warm()
        self.stamp = warm.code_stamp()
        gc.collect()
        gc.freeze()  # children leave the warm objects' pages shared
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, _ignore)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        bound = os.stat(self.socket_path).st_ino
        listener.listen(128)
        try:
            self._loop(listener, wake_read, [listener.fileno(), wake_read, wake_write, lock])
        finally:
            with contextlib.suppress(OSError):
                if os.stat(self.socket_path).st_ino == bound:
                    os.unlink(self.socket_path)
            listener.close()
        return 0

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _loop(self, listener: socket.socket, wake: int, inherited: list[int]) -> None:
        last = time.monotonic()
        while not self.stopping:
            timeout = None if self.children else max(0.0, self.idle - (time.monotonic() - last))
            if timeout == 0.0:
                return
            ready, _, _ = select.select([listener.fileno(), wake], [], [], timeout)
            if wake in ready:
                with contextlib.suppress(OSError):
                    os.read(wake, 4096)
                self._reap()
                last = time.monotonic()
            if listener.fileno() in ready:
                conn, _ = listener.accept()
                self._handle(conn, inherited)
                last = time.monotonic()

    def _handle(self, conn: socket.socket, inherited: list[int]) -> None:
        try:
            conn.settimeout(5.0)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            _pid, uid, _gid = _PEERCRED.unpack(creds)
            if uid != os.getuid():
                conn.close()
                return
            request, fds = protocol.receive_request(conn)
        except (OSError, ValueError, EOFError, TypeError):
            conn.close()
            return
        try:
            if request.context != self.context or not self._code_unchanged():
                conn.sendall(protocol.DECLINED)
                conn.close()
                return
            conn.sendall(protocol.ACCEPTED)
            pid = os.fork()
            if pid == 0:
                from composer.cmdserver.request import run_request

                others = [c.fileno() for c in self.children.values()]
                run_request(conn, request, fds, [*inherited, *others], self.commands)
            self.children[pid] = conn
        except OSError as error:
            _tell(fds, conn, f"composer: the command server could not start the command: {error}")
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _code_unchanged(self) -> bool:
        if warm.code_stamp() == self.stamp:
            return True
        self.stopping = True
        return False

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code < 0:  # killed by a signal: the child could not say so itself
                with contextlib.suppress(OSError):
                    conn.sendall(protocol.exit_message(128 - code))
            conn.close()


def _ignore(_signum: int, _frame: object) -> None:
    """SIGCHLD needs a handler for the wakeup pipe to see it."""


def _tell(fds: list[int], conn: socket.socket, message: str) -> None:
    with contextlib.suppress(OSError, IndexError):
        os.write(fds[2], (message + "\n").encode())
    with contextlib.suppress(OSError):
        conn.sendall(protocol.exit_message(1))
    conn.close()


def idle_seconds(environ: dict[str, str], default: float = DEFAULT_IDLE) -> float:
    try:
        return max(1.0, float(environ.get("COMPOSER_SERVER_IDLE", default)))
    except ValueError:
        return default
