"""The supervisor's socket: connections, dispatch of the verbs, and when to leave.

One thread per connection (a client blocked in ``wait`` or ``attach`` must
not hold up the others). The supervisor leaves when its project has no
running, paused or restarting container and no client is connected,
after ``LINGER`` seconds so that a CLI's consecutive calls find it still
there; at start it waits ``FIRST_CLIENT`` seconds for the client that
started it. Leaving removes the socket first, so a client that comes in
the meantime starts a successor, which waits for this process's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import Any

from composer.backends.native.supervisor.manager import ProjectManager
from composer.backends.native.supervisor.protocol import (
    Channel,
    ProtocolError,
    bind_unix,
    error_reply,
)

log = logging.getLogger(__name__)

LINGER = 0.5
FIRST_CLIENT = 10.0


class Server:
    def __init__(self, sock_path: Path) -> None:
        self.sock_path = sock_path
        self.manager: ProjectManager | None = None
        self._lock = threading.Lock()
        self._clients = 0
        self._served = False
        self._started = time.monotonic()
        self._exit_requested = False
        self._reapers = 0
        """Armed ``--reap-with-parent`` watches: the supervisor stays while there are any."""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)

    def bind(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        bind_unix(self.listener, str(self.sock_path))
        os.chmod(self.sock_path, 0o600)
        self.listener.listen(64)

    # --- leaving ---------------------------------------------------------------------

    def idle_check(self) -> None:
        """Wake the accept loop to consider leaving (called whenever something ended)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"i")

    def request_exit(self) -> None:
        self._exit_requested = True
        self.idle_check()

    def _reaping(self) -> bool:
        """A reaper is armed or removing the project: ``shutdown`` waits for idleness."""
        with self._lock:
            return self._reapers > 0

    def _idle(self) -> bool:
        assert self.manager is not None
        with self._lock:
            if self._clients or self._reapers:
                return False
            if not self._served and time.monotonic() - self._started < FIRST_CLIENT:
                return False
        return not self.manager.active()

    # --- serving ---------------------------------------------------------------------

    def serve(self) -> None:
        """Accept until asked to leave or idle; then stop listening and return."""
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        idle_since: float | None = None
        try:
            while not self._exit_requested:
                timeout = 1.0 if idle_since is None else LINGER
                for key, _ in sel.select(timeout):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                    else:
                        self._accept()
                if self._idle():
                    now = time.monotonic()
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= LINGER:
                        break
                else:
                    idle_since = None
        finally:
            # The socket goes first: new clients start a successor from now on.
            with contextlib.suppress(FileNotFoundError):
                self.sock_path.unlink()
            self.listener.close()
            sel.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            self._clients += 1
            self._served = True
        threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()

    def _serve_client(self, conn: socket.socket) -> None:
        channel = Channel(conn)
        try:
            while True:
                try:
                    got = channel.recv()
                except (ProtocolError, OSError) as exc:
                    log.warning("client: %s", exc)
                    return
                if got is None:
                    return
                message, fds = got
                reply = self._dispatch(message, fds)
                try:
                    channel.send(reply)
                except OSError:
                    return
                if message.get("op") == "shutdown" and not self._reaping():
                    # While a reaper is armed the supervisor leaves only when idle.
                    self.request_exit()
        finally:
            channel.close()
            with self._lock:
                self._clients -= 1
            self.idle_check()

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        op = message.get("op")
        try:
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise ProtocolError(f"unknown operation {op!r}")
            if op != "attach":
                for fd in fds:
                    os.close(fd)
            return {"ok": True, "result": handler(message, fds)}
        except Exception as exc:
            if not isinstance(exc, (ProtocolError, OSError)) and not hasattr(exc, "hint"):
                log.exception("%s failed", op)
            return error_reply(exc)

    # --- the verbs -------------------------------------------------------------------

    def _m(self) -> ProjectManager:
        assert self.manager is not None
        return self.manager

    def op_ping(self, msg: dict[str, Any], fds: list[int]) -> Any:
        return {"pid": os.getpid()}

    def op_start(self, msg: dict[str, Any], fds: list[int]) -> Any:
        self._m().start(str(msg["id"]))

    def op_stop(self, msg: dict[str, Any], fds: list[int]) -> Any:
        timeout = msg.get("timeout")
        self._m().stop(
            str(msg["id"]), None if timeout is None else float(timeout), msg.get("signal")
        )

    def op_kill(self, msg: dict[str, Any], fds: list[int]) -> Any:
        self._m().kill(str(msg["id"]), str(msg.get("signal") or "SIGKILL"))

    def op_pause(self, msg: dict[str, Any], fds: list[int]) -> Any:
        self._m().pause(str(msg["id"]))

    def op_unpause(self, msg: dict[str, Any], fds: list[int]) -> Any:
        self._m().unpause(str(msg["id"]))

    def op_wait(self, msg: dict[str, Any], fds: list[int]) -> Any:
        timeout = msg.get("timeout")
        return self._m().wait(str(msg["id"]), None if timeout is None else float(timeout))

    def op_status(self, msg: dict[str, Any], fds: list[int]) -> Any:
        return self._m().status(str(msg["id"]))

    def op_attach(self, msg: dict[str, Any], fds: list[int]) -> Any:
        return self._m().attach(str(msg["id"]), fds, stdin=bool(msg.get("stdin")))

    def op_forget(self, msg: dict[str, Any], fds: list[int]) -> Any:
        self._m().forget(str(msg["id"]), force=bool(msg.get("force")))

    def op_shutdown(self, msg: dict[str, Any], fds: list[int]) -> Any:
        return None

    def op_reap(self, msg: dict[str, Any], fds: list[int]) -> Any:
        """Remove the project, volumes included, when process ``parent`` dies."""
        parent = int(msg["parent"])
        started = msg.get("parent_start")
        logs_dir = msg.get("logs_dir")
        with self._lock:
            self._reapers += 1
        threading.Thread(
            target=self._reap,
            args=(parent, None if started is None else str(started), logs_dir),
            name="composer-reaper",
            daemon=True,
        ).start()

    def _reap(self, parent: int, started: str | None, logs_dir: str | None) -> None:
        from composer.backends.native.backend import NativeBackend
        from composer.reaper import StackWatch, purge, wait_for_death

        manager = self._m()
        try:
            backend = NativeBackend({"COMPOSER_ROOT": str(manager.root.path)})
            if wait_for_death(parent, started, StackWatch(backend, manager.project)):
                log.info("process %d ended: removing project %s", parent, manager.project)
                purge(backend, manager.project, logs_dir=logs_dir)
        except Exception:
            log.exception("reaping project %s", manager.project)
        finally:
            with self._lock:
                self._reapers -= 1
            self.idle_check()
