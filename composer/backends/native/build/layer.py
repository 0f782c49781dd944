"""Commit a build step: turn an overlay upper directory into a layer tarball.

After a step runs on an overlay (the image's layers below, an empty upper
directory above), the upper directory *is* the step's diff: new and changed
files as they are, deletions as overlay whiteouts (character devices 0/0)
and replaced directories marked opaque (xattr ``trusted.overlay.opaque=y``).
The OCI layer format says the same with ``.wh.<name>`` and
``.wh..wh..opq`` entries, so committing is a translation walk. Entries are
written in sorted order with their owners, modes, mtimes and xattrs, and
hard links inside the layer stay hard links, so the same upper directory
always gives the same bytes (and the same diff ID).

The walk also tidies the upper directory so that it can itself become the
layer's unpacked form (``ImageStore.commit_layer`` renames it into the
store): overlayfs's own bookkeeping xattrs (``trusted.overlay.origin``,
``impure`` …, everything but ``opaque``) are removed and sockets, which no
layer holds, are deleted — what is left is exactly what the tar says.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(frozen=True, slots=True)
class CommittedLayer:
    """A layer tarball written to ``path``; ``diff_id`` is its sha256 digest."""

    path: Path
    diff_id: str
    size: int
    """Bytes of the tarball."""
    empty: bool
    content_size: int = 0
    """Bytes of the regular files in it (each hard-linked file once)."""


class _HashingWriter:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def commit_upper(upper: Path, dest: Path) -> CommittedLayer:
    """Write the OCI layer tarball for the overlay upper directory ``upper`` to ``dest``."""
    count = content = 0
    _drop_overlay_xattrs(upper)
    with open(dest, "wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            links: dict[tuple[int, int], str] = {}
            for rel, path, st in _walk(upper):
                if stat.S_ISSOCK(st.st_mode):
                    os.unlink(path)
                    continue
                count += 1
                for info in _entries(rel, path, st, links):
                    if info.isreg() and info.size:
                        content += info.size
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
    digest = "sha256:" + writer.hash.hexdigest()
    return CommittedLayer(dest, digest, writer.size, count == 0, content)


def _walk(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    out: list[tuple[str, Path, os.stat_result]] = []

    def visit(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            names = sorted(e.name for e in it)
        for name in names:
            path = directory / name
            rel = f"{prefix}{name}"
            st = os.lstat(path)
            out.append((rel, path, st))
            if stat.S_ISDIR(st.st_mode):
                visit(path, rel + "/")

    visit(root, "")
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _drop_overlay_xattrs(path: Path, names: list[str] | None = None) -> None:
    """Remove overlayfs's bookkeeping xattrs from ``path``; ``opaque`` is content and stays."""
    if names is None:
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return
    for name in names:
        if name.startswith("trusted.overlay.") and name != OPAQUE_XATTR:
            with contextlib.suppress(OSError):
                os.removexattr(path, name, follow_symlinks=False)


def _xattrs(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return found
    _drop_overlay_xattrs(path, names)
    for name in names:
        if name.startswith("trusted.overlay."):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        found[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return found


def _entries(
    rel: str, path: Path, st: os.stat_result, links: dict[tuple[int, int], str]
) -> list[tarfile.TarInfo]:
    parent, _, name = rel.rpartition("/")
    prefix = f"{parent}/" if parent else ""
    if _is_whiteout(st):
        info = tarfile.TarInfo(prefix + WHITEOUT_PREFIX + name)
        info.mtime = int(st.st_mtime)
        return [info]
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    out = [info]
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        if _opaque(path):
            marker = tarfile.TarInfo(f"{rel}/{OPAQUE_MARKER}")
            marker.mtime = info.mtime
            out.append(marker)
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type = tarfile.LNKTYPE
            info.linkname = links[key]
        else:
            links[key] = rel
            info.type = tarfile.REGTYPE
            info.size = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    else:
        return []  # sockets are not part of an image
    xattrs = _xattrs(path)
    if xattrs:
        info.pax_headers = xattrs
    return out


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
