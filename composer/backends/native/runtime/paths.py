"""Paths inside a container's root, resolved without ever leaving it.

A rootfs comes from an image, and an image can hold any symlink
(``/dev -> /host``, ``/etc/hosts -> ../../../etc/shadow``). Joining strings
and letting the kernel follow links would make us mount over or read host
files (CVE-2025-31133 / CVE-2025-52565 class). Every path here is resolved by
``openat2(RESOLVE_IN_ROOT)`` relative to a directory fd of the root: a link
is followed as if the root were ``/``, so it can never climb out, and magic
links (``/proc/self/...``) are refused. ``strict`` additionally refuses any
symlink, for targets that Docker's own defaults own (``/proc``, ``/dev``…).
The resulting fd is then used through ``/proc/self/fd/N`` so that the path
is not resolved a second time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from . import syscalls

RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS


def open_in_root(
    root_fd: int, path: str, flags: int = syscalls.O_PATH, *, strict: bool = False, mode: int = 0
) -> int:
    """An fd for ``path`` (container path) under ``root_fd``."""
    resolve = RESOLVE | (syscalls.RESOLVE_NO_SYMLINKS if strict else 0)
    rel = path.lstrip("/") or "."
    return syscalls.openat2(root_fd, rel, flags, resolve, mode)


def fd_path(fd: int) -> str:
    """The ``/proc/self/fd`` path that names exactly the object behind ``fd``."""
    return f"/proc/self/fd/{fd}"


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755, *, strict: bool = False) -> int:
    """Create ``path`` and missing parents under ``root_fd``; returns an O_PATH fd of it.

    Each component is created with ``mkdirat`` relative to the fd of its
    (already safely resolved) parent, then opened again through
    ``openat2`` so that a link planted in between resolves inside the root.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise OSError(errno.EINVAL, f"'..' in container path {path!r}")
    current = os.dup(root_fd)
    try:
        done = ""
        for part in parts:
            done = f"{done}/{part}"
            try:
                nxt = open_in_root(root_fd, done, syscalls.O_PATH | os.O_DIRECTORY, strict=strict)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=current)
                nxt = open_in_root(root_fd, done, syscalls.O_PATH | os.O_DIRECTORY, strict=strict)
            os.close(current)
            current = nxt
        return current
    except BaseException:
        os.close(current)
        raise


def ensure_target(
    root_fd: int, path: str, *, directory: bool, strict: bool = False, mode: int = 0o755
) -> int:
    """An O_PATH fd of a mount target, creating a directory or an empty file if missing."""
    try:
        return open_in_root(root_fd, path, strict=strict)
    except FileNotFoundError:
        pass
    if directory:
        return mkdirs_in_root(root_fd, path, mode, strict=strict)
    parent, _, name = path.rstrip("/").rpartition("/")
    pfd = mkdirs_in_root(root_fd, parent or "/", strict=strict)
    try:
        try:
            fd = os.open(
                name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644, dir_fd=pfd
            )
            os.close(fd)
        except FileExistsError:
            pass
    finally:
        os.close(pfd)
    return open_in_root(root_fd, path, strict=strict)


def is_dir_fd(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def read_in_root(root_fd: int, path: str, limit: int = 4 << 20) -> bytes | None:
    """The bytes of a regular file at ``path`` under the root, ``None`` when missing."""
    try:
        fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
