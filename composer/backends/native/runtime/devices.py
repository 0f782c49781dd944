"""``/dev`` of a container: Docker's nodes and links, extra and host devices, the console.

``/dev`` is the tmpfs ``mounts.mount_defaults`` just mounted, so nothing in
it comes from the image; nodes are made with ``mknod`` relative to a
directory fd reached by ``paths.open_in_root`` (never by joining strings).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from typing import Literal

from . import syscalls as S
from .paths import ensure_target, fd_path, open_in_root
from .spec import DeviceEntry

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
