"""``ContainerSpec`` + image config → ``LaunchSpec``: Docker's decisions, as a pure function.

Everything that needs the host (the rootfs and per-container file paths,
volume directories, the namespaces of other containers, device numbers, the
caller's rlimits) comes in as arguments, so this module reads nothing and
the rules are tested with literals:

* environment: ``PATH`` (Docker's default), ``HOSTNAME``, ``TERM`` with a
  tty, then the image's ``Env``, then the service's; a later value replaces
  an earlier one in place;
* command: a service ``entrypoint`` replaces the image's and drops the
  image's ``Cmd``; a service ``command`` replaces ``Cmd``;
* user and working directory: the service's, else the image's (the working
  directory must be absolute);
* capabilities from ``cap_add``/``cap_drop``/``privileged``; ``security_opt``
  ``no-new-privileges`` and ``seccomp=unconfined``;
* ``ulimits`` clamped to the caller's hard limits (with a warning), Docker's
  namespaced ``sysctls`` only, ``tmpfs``, ``shm_size``, ``init``,
  ``read_only``, hostname/domainname, devices, and the cgroup limits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from composer.backends.specs import ContainerSpec, MountSpec
from composer.errors import ConfigError, NotFound, Unsupported

from .runtime import caps as capmod
from .runtime.spec import (
    DEFAULT_INIT_PATH,
    DEFAULT_SHM_SIZE,
    DOCKER_MASKED_PATHS,
    DOCKER_READONLY_PATHS,
    CgroupSpec,
    DeviceEntry,
    LaunchSpec,
    MountEntry,
    NamespaceSpec,
    NamespaceType,
    Rlimit,
    RootfsSpec,
    SeccompMode,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_NET_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
)
_IPC_SYSCTLS = (
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
)
RLIM_INFINITY = 2**64 - 1


@dataclass(frozen=True, slots=True)
class ContainerFiles:
    """Per-container files bind-mounted over the image's (``None``: not mounted)."""

    hosts: str | None = None
    hostname: str | None = None
    resolv_conf: str | None = None


@dataclass(frozen=True, slots=True)
class HostDevice:
    """What ``probe_devices`` found for a host device path."""

    type: str
    major: int
    minor: int
    mode: int


@dataclass(frozen=True, slots=True)
class Translation:
    launch: LaunchSpec
    warnings: tuple[str, ...] = ()


def probe_devices(paths: Iterable[str]) -> dict[str, HostDevice]:
    """Device numbers of host nodes (the one host read, kept out of ``translate``)."""
    out: dict[str, HostDevice] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise NotFound(
                f"device {path}: {exc.strerror}", "check devices: in the service"
            ) from exc
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise ConfigError(f"{path} is not a device node", "devices: takes /dev paths")
        out[path] = HostDevice(kind, os.major(st.st_rdev), os.minor(st.st_rdev), st.st_mode & 0o777)
    return out


