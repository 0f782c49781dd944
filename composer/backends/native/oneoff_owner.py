"""Who runs a one-off (``oneoff.py``): owner files, ending it from another command, sweeping.

``<root>/oneoffs/<id>.json`` names the CLI process running the one-off (its
pid and start time). Its ``flock`` serialises the CLI's removal with another
command ending the one-off (``end``: ``stop``, ``rm -f``, ``down``), which
leaves ``<id>.ended`` so that the CLI leaves the removal to that command.
An owner file whose CLI is gone (killed with SIGKILL) is found by ``sweep``
at the next ``observe``, which removes what the one-off left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.native import observe as _observe
from composer.backends.native.state import StateRoot, read_json
from composer.backends.native.supervisor.records import (
    ContainerRecord,
    pid_start_time,
    read_record,
    read_state,
    same_process,
)

if TYPE_CHECKING:
    from composer.backends.native.backend import NativeBackend

OWNERS = "oneoffs"
"""Directory of the state root holding one owner file per one-off a CLI runs."""
KILL_WAIT = 30.0
"""Seconds to wait for a one-off after SIGKILL, and for its CLI to record its end."""


def write_quick(path: Path, value: Any) -> None:
    """Atomic (temporary file, rename) without fsync: for files that do not outlive the call."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    os.replace(tmp, path)


def owner_path(root: StateRoot, container_id: str) -> Path:
    root.container(container_id)  # validates the id as a path component
    return root.path / OWNERS / f"{container_id}.json"


def own(root: StateRoot, record: ContainerRecord) -> None:
    """Record that this process runs the one-off (read by ``sweep`` when it died)."""
    path = owner_path(root, record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_quick(
        path,
        {
            "pid": os.getpid(),
            "start_time": pid_start_time(os.getpid()) or 0,
            "project": record.project,
        },
    )


def sweep(backend: NativeBackend) -> list[str]:
    """Remove the one-offs whose CLI died (SIGKILL) before it could; their ids.

    Each owner file is claimed by renaming it first, so two commands sweeping
    at once never remove the same container twice.
    """
    base = backend.root.path / OWNERS
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return []
    removed: list[str] = []
    for entry in entries:
        if not entry.name.endswith(".json"):
            continue
        container_id = entry.name[: -len(".json")]
        try:
            owner = read_json(Path(entry.path))
        except (FileNotFoundError, ValueError):
            continue
        if same_process(int(owner.get("pid") or 0), int(owner.get("start_time") or 0)):
            continue
        claimed = Path(entry.path).with_name(f"{entry.name}.sweep-{os.getpid()}")
        try:
            os.rename(entry.path, claimed)
        except FileNotFoundError:
            continue  # another command claimed it
        _sweep_one(backend, container_id, claimed)
        removed.append(container_id)
    return removed


def _sweep_one(backend: NativeBackend, container_id: str, claimed: Path) -> None:
    try:
        record = read_record(backend.root, container_id)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        claimed.unlink(missing_ok=True)
        return
    from composer.backends.native.oneoff import cgroup_of, remove

    state = _observe.snapshot(backend.root, record).state
    remove(backend, record, state.cgroup_path or cgroup_of(record))
    claimed.unlink(missing_ok=True)


# --- another command ending a one-off the CLI runs -----------------------------------


@contextlib.contextmanager
def owner_locked(root: StateRoot, container_id: str) -> Iterator[bool]:
    """The owner file's ``flock`` held for the block; whether the file still exists.

    Serialises the CLI's removal with another command ending the one-off (``end``);
    the lock goes with the file, so no lock file outlives the one-off.
    """
    try:
        fd = os.open(owner_path(root, container_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield os.fstat(fd).st_nlink > 0
    finally:
        os.close(fd)


def ended_path(root: StateRoot, container_id: str) -> Path:
    root.container(container_id)  # validates the id as a path component
    return root.path / OWNERS / f"{container_id}.ended"


def end(backend: NativeBackend, snap: _observe.Snapshot, timeout: float) -> bool:
    """``stop``/``rm -f``/``down`` of a one-off a live CLI runs: taken over, then ended.

    Marked as ended first (the CLI then leaves the removal to the caller, so
    that ``down``'s removal finds it), signalled with its stop signal, given
    ``timeout`` seconds (none when PID 1 would drop the signal), killed, and
    waited for until the CLI recorded how it ended. False (nothing done) when
    no live CLI runs it: the supervisor's way applies.
    """
    from composer.backends.signal_reach import parse_signal, signal_reaches

    record, root = snap.record, backend.root
    with owner_locked(root, record.id) as owned:
        if not owned or not run_by_cli(root, record.id):
            return False
        write_quick(ended_path(root, record.id), {"by": os.getpid()})
    pid, start = snap.state.pid, snap.state.pid_start_time
    try:
        pidfd = os.pidfd_open(pid) if same_process(pid, start) else -1
    except ProcessLookupError:
        pidfd = -1
    if pidfd >= 0:
        try:
            signo = parse_signal(record.stop_signal or "SIGTERM")
            grace = timeout if signal_reaches(pid, signo) is not False else 0
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signo)
            if not _wait_exit(pid, start, grace):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_exit(pid, start, KILL_WAIT)
        finally:
            os.close(pidfd)
    _wait_until(lambda: read_state(root, record.id).status != "running", KILL_WAIT)
    return True


def _wait_exit(pid: int, start: int, limit: float) -> bool:
    return _wait_until(lambda: not same_process(pid, start), limit)


def _wait_until(done: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    delay = 0.005
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def signal_one_off(backend: NativeBackend, snap: _observe.Snapshot, signo: int) -> bool:
    """``kill`` of a one-off a live CLI runs: the signal goes straight to its PID 1 (if that
    ends it, its CLI removes it as usual). False when no live CLI runs it."""
    if not run_by_cli(backend.root, snap.record.id):
        return False
    pid, start = snap.state.pid, snap.state.pid_start_time
    with contextlib.suppress(ProcessLookupError):
        pidfd = os.pidfd_open(pid)
        try:
            if same_process(pid, start):  # checked with the pidfd held: not a reused pid
                signal.pidfd_send_signal(pidfd, signo)
        finally:
            os.close(pidfd)
    return True


def release(root: StateRoot, container_id: str) -> None:
    """The one-off was removed by another command: its owner and ended files go too."""
    for path in (owner_path(root, container_id), ended_path(root, container_id)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def run_by_cli(root: StateRoot, container_id: str) -> bool:
    """Whether a live CLI process runs this one-off (no supervisor is to adopt it)."""
    try:
        owner = read_json(owner_path(root, container_id))
        return same_process(int(owner.get("pid") or 0), int(owner.get("start_time") or 0))
    except (OSError, ValueError, AttributeError):
        return False
