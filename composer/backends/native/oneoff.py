"""``run --rm`` without ``-d``: the one-off container run by the CLI process itself.

The CLI waits for an attached one-off anyway, so it launches the container
with the runtime, relays its stdio, forwards signals and collects the exit
code, instead of asking the project's supervisor (a second interpreter and
a socket round trip) to do it. Everything the container took is given back
before the call returns: its network endpoints (veth, address, DNS record),
its cgroup, its directory (overlay upper/work, record, state) and its
anonymous volumes.

A one-off with a healthcheck or lifecycle hooks (which the supervisor
runs) is still run by the supervisor.

While it runs, ``state.json`` says ``running`` with PID 1's pid, so ``ps -a``,
``top``, ``port`` and ``wait`` see it like any other container; no
supervisor tracks it (signals reach it through the CLI, and ``down`` or
``rm -f`` remove it by killing its cgroup, which ends the CLI's wait with
137). PID 1 dies with the
CLI (``launch(die_with_parent=True)``), so a CLI killed with SIGKILL leaves
no running container behind; the leftovers (record, endpoints, cgroup) are
found through the owner file ``<root>/oneoffs/<id>.json`` (the CLI's pid and
start time) and removed by the next command that observes a project
(``sweep``). The one-off's own files are written without fsync
(``state.transient_writes``): they do not outlive the call.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from composer.backends.native import observe as _observe
from composer.backends.native.state import StateRoot, read_json, transient_writes
from composer.backends.native.supervisor.records import (
    ContainerRecord,
    ContainerRunState,
    pid_start_time,
    read_record,
    read_state,
    same_process,
    to_json,
)
from composer.errors import ComposerError, NotFound

if TYPE_CHECKING:
    from composer.backends.base import ContainerSpec
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.containers import ContainerDirs
    from composer.backends.native.images.store import StoredImage
    from composer.backends.native.runtime.spec import Launched, LaunchSpec, MountEntry, Stdio
    from composer.backends.native.supervisor.netglue import NetGlue

OWNERS = "oneoffs"
"""Directory of the state root holding one owner file per one-off a CLI runs."""
KILL_WAIT = 30.0
"""Seconds to wait for a one-off after SIGKILL, and for its CLI to record its end."""


class _Run:
    """One one-off as it goes: what has to be given back when it ends."""

    def __init__(self, backend: NativeBackend, record: ContainerRecord) -> None:
        self.backend = backend
        self.record = record
        self.launched: Launched | None = None
        self.glue: NetGlue | None = None
        self.responders: list[Any] = []


def run_removed(
    backend: NativeBackend,
    spec: ContainerSpec,
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
    tty: bool,
) -> tuple[str, int]:
    """Create, run and remove the one-off of ``spec``; its id and exit code (128+signal)."""
    from composer.backends.native.oneoff_io import relay

    with transient_writes(backend.root.path / "containers"):
        record, launch = _create(backend, spec)
    if _needs_supervisor(record):
        return _supervised(backend, record, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    run = _Run(backend, record)
    own = [
        backend.root.container(record.id),
        *(backend.networks.endpoints_dir(j.network) / f"{record.id}.json" for j in record.networks),
    ]
    with transient_writes(*own):
        try:
            _own(backend, record)
            backend._event(record, "create")
            launch = _resolved_launch(backend, record, launch)
            if record.networks:
                from composer.backends.native.supervisor.netglue import NetGlue

                run.glue = NetGlue(backend.root)
            code = relay(
                lambda stdio: _launch(run, launch, stdio),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                tty=tty,
            )
            _exited(backend, record, code)
            return record.id, code
        finally:
            cgroup = run.launched.cgroup_path if run.launched is not None else _cgroup_of(record)
            for responder in run.responders:
                with contextlib.suppress(Exception):
                    responder.stop()
            with _owner_locked(backend.root, record.id):
                if _ended_path(backend.root, record.id).exists():
                    # Ended by ``down``/``rm``, which removes it: only what lives in this
                    # process (ports, DNS) is let go here.
                    if run.glue is not None:
                        with contextlib.suppress(Exception):
                            run.glue.stopped(record)
                        run.glue.close()
                else:
                    remove(backend, record, cgroup, run.glue)


def _needs_supervisor(record: ContainerRecord) -> bool:
    """Hooks and healthchecks run in the supervisor: such a one-off is run by it, as before."""
    check = record.healthcheck
    probed = check is not None and bool(check.test) and check.test[0] != "NONE"
    return probed or bool(record.post_start or record.pre_stop)


def _supervised(
    backend: NativeBackend,
    record: ContainerRecord,
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
    tty: bool,
) -> tuple[str, int]:
    """The supervisor's way: attached through it, then removed."""
    backend._event(record, "create")
    try:
        code = backend.attach_run(record.id, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    finally:
        backend.remove_container(record.id, force=True, volumes=True)
    return record.id, code


def _create(backend: NativeBackend, spec: ContainerSpec) -> tuple[ContainerRecord, LaunchSpec]:
    """``create_container`` without asking for the supervisor; the launch spec built."""
    image = backend.images.get(spec.image)
    for att in spec.networks:
        if att.network not in ("none", "host") and backend.networks.get(att.network) is None:
            raise NotFound(f"network {att.network} not found", hint="create it first")
    built: list[LaunchSpec] = []

    def build(
        spec: ContainerSpec, image: StoredImage, dirs: ContainerDirs, mounts: Sequence[MountEntry]
    ) -> LaunchSpec:
        launch = backend._launch(spec, image, dirs, mounts)
        built.append(launch)
        return launch

    record = backend.containers.create(spec, image, build)
    return record, built[0]


def _resolved_launch(
    backend: NativeBackend, record: ContainerRecord, launch: LaunchSpec
) -> LaunchSpec:
    """The launch spec with the namespaces of ``container:``/``service:`` modes pointed at
    the current PIDs of their owners (``resolve_joins`` rewrites the record then)."""
    if not backend._join_targets(record):
        return launch
    backend.resolve_joins(record)
    from composer.backends.native.runtime.spec import LaunchSpec

    fresh = read_record(backend.root, record.id)
    return LaunchSpec.from_json(json.dumps(fresh.launch))


def _launch(run: _Run, launch: LaunchSpec, stdio: Stdio) -> Launched:
    """PID 1 started (dying with this process), networks joined, ``state.json`` running."""
    from composer.backends.native.oneoff_dns import serve
    from composer.backends.native.runtime.launch import launch as runtime_launch

    backend, record, glue = run.backend, run.record, run.glue

    def before_exec(pid: int) -> None:
        if glue is None:
            return
        glue.join(record, pid)
        backend._write_own_hosts(record)
        if not record.ports:
            run.responders.extend(serve(backend, record))

    run.launched = runtime_launch(launch, stdio, before_exec=before_exec, die_with_parent=True)
    ports: tuple[Any, ...] = ()
    if glue is not None and record.ports:
        ports = glue.started(record)  # DNS and the published ports, as the supervisor serves them
    _write_state(
        backend,
        record,
        ContainerRunState(
            status="running",
            pid=run.launched.pid,
            pid_start_time=run.launched.start_time,
            started_at=time.time(),
            cgroup_path=run.launched.cgroup_path or "",
            ports=ports,
        ),
    )
    backend._event(record, "start")
    return run.launched


def _exited(backend: NativeBackend, record: ContainerRecord, code: int) -> None:
    """``state.json`` says how it ended, for ``ps -a`` while the removal runs."""
    now = time.time()
    _write_state(
        backend,
        record,
        ContainerRunState(status="exited", finished_at=now, exit_code=code),
    )
    backend._event(record, "die", when=now, exitCode=str(code))


def _write_state(backend: NativeBackend, record: ContainerRecord, state: ContainerRunState) -> None:
    """Atomic like ``write_state``, without its fsync: a one-off's state does not outlive it."""
    from composer.backends.native.supervisor.records import state_path

    _write_quick(state_path(backend.root, record.id), to_json(state))


def _write_quick(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    os.replace(tmp, path)


# --- owner files and removal -----------------------------------------------------------


def _owner_path(backend: NativeBackend, container_id: str) -> Path:
    backend.root.container(container_id)  # validates the id as a path component
    return backend.root.path / OWNERS / f"{container_id}.json"


def _own(backend: NativeBackend, record: ContainerRecord) -> None:
    """Record that this process runs the one-off (read by ``sweep`` when it died)."""
    path = _owner_path(backend, record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_quick(
        path,
        {
            "pid": os.getpid(),
            "start_time": pid_start_time(os.getpid()) or 0,
            "project": record.project,
        },
    )


def _cgroup_of(record: ContainerRecord) -> str | None:
    cgroup = record.launch.get("cgroup") or {}
    path = cgroup.get("path") if isinstance(cgroup, dict) else None
    return str(path) if path else None


def remove(
    backend: NativeBackend,
    record: ContainerRecord,
    cgroup: str | None,
    glue: NetGlue | None = None,
) -> None:
    """Everything the one-off took, given back: endpoints, DNS, ports, cgroup, files."""
    if _observe.supervisor_alive(backend.root, record.project):
        with contextlib.suppress(ComposerError, OSError):
            backend._client(record.project).forget(record.id, force=True)
    if glue is not None:
        with contextlib.suppress(Exception):
            glue.stopped(record)
        glue.close()
    elif record.networks:
        for join in record.networks:
            with contextlib.suppress(ComposerError, OSError):
                backend.networks.disconnect(join.network, record.id)
    if cgroup:
        from composer.backends.native.runtime.cgroups import Cgroup

        with contextlib.suppress(OSError, ValueError, TimeoutError):
            Cgroup(cgroup).remove()  # kills whatever is left inside first
    with contextlib.suppress(FileNotFoundError):
        backend.containers.remove(record, volumes=True)
    backend._event(record, "destroy")
    release(backend.root, record.id)
    backend._tidy_project(record.project)


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
    state = _observe.snapshot(backend.root, record).state
    remove(backend, record, state.cgroup_path or _cgroup_of(record))
    claimed.unlink(missing_ok=True)


# --- another command ending a one-off the CLI runs ------------------------------------


@contextlib.contextmanager
def _owner_locked(root: StateRoot, container_id: str) -> Iterator[bool]:
    """The owner file's ``flock`` held for the block; whether the file still exists.

    Serialises the CLI's removal with another command ending the one-off (``end``);
    the lock goes with the file, so no lock file outlives the one-off.
    """
    try:
        fd = os.open(root.path / OWNERS / f"{container_id}.json", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield os.fstat(fd).st_nlink > 0
    finally:
        os.close(fd)


def _ended_path(root: StateRoot, container_id: str) -> Path:
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
    with _owner_locked(root, record.id) as owned:
        if not owned or not run_by_cli(root, record.id):
            return False
        _write_quick(_ended_path(root, record.id), {"by": os.getpid()})
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
    for path in (root.path / OWNERS / f"{container_id}.json", _ended_path(root, container_id)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def run_by_cli(root: StateRoot, container_id: str) -> bool:
    """Whether a live CLI process runs this one-off (no supervisor is to adopt it)."""
    try:
        owner = read_json(root.path / OWNERS / f"{container_id}.json")
        return same_process(int(owner.get("pid") or 0), int(owner.get("start_time") or 0))
    except (OSError, ValueError, AttributeError):
        return False
