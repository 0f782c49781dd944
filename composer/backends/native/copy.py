"""``cp`` for the native backend: files in and out of a container's root, safely.

The root is a directory fd: ``/proc/<pid>/root`` of a running container
(its mount namespace, volumes included) or the container's overlay mounted
for the moment of the copy when it is stopped. Every path inside it is
resolved by the kernel with ``openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS)``: symlinks and ``..`` are followed as the
container would see them and can never climb out to the host (the class of
CVE-2018-15664 and CVE-2019-14271), and paths are never built by joining
strings onto a host path. Entries are created relative to their parent's
fd with ``O_NOFOLLOW``/``O_EXCL``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from composer.backends.native.runtime import syscalls
from composer.backends.runtime import PathStat
from composer.errors import BackendError, NotFound, Unsupported

CHUNK = 1 << 16

# Go os.FileMode bits, as the Engine API reports them in PathStat.mode.
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHARDEV = 1 << 21
GO_STICKY = 1 << 20


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """``openat2`` of ``path`` resolved as if ``root_fd`` were ``/`` (``OSError`` on failure)."""
    resolve = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
    try:
        return syscalls.openat2(root_fd, path or "/", flags, resolve, mode)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            raise Unsupported(
                "copying files needs openat2 (Linux 5.6 or later)",
                hint="use --backend docker on this kernel",
            ) from None
        raise


def _split(path: str) -> tuple[str, str]:
    """``(parent, name)`` of a container path; the root itself is ``("/", ".")``."""
    pure = PurePosixPath("/" + path.lstrip("/"))
    if pure == PurePosixPath("/"):
        return "/", "."
    return str(pure.parent), pure.name


@contextlib.contextmanager
def _opened(root_fd: int, path: str, what: str) -> Iterator[tuple[int, str]]:
    """The parent directory of ``path`` (fd, resolved in root) and the last name."""
    parent, name = _split(path)
    try:
        fd = open_in_root(root_fd, parent, os.O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        raise NotFound(f"{what}: no such file or directory: {path}") from None
    except NotADirectoryError:
        raise NotFound(f"{what}: not a directory: {parent}") from None
    try:
        yield fd, name
    finally:
        os.close(fd)


def go_mode(st: os.stat_result) -> int:
    """``st_mode`` as Go's ``os.FileMode``."""
    mode = stat.S_IMODE(st.st_mode) & 0o777
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFDIR:
        mode |= GO_DIR
    elif kind == stat.S_IFLNK:
        mode |= GO_SYMLINK
    elif kind == stat.S_IFIFO:
        mode |= GO_PIPE
    elif kind == stat.S_IFSOCK:
        mode |= GO_SOCKET
    elif kind == stat.S_IFCHR:
        mode |= GO_DEVICE | GO_CHARDEV
    elif kind == stat.S_IFBLK:
        mode |= GO_DEVICE
    if st.st_mode & stat.S_ISUID:
        mode |= GO_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= GO_STICKY
    return mode


def _rfc3339(seconds: float) -> str:
    return (
        datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).isoformat().replace("+00:00", "Z")
    )


def stat_path(root_fd: int, path: str) -> PathStat:
    """What ``path`` is (the last component not followed, as ``docker cp`` stats it)."""
    with _opened(root_fd, path, "stat") as (parent, name):
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFound(f"stat: no such file or directory: {path}") from None
        link = ""
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(name, dir_fd=parent)
        shown = PurePosixPath("/" + path.lstrip("/")).name or "/"
        return PathStat(
            name=shown, size=st.st_size, mode=go_mode(st), mtime=_rfc3339(st.st_mtime),
            link_target=link,
        )  # fmt: skip


# --- out of the container ---------------------------------------------------------


