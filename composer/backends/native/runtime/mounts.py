"""The container's filesystem: rootfs, Docker's default mounts, devices, masks.

Runs in the container's new mount namespace, in the child that becomes
PID 1, in runc's order: make ``/`` a slave recursively (nothing we mount
leaks to the host, and nothing needs unmounting when the container ends:
the namespace dies with its last process), mount the rootfs, then
``/proc``, ``/dev`` (+ nodes and links), ``/dev/pts``, ``/dev/shm``,
``/dev/mqueue``, ``/sys``, ``/sys/fs/cgroup``, then the spec's mounts in
order; ``pivot_root``; then read-only and masked paths.

Every target inside the rootfs is resolved by ``paths.open_in_root``
(never by string joining), and mounted through ``/proc/self/fd/N``.
Targets that Docker's defaults own refuse symlinks outright, and the
``/dev/null`` used to mask files must really be the char device 1:3.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from typing import Literal

from . import syscalls as S
from .cgroups import Layout, cgroup_of
from .paths import ensure_target, fd_path, is_dir_fd, open_in_root
from .spec import DeviceEntry, LaunchSpec, MountEntry, RootfsSpec

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


def _remount(root_fd: int, target: str, flags: int, *, strict: bool = True) -> None:
    """Remount the mount now at ``target`` (resolved again: the fd under it is stale)."""
    fd = open_in_root(root_fd, target, strict=strict)
    try:
        path = fd_path(fd)
        keep = _current_flags(path)
        S.mount(None, path, None, S.MS_REMOUNT | S.MS_BIND | keep | flags)
    finally:
        os.close(fd)


def _current_flags(path: str) -> int:
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
            _remount(root_fd, "/sys", S.MS_RDONLY)
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
        _remount(root_fd, target, nse | ro)


# --- devices -------------------------------------------------------------------

DEFAULT_DEVICES: tuple[DeviceEntry, ...] = (
    DeviceEntry("/dev/null", "c", 1, 3),
    DeviceEntry("/dev/zero", "c", 1, 5),
    DeviceEntry("/dev/full", "c", 1, 7),
    DeviceEntry("/dev/random", "c", 1, 8),
    DeviceEntry("/dev/urandom", "c", 1, 9),
    DeviceEntry("/dev/tty", "c", 5, 0),
)
_LINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
)


_NOT_HOST_DEVICES = frozenset({"pts", "shm", "mqueue", "console", "ptmx"})


def host_devices(base: str = "/dev") -> list[DeviceEntry]:
    """Every char and block device of the host's ``/dev`` (``privileged``, as runc does).

    Read before ``pivot_root``, in the container's copy of the host mounts;
    ``/dev/pts``, ``/dev/shm``, ``/dev/mqueue`` and the console are the
    container's own.
    """
    found: list[DeviceEntry] = []

    def walk(path: str, rel: str, depth: int) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for entry in entries:
            if not rel and entry.name in _NOT_HOST_DEVICES:
                continue
            st = entry.stat(follow_symlinks=False)
            target = f"/dev/{rel}{entry.name}"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind: Literal["c", "b"] = "c" if stat.S_ISCHR(st.st_mode) else "b"
                found.append(
                    DeviceEntry(
                        target,
                        kind,
                        os.major(st.st_rdev),
                        os.minor(st.st_rdev),
                        st.st_mode & 0o7777,
                        st.st_uid,
                        st.st_gid,
                    )
                )
            elif stat.S_ISDIR(st.st_mode) and depth < 3:
                walk(entry.path, f"{rel}{entry.name}/", depth + 1)

    walk(base, "", 0)
    return found


def make_devices(root_fd: int, extra: Iterable[DeviceEntry], *, tty: bool) -> None:
    """Create the default nodes, ``extra`` devices and the standard links in ``/dev``.

    ``/dev`` is the tmpfs we just mounted, so nothing in it comes from the
    image; nested device paths (``/dev/net/tun``) are created below it with
    the same safe walk.
    """
    dev = open_in_root(root_fd, "/dev", os.O_RDONLY | os.O_DIRECTORY, strict=True)
    try:
        old = os.umask(0)
        try:
            for d in (*DEFAULT_DEVICES, *extra):
                _mknod(root_fd, d)
        finally:
            os.umask(old)
        links = list(_LINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "core"))
        for src, name in links:
            with contextlib.suppress(FileExistsError):
                os.symlink(src, name, dir_fd=dev)
        if tty:
            fd = os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600, dir_fd=dev)
            os.close(fd)
    finally:
        os.close(dev)


def _mknod(root_fd: int, d: DeviceEntry) -> None:
    kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.type]
    parent, _, name = d.path.rstrip("/").rpartition("/")
    pfd = ensure_target(root_fd, parent or "/", directory=True, strict=True)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=pfd)
        os.mknod(name, kind | (d.file_mode & 0o7777), os.makedev(d.major, d.minor), dir_fd=pfd)
        os.chown(name, d.uid, d.gid, dir_fd=pfd, follow_symlinks=False)
    finally:
        os.close(pfd)


def bind_console(root_fd: int, tty_fd: int) -> None:
    """Bind the terminal behind ``tty_fd`` onto ``/dev/console`` (Docker does with ``-t``).

    The source is named by its path (``/dev/pts/N``) in this mount
    namespace: the fd itself belongs to a mount of the namespace we left,
    which the kernel refuses as a bind source.
    """
    source = os.ttyname(tty_fd)
    fd = open_in_root(root_fd, "/dev/console", strict=True)
    try:
        S.mount(source, fd_path(fd), None, S.MS_BIND)
    finally:
        os.close(fd)


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
                    _remount(root_fd, m.target, rest, strict=False)
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


# --- after pivot_root ------------------------------------------------------------


def pivot(root_fd: int) -> None:
    """Make the rootfs ``/`` and detach the host's root from this namespace."""
    os.fchdir(root_fd)
    S.pivot_root(".", ".")
    S.umount2(".", S.MNT_DETACH)
    os.chdir("/")