def translate(
    spec: ContainerSpec,
    image_config: Mapping[str, Any],
    rootfs: RootfsSpec,
    files: ContainerFiles,
    *,
    container_id: str,
    volume_sources: Mapping[str, str] | None = None,
    joined_namespaces: Mapping[str, str] | None = None,
    host_rlimits: Mapping[str, tuple[int, int]] | None = None,
    devices: Mapping[str, HostDevice] | None = None,
    cgroup_parent: str = "composer",
    init_path: str = DEFAULT_INIT_PATH,
) -> Translation:
    """The ``LaunchSpec`` for ``spec``; ``warnings`` say what was adjusted.

    ``volume_sources`` maps a mount target to the host directory or file to
    bind there (named and anonymous volumes, config and secret files);
    ``joined_namespaces`` maps ``net``/``ipc``/``pid``… to the
    ``/proc/<pid>/ns/*`` path of the container named by a ``container:``
    mode; ``host_rlimits`` are the caller's ``(soft, hard)`` limits.
    """
    cfg: Mapping[str, Any] = image_config.get("config") or image_config
    warnings: list[str] = []
    hostname = spec.hostname or container_id[:12]
    namespaces = _namespaces(spec, joined_namespaces or {})
    ns_types: set[str] = {n.type for n in namespaces}
    args = _command(spec, cfg)
    cwd = spec.working_dir or cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise ConfigError(
            f"the working directory {cwd!r} is invalid", "working_dir must be an absolute path"
        )
    nnp, seccomp_mode = _security_opts(spec.security_opt, warnings)
    capabilities = _capabilities(spec)
    readonly = spec.read_only
    mounts = _mounts(spec, files, volume_sources or {}, readonly)
    cgroup = _cgroup(spec, container_id, cgroup_parent, devices or {})
    launch = LaunchSpec(
        id=container_id,
        rootfs=rootfs,
        args=args,
        env=_environment(spec, cfg, hostname if "uts" in ns_types else None),
        cwd=cwd,
        user=spec.user if spec.user is not None else str(cfg.get("User") or ""),
        additional_groups=tuple(spec.group_add),
        readonly_rootfs=readonly,
        hostname=hostname if "uts" in ns_types else "",
        domainname=spec.domainname or "",
        mounts=mounts,
        namespaces=namespaces,
        capabilities=capabilities,
        privileged=spec.privileged,
        no_new_privileges=nnp,
        seccomp="unconfined" if spec.privileged else seccomp_mode,
        masked_paths=() if spec.privileged else DOCKER_MASKED_PATHS,
        readonly_paths=() if spec.privileged else DOCKER_READONLY_PATHS,
        rlimits=_rlimits(spec, host_rlimits, warnings),
        sysctls=_sysctls(spec, ns_types, joined_namespaces or {}),
        oom_score_adj=spec.resources.oom_score_adj,
        devices=_devices(spec, devices or {}),
        cgroup=cgroup,
        shm_size=spec.shm_size or DEFAULT_SHM_SIZE,
        tty=spec.tty,
        stdin_open=spec.stdin_open,
        init=bool(spec.init),
        init_path=init_path,
        stop_signal=spec.stop_signal or str(cfg.get("StopSignal") or "SIGTERM"),
        stop_timeout=spec.stop_timeout,
    )
    return Translation(launch, tuple(warnings))


# --- pieces -------------------------------------------------------------------


def _command(spec: ContainerSpec, cfg: Mapping[str, Any]) -> tuple[str, ...]:
    if spec.entrypoint is not None:
        entrypoint = tuple(spec.entrypoint)
        cmd = tuple(spec.command) if spec.command is not None else ()
    else:
        entrypoint = tuple(cfg.get("Entrypoint") or ())
        cmd = tuple(spec.command) if spec.command is not None else tuple(cfg.get("Cmd") or ())
    args = entrypoint + cmd
    if not args:
        raise ConfigError(
            f"service {spec.service!r}: no command specified",
            "set command: in the service, or use an image with a CMD",
        )
    return args


def _environment(
    spec: ContainerSpec, cfg: Mapping[str, Any], hostname: str | None
) -> tuple[str, ...]:
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    if hostname:
        env["HOSTNAME"] = hostname
    if spec.tty:
        env["TERM"] = "xterm"
    for item in cfg.get("Env") or ():
        key, _, value = str(item).partition("=")
        env[key] = value
    for key, value in spec.environment.items():
        env[key] = value
    return tuple(f"{k}={v}" for k, v in env.items())


def _security_opts(opts: Iterable[str], warnings: list[str]) -> tuple[bool, SeccompMode]:
    nnp = False
    seccomp: SeccompMode = "default"
    for raw in opts:
        key, sep, value = raw.replace(":", "=", 1).partition("=")
        key = key.strip()
        if key == "no-new-privileges":
            nnp = (value or "true").strip().lower() == "true" if sep else True
        elif key == "seccomp":
            if value == "unconfined":
                seccomp = "unconfined"
            else:
                raise Unsupported(
                    f"security_opt {raw!r}: custom seccomp profiles are not supported",
                    "use seccomp=unconfined or the default profile, or --backend docker",
                )
        elif key in ("apparmor", "label", "systempaths"):
            warnings.append(f"security_opt {raw!r} is ignored by the native backend")
        else:
            raise ConfigError(f"security_opt {raw!r} is not recognised", "see docker run --help")
    return nnp, seccomp


