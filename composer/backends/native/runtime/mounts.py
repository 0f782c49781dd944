"""The container's filesystem before ``pivot_root``: rootfs, Docker's default mounts, binds.

Runs in the container's new mount namespace, in the child that becomes
PID 1, in runc's order: make ``/`` a slave recursively (nothing we mount
leaks to the host, and nothing needs unmounting when the container ends:
the namespace dies with its last process), mount the rootfs, then
``/proc``, ``/dev`` (+ nodes and links), ``/dev/pts``, ``/dev/shm``,
``/dev/mqueue``, ``/sys``, ``/sys/fs/cgroup``, then the spec's mounts in
order (``devices.py`` fills ``/dev``; ``masks.py`` does what follows
``pivot_root``: read-only and masked paths).

Every target inside the rootfs is resolved by ``paths.open_in_root``
(never by string joining), and mounted through ``/proc/self/fd/N``.
Targets that Docker's defaults own refuse symlinks outright.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from . import syscalls as S
from .cgroups import Layout, cgroup_of
from .devices import host_devices, make_devices
from .paths import ensure_target, fd_path, is_dir_fd, open_in_root
from .spec import LaunchSpec, MountEntry, RootfsSpec

_FLAGS = {
    "ro": (S.MS_RDONLY, True),
    "rw": (S.MS_RDONLY, False),
    "nosuid": (S.MS_NOSUID, True),
    "suid": (S.MS_NOSUID, False),
    "nodev": (S.MS_NODEV, True),
    "dev": (S.MS_NODEV, False),
    "noexec": (S.MS_NOEXEC, True),
    "exec": (S.MS_NOEXEC, False),
    "sync": (S.MS_SYNCHRONOUS, True),
    "async": (S.MS_SYNCHRONOUS, False),
    "dirsync": (S.MS_DIRSYNC, True),
    "noatime": (S.MS_NOATIME, True),
    "atime": (S.MS_NOATIME, False),
    "nodiratime": (S.MS_NODIRATIME, True),
    "diratime": (S.MS_NODIRATIME, False),
    "relatime": (S.MS_RELATIME, True),
    "norelatime": (S.MS_RELATIME, False),
    "strictatime": (S.MS_STRICTATIME, True),
    "nostrictatime": (S.MS_STRICTATIME, False),
    "bind": (S.MS_BIND, True),
    "rbind": (S.MS_BIND | S.MS_REC, True),
}
_PROPAGATION = {
    "private": S.MS_PRIVATE,
    "rprivate": S.MS_PRIVATE | S.MS_REC,
    "slave": S.MS_SLAVE,
    "rslave": S.MS_SLAVE | S.MS_REC,
    "shared": S.MS_SHARED,
    "rshared": S.MS_SHARED | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE,
    "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}


class MountError(OSError):
    """A mount step failed; the message names the target."""


def parse_options(options: Iterable[str]) -> tuple[int, int, str]:
    """OCI-style options → (mount flags, propagation flags, filesystem data)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            bit, on = _FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        elif opt:
            data.append(opt)
    return flags, propagation, ",".join(data)


# --- the root filesystem ----------------------------------------------------


def make_private_root() -> None:
    """``/`` becomes a recursive slave: our mounts never propagate to the host."""
    S.mount(None, "/", None, S.MS_REC | S.MS_SLAVE)


