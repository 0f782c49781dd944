"""What the runtime is asked to start: frozen, JSON-serialisable launch records.

A ``LaunchSpec`` is computed once (``native/translate.py``) from a
``ContainerSpec`` and the image config, stored in the container record, and
read back by whichever process starts the container (the supervisor, a
one-off ``run``, the builder). Every value is already decided: the runtime
makes no policy choice of its own except Docker's fixed defaults (the
``/proc``, ``/dev``, ``/sys`` mounts and device nodes), which it always sets
up.

Conventions: paths inside the container are absolute container paths; paths
on the host are absolute host paths; sizes are bytes; capability names are
``CAP_*``; ``user`` is Docker's ``name|uid[:group|gid]`` string, resolved
inside the container's root at start (so a user added to the image is found
the way Docker finds it).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, NamedTuple, TypeVar

NamespaceType = Literal["mnt", "uts", "ipc", "net", "pid", "cgroup", "user"]
SeccompMode = Literal["default", "unconfined"]

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_INIT_PATH = "/usr/bin/tini-static"
INIT_TARGET = "/sbin/docker-init"
"""Where the init binary is bind-mounted inside the container (Docker's path)."""

DOCKER_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DOCKER_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
DEFAULT_NAMESPACES: tuple[NamespaceType, ...] = ("mnt", "uts", "ipc", "pid", "net")


@dataclass(frozen=True, slots=True)
class RootfsSpec:
    """The container's root filesystem.

    With ``lowerdirs`` (top layer first) it is an overlay mounted at
    ``mountpoint`` with ``upperdir``/``workdir`` (no upper dir: a read-only
    overlay of the layers). Without ``lowerdirs``, ``mountpoint`` is a plain
    directory used as is (bind-mounted onto itself).
    """

    mountpoint: str
    lowerdirs: tuple[str, ...] = ()
    upperdir: str | None = None
    workdir: str | None = None

    @property
    def overlay(self) -> bool:
        return bool(self.lowerdirs)


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One mount applied after Docker's defaults, in order.

    ``type`` is ``bind`` or a filesystem type (``tmpfs``, ``proc``…).
    ``options`` are OCI-style: flags (``ro``, ``nosuid``, ``nodev``,
    ``noexec``, ``rbind``, ``private``, ``rslave``…) become mount flags, the
    rest (``size=…``, ``mode=…``) is filesystem data. A missing target is
    created as a directory, or as an empty file when the bind source is not
    a directory.
    """

    target: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """A namespace: a new one (``path`` is ``None``) or joined from ``path``."""

    type: NamespaceType
    path: str | None = None


@dataclass(frozen=True, slots=True)
class CgroupSpec:
    """The container's cgroup (``path`` relative to each hierarchy's root) and limits.

    ``None`` means "unlimited / the kernel default". ``memory_swap`` is
    Docker's memory+swap total (``-1``: unlimited swap). ``device_rules`` are
    extra allow rules in cgroup v1 syntax (``c 1:3 rwm``) on top of Docker's
    defaults; ``allow_all_devices`` is ``privileged``.
    """

    path: str
    memory_limit: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    memory_swappiness: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    device_rules: tuple[str, ...] = ()
    allow_all_devices: bool = False


@dataclass(frozen=True, slots=True)
class Rlimit:
    """``RLIMIT_<name>`` (lower-case short name: ``nofile``, ``nproc``, ``core``…)."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """A device node made in the container's ``/dev`` (and allowed in its cgroup)."""

    path: str
    type: Literal["c", "b", "p"]
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0
    permissions: str = "rwm"


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """A process started inside a running container (exec, healthcheck, hook)."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    additional_groups: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    no_new_privileges: bool = False
    seccomp: SeccompMode = "default"
    tty: bool = False
    rlimits: tuple[Rlimit, ...] = ()

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, text: str) -> ExecSpec:
        return _decode(cls, json.loads(text))


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything needed to start one container's PID 1."""

    id: str
    rootfs: RootfsSpec
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    additional_groups: tuple[str, ...] = ()
    readonly_rootfs: bool = False
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[MountEntry, ...] = ()
    namespaces: tuple[NamespaceSpec, ...] = tuple(NamespaceSpec(t) for t in DEFAULT_NAMESPACES)
    capabilities: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    seccomp: SeccompMode = "default"
    masked_paths: tuple[str, ...] = DOCKER_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DOCKER_READONLY_PATHS
    rlimits: tuple[Rlimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    oom_score_adj: int | None = None
    devices: tuple[DeviceEntry, ...] = ()
    cgroup: CgroupSpec | None = None
    shm_size: int = DEFAULT_SHM_SIZE
    tty: bool = False
    stdin_open: bool = False
    init: bool = False
    init_path: str = DEFAULT_INIT_PATH
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    annotations: tuple[tuple[str, str], ...] = field(default=())

    def namespace(self, kind: NamespaceType) -> NamespaceSpec | None:
        """The entry for ``kind``, or ``None`` when the host's is shared."""
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        return _decode(cls, json.loads(text))


class Stdio(NamedTuple):
    """The file descriptors that become the container's 0, 1 and 2 (not closed by launch)."""

    stdin: int
    stdout: int
    stderr: int


@dataclass(frozen=True, slots=True)
class Launched:
    """A started container: its PID 1 on the host and that process's start time.

    ``start_time`` is field 22 of ``/proc/<pid>/stat`` (clock ticks since
    boot); with the pid it identifies the process even after a pid is reused.
    """

    pid: int
    start_time: int
    cgroup_path: str | None = None


# --- JSON ------------------------------------------------------------------

_T = TypeVar("_T")


def _dumps(value: Any) -> str:
    return json.dumps(_encode(value), sort_keys=True, separators=(",", ":"))


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(cls: type[_T], data: Any) -> _T:
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _convert(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(members[0], value) if len(members) == 1 else value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(tp, type) and is_dataclass(tp):
        return _decode(tp, value)
    return value
