"""``run --rm`` without ``-d``: the one-off container run by the CLI process itself.

The CLI waits for an attached one-off anyway, so it launches the container
with the runtime, relays its stdio, forwards signals and collects the exit
code, instead of asking the project's supervisor (a second interpreter and
a socket round trip) to do it. Everything the container took is given back
before the call returns: its network endpoints (veth, address, DNS record),
its cgroup, its directory (overlay upper/work, record, state) and its
anonymous volumes.

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
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from composer.backends.native import observe as _observe
from composer.backends.native.state import read_json, transient_writes
from composer.backends.native.supervisor.records import (
    ContainerRecord,
    ContainerRunState,
    pid_start_time,
    read_record,
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
            remove(backend, record, cgroup, run.glue)


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
    with contextlib.suppress(FileNotFoundError):
        _owner_path(backend, record.id).unlink()
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


def owner_paths(root: Path) -> list[Path]:
    """The owner files under state root ``root`` (tests: none is left after a run)."""
    base = root / OWNERS
    return sorted(base.iterdir()) if base.is_dir() else []
