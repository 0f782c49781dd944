"""Mount a build step's overlay on the host for the length of a COPY or ADD.

RUN steps get their overlay from the runtime, inside the container's own
mount namespace; file steps (COPY, ADD, WORKDIR) write into the same kind
of overlay mounted for a moment on the host, so that the files land in the
step's upper directory and the commit sees exactly what the step changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import BackendError

_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class StepDirs:
    """A step's scratch directories: ``upper`` receives its changes."""

    base: Path
    upper: Path
    work: Path
    merged: Path
    empty: Path
    """An empty directory, the bottom lower layer of an image with none (``FROM scratch``)."""

    def lowers(self, layer_dirs: Sequence[Path]) -> tuple[str, ...]:
        return tuple(str(p) for p in layer_dirs) or (str(self.empty),)


@contextlib.contextmanager
def step_dirs(tmp_root: Path) -> Iterator[StepDirs]:
    """Fresh upper/work/merged directories, removed afterwards."""
    tmp_root.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="build-", dir=tmp_root))
    dirs = StepDirs(base, base / "upper", base / "work", base / "merged", base / "empty")
    for d in (dirs.upper, dirs.work, dirs.merged, dirs.empty):
        d.mkdir()
    try:
        yield dirs
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _mount(source: str, target: str, fstype: str, data: str) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise BackendError(
            f"cannot mount the build overlay on {target}: {os.strerror(err)}",
            hint="the native builder needs root and overlayfs; or build with --backend docker",
        )


def _umount(target: str) -> None:
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise BackendError(f"cannot unmount {target}: {os.strerror(err)}")


@contextlib.contextmanager
def mounted(
    lowers: Sequence[str], target: Path, upper: Path | None = None, work: Path | None = None
) -> Iterator[Path]:
    """The overlay of ``lowers`` (top first) at ``target``; read-only without ``upper``."""
    layers = list(lowers)
    if upper is None and len(layers) == 1:
        # An overlay without an upper dir needs two lower dirs: add an empty one.
        empty = target.parent / f".{target.name}-empty"
        empty.mkdir(exist_ok=True)
        layers.append(str(empty))
    data = "lowerdir=" + ":".join(layers)
    if upper is not None and work is not None:
        data += f",upperdir={upper},workdir={work}"
    target.mkdir(parents=True, exist_ok=True)
    _mount("overlay", str(target), "overlay", data)
    try:
        yield target
    finally:
        _umount(str(target))
