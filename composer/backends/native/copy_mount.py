"""A stopped container's root file system, mounted for the moment of a ``cp``.

A running container's files are reached through ``/proc/<pid>/root``; a
stopped one has no mount namespace, so its overlay (image layers + its own
upper directory) is mounted on a fresh directory under the state root's
``tmp``, used, and detached again in ``finally`` (lazily, so a copy that
is still reading cannot keep it). Volumes are not mounted there: as with
``docker cp`` on a stopped container, what is copied is the container's
own file system.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from composer.backends.native.runtime.spec import RootfsSpec
from composer.errors import BackendError

MNT_DETACH = 2
MS_RDONLY = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


@contextlib.contextmanager
def overlay_mounted(rootfs: RootfsSpec, scratch: Path) -> Iterator[str]:
    """``rootfs`` mounted on a temporary directory (its path), detached afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    point = tempfile.mkdtemp(prefix="cp-", dir=scratch)
    try:
        if rootfs.overlay:
            data = "lowerdir=" + ":".join(rootfs.lowerdirs)
            if rootfs.upperdir and rootfs.workdir:
                data += f",upperdir={rootfs.upperdir},workdir={rootfs.workdir}"
            _mount("overlay", point, "overlay", 0, data)
        else:
            _mount(rootfs.mountpoint, point, "", 0x1000 | 0x4000, "")  # MS_BIND | MS_REC
    except OSError as exc:
        os.rmdir(point)
        raise BackendError(
            f"cannot mount the container's file system for the copy: {exc.strerror}",
            hint="start the container and copy again",
        ) from exc
    try:
        yield point
    finally:
        if _libc.umount2(point.encode(), MNT_DETACH) == 0:
            with contextlib.suppress(OSError):
                os.rmdir(point)
