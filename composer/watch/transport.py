"""Moving files into a running container.

A sync is a list of operations, each a host path copied to a container path
(``Put``) or a container path removed (``Delete``); a transport applies one
list in as few engine calls as it can.

* ``DockerTransport``: every put of the batch goes in one tar archive through
  the Engine's archive API (``PUT /containers/{id}/archive`` at ``/``, which
  creates missing parent directories); every delete in one ``rm -rf`` exec.
* ``NativeTransport``: the native container's root file system is a
  directory on the host, so files are written straight into it: a temporary
  file beside the target, then a rename over it, so that the process in the
  container never reads a half-written file. Every container path is
  resolved inside the root, symlinks included, as the container would see
  it: a symlink in the container that points at ``/etc`` leads to the
  container's ``/etc``, never the host's.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from composer.errors import BackendError, Unsupported

if TYPE_CHECKING:
    from composer.backends.base import Backend


@dataclass(frozen=True, slots=True)
class Put:
    """Copy ``source`` (a file, symlink or directory; a directory without its
    contents) on the host to the absolute ``dest`` in the container."""

    source: Path
    dest: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove ``dest`` (recursively) in the container; absent is fine."""

    dest: str


Operation = Put | Delete


class Transport(Protocol):
    """Applies a batch of operations to one container."""

    def apply(self, container_id: str, operations: Sequence[Operation]) -> None: ...


def _check_dest(dest: str) -> str:
    path = PurePosixPath(dest)
    if not path.is_absolute() or str(path) == "/":
        raise Unsupported(
            f"watch target {dest!r} must be an absolute path below /",
            hint="set develop.watch[].target to a directory such as /app",
        )
    return str(path)


class DockerTransport:
    """The Engine archive API for puts, one ``rm -rf`` exec for deletes."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def apply(self, container_id: str, operations: Sequence[Operation]) -> None:
        deletes = [_check_dest(op.dest) for op in operations if isinstance(op, Delete)]
        puts = [op for op in operations if isinstance(op, Put)]
        if deletes:
            code = self._backend.exec_run(container_id, ["rm", "-rf", "--", *deletes])
            if code != 0:
                raise BackendError(
                    f"removing {', '.join(deletes)} in the container failed (exit code {code})",
                    hint="the image needs an rm command for deletes to propagate",
                )
        if puts:
            self._backend.copy_to(container_id, "/", tar_of(puts))


def tar_of(puts: Sequence[Put]) -> bytes:
    """An uncompressed tar of the puts, with member names relative to ``/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for put in puts:
            name = _check_dest(put.dest).lstrip("/")
            try:
                info = tar.gettarinfo(str(put.source), arcname=name)
            except FileNotFoundError:
                continue  # gone since the batch was planned; its delete comes next batch
            if info.isreg():
                try:
                    with put.source.open("rb") as handle:
                        data = handle.read()
                except FileNotFoundError:
                    continue
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif info.isdir() or info.issym():
                tar.addfile(info)
    return buffer.getvalue()


# --- native -----------------------------------------------------------------


class RootedBackend(Protocol):
    """What the native transport needs: the container's root as seen from the host."""

    def container_root(self, container_id: str) -> Path: ...


_MAX_LINKS = 40


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path of the container path ``path``, resolved as if ``root`` were ``/``.

    Symlinks are followed with ``root`` as their root (an absolute link
    target restarts at ``root``; ``..`` stops at ``root``), so the result is
    always inside ``root``. The last component is followed only when
    ``follow_last``. Missing components are taken as plain names.
    """
    pending = [p for p in PurePosixPath(path).parts if p not in ("/", "")]
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if (pending or follow_last) and candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise BackendError(
                    f"too many levels of symbolic links resolving {path}",
                    hint="a symlink loop in the container's file system",
                )
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in PurePosixPath(target).parts if p not in ("/", "")]
            pending.extend(reversed(parts))
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


class NativeTransport:
    """Writes straight into a native container's root file system."""

    def __init__(self, backend: RootedBackend) -> None:
        self._backend = backend

    def apply(self, container_id: str, operations: Sequence[Operation]) -> None:
        root = self._backend.container_root(container_id)
        for op in operations:
            dest = _check_dest(op.dest)
            if isinstance(op, Delete):
                _remove(resolve_in_root(root, dest, follow_last=False))
            else:
                self._put(root, op.source, dest)

    def _put(self, root: Path, source: Path, dest: str) -> None:
        try:
            info = os.lstat(source)
        except FileNotFoundError:
            return
        parent = _make_dirs(root, str(PurePosixPath(dest).parent))
        target = parent / PurePosixPath(dest).name
        if stat.S_ISDIR(info.st_mode):
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(mode=stat.S_IMODE(info.st_mode), exist_ok=True)
            return
        temporary = parent / f".{target.name}.composer-{os.getpid()}"
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(source), temporary)
        elif stat.S_ISREG(info.st_mode):
            shutil.copyfile(source, temporary, follow_symlinks=False)
            os.chmod(temporary, stat.S_IMODE(info.st_mode))
        else:
            return  # sockets, fifos and devices are not synced
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(temporary, target)


def _make_dirs(root: Path, dest: str) -> Path:
    """Create ``dest`` (a container directory) under ``root``; return its host path."""
    current = "/"
    host = root
    for part in PurePosixPath(dest).parts[1:]:
        current = str(PurePosixPath(current) / part)
        host = resolve_in_root(root, current)
        if host.is_dir():
            continue
        if os.path.lexists(host):
            _remove(host)
        # Every existing component of ``host`` is a real directory inside the root
        # (links were resolved), so creating the missing ones cannot leave it.
        host.mkdir(mode=0o755, parents=True)
    return host


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def transport_for(backend: Backend) -> Transport:
    """The transport of a backend: direct writes when it exposes container roots."""
    if callable(getattr(backend, "container_root", None)):
        return NativeTransport(backend)  # type: ignore[arg-type]
    return DockerTransport(backend)
