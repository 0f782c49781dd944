"""Content checksums of build-context files, remembered between builds.

A COPY's cache key holds the sha256 of every source file's content, so a
warm build would read the whole context each time. Instead each digest is
kept with the file's identity when it was read — device, inode, size,
mtime and ctime, all in nanoseconds — and reused while that identity is
unchanged. The digest stays the key; the stat only says when reading the
file again cannot give another answer:

* ctime is part of it, and no program can set ctime: rewriting a file with
  the same size and then putting its old mtime back (``touch -d``) still
  changes ctime, so the file is read again;
* a file changed within the filesystem's timestamp granularity of the
  moment it was read could keep all five values, so a digest is only
  trusted when the file's ctime was at least ``RACY_NS`` older than the
  read (as git does with its racily clean entries); otherwise the file is
  read every time until it has been quiet for that long;
* a touched file (new mtime, same content) is read once and hashes the
  same, so the build cache still hits.

One JSON file per context directory under the builder's cache
(``build-cache/sums/<hash of the path>.json``), written atomically (not
fsync'd, see ``cachefile``) and only when something changed. Losing it
only costs reading the files again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from composer.backends.native.build.cachefile import write_cache_json
from composer.backends.native.state import read_json

RACY_NS = 2_000_000_000
_CHUNK = 1 << 20

Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_digest(path: Path | str) -> str:
    """sha256 (hex) of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileSums:
    """Digests of the files below one context directory (see the module doc)."""

    def __init__(
        self, store_path: Path | None, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.store_path = store_path
        self.clock_ns = clock_ns
        self._entries: dict[str, list[int | str]] | None = None
        self._dirty = False
        self.reads = 0
        """Files read for their digest by this object (for tests and profiling)."""

    @classmethod
    def for_context(cls, cache_dir: Path, context_root: Path) -> FileSums:
        name = hashlib.sha256(os.fsencode(context_root)).hexdigest()[:32]
        return cls(cache_dir / "sums" / f"{name}.json")

    def _load(self) -> dict[str, list[int | str]]:
        if self._entries is None:
            self._entries = {}
            if self.store_path is not None:
                with contextlib.suppress(FileNotFoundError, ValueError, OSError):
                    data = read_json(self.store_path)
                    if isinstance(data, dict):
                        self._entries = data
        return self._entries

    def digest(self, path: Path, st: os.stat_result) -> str:
        """The sha256 (hex) of the regular file ``path``, whose ``lstat`` is ``st``."""
        entries = self._load()
        key = os.fsdecode(path)
        now = self.clock_ns()
        ident = list(identity(st))
        known = entries.get(key)
        if (
            isinstance(known, list)
            and len(known) == 7
            and known[:5] == ident
            and isinstance(known[5], int)
            and st.st_ctime_ns + RACY_NS <= known[5]
            and isinstance(known[6], str)
        ):
            return known[6]
        digest = file_digest(path)
        self.reads += 1
        entries[key] = [*ident, now, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the digests back if any was read (a failure to write is not an error)."""
        if not self._dirty or self.store_path is None or self._entries is None:
            return
        live = {k: v for k, v in self._entries.items() if os.path.lexists(k)}
        with contextlib.suppress(OSError):
            write_cache_json(self.store_path, live)
        self._dirty = False
