"""Unpack one image layer into an overlay lower directory, safely.

A layer is hostile input. ``tarfile.extractall`` (and its filters, see
CVE-2024-12718, CVE-2025-4138, CVE-2025-4517) decides with path strings and
then lets the kernel resolve them, so a symlink planted by an earlier entry
can redirect a later write out of the root (CVE-2014-9356, CVE-2018-15664,
CVE-2021-29136, CVE-2021-32760). Here ``tarfile`` only parses headers; every
entry is created by this module relative to an open directory fd:

* names are split into components; absolute names, ``..`` and NUL are
  refused, and a name that is the root itself may only be a directory;
* each parent component is opened with ``O_DIRECTORY|O_NOFOLLOW`` from the
  previous fd, so a symlink (or a non-directory) anywhere on the way is an
  error instead of a detour; missing parents are created as plain dirs;
* files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` after removing what
  the name held, metadata is applied through the new fd or with
  ``follow_symlinks=False``, and a symlink is never chmod'ed;
* hard-link targets are looked up the same way inside this layer (or, for
  a link to an earlier layer, inside the lower layers, and copied);
* directory modes, owners and mtimes are applied last (creating children
  would change them), again by walking without following symlinks;
* the decompressed stream is metered: past ``max_bytes`` the layer is a
  decompression bomb and extraction stops.

Whiteouts become overlayfs's form: ``.wh.x`` a 0/0 character device ``x``,
``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its directory.
The sha256 of the decompressed stream (the layer's DiffID) is computed on
the way.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from composer.backends.native.images.decompress import (
    LayerTooLarge,
    Meter,
    UnsafeLayer,
    decompressed,
    open_decompressed,
    size_cap,
)
from composer.backends.native.images.safepath import (
    DIR_FLAGS,
    DirTree,
    escape,
    find_in_lower,
    lstat_at,
    split_name,
)
from composer.errors import BackendError

__all__ = [
    "ExtractResult",
    "LayerExtractor",
    "LayerTooLarge",
    "UnsafeLayer",
    "extract_layer",
    "open_decompressed",
    "size_cap",
    "split_name",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
# Layers may not set overlay's own xattrs (redirects, origins) or other trusted.* ones.
_FORBIDDEN_XATTR_PREFIXES = ("trusted.",)

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ExtractResult:
    """What one extraction produced: the DiffID, the tar size, the file bytes written."""

    diff_id: str
    tar_size: int
    content_size: int
    entries: int


@dataclass
class _DirMeta:
    mode: int
    uid: int
    gid: int
    mtime_ns: int


class LayerExtractor:
    """Extract one decompressed tar stream into an empty directory (see the module doc)."""

    def __init__(
        self,
        dest: Path,
        *,
        max_bytes: int,
        lowers: Sequence[Path] = (),
        chown: bool = True,
    ) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.lowers = tuple(lowers)
        self.chown = chown
        self._dirs: dict[tuple[str, ...], _DirMeta] = {}
        self._content = 0
        self._entries = 0

    def extract(self, stream: IO[bytes]) -> ExtractResult:
        meter = Meter(stream, self.max_bytes)
        root_fd = os.open(self.dest, DIR_FLAGS)
        tree = DirTree(root_fd)
        try:
            try:
                with tarfile.open(fileobj=meter, mode="r|", bufsize=_CHUNK) as tf:  # type: ignore[call-overload]
                    for member in tf:
                        self._entries += 1
                        self._one(tf, member, tree)
            except tarfile.TarError as exc:
                raise UnsafeLayer(f"layer is not a valid tar archive: {exc}") from exc
            except (EOFError, OSError, ValueError) as exc:
                if isinstance(exc, BackendError):
                    raise
                raise UnsafeLayer(f"layer could not be unpacked: {exc}") from exc
            meter.drain()
            self._apply_dir_meta(tree)
        finally:
            tree.close()
            os.close(root_fd)
        return ExtractResult(
            diff_id="sha256:" + meter.sha.hexdigest(),
            tar_size=meter.count,
            content_size=self._content,
            entries=self._entries,
        )

    # -- one entry -------------------------------------------------------------

    def _one(self, tf: tarfile.TarFile, m: tarfile.TarInfo, tree: DirTree) -> None:
        tree.trim()
        parts = split_name(m.name)
        if not parts:
            if m.isdir():
                self._dirs[()] = _DirMeta(m.mode, m.uid, m.gid, _mtime_ns(m))
                return
            raise escape(m.name, "would replace the root directory")
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(m, parts, tree)
            return
        if m.sparse is not None:
            raise UnsafeLayer(f"layer entry {m.name!r} is a sparse file, which is not supported")
        parent = tree.dir_fd(parts[:-1], create=True, name=m.name)
        assert parent is not None
        if m.isdir():
            self._make_dir(parent, base, parts, m, tree)
            return
        self._clear(parent, base, parts, tree)
        if m.isreg():
            self._make_file(tf, parent, base, m)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=parent)
            self._owner(parent, base, m)
            os.utime(base, ns=(_mtime_ns(m),) * 2, dir_fd=parent, follow_symlinks=False)
            self._xattrs_at(parent, base, m)
        elif m.islnk():
            self._make_link(parent, base, m, tree)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._make_node(parent, base, m)
        else:
            return  # volume labels and other non-file entries carry nothing to create

    def _whiteout(self, m: tarfile.TarInfo, parts: tuple[str, ...], tree: DirTree) -> None:
        parent = tree.dir_fd(parts[:-1], create=True, name=m.name)
        assert parent is not None
        base = parts[-1]
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs metadata (.wh..wh.plnk and friends): nothing to create
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise escape(m.name, "is a whiteout of no name")
        tparts = (*parts[:-1], target)
        self._clear(parent, target, tparts, tree)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)

    def _clear(self, parent: int, base: str, parts: tuple[str, ...], tree: DirTree) -> None:
        """Remove what ``base`` holds (a later entry replaces an earlier one, as tar does)."""
        st = lstat_at(parent, base)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            tree.forget(parts)
            self._dirs = {k: v for k, v in self._dirs.items() if k[: len(parts)] != parts}
            shutil.rmtree(base, dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)

    def _make_dir(
        self, parent: int, base: str, parts: tuple[str, ...], m: tarfile.TarInfo, tree: DirTree
    ) -> None:
        st = lstat_at(parent, base)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(base, dir_fd=parent)  # a symlink or file is replaced, never followed
            st = None
        if st is None:
            os.mkdir(base, 0o700, dir_fd=parent)
        self._dirs[parts] = _DirMeta(m.mode, m.uid, m.gid, _mtime_ns(m))
        xattrs = _xattrs(m)
        if xattrs:
            fd = tree.dir_fd(parts, create=False, name=m.name)
            assert fd is not None
            for key, value in xattrs:
                _setxattr(fd, key, value)

    def _make_file(self, tf: tarfile.TarFile, parent: int, base: str, m: tarfile.TarInfo) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent)
        try:
            src = tf.extractfile(m)
            if src is not None:
                while chunk := src.read(_CHUNK):
                    _write_all(fd, chunk)
            self._content += m.size
            self._finish_fd(fd, m)
        finally:
            os.close(fd)

    def _finish_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.chown:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, stat.S_IMODE(m.mode))  # after chown, which clears set-id bits
        for key, value in _xattrs(m):
            _setxattr(fd, key, value)
        os.utime(fd, ns=(_mtime_ns(m),) * 2)

    def _make_node(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        if m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
        self._owner(parent, base, m)
        # A node we just made is not a symlink, so following is harmless here.
        os.chmod(base, stat.S_IMODE(m.mode), dir_fd=parent)
        self._xattrs_at(parent, base, m)
        os.utime(base, ns=(_mtime_ns(m),) * 2, dir_fd=parent, follow_symlinks=False)

    def _make_link(self, parent: int, base: str, m: tarfile.TarInfo, tree: DirTree) -> None:
        tparts = split_name(m.linkname, what="hard link target")
        if not tparts:
            raise escape(m.name, "is a hard link to the root directory")
        try:
            tparent = tree.dir_fd(tparts[:-1], create=False, name=m.linkname)
        except UnsafeLayer as exc:
            raise escape(m.name, f"is a hard link through a symlink ({exc.message})") from exc
        if tparent is not None:
            tst = lstat_at(tparent, tparts[-1])
            if tst is not None:
                if stat.S_ISDIR(tst.st_mode):
                    raise escape(m.name, "is a hard link to a directory")
                os.link(
                    tparts[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False
                )
                return
        self._copy_from_lower(parent, base, tparts, m)

    def _copy_from_lower(
        self, parent: int, base: str, tparts: tuple[str, ...], m: tarfile.TarInfo
    ) -> None:
        """A hard link to a file of an earlier layer: copy it (layers are separate dirs)."""
        for lower in self.lowers:
            found = find_in_lower(lower, tparts, m.name)
            if found is None:
                continue
            lparent, st = found
            try:
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    break  # a whiteout: deleted in that layer
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(tparts[-1], dir_fd=lparent), base, dir_fd=parent)
                    return
                if not stat.S_ISREG(st.st_mode):
                    raise escape(m.name, "is a hard link to something that is not a file")
                self._copy_file(lparent, tparts[-1], parent, base, st)
                return
            finally:
                os.close(lparent)
        raise UnsafeLayer(
            f"layer entry {m.name!r} is a hard link to {m.linkname!r}, which is not in the layer"
        )

    def _copy_file(self, sparent: int, sbase: str, parent: int, base: str, st: Any) -> None:
        src = os.open(sbase, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sparent)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            dst = os.open(base, flags, 0o600, dir_fd=parent)
            try:
                while chunk := os.read(src, _CHUNK):
                    _write_all(dst, chunk)
                if self.chown:
                    os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def _owner(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        if self.chown:
            os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)

    def _xattrs_at(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        xattrs = _xattrs(m)
        if not xattrs:
            return
        # /proc/self/fd/N pins the parent; the last component is never followed.
        path = f"/proc/self/fd/{parent}/{base}"
        for key, value in xattrs:
            _setxattr(path, key, value, follow_symlinks=False)

    # -- directories last ------------------------------------------------------

    def _apply_dir_meta(self, tree: DirTree) -> None:
        for parts in sorted(self._dirs, key=len, reverse=True):
            meta = self._dirs[parts]
            tree.trim()
            fd = tree.dir_fd(parts, create=False, name="/".join(parts) or ".")
            if fd is None:
                continue  # removed again by a later entry
            if self.chown:
                os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, stat.S_IMODE(meta.mode))
            os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mtime_ns(m: tarfile.TarInfo) -> int:
    return int(m.mtime * 1_000_000_000)


def _xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in m.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX) :]
        if name.startswith(_FORBIDDEN_XATTR_PREFIXES):
            continue
        out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def _setxattr(target: int | str, key: str, value: bytes, *, follow_symlinks: bool = True) -> None:
    try:
        os.setxattr(target, key, value, follow_symlinks=follow_symlinks)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EPERM):
            raise


def extract_layer(
    blob: Path,
    dest: Path,
    *,
    max_bytes: int | None = None,
    lowers: Sequence[Path] = (),
) -> ExtractResult:
    """Extract the (possibly compressed) layer blob at ``blob`` into the empty dir ``dest``.

    Owners are set only as root: anyone else cannot give files away, and
    keeps them as their own.
    """
    chown = os.geteuid() == 0
    with open(blob, "rb") as raw:
        cap = max_bytes if max_bytes is not None else size_cap(os.fstat(raw.fileno()).st_size)
        with decompressed(raw) as stream:
            return LayerExtractor(dest, max_bytes=cap, lowers=lowers, chown=chown).extract(stream)
