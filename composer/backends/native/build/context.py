"""The build context: which files COPY and ADD may see, and their checksums.

Everything a build reads from the host goes through here, so the safety
rules live in one place: a source must stay inside the context (``../x`` is
rejected), a symlink in the context that points outside it is rejected
rather than copied, and ``.dockerignore`` (or ``<Dockerfile>.dockerignore``)
hides files exactly as Docker hides them. The checksum of a set of sources
is over paths, types, modes, link targets and contents — never mtimes — so
touching a file without changing it keeps the build cache warm, and
changing one byte misses it. File digests come from ``sums.FileSums`` when
the builder gives one, so that unchanged files are not read on every build.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.build.sums import FileSums, file_digest
from composer.errors import ConfigError
from composer.ignorefile import IgnoreFile

__all__ = ["BuildContext", "ContextError", "Entry", "Source", "file_digest"]

_GLOB = frozenset("*?[")


class ContextError(ConfigError):
    """A COPY/ADD source that is missing, outside the context, or unsafe."""


@dataclass(frozen=True, slots=True)
class Source:
    """One matched source: a path relative to the context root."""

    rel: str
    """Relative path with ``/`` separators (``.`` for the context itself)."""
    path: Path
    is_dir: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """One file, directory or link below a source, as it will be copied."""

    rel: str
    """Path relative to the source (``""`` for a file source itself)."""
    path: Path
    st: os.stat_result


class BuildContext:
    """A directory on the host, filtered by its ignore file."""

    def __init__(
        self, root: Path, ignore: IgnoreFile | None = None, sums: FileSums | None = None
    ) -> None:
        self.root = root.resolve()
        self.ignore = ignore if ignore is not None else IgnoreFile()
        self.sums = sums if sums is not None else FileSums(None)

    @classmethod
    def open(
        cls, root: Path | str, dockerfile: str | None = None, *, sums_dir: Path | None = None
    ) -> BuildContext:
        """The context at ``root``; with ``sums_dir``, file digests are remembered there."""
        path = Path(root)
        if not path.is_dir():
            raise ContextError(
                f"build context {path} is not a directory", hint="check build.context"
            )
        resolved = path.resolve()
        sums = FileSums.for_context(sums_dir, resolved) if sums_dir is not None else None
        return cls(resolved, IgnoreFile.load(path, dockerfile), sums)

    # --- matching ---------------------------------------------------------------

    def sources(self, pattern: str) -> list[Source]:
        """The context paths ``pattern`` names (``*``, ``?``, ``[…]`` per segment).

        ``ContextError`` when the pattern leaves the context or matches nothing.
        """
        rel = self._clean(pattern)
        if not any(ch in _GLOB for ch in rel):
            if self.ignore.matches(rel) and rel != ".":
                raise ContextError(
                    f"{pattern}: excluded by {self._ignore_name()}",
                    hint="remove the pattern from the ignore file or copy something else",
                )
            path = self._inside(rel, pattern)
            if not os.path.lexists(path):
                raise ContextError(f"{pattern}: not found in the build context {self.root}")
            return [Source(rel, path, path.is_dir() and not path.is_symlink())]
        found = [s for s in self._glob(rel) if not self.ignore.matches(s.rel)]
        if not found:
            raise ContextError(f"{pattern}: no source files were specified (nothing matches)")
        return found

    def walk(self, source: Source, *, check_links: bool = True) -> Iterator[Entry]:
        """``source`` and everything below it that the ignore file lets through, sorted.

        Links are listed, never followed. ``check_links=False`` accepts links
        that point anywhere (an image's root, where ``/bin/sh -> busybox``
        style absolute links are normal and are copied as links).
        """
        st = os.lstat(source.path)
        if check_links:
            self._check_link(source.path, source.rel, st)
        yield Entry("", source.path, st)
        if not stat.S_ISDIR(st.st_mode):
            return
        yield from self._walk_dir(source.path, source.rel, "", check_links)

    def _walk_dir(
        self, directory: Path, ctx_rel: str, rel: str, check_links: bool = True
    ) -> Iterator[Entry]:
        with os.scandir(directory) as it:
            names = sorted(e.name for e in it)
        for name in names:
            child_ctx = name if ctx_rel in ("", ".") else f"{ctx_rel}/{name}"
            child_rel = name if not rel else f"{rel}/{name}"
            path = directory / name
            st = os.lstat(path)
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.ignore.matches(child_ctx):
                if is_dir and self.ignore.includes_dir_children(child_ctx):
                    # Excluded itself, but a ``!`` pattern may bring back something inside.
                    yield from self._walk_dir(path, child_ctx, child_rel, check_links)
                continue
            if check_links:
                self._check_link(path, child_ctx, st)
            yield Entry(child_rel, path, st)
            if is_dir:
                yield from self._walk_dir(path, child_ctx, child_rel, check_links)

    # --- checksums ----------------------------------------------------------------

    def checksum(self, sources: list[Source], walked: list[list[Entry]] | None = None) -> str:
        """A digest of what copying ``sources`` would produce (no mtimes).

        ``walked`` is ``walk(source)`` of each source when the caller has it already.
        """
        h = hashlib.sha256()
        for n, source in enumerate(sources):
            h.update(f"source {source.rel}\0".encode())
            entries = walked[n] if walked is not None else self.walk(source)
            for entry in entries:
                mode = entry.st.st_mode
                h.update(f"{entry.rel}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode):o}\0".encode())
                if stat.S_ISLNK(mode):
                    h.update(os.readlink(entry.path).encode() + b"\0")
                elif stat.S_ISREG(mode):
                    h.update(self.sums.digest(entry.path, entry.st).encode() + b"\0")
        return "sha256:" + h.hexdigest()

    # --- safety ---------------------------------------------------------------

    def _clean(self, pattern: str) -> str:
        # A leading "/" means the context root, as in Docker; ".." may not leave it.
        norm = os.path.normpath(pattern.replace("\\", "/").lstrip("/") or ".")
        if norm == ".." or norm.startswith("../"):
            raise ContextError(
                f"{pattern}: outside the build context",
                hint="COPY and ADD can only read files inside the build context",
            )
        return norm

    def _inside(self, rel: str, pattern: str) -> Path:
        """``root/rel`` after checking that no parent component is a symlink leaving the root."""
        current = self.root
        if rel == ".":
            return current
        parts = rel.split("/")
        for i, part in enumerate(parts):
            current = current / part
            if i < len(parts) - 1 and current.is_symlink():
                target = current.resolve()
                if not _within(target, self.root):
                    raise ContextError(
                        f"{pattern}: {'/'.join(parts[: i + 1])} is a symlink that points "
                        f"outside the build context",
                        hint="copy the files into the context instead of linking to them",
                    )
                current = target
        return current

    def _check_link(self, path: Path, rel: str, st: os.stat_result) -> None:
        if not stat.S_ISLNK(st.st_mode):
            return
        target = os.readlink(path)
        base = path.parent
        resolved = Path(os.path.normpath(os.path.join(base, target)))
        if os.path.isabs(target) or not _within(resolved, self.root):
            raise ContextError(
                f"{rel}: symlink to {target} points outside the build context",
                hint="copy the file into the context, or add the link to .dockerignore",
            )

    def _glob(self, rel: str) -> list[Source]:
        parts = rel.split("/")
        found: list[tuple[str, Path]] = [("", self.root)]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: list[tuple[str, Path]] = []
            for base_rel, base in found:
                if not base.is_dir():
                    continue
                if any(ch in _GLOB for ch in part):
                    names = sorted(n for n in os.listdir(base) if fnmatch.fnmatchcase(n, part))
                else:
                    names = [part] if os.path.lexists(base / part) else []
                for name in names:
                    child_rel = f"{base_rel}/{name}" if base_rel else name
                    child = base / name
                    if not last and child.is_symlink():
                        child = self._inside(child_rel + "/x", child_rel).parent
                    nxt.append((child_rel, child))
            found = nxt
        return [Source(r, p, p.is_dir() and not p.is_symlink()) for r, p in found]

    def _ignore_name(self) -> str:
        return self.ignore.source.name if self.ignore.source else ".dockerignore"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