def readonly_root() -> None:
    S.mount(None, "/", None, S.MS_REMOUNT | S.MS_BIND | S.MS_RDONLY | _current_flags("/"))


def readonly_paths(root_fd: int, paths: Iterable[str]) -> None:
    """Bind each path onto itself and remount it read-only (missing ones skipped)."""
    for p in paths:
        try:
            fd = open_in_root(root_fd, p, strict=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            S.mount(fd_path(fd), fd_path(fd), None, S.MS_BIND | S.MS_REC)
        finally:
            os.close(fd)
        _remount(root_fd, p, S.MS_RDONLY)


def null_device(root_fd: int) -> int:
    """An O_PATH fd of the container's ``/dev/null``, checked to be the char device 1:3."""
    fd = open_in_root(root_fd, "/dev/null", strict=True)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise MountError("/dev/null is not the null device: refusing to mask paths with it")
    return fd


def masked_paths(root_fd: int, paths: Iterable[str]) -> None:
    """Hide files behind ``/dev/null`` and directories behind an empty read-only tmpfs."""
    null = null_device(root_fd)
    try:
        for p in paths:
            try:
                fd = open_in_root(root_fd, p, strict=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                if is_dir_fd(fd):
                    S.mount("tmpfs", fd_path(fd), "tmpfs", S.MS_RDONLY)
                else:
                    S.mount(fd_path(null), fd_path(fd), None, S.MS_BIND)
            finally:
                os.close(fd)
    finally:
        os.close(null)


def write_sysctls(sysctls: Iterable[tuple[str, str]]) -> None:
    """Write each sysctl through the container's own ``/proc/sys``."""
    items = list(sysctls)
    if not items:
        return
    base = os.open("/proc/sys", S.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for key, value in items:
            rel = key.replace(".", "/")
            if ".." in rel.split("/"):
                raise MountError(f"invalid sysctl {key}")
            fd = open_in_root(base, rel, os.O_WRONLY)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
    finally:
        os.close(base)