def copy_from(root_fd: int, path: str) -> Iterator[bytes]:
    """A tar of ``path`` named by its last component (``d/…`` for a directory ``/x/d``).

    The archive is built into a spooled temporary file before the first
    chunk is returned, so ``NotFound`` is raised at the call, not while
    reading.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (closed by _chunks)
    try:
        with _opened(root_fd, path, "copy") as (parent, name):
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise NotFound(f"copy: no such file or directory: {path}") from None
            arcname = PurePosixPath("/" + path.lstrip("/")).name or "."
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, parent, name, arcname, st)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return _chunks(spool)


def _chunks(spool: tempfile.SpooledTemporaryFile[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk


def _tarinfo(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def _add(tar: tarfile.TarFile, parent: int, name: str, arcname: str, st: os.stat_result) -> None:
    info = _tarinfo(arcname, st)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        fd = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent
        )
        try:
            for child in sorted(os.listdir(fd)):
                child_st = os.stat(child, dir_fd=fd, follow_symlinks=False)
                _add(tar, fd, child, f"{arcname}/{child}", child_st)
        finally:
            os.close(fd)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tar.addfile(info, f)
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(name, dir_fd=parent)
        tar.addfile(info)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    # sockets are skipped, as Docker skips them


# --- into the container -----------------------------------------------------------


def copy_to(root_fd: int, dest: str, tar_stream: bytes) -> None:
    """Extract ``tar_stream`` into the existing directory ``dest``.

    Member names are relative to ``dest``; each member's parent is resolved
    inside the root (so ``..`` and symlinks stay in the container), then
    the entry is created relative to that parent without following links.
    Directory modes and times are set last, so that read-only directories
    can still be filled.
    """
    try:
        dest_fd = open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"copy: destination directory does not exist: {dest}") from None
    os.close(dest_fd)
    base = PurePosixPath("/" + dest.lstrip("/"))
    later: list[tuple[str, tarfile.TarInfo]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_stream), mode="r:*") as tar:
            for member in tar:
                rel = PurePosixPath(member.name.lstrip("/"))
                if not rel.parts or rel.parts == (".",):
                    continue
                target = str(base.joinpath(*rel.parts))
                _ensure_parents(root_fd, base, rel.parts[:-1])
                _extract(root_fd, tar, member, target, base)
                if member.isdir():
                    later.append((target, member))
    except tarfile.TarError as exc:
        raise BackendError(f"copy into {dest}: not a valid tar archive: {exc}") from exc
    except OSError as exc:
        raise BackendError(f"copy into {dest}: {exc.strerror or exc}") from exc
    for target, member in reversed(later):
        with _opened(root_fd, target, "copy") as (parent, name), contextlib.suppress(OSError):
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)


def _ensure_parents(root_fd: int, base: PurePosixPath, parts: tuple[str, ...]) -> None:
    """Create the directories above a member that the archive does not list (0755)."""
    for depth in range(1, len(parts) + 1):
        path = str(base.joinpath(*parts[:depth]))
        with _opened(root_fd, path, "copy") as (parent, name), contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)


def _extract(
    root_fd: int, tar: tarfile.TarFile, member: tarfile.TarInfo, target: str, base: PurePosixPath
) -> None:
    with _opened(root_fd, target, "copy") as (parent, name):
        existing: os.stat_result | None
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if member.isdir():
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                return
            if existing is not None:
                os.unlink(name, dir_fd=parent)
            os.mkdir(name, 0o700, dir_fd=parent)
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise BackendError(f"copy: cannot overwrite directory {target} with a file")
            os.unlink(name, dir_fd=parent)
        mode = member.mode & 0o7777
        if member.isreg():
            src = tar.extractfile(member)
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=parent,
            )
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                os.fchmod(out.fileno(), mode)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
        elif member.islnk():
            source = base.joinpath(*PurePosixPath(member.linkname.lstrip("/")).parts)
            _hardlink(root_fd, str(source), parent, name)
        elif member.isfifo():
            os.mkfifo(name, mode, dir_fd=parent)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(name, kind | mode, os.makedev(member.devmajor, member.devminor), dir_fd=parent)


def _hardlink(root_fd: int, source: str, parent: int, name: str) -> None:
    """A hard link to an entry of the archive already extracted (resolved inside the root)."""
    source_parent, source_name = _split(source)
    fd = open_in_root(root_fd, source_parent, os.O_PATH | os.O_DIRECTORY)
    try:
        os.link(source_name, name, src_dir_fd=fd, dst_dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(fd)


@contextlib.contextmanager
def root_dir(path: str) -> Iterator[int]:
    """An fd on a container root directory (``/proc/<pid>/root`` or a mounted overlay)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"container root {path} is gone") from None
    try:
        yield fd
    finally:
        os.close(fd)