def _capabilities(spec: ContainerSpec) -> tuple[str, ...]:
    try:
        return capmod.compute(spec.cap_add, spec.cap_drop, privileged=spec.privileged)
    except ValueError as exc:
        raise ConfigError(str(exc), "capability names are like NET_ADMIN or CAP_NET_ADMIN") from exc


def _namespaces(spec: ContainerSpec, joined: Mapping[str, str]) -> tuple[NamespaceSpec, ...]:
    out: list[NamespaceSpec] = [NamespaceSpec("mnt")]

    def mode_ns(kind: NamespaceType, mode: str | None) -> None:
        if mode == "host":
            return
        if mode and (mode.startswith("container:") or mode.startswith("service:")):
            path = joined.get(kind)
            if path is None:
                raise NotFound(
                    f"{kind} namespace of {mode.split(':', 1)[1]} is not available",
                    "start the container it refers to first",
                )
            out.append(NamespaceSpec(kind, path))
            return
        out.append(NamespaceSpec(kind))

    mode_ns("uts", spec.uts)
    mode_ns("ipc", None if spec.ipc in ("shareable", "private", "none") else spec.ipc)
    mode_ns("pid", spec.pid)
    mode_ns("net", spec.network_mode if spec.network_mode not in ("bridge", "none") else None)
    if spec.cgroup == "private":
        out.append(NamespaceSpec("cgroup"))
    return tuple(out)