def mount_rootfs(rootfs: RootfsSpec) -> int:
    """Mount the rootfs at its mount point; returns an O_PATH fd of its root."""
    target = rootfs.mountpoint
    if not rootfs.overlay:
        S.mount(target, target, None, S.MS_BIND | S.MS_REC)
    elif rootfs.upperdir is None and len(rootfs.lowerdirs) == 1:
        S.mount(rootfs.lowerdirs[0], target, None, S.MS_BIND | S.MS_REC)
        S.mount(None, target, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY)
    else:
        _mount_overlay(rootfs)
    return os.open(target, S.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _mount_overlay(rootfs: RootfsSpec) -> None:
    parts = ["lowerdir=" + ":".join(rootfs.lowerdirs)]
    if rootfs.upperdir and rootfs.workdir:
        parts += [f"upperdir={rootfs.upperdir}", f"workdir={rootfs.workdir}"]
    data = ",".join(parts)
    if len(data) < 4000:
        S.mount("overlay", rootfs.mountpoint, "overlay", 0, data)
        return
    # mount(2) takes one page of options: give the layers one by one instead.
    options = [("lowerdir+", d) for d in rootfs.lowerdirs]
    if rootfs.upperdir and rootfs.workdir:
        options += [("upperdir", rootfs.upperdir), ("workdir", rootfs.workdir)]
    S.mount_new_api("overlay", options, rootfs.mountpoint)


# --- Docker's default mounts ---------------------------------------------------


def _mount_at(
    root_fd: int,
    target: str,
    source: str | None,
    fstype: str | None,
    flags: int,
    data: str = "",
    *,
    strict: bool = True,
    directory: bool = True,
) -> None:
    fd = ensure_target(root_fd, target, directory=directory, strict=strict)
    try:
        if directory and not is_dir_fd(fd):
            raise MountError(f"mount target {target} in the image is not a directory")
        S.mount(source, fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)


def remount(root_fd: int, target: str, flags: int, *, strict: bool = True) -> None:
    """Remount the mount now at ``target`` (resolved again: the fd under it is stale)."""
    fd = open_in_root(root_fd, target, strict=strict)
    try:
        path = fd_path(fd)
        keep = current_flags(path)
        S.mount(None, path, None, S.MS_REMOUNT | S.MS_BIND | keep | flags)
    finally:
        os.close(fd)


def current_flags(path: str) -> int:
    st = os.statvfs(path)
    out = 0
    for bit, value in (
        (os.ST_RDONLY, S.MS_RDONLY),
        (os.ST_NOSUID, S.MS_NOSUID),
        (os.ST_NODEV, S.MS_NODEV),
        (os.ST_NOEXEC, S.MS_NOEXEC),
        (os.ST_NOATIME, S.MS_NOATIME),
        (os.ST_NODIRATIME, S.MS_NODIRATIME),
        (os.ST_RELATIME, S.MS_RELATIME),
    ):
        if st.f_flag & bit:
            out |= value
    return out


def mount_defaults(root_fd: int, spec: LaunchSpec, layout: Layout) -> None:
    """``/proc``, ``/dev`` and its nodes, ``/dev/pts``, ``/dev/shm``, ``/dev/mqueue``, ``/sys``."""
    nse = S.MS_NOSUID | S.MS_NOEXEC | S.MS_NODEV
    _mount_at(root_fd, "/proc", "proc", "proc", nse)
    _mount_at(
        root_fd, "/dev", "tmpfs", "tmpfs", S.MS_NOSUID | S.MS_STRICTATIME, "mode=755,size=65536k"
    )
    _mount_at(
        root_fd,
        "/dev/pts",
        "devpts",
        "devpts",
        S.MS_NOSUID | S.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    shm_source = _shared_shm(spec)
    if shm_source is None:
        _mount_at(root_fd, "/dev/shm", "shm", "tmpfs", nse, f"mode=1777,size={spec.shm_size}")
    else:
        _mount_at(root_fd, "/dev/shm", shm_source, None, S.MS_BIND | S.MS_REC)
    # An mqueue mount shows the queues of the mounter's IPC namespace: the
    # container's own, or the host's with ``ipc: host``.
    _mount_at(root_fd, "/dev/mqueue", "mqueue", "mqueue", nse)
    sys_flags = nse if spec.privileged else nse | S.MS_RDONLY
    if spec.namespace("net") is not None or spec.privileged:
        _mount_at(root_fd, "/sys", "sysfs", "sysfs", sys_flags)
    else:
        # A sysfs mount shows the mounter's network namespace; with the host's
        # network, bind the host's /sys (read-only) as runc does.
        _mount_at(root_fd, "/sys", "/sys", None, S.MS_BIND | S.MS_REC)
        if not spec.privileged:
            remount(root_fd, "/sys", S.MS_RDONLY)
    cgroup_path = spec.cgroup.path if spec.cgroup is not None else None
    mount_cgroups(root_fd, readonly=not spec.privileged, layout=layout, cgroup_path=cgroup_path)
    extra = (*host_devices(), *spec.devices) if spec.privileged else spec.devices
    make_devices(root_fd, extra, tty=spec.tty)


def _shared_shm(spec: LaunchSpec) -> str | None:
    """The host's ``/dev/shm`` when the container shares the host's IPC namespace (as Docker).

    A joined IPC namespace (``ipc: container:x``) shares System V IPC but
    gets its own ``/dev/shm``: the other container's lives in a mount
    namespace that the kernel refuses as a bind source (Docker keeps that
    tmpfs on the host instead).
    """
    return "/dev/shm" if spec.namespace("ipc") is None else None


def mount_cgroups(root_fd: int, *, readonly: bool, layout: Layout, cgroup_path: str | None) -> None:
    """``/sys/fs/cgroup`` as Docker shows it.

    cgroup v1 (and the hybrid layout): a tmpfs holding one read-only bind of
    this container's cgroup per v1 hierarchy (the unified v2 tree of a
    hybrid host is not shown, as with Docker). Pure v2: a read-only cgroup2
    mount seen through the container's cgroup namespace. ``layout`` comes
    from the parent (read once per process, not per container);
    ``cgroup_path`` is the container's cgroup, ``None`` for the caller's.
    """
    nse = S.MS_NOSUID | S.MS_NOEXEC | S.MS_NODEV
    ro = S.MS_RDONLY if readonly else 0
    mountpoints = [mp for mp in layout.mountpoints() if mp != layout.unified]
    if not mountpoints:
        if layout.unified:
            _mount_at(root_fd, "/sys/fs/cgroup", "cgroup", "cgroup2", nse | ro)
        return
    own = {} if cgroup_path is not None else cgroup_of("self")
    _mount_at(root_fd, "/sys/fs/cgroup", "tmpfs", "tmpfs", nse, "mode=755")
    for mountpoint in mountpoints:
        name = os.path.basename(mountpoint)
        if cgroup_path is not None:
            sub = cgroup_path
        else:
            keys = [c for c, mp in layout.v1 if mp == mountpoint and c in own]
            sub = own[keys[0]] if keys else "/"
        source = os.path.join(mountpoint, sub.lstrip("/"))
        target = f"/sys/fs/cgroup/{name}"
        _mount_at(root_fd, target, source, None, S.MS_BIND | S.MS_REC)
        remount(root_fd, target, nse | ro)


# --- the spec's mounts -----------------------------------------------------------


def apply_mounts(root_fd: int, mounts: Iterable[MountEntry]) -> None:
    """Mount each entry in order; symlinks in targets resolve inside the root."""
    for m in mounts:
        flags, propagation, data = parse_options(m.options)
        try:
            if m.type == "bind":
                source_is_dir = os.path.isdir(m.source)
                bind_flags = flags & (S.MS_BIND | S.MS_REC) or S.MS_BIND | S.MS_REC
                _mount_at(
                    root_fd,
                    m.target,
                    m.source,
                    None,
                    S.MS_BIND | bind_flags,
                    strict=False,
                    directory=source_is_dir,
                )
                rest = flags & ~(S.MS_BIND | S.MS_REC)
                if rest:
                    remount(root_fd, m.target, rest, strict=False)
            else:
                _mount_at(root_fd, m.target, m.source or m.type, m.type, flags, data, strict=False)
            if propagation:
                fd = open_in_root(root_fd, m.target)
                try:
                    S.mount(None, fd_path(fd), None, propagation)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise MountError(
                exc.errno or 0, f"cannot mount {m.source or m.type} on {m.target}: {exc.strerror}"
            ) from exc
