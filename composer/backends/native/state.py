"""The native backend's state root: where everything lives, and how it is written.

State on disk is the source of truth, shared by every composer process and
the per-project supervisors, so two rules hold everywhere:

* every write is atomic (``atomic_write``: a temporary file in the same
  directory, fsync'd, then renamed over the target), so a reader never sees
  half a record and a crash never leaves one (files that will not outlive
  the call writing them — a ``run --rm`` one-off's — skip the fsync, see
  ``transient_writes``);
* a change that reads, decides and writes holds an exclusive ``flock`` on a
  lock file for its scope (``locked``), so two processes never interleave.

The layout (every path is built here, nowhere else)::

    <root>/images/...            image store (blobs, layers, configs, tags)
    <root>/containers/<id>/      one container: record, state, logs, overlay dirs
    <root>/volumes/<name>/       named volume: _data/ and meta.json
    <root>/networks/<name>/      network record and endpoints
    <root>/projects/<project>/   supervisor socket, pid and lock
    <root>/locks/                lock files
    <root>/tmp/                  scratch on the same filesystem (for renames)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "/var/lib/composer"
ROOT_ENV = "COMPOSER_ROOT"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def state_root_path(environ: Mapping[str, str]) -> Path:
    """The state root named by ``COMPOSER_ROOT``, else the default."""
    return Path(environ.get(ROOT_ENV) or DEFAULT_ROOT)


def check_name(kind: str, name: str) -> str:
    """``name`` when it is safe as one path component, else ``ValueError``.

    Names come from compose files and the command line; they become
    directory names, so ``..``, slashes and empty names must never pass.
    """
    if not _SAFE_NAME.match(name) or name in (".", ".."):
        raise ValueError(f"invalid {kind} name {name!r}")
    return name


@dataclass(frozen=True)
class StateRoot:
    """Paths under one state root; creating a ``StateRoot`` touches nothing."""

    path: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StateRoot:
        return cls(state_root_path(environ))

    def ensure(self) -> StateRoot:
        """Create the top-level directories (mode 0711: names are not secrets, contents are)."""
        for sub in ("images", "containers", "volumes", "networks", "projects", "locks", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o711)
        return self

    @property
    def images(self) -> Path:
        return self.path / "images"

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    def container(self, container_id: str) -> Path:
        return self.path / "containers" / check_name("container id", container_id)

    def volume(self, name: str) -> Path:
        return self.path / "volumes" / check_name("volume", name)

    def network(self, name: str) -> Path:
        return self.path / "networks" / check_name("network", name)

    def project(self, project: str) -> Path:
        return self.path / "projects" / check_name("project", project)

    def lock_file(self, name: str) -> Path:
        return self.path / "locks" / f"{check_name('lock', name)}.lock"

    @contextlib.contextmanager
    def locked(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """Hold the named lock (exclusive unless ``shared``) for the ``with`` block."""
        lock = self.lock_file(name)
        lock.parent.mkdir(parents=True, exist_ok=True)
        with locked_file(lock, shared=shared):
            yield

    def drop_lock(self, name: str) -> None:
        """Delete the named lock's file; only while holding it exclusively (see
        ``locked_file``), once what it guards is gone."""
        self.lock_file(name).unlink(missing_ok=True)


@contextlib.contextmanager
def locked_file(path: Path, *, shared: bool = False) -> Iterator[None]:
    """``flock`` on ``path`` (created if missing) for the ``with`` block.

    A holder of the exclusive lock may delete the file (``StateRoot.drop_lock``)
    when what it guards is gone, so that lock files do not pile up: a waiter
    that then gets the lock of the deleted file notices (the path no longer
    names what it locked) and locks the path anew.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


_TRANSIENT: ContextVar[tuple[str, ...]] = ContextVar("transient_writes", default=())


@contextlib.contextmanager
def transient_writes(*paths: Path) -> Iterator[None]:
    """Writes at or below ``paths`` skip the fsync while the block runs (in this context).

    For files removed before the call that writes them returns (a ``run --rm``
    one-off's record, ``/etc`` files and endpoint): still atomic for readers;
    a crash may lose them, but they were about to go anyway.
    """
    token = _TRANSIENT.set((*_TRANSIENT.get(), *(str(p) for p in paths)))
    try:
        yield
    finally:
        _TRANSIENT.reset(token)


def _durable(path: Path) -> bool:
    text = str(path)
    return not any(text == p or text.startswith(p.rstrip("/") + "/") for p in _TRANSIENT.get())


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if _durable(path):
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value: Any, *, mode: int = 0o644) -> None:
    """``atomic_write`` of ``value`` as compact, key-sorted JSON."""
    atomic_write(path, json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), mode=mode)


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (``FileNotFoundError`` when missing)."""
    with open(path, "rb") as f:
        return json.loads(f.read())