def _sysctls(
    spec: ContainerSpec, ns_types: set[str], joined: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    private_net = "net" in ns_types and "net" not in joined
    out: dict[str, str] = dict(DEFAULT_NET_SYSCTLS) if private_net else {}
    for key, value in spec.sysctls.items():
        namespaced_ipc = key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")
        if key.startswith("net."):
            if "net" not in ns_types:
                raise ConfigError(
                    f"sysctl {key} is not allowed with the host's network",
                    "net.* sysctls need the container's own network namespace",
                )
        elif namespaced_ipc:
            if "ipc" not in ns_types:
                raise ConfigError(f"sysctl {key} is not allowed with the host's IPC namespace")
        elif key in ("kernel.domainname", "kernel.hostname"):
            raise ConfigError(f"sysctl {key} is not allowed", "use hostname:/domainname:")
        else:
            raise ConfigError(
                f"sysctl {key} is not namespaced and cannot be set for one container",
                "only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.* are allowed",
            )
        out[key] = str(value)
    return tuple(out.items())


def _rlimits(
    spec: ContainerSpec,
    host: Mapping[str, tuple[int, int]] | None,
    warnings: list[str],
) -> tuple[Rlimit, ...]:
    out: list[Rlimit] = []
    for name, u in spec.ulimits.items():
        soft = RLIM_INFINITY if u.soft < 0 else u.soft
        hard = RLIM_INFINITY if u.hard < 0 else u.hard
        if host is not None and name in host:
            _, host_hard = host[name]
            host_hard = RLIM_INFINITY if host_hard < 0 else host_hard
            if hard > host_hard:
                warnings.append(
                    f"ulimit {name}: hard limit {hard} is above this system's {host_hard}; "
                    f"using {host_hard}"
                )
                hard = host_hard
                soft = min(soft, hard)
        if soft > hard:
            raise ConfigError(f"ulimit {name}: soft limit {soft} is above the hard limit {hard}")
        out.append(Rlimit(name, soft, hard))
    return tuple(out)


def _mount_depth(m: MountEntry) -> int:
    return len([p for p in m.target.split("/") if p])


def _mounts(
    spec: ContainerSpec,
    files: ContainerFiles,
    volume_sources: Mapping[str, str],
    readonly: bool,
) -> tuple[MountEntry, ...]:
    out: list[MountEntry] = []
    file_opts = ("rbind", "rprivate", "ro") if readonly else ("rbind", "rprivate")
    for target, path in (
        ("/etc/resolv.conf", files.resolv_conf),
        ("/etc/hostname", files.hostname),
        ("/etc/hosts", files.hosts),
    ):
        if path:
            out.append(MountEntry(target, "bind", path, file_opts))
    for m in spec.mounts:
        out.append(_mount_entry(m, volume_sources))
    for target, options in spec.tmpfs.items():
        opts = ["nosuid", "nodev", "noexec", *(o for o in options.split(",") if o)]
        out.append(MountEntry(target, "tmpfs", "tmpfs", tuple(opts)))
    covered = {m.target for m in out}
    for target, source in volume_sources.items():
        if target not in covered:  # the image's VOLUMEs, as anonymous volumes
            out.append(MountEntry(target, "bind", source, ("rbind", "rprivate")))
    out.sort(key=_mount_depth)
    return tuple(out)


def _mount_entry(m: MountSpec, volume_sources: Mapping[str, str]) -> MountEntry:
    ro = ("ro",) if m.read_only else ()
    propagation = (m.bind_propagation or "rprivate",)
    if m.type == "tmpfs":
        opts = ["nosuid", "nodev", "noexec", *ro]
        if m.tmpfs_size:
            opts.append(f"size={m.tmpfs_size}")
        if m.tmpfs_mode is not None:
            opts.append(f"mode={m.tmpfs_mode:o}")
        return MountEntry(m.target, "tmpfs", "tmpfs", tuple(opts))
    if m.type == "bind":
        if not m.source or not m.source.startswith("/"):
            raise ConfigError(f"bind mount for {m.target} needs an absolute host path")
        return MountEntry(m.target, "bind", m.source, ("rbind", *propagation, *ro))
    if m.type in ("volume", "config", "secret"):
        source = volume_sources.get(m.target)
        if source is None:
            raise NotFound(
                f"no source prepared for the {m.type} mounted at {m.target}",
                "the backend creates volumes before translating the container",
            )
        if m.type != "volume":
            ro = ("ro",)
        return MountEntry(m.target, "bind", source, ("rbind", *propagation, *ro))
    raise Unsupported(
        f"mount type {m.type!r} (at {m.target}) is not supported by the native backend",
        "use a bind mount or a volume, or --backend docker",
    )


def _devices(spec: ContainerSpec, host: Mapping[str, HostDevice]) -> tuple[DeviceEntry, ...]:
    out = []
    for d in spec.devices:
        info = host.get(d.source)
        if info is None:
            raise NotFound(f"device {d.source} was not probed", "call probe_devices first")
        kind: Literal["b", "c"] = "b" if info.type == "b" else "c"
        out.append(
            DeviceEntry(
                d.target, kind, info.major, info.minor, info.mode, permissions=d.permissions
            )
        )
    return tuple(out)


def _cgroup(
    spec: ContainerSpec, container_id: str, parent: str, host: Mapping[str, HostDevice]
) -> CgroupSpec:
    r = spec.resources
    quota, period = r.cpu_quota, r.cpu_period
    if r.cpus:
        period = period or 100000
        quota = int(r.cpus * period)
    memswap = r.memswap_limit
    if memswap is None and r.mem_limit:
        memswap = 2 * r.mem_limit  # Docker: as much swap as memory
    rules = []
    for d in spec.devices:
        info = host.get(d.source)
        if info is not None:
            perms = "".join(c for c in (d.permissions or "rwm") if c in "rwm") or "rwm"
            rules.append(f"{info.type} {info.major}:{info.minor} {perms}")
    rules.extend(spec.device_cgroup_rules)
    base = (spec.cgroup_parent or parent).strip("/")
    return CgroupSpec(
        path=f"{base}/{container_id}",
        memory_limit=r.mem_limit,
        memory_swap=memswap,
        memory_reservation=r.mem_reservation,
        memory_swappiness=r.mem_swappiness,
        cpu_quota=quota,
        cpu_period=period,
        cpu_shares=r.cpu_shares,
        cpuset_cpus=r.cpuset,
        pids_limit=r.pids_limit,
        device_rules=tuple(rules),
        allow_all_devices=spec.privileged,
    )
