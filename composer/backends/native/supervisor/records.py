"""The on-disk container record contract between the backend and the supervisor.

Two files per container under ``<root>/containers/<id>/``, each with one
writer, so no lock is needed to read either:

* ``record.json`` — written once by the backend at ``create_container``
  (``ContainerRecord``): the ``ContainerSpec`` as JSON, the runtime's
  ``LaunchSpec`` as JSON, and what the supervisor needs without
  re-deriving anything from the image (resolved restart policy,
  healthcheck, stop signal and timeout, hooks, networks to join, ports to
  publish).
* ``state.json`` — written only by the project's supervisor
  (``ContainerRunState``): status, the PID *and its start time* (field 22
  of ``/proc/<pid>/stat``, so that a PID reused by an unrelated process is
  never mistaken for the container), start/finish times, exit code,
  restart count, health and the host ports actually bound. A missing
  ``state.json`` means "created, never started".

``container.log`` (k8s-file lines, see ``logs.py``) sits next to them.

Exit codes: ``128 + signal`` for a process killed by a signal, as Docker
reports them. When a supervisor re-adopts a container after its
predecessor was killed, it is not the container's parent and cannot learn
the exit status of a process that dies later; such an exit is recorded
as ``EXIT_UNKNOWN`` (255) with ``exit_code_known = False``.

Times are epoch seconds (floats). Everything here is plain data plus
atomic read/write helpers; no process is touched except to read ``/proc``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from composer.backends.native.state import StateRoot, read_json, write_json

if TYPE_CHECKING:  # the supervisor decodes specs only when it needs them (start-up time)
    from composer.backends.specs import ContainerSpec

RECORD_FILE = "record.json"
STATE_FILE = "state.json"
LOG_FILE = "container.log"

RECORD_VERSION = 1
EXIT_UNKNOWN = 255
"""Exit code recorded when the real one cannot be known (see the module notes)."""

HEALTH_LOG_SIZE = 5
"""Probe results kept in ``state.json`` (Docker keeps the last five)."""

RunStatus = Literal["created", "running", "paused", "restarting", "exited", "dead"]
HealthStatus = Literal["starting", "healthy", "unhealthy"]

# --- record.json -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthcheckRecord:
    """A resolved healthcheck (service over image over Docker's defaults).

    ``test`` is ``("CMD", arg, …)`` or ``("CMD-SHELL", "script")``; a
    disabled check (``NONE``) is stored as no ``HealthcheckRecord`` at all.
    Durations in seconds; Docker's defaults are 30 s interval, 30 s timeout,
    3 retries, 0 s start period and 5 s start interval.
    """

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class HookRecord:
    """A ``post_start``/``pre_stop`` command, run inside the container."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetworkJoin:
    """One network the container joins when it starts.

    ``attachment`` is the ``NetworkAttachment`` as JSON (``spec_to_json``
    form) so that the network code gets exactly what the planner asked;
    ``names`` are the DNS names it answers for this container (container
    name, service name, aliases, hostname).
    """

    network: str
    attachment: Mapping[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PortPublish:
    """One published port: ``host_port`` 0 asks for a free one.

    ``published`` carries a range (``"8000-8010"``) when one was asked for;
    it wins over ``host_port``. When ``ContainerRecord.ports`` is empty the
    supervisor publishes the ``ContainerSpec``'s ports that have
    ``published`` set.
    """

    container_port: int
    host_port: int = 0
    host_ip: str = ""
    protocol: str = "tcp"
    published: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """What the backend decided at create time; never changed afterwards."""

    id: str
    name: str
    project: str
    service: str
    created_at: float
    spec: Mapping[str, Any]
    """The ``ContainerSpec`` as JSON (``spec_to_json``); ``container_spec()`` decodes it."""
    launch: Mapping[str, Any]
    """The runtime's ``LaunchSpec`` as JSON, handed back to the runtime at each start."""
    image_id: str = ""
    restart: str = "no"
    """``no``, ``always``, ``unless-stopped``, ``on-failure`` or ``on-failure:N``."""
    healthcheck: HealthcheckRecord | None = None
    stop_signal: str = "SIGTERM"
    """From the service, else the image's ``STOPSIGNAL``, else SIGTERM."""
    stop_timeout: float = 10.0
    post_start: tuple[HookRecord, ...] = ()
    pre_stop: tuple[HookRecord, ...] = ()
    networks: tuple[NetworkJoin, ...] = ()
    ports: tuple[PortPublish, ...] = ()
    tty: bool = False
    stdin_open: bool = False
    oneoff: bool = False
    version: int = RECORD_VERSION

    def container_spec(self) -> ContainerSpec:
        from composer.backends.specs import ContainerSpec

        return spec_from_json(ContainerSpec, self.spec)


# --- state.json --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One healthcheck run (output truncated to 4 KiB, as Docker does)."""

    start: float
    end: float
    exit_code: int
    output: str = ""


@dataclass(frozen=True, slots=True)
class HealthState:
    status: HealthStatus = "starting"
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()


@dataclass(frozen=True, slots=True)
class BoundPort:
    """A port actually bound on the host by the supervisor's proxy."""

    container_port: int
    host_port: int
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class ContainerRunState:
    """The container's life as the supervisor saw it (``state.json``)."""

    status: RunStatus = "created"
    pid: int = 0
    pid_start_time: int = 0
    """Field 22 of ``/proc/<pid>/stat`` (clock ticks since boot) when ``pid`` was recorded."""
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    exit_code_known: bool = True
    restart_count: int = 0
    stopped_by_user: bool = False
    """Set by stop/kill from a client; no restart policy applies afterwards."""
    health: HealthState | None = None
    ports: tuple[BoundPort, ...] = ()
    error: str = ""
    """Why the last start failed, empty when it did not."""
    cgroup_path: str = ""
    """The running container's cgroup (from the runtime), for pause after a re-adoption."""


# --- paths and I/O -----------------------------------------------------------


def record_path(root: StateRoot, container_id: str) -> Path:
    return root.container(container_id) / RECORD_FILE


def state_path(root: StateRoot, container_id: str) -> Path:
    return root.container(container_id) / STATE_FILE


def log_path(root: StateRoot, container_id: str) -> Path:
    return root.container(container_id) / LOG_FILE


def write_record(root: StateRoot, record: ContainerRecord) -> None:
    write_json(record_path(root, record.id), to_json(record), mode=0o600)


def read_record(root: StateRoot, container_id: str) -> ContainerRecord:
    """The container's record (``FileNotFoundError`` when there is none)."""
    return from_json(ContainerRecord, read_json(record_path(root, container_id)))


def write_state(root: StateRoot, container_id: str, state: ContainerRunState) -> None:
    write_json(state_path(root, container_id), to_json(state))


def read_state(root: StateRoot, container_id: str) -> ContainerRunState:
    """The container's state; ``created`` when the supervisor never wrote one."""
    try:
        data = read_json(state_path(root, container_id))
    except FileNotFoundError:
        return ContainerRunState()
    return from_json(ContainerRunState, data)


def project_container_ids(root: StateRoot, project: str) -> list[str]:
    """Ids of the containers whose record names ``project``, sorted."""
    base = root.path / "containers"
    ids: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(base):
            try:
                data = read_json(Path(entry.path) / RECORD_FILE)
            except (FileNotFoundError, NotADirectoryError, ValueError):
                continue
            if isinstance(data, dict) and data.get("project") == project:
                ids.append(entry.name)
    return sorted(ids)


# --- PIDs that stay ours -----------------------------------------------------


def pid_start_time(pid: int) -> int | None:
    """Field 22 (``starttime``) of ``/proc/<pid>/stat``, or ``None`` when there is no such PID.

    The command name (field 2) may hold spaces and parentheses, so the
    fields are counted from the last ``)``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state); starttime is field 22.
    return int(rest[19])


def pid_is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return data[data.rindex(b")") + 2 :].split()[0] == b"Z"


def same_process(pid: int, start_time: int) -> bool:
    """Whether ``pid`` still names the process that had ``start_time`` (and is not a zombie)."""
    if pid <= 0:
        return False
    now = pid_start_time(pid)
    return now is not None and now == start_time and not pid_is_zombie(pid)


def live_status(state: ContainerRunState) -> RunStatus:
    """The status to report: ``exited`` for a running/paused record whose process is gone.

    ``observe`` uses this so that a container whose supervisor died with it
    is not listed as running; the supervisor that comes next records it.
    """
    if state.status in ("running", "paused") and not same_process(state.pid, state.pid_start_time):
        return "exited"
    return state.status


# --- dataclasses <-> JSON ----------------------------------------------------


def to_json(value: Any) -> Any:
    """A dataclass tree as JSON values: tuples become lists, mappings dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def spec_to_json(spec: ContainerSpec) -> dict[str, Any]:
    """The ``ContainerSpec`` for ``ContainerRecord.spec``."""
    out = to_json(spec)
    assert isinstance(out, dict)
    return out


def spec_from_json(cls: type[ContainerSpec], data: Mapping[str, Any]) -> ContainerSpec:
    return from_json(cls, data)


_T = typing.TypeVar("_T")


def from_json(cls: type[_T], data: Any) -> _T:
    """Rebuild dataclass ``cls`` from ``to_json`` output, guided by its type hints.

    Unknown keys are ignored and missing ones take their defaults, so a
    record written by an older or newer composer still reads.
    """
    value = _decode(cls, data)
    return typing.cast(_T, value)


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            if dataclasses.is_dataclass(option) and isinstance(value, dict):
                return _decode(option, value)
        return _decode(options[0], value) if len(options) == 1 else value
    if origin is Literal or tp is Any:
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=False))
    if origin in (Mapping, dict):
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _decode(vt, v) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {
            f.name: _decode(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.name in value
        }
        return tp(**kwargs)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    """Resolved field types of a dataclass (computed once per class)."""
    return typing.get_type_hints(tp)
