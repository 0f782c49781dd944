"""After ``pivot_root``: read-only and masked paths, the read-only root, sysctls.

Masked files are covered by a bind of the container's ``/dev/null``, which
must really be the char device 1:3 (CVE-2025-31133: an image or a race that
swaps it for a link must not turn a mask into a bind of something else);
masked directories get an empty read-only tmpfs. Every path is resolved
with symlinks refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from . import syscalls as S
from .mounts import MountError, current_flags, remount
from .paths import fd_path, is_dir_fd, open_in_root


def pivot(root_fd: int) -> None:
    """Make the rootfs ``/`` and detach the host's root from this namespace."""
    os.fchdir(root_fd)
    S.pivot_root(".", ".")
    S.umount2(".", S.MNT_DETACH)
    os.chdir("/")


def readonly_root() -> None:
    S.mount(None, "/", None, S.MS_REMOUNT | S.MS_BIND | S.MS_RDONLY | current_flags("/"))


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
        remount(root_fd, p, S.MS_RDONLY)


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
