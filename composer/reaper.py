"""``--reap-with-parent PID``: remove a stack when the process that owns it dies.

A CI job that is killed (a timeout, an OOM kill, a cancelled pipeline, a
``kill -9`` of pytest) never runs its ``down``; the stack lives on, holding
ports and disk. With ``--reap-with-parent PID`` composer guarantees the
removal of the whole project — containers, networks and volumes — once PID
has died, however it died.

Who does it depends on the backend (``composer.backends.optional``):

* a backend implementing ``ParentReaper`` does it itself — on the native
  backend that is the per-project supervisor, which already outlives the
  CLI and owns the containers (the hook is ``reap_with_parent``);
* otherwise (the Docker backend) ``arm`` starts this module as a small
  detached watchdog: ``python -m composer.reaper --parent PID --project
  NAME --backend docker``. It runs in its own session (a signal to the
  job's process group does not reach it), waits on a pidfd of PID (poll on
  ``pidfd_open``; ``os.kill(pid, 0)`` every half second where pidfds are
  missing), and then purges the project through the Backend protocol. It
  also leaves quietly when the project disappears without it (a normal
  ``down``). One watchdog per project and parent: a second ``arm`` finds
  the first one's lock taken and starts nothing.

The purge works from labels alone (``purge``), so it needs no compose file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import BackendError, Conflict, NotFound, PlanError

if TYPE_CHECKING:
    from composer.backends.base import Backend

PARENT_POLL = 0.5
"""Seconds between two looks at the parent when no pidfd is available."""
STACK_POLL = 5.0
"""Seconds between two looks at whether the project still exists."""
RETRY = 15.0
"""Seconds a purge keeps trying to remove a network or volume still in use."""


def start_time(pid: int) -> str | None:
    """Process start time (``/proc/PID/stat`` field 22): tells a reused PID apart."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data.rsplit(")", 1)[-1].split()[19]


def alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` is still the process that was meant."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is None:
        return True
    now = start_time(pid)
    return now is None or now == started


def lock_path(project: str) -> Path:
    """One lock per project; held by the watchdog for its whole life."""
    return Path(tempfile.gettempdir()) / f"composer-reaper-{project}.lock"


def arm(
    backend: Backend,
    backend_name: str,
    project: str,
    pid: int,
    environ: Mapping[str, str],
    *,
    logs_dir: str | None = None,
) -> int | None:
    """Make sure ``project`` is removed when ``pid`` dies; the watchdog's PID, if one was started.

    The backend's own ``reap_with_parent`` is used when it has one.
    """
    from composer.backends.optional import ParentReaper

    if pid <= 0 or not alive(pid, None):
        raise PlanError(f"--reap-with-parent: no process {pid}")
    if isinstance(backend, ParentReaper):
        backend.reap_with_parent(project, pid, logs_dir=logs_dir)
        return None
    command = [
        sys.executable,
        "-m",
        "composer.reaper",
        "--parent",
        str(pid),
        "--project",
        project,
        "--backend",
        backend_name,
    ]
    started = start_time(pid)
    if started is not None:
        command += ["--parent-start", started]
    if logs_dir is not None:
        command += ["--logs-dir", str(Path(logs_dir).resolve())]
    with open(os.devnull, "r+b") as null:
        child = subprocess.Popen(
            command,
            stdin=null,
            stdout=null,
            stderr=null,
            env=dict(environ),
            start_new_session=True,
            close_fds=True,
        )
    return child.pid


# --- the watchdog --------------------------------------------------------------


def wait_for_death(pid: int, started: str | None, still_wanted: Callable[[], bool]) -> bool:
    """Block until ``pid`` dies (True) or ``still_wanted`` says the stack is gone (False)."""
    fd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(pid)
    if fd is not None and not alive(pid, started):
        os.close(fd)
        return True
    try:
        next_look = time.monotonic() + STACK_POLL
        while True:
            if fd is not None:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                if poller.poll(STACK_POLL * 1000):
                    return True
            else:
                time.sleep(PARENT_POLL)
                if not alive(pid, started):
                    return True
            if time.monotonic() >= next_look:
                next_look = time.monotonic() + STACK_POLL
                if not still_wanted():
                    return False
    finally:
        if fd is not None:
            os.close(fd)


class StackWatch:
    """Whether the project still exists.

    The watch ends after two empty looks in a row, once containers have been
    seen: a watchdog armed before ``up`` (the pytest plugin arms it first,
    so that a kill during set-up is covered too) waits for them to appear.
    """

    def __init__(self, backend: Backend, project: str) -> None:
        self.backend = backend
        self.project = project
        self.seen = False
        self.empty = 0

    def __call__(self) -> bool:
        try:
            state = self.backend.observe(self.project)
        except BackendError:
            return True  # the engine is away for a moment: keep watching
        if state.containers:
            self.seen = True
            self.empty = 0
        elif self.seen:
            self.empty += 1
        return self.empty < 2


def purge(backend: Backend, project: str, *, logs_dir: str | None = None) -> None:
    """Remove every container, network and volume labelled with ``project``."""
    from composer.backends import labels as lbl

    if logs_dir is not None:
        with contextlib.suppress(BackendError, PlanError):
            from composer.logs_dir import save_logs

            save_logs(backend, project, logs_dir)
    state = backend.observe(project)

    def remove(cid: str) -> None:
        with contextlib.suppress(BackendError):
            backend.remove_container(cid, force=True, volumes=True)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(remove, [c.id for c in state.containers]))
    networks = [
        name
        for name, net in state.networks.items()
        if not net.external and net.labels.get(lbl.LABEL_PROJECT) == project
    ]
    volumes = [
        name
        for name, vol in state.volumes.items()
        if not vol.external and vol.labels.get(lbl.LABEL_PROJECT) == project
    ]
    _remove_all(networks, backend.remove_network)
    _remove_all(volumes, backend.remove_volume)


def _remove_all(names: list[str], remove: Callable[[str], None]) -> None:
    """Remove each; a resource still in use (an engine that lets go of a removed
    container's mounts a moment later) is tried again for up to ``RETRY`` seconds."""
    deadline = time.monotonic() + RETRY
    left = list(names)
    while left:
        failed: list[str] = []
        for name in left:
            try:
                remove(name)
            except NotFound:
                pass
            except Conflict:
                failed.append(name)
            except BackendError:
                pass
        if not failed or time.monotonic() >= deadline:
            return
        left = failed
        time.sleep(0.25)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m composer.reaper")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--parent-start", default=None)
    parser.add_argument("--project", required=True)
    parser.add_argument("--backend", default="docker")
    parser.add_argument("--logs-dir", default=None)
    return parser.parse_args(list(argv))


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """The watchdog: hold the project's lock, wait for the parent, purge."""
    import fcntl

    from composer.backends.factory import open_backend

    args = _parse(argv)
    lock = lock_path(args.project).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another watchdog already looks after this project
    backend = open_backend(args.backend, environ)
    try:
        if wait_for_death(args.parent, args.parent_start, StackWatch(backend, args.project)):
            purge(backend, args.project, logs_dir=args.logs_dir)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
        lock.close()
        with contextlib.suppress(OSError):
            lock_path(args.project).unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], dict(os.environ)))
