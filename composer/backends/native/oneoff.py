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
supervisor tracks it: signals reach it through the CLI, and ``kill``,
``stop``, ``rm -f`` and ``down`` through ``oneoff_owner.py``. PID 1 dies
with the CLI (``launch(die_with_parent=True)``), so a CLI killed with
SIGKILL leaves no running container behind, and the next command sweeps
what it left (``oneoff_owner.sweep``). The one-off's own files are written
without fsync (``state.transient_writes``): they do not outlive the call.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from composer.backends.native import observe as _observe
from composer.backends.native.oneoff_owner import (
    ended_path,
    own,
    owner_locked,
    release,
    write_quick,
)
from composer.backends.native.state import transient_writes
from composer.backends.native.supervisor.records import (
    ContainerRecord,
    ContainerRunState,
    read_record,
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
    its_files = [
        backend.root.container(record.id),
        *(backend.networks.endpoints_dir(j.network) / f"{record.id}.json" for j in record.networks),
    ]
    with transient_writes(*its_files):
        try:
            own(backend.root, record)
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
            cgroup = run.launched.cgroup_path if run.launched is not None else cgroup_of(record)
            for responder in run.responders:
                with contextlib.suppress(Exception):
                    responder.stop()
            with owner_locked(backend.root, record.id):
                if ended_path(backend.root, record.id).exists():
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

    write_quick(state_path(backend.root, record.id), to_json(state))


# --- removal ---------------------------------------------------------------------------


def cgroup_of(record: ContainerRecord) -> str | None:
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
    # Leaving the networks mostly waits for the kernel (the veth goes with the namespace,
    # torn down asynchronously): the cgroup and the files go meanwhile.
    leave = threading.Thread(target=_leave_networks, args=(backend, record, glue), daemon=True)
    leave.start()
    try:
        if cgroup:
            from composer.backends.native.runtime.cgroups import Cgroup

            with contextlib.suppress(OSError, ValueError, TimeoutError):
                Cgroup(cgroup).remove()  # kills whatever is left inside first
        with contextlib.suppress(FileNotFoundError):
            backend.containers.remove(record, volumes=True)
    finally:
        leave.join()
    backend._event(record, "destroy")
    release(backend.root, record.id)
    backend._tidy_project(record.project)


def _leave_networks(backend: NativeBackend, record: ContainerRecord, glue: NetGlue | None) -> None:
    """Endpoints (veth, address, record), published ports and DNS of the one-off, let go."""
    if glue is not None:
        with contextlib.suppress(Exception):
            glue.stopped(record)
        glue.close()
        return
    for join in record.networks:
        with contextlib.suppress(ComposerError, OSError):
            backend.networks.disconnect(join.network, record.id)
