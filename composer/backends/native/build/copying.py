"""COPY and ADD into a build step's root filesystem, safely.

The destination is the step's mounted overlay (the image below, the step's
empty upper directory above). Every destination path is resolved by the
kernel inside that root (``openat2`` with ``RESOLVE_IN_ROOT``, shared with
``cp``), so a symlink that an image planted at ``/app`` or ``/etc`` can
never send a write to the host; entries are created relative to their
parent's fd with ``O_NOFOLLOW | O_EXCL``. Owners default to ``0:0`` as in
Docker, ``--chown`` and ``--chmod`` apply to everything copied, and
directories that COPY has to create get ``0755``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from composer.backends.native.copy import open_in_root
from composer.errors import BackendError

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY


@dataclass(frozen=True, slots=True)
class CopyEntry:
    """One thing to create: ``rel`` below the destination, from ``source`` (or ``data``)."""

    rel: str
    source: Path | None
    st_mode: int
    mtime: float = 0.0
    data: bytes | None = None
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Ownership:
    uid: int = 0
    gid: int = 0
    chmod: int | None = None


@contextlib.contextmanager
def _dir_in_root(root_fd: int, path: str) -> Iterator[int]:
    fd = open_in_root(root_fd, path, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def make_dirs(root_fd: int, path: str, owner: Ownership | None = None) -> None:
    """``mkdir -p`` of ``path`` inside the root; new directories are 0755 (chowned to ``owner``)."""
    parts = PurePosixPath("/" + path.lstrip("/")).parts[1:]
    for depth in range(1, len(parts) + 1):
        parent = "/" + "/".join(parts[: depth - 1])
        with _dir_in_root(root_fd, parent) as pfd:
            try:
                os.mkdir(parts[depth - 1], 0o755, dir_fd=pfd)
            except FileExistsError:
                continue
            if owner is not None:
                os.chown(parts[depth - 1], owner.uid, owner.gid, dir_fd=pfd, follow_symlinks=False)


def is_dir_in_root(root_fd: int, path: str) -> bool:
    """Whether ``path`` (symlinks followed inside the root) is a directory."""
    try:
        fd = open_in_root(root_fd, path, _DIR_FLAGS)
    except OSError:
        return False
    os.close(fd)
    return True


def write_entries(root_fd: int, dest_dir: str, entries: list[CopyEntry], owner: Ownership) -> int:
    """Create ``entries`` below the existing directory ``dest_dir``; return bytes copied."""
    copied = 0
    base = PurePosixPath("/" + dest_dir.lstrip("/"))
    for entry in entries:
        target = base / entry.rel if entry.rel else base
        parent, name = str(target.parent), target.name
        if not entry.rel:
            continue  # the source directory itself: make_dirs created its destination
        try:
            with _dir_in_root(root_fd, parent) as pfd:
                copied += _create(pfd, name, entry, owner, str(target))
        except OSError as exc:
            raise BackendError(f"copy to {target}: {exc.strerror or exc}") from exc
    return copied


def _create(pfd: int, name: str, entry: CopyEntry, owner: Ownership, target: str) -> int:
    mode = entry.st_mode
    perm = owner.chmod if owner.chmod is not None else stat.S_IMODE(mode)
    try:
        existing = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if stat.S_ISDIR(mode):
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            if existing is not None:
                os.unlink(name, dir_fd=pfd)
            os.mkdir(name, 0o700, dir_fd=pfd)
        os.chown(name, owner.uid, owner.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(name, perm, dir_fd=pfd, follow_symlinks=False)
        return 0
    if existing is not None:
        if stat.S_ISDIR(existing.st_mode):
            raise BackendError(f"copy: cannot replace the directory {target} with a file")
        os.unlink(name, dir_fd=pfd)
    if entry.link is not None:
        os.symlink(entry.link, name, dir_fd=pfd)
        os.chown(name, owner.uid, owner.gid, dir_fd=pfd, follow_symlinks=False)
        return 0
    fd = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd
    )
    size = 0
    with os.fdopen(fd, "wb") as out:
        if entry.data is not None:
            out.write(entry.data)
            size = len(entry.data)
        elif entry.source is not None:
            with open(entry.source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                size = src.tell()
        os.fchown(out.fileno(), owner.uid, owner.gid)
        os.fchmod(out.fileno(), perm)
    if entry.mtime:
        os.utime(name, (entry.mtime, entry.mtime), dir_fd=pfd, follow_symlinks=False)
    return size
