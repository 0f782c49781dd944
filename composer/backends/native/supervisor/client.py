"""``SupervisorClient``: the backend's handle on a project's supervisor.

Each call opens its own connection (a unix connect costs tens of
microseconds), so the backend may call from several threads at once and a
blocking ``wait`` or ``attach`` never holds up a ``stop``. The supervisor is
started on demand: a call that finds no socket, or a supervisor that was
just leaving, starts one (``ensure_running``) and tries again once.
Failures come back as the ``composer.errors`` class the supervisor raised.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.protocol import Channel, connect_unix, raise_error
from composer.errors import Unavailable

START_TIMEOUT = 30.0


class SupervisorClient:
    """Calls to the supervisor of ``project`` under ``root``.

    ``launcher`` (``FILE:FACTORY``) is passed to a supervisor this client
    starts; only the supervisor's own tests set it.
    """

    def __init__(
        self,
        root: StateRoot | Path | str,
        project: str,
        *,
        python: str | None = None,
        launcher: str | None = None,
    ) -> None:
        self.root = root if isinstance(root, StateRoot) else StateRoot(Path(root))
        self.project = project
        self.python = python or sys.executable
        self.launcher = launcher
        self.home = self.root.project(project)
        self.sock_path = self.home / "supervisor.sock"
        self._start_lock = threading.RLock()  # held while this client starts a supervisor
        self._prestart: threading.Thread | None = None

    # --- the supervisor process ------------------------------------------------------

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            connect_unix(sock, str(self.sock_path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except OSError as exc:
            sock.close()
            raise Unavailable(
                f"cannot reach the supervisor of project {self.project}: {exc}"
            ) from exc
        return sock

    def running(self) -> bool:
        """Whether a supervisor answers on the project's socket (none is started)."""
        sock = self._connect()
        if sock is None:
            return False
        sock.close()
        return True

    def prestart(self) -> None:
        """Start the supervisor in the background, so that a first ``start`` finds it ready.

        For a caller that knows a start is coming (the backend, once it has written a
        container record): the interpreter start-up and imports of the supervisor then
        overlap with the caller's own work. Errors are not reported here; the call that
        needs the supervisor starts it again and reports them. A supervisor nobody calls
        leaves by itself (``server.FIRST_CLIENT``).
        """
        if self._prestart is not None:
            return

        def run() -> None:
            with contextlib.suppress(Exception):  # the start that needs it reports it
                self.ensure_running()

        self._prestart = threading.Thread(target=run, name=f"supervisor-{self.project}")
        self._prestart.daemon = True
        self._prestart.start()

    def ensure_running(self) -> None:
        """Start the project's supervisor unless one answers; return once it listens.

        One start at a time per client: the executor's concurrent first ``start`` calls
        wait for the same supervisor instead of each forking one that then finds the
        project taken.
        """
        if self.running():
            return
        with self._start_lock:
            if not self.running():
                self._spawn()

    def _spawn(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            self.python,
            "-m",
            "composer.backends.native.supervisor",
            "--root",
            str(self.root.path),
            "--project",
            self.project,
        ]
        if self.launcher:
            argv += ["--launcher", self.launcher]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=START_TIMEOUT,
                check=False,
                env=_env(),
                cwd="/",  # a daemon must not keep the caller's directory busy
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(
                f"cannot start the supervisor of project {self.project}: {exc}",
                f"see {self.home / 'supervisor.log'}",
            ) from exc
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise Unavailable(
                f"the supervisor of project {self.project} did not start: "
                + (reason[-1] if reason else f"exit status {done.returncode}"),
                f"see {self.home / 'supervisor.log'}",
            )

    # --- calls -----------------------------------------------------------------------

    def call(self, op: str, fds: Sequence[int] = (), **args: Any) -> Any:
        """One request; the reply's result, or the error it names raised."""
        message = {"op": op, **args}
        for attempt in range(2):
            sock = self._connect()
            if sock is None:
                self.ensure_running()
                sock = self._connect()
                if sock is None:
                    raise Unavailable(f"the supervisor of project {self.project} does not answer")
            channel = Channel(sock)
            try:
                channel.send(message, fds=list(fds))
                got = channel.recv()
            except (ConnectionResetError, BrokenPipeError):
                got = None
            finally:
                channel.close()
            if got is None:
                if attempt == 0:
                    continue  # it was leaving as we came: start a successor and ask again
                raise Unavailable(f"the supervisor of project {self.project} went away")
            reply, extra = got
            for fd in extra:
                os.close(fd)
            if not reply.get("ok"):
                raise_error(reply.get("error") or {})
            return reply.get("result")
        raise AssertionError("unreachable")

    def ping(self) -> int:
        """The supervisor's PID."""
        return int(self.call("ping")["pid"])

    def start(self, container_id: str) -> None:
        self.call("start", id=container_id)

    def stop(
        self, container_id: str, timeout: float | None = None, signal: str | None = None
    ) -> None:
        """Stop signal (``signal``, else the container's), ``timeout`` seconds (``None``: the
        container's own), then SIGKILL; returns once the process has ended."""
        self.call("stop", id=container_id, timeout=timeout, signal=signal)

    def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        self.call("kill", id=container_id, signal=signal)

    def pause(self, container_id: str) -> None:
        self.call("pause", id=container_id)

    def unpause(self, container_id: str) -> None:
        self.call("unpause", id=container_id)

    def wait(self, container_id: str, timeout: float | None = None) -> int:
        """The exit code once the container is not running (``Unavailable`` after ``timeout``)."""
        return int(self.call("wait", id=container_id, timeout=timeout))

    def status(self, container_id: str) -> dict[str, Any]:
        """``state.json`` as the supervisor holds it, plus ``restart_pending``."""
        result: dict[str, Any] = self.call("status", id=container_id)
        return result

    def attach(
        self,
        container_id: str,
        *,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> int:
        """Copy the container's output into ``stdout``/``stderr`` (and ``stdin`` into it), start
        it unless it runs, and return its exit code when it ends.

        The fds are passed to the supervisor, which writes into them directly; with a TTY
        everything arrives on ``stdout``. ``stdin`` reaches a container created with
        ``stdin_open``; its end of file closes a one-off container's stdin.
        """
        fds = [fd for fd in (stdin, stdout, stderr) if fd is not None]
        if stdout is None and stderr is not None:
            raise ValueError("attach needs stdout when stderr is given")
        return int(self.call("attach", fds=fds, id=container_id, stdin=stdin is not None))

    def forget(self, container_id: str, *, force: bool = False) -> None:
        """The container is being removed: stop tracking it (kill it first with ``force``).

        Does nothing when no supervisor runs (nothing tracks the container then).
        """
        if self.running():
            self.call("forget", id=container_id, force=force)

    def shutdown(self) -> None:
        """Ask the supervisor to leave now; running containers are re-adopted by the next one.

        A supervisor this client is still starting (``prestart``) is waited for and told too.
        """
        if self._prestart is not None:
            self._prestart.join(START_TIMEOUT)
        with self._start_lock, contextlib.suppress(Unavailable):
            if self.running():
                self.call("shutdown")


def _env() -> dict[str, str]:
    """The environment for the supervisor: this one, with composer importable.

    ``MALLOC_ARENA_MAX=2`` (unless set): glibc would give each of the supervisor's
    threads an arena of its own, about 2 MB of RSS with 20 containers for nothing,
    as the threads take turns on the GIL anyway.
    """
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    package_root = str(Path(__file__).resolve().parents[4])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
    return env
