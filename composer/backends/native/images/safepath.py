"""Walking a directory tree by fds without ever following a symlink.

Every path of a layer is resolved here one component at a time, each
opened with ``O_DIRECTORY|O_NOFOLLOW`` relative to the previous fd, so a
symlink (or a file) where a directory should be is an error, never a
detour out of the root. Names are checked before any walking: absolute
names, ``..`` and NUL bytes are refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import OrderedDict
from pathlib import Path

from composer.backends.native.images.decompress import UnsafeLayer

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_name(name: str, *, what: str = "entry") -> tuple[str, ...]:
    """The components of a member name; ``UnsafeLayer`` for absolute, ``..`` or NUL names."""
    if "\x00" in name:
        raise UnsafeLayer(f"layer {what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeLayer(f"layer {what} {name!r} is an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeLayer(f"layer {what} {name!r} leaves the root with '..'")
    return parts


def escape(name: str, why: str) -> UnsafeLayer:
    return UnsafeLayer(
        f"layer entry {name!r} {why}", hint="the layer tries to write outside its root; refused"
    )


class DirTree:
    """Directory fds under one root, opened component by component without following links."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._cache: OrderedDict[tuple[str, ...], int] = OrderedDict()

    def close(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def forget(self, prefix: tuple[str, ...]) -> None:
        """Drop cached fds at or under ``prefix`` (the directory was removed)."""
        for key in [k for k in self._cache if k[: len(prefix)] == prefix]:
            os.close(self._cache.pop(key))

    def dir_fd(self, parts: tuple[str, ...], *, create: bool, name: str) -> int | None:
        """An fd for the directory ``parts`` (borrowed: do not close), or None if missing."""
        if not parts:
            return self.root_fd
        cached = self._cache.get(parts)
        if cached is not None:
            self._cache.move_to_end(parts)
            return cached
        parent = self.dir_fd(parts[:-1], create=create, name=name)
        if parent is None:
            return None
        fd = open_child_dir(parent, parts[-1], create=create, name=name)
        if fd is None:
            return None
        self._cache[parts] = fd
        return fd

    def trim(self, keep: int = 64) -> None:
        """Close the least recently used fds (between entries, never while one is borrowed)."""
        while len(self._cache) > keep:
            os.close(self._cache.popitem(last=False)[1])


def open_child_dir(parent: int, comp: str, *, create: bool, name: str) -> int | None:
    for attempt in (0, 1):
        try:
            return os.open(comp, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create or attempt:
                return None
            with contextlib.suppress(FileExistsError):
                os.mkdir(comp, 0o755, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise escape(
                    name, f"passes through {comp!r}, which is a symlink or a file"
                ) from None
            raise
    return None  # pragma: no cover - the loop returns or raises


def lstat_at(parent: int, base: str) -> os.stat_result | None:
    try:
        return os.stat(base, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def find_in_lower(
    lower: Path, parts: tuple[str, ...], name: str
) -> tuple[int, os.stat_result] | None:
    """(parent fd, lstat) of ``parts`` in one lower dir, walking without following links."""
    fd = os.open(lower, DIR_FLAGS)
    try:
        for comp in parts[:-1]:
            nxt = open_child_dir(fd, comp, create=False, name=name)
            if nxt is None:
                return None
            os.close(fd)
            fd = nxt
        st = lstat_at(fd, parts[-1])
        if st is None:
            return None
        result = (fd, st)
        fd = -1
        return result
    except UnsafeLayer:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
