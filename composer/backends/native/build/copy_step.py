"""COPY and ADD: what to copy, its cache checksum, and copying it.

A step is planned before it runs, because its cache key needs the content
checksum of its sources: files from the build context (``.dockerignore``
applied), here-documents, files of an earlier stage or another image
(``--from``), and for ADD a URL (downloaded first, then checksummed) or a
local tar archive (extracted into the destination). ``apply`` then writes
into the step's mounted overlay through ``copying.py``, whose paths are
resolved inside the image's root.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from composer.backends.native.build import dockerfile as D
from composer.backends.native.build import imageconfig as IC
from composer.backends.native.build.context import (
    BuildContext,
    ContextError,
    Entry,
    Source,
    file_digest,
)
from composer.backends.native.build.copying import (
    CopyEntry,
    Ownership,
    is_dir_in_root,
    make_dirs,
    write_entries,
)
from composer.backends.native.build.overlay import StepDirs, mounted
from composer.backends.native.build.words import expand
from composer.backends.native.copy import open_in_root
from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.backends.native.build.builder import Builder, _Stage

_MAX_DOWNLOAD = 4 << 30


@dataclass
class _Source:
    """One source: a base name and the entries below it."""

    name: str
    entries: list[CopyEntry]
    is_dir: bool
    extract: Path | None = None
    """ADD of a local archive: extract this tar into the destination."""


@dataclass
class CopyPlan:
    """A planned COPY/ADD: its checksum for the cache key, and how to apply it."""

    checksum: str
    owner_text: str
    dest: str
    sources: list[_Source]
    chown: str | None
    chmod: int | None
    from_lowers: list[Path] | None = None
    from_patterns: list[str] = field(default_factory=list)
    cleanup: list[Path] = field(default_factory=list)

    def apply(self, dirs: StepDirs, root: Path) -> None:
        try:
            if self.from_lowers is not None:
                target = dirs.base / "from"
                with mounted([str(p) for p in self.from_lowers], target) as src_root:
                    ctx = BuildContext(src_root)
                    for pattern in self.from_patterns:
                        for name, entries, is_dir in _context_sources(ctx, pattern, links=True):
                            self.sources.append(_Source(name, entries, is_dir))
                    self._write(root)
            else:
                self._write(root)
        finally:
            for path in self.cleanup:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _write(self, root: Path) -> None:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            owner = _owner(fd, self.chown, self.chmod)
            dest = self.dest
            many = len(self.sources) > 1 or any(s.is_dir for s in self.sources)
            dest_is_dir = dest.endswith("/") or many or is_dir_in_root(fd, dest)
            if dest_is_dir:
                make_dirs(fd, dest, owner if self.chown else None)
            else:
                make_dirs(fd, posixpath.dirname(dest) or "/", owner if self.chown else None)
            for source in self.sources:
                if source.extract is not None:
                    _extract_tar(fd, source.extract, dest, owner)
                    continue
                if source.is_dir or dest_is_dir:
                    entries = source.entries
                    if not source.is_dir:
                        entries = [_renamed(e, source.name) for e in entries]
                    write_entries(fd, dest, entries, owner)
                else:
                    parent, name = posixpath.split(dest.rstrip("/") or "/")
                    entries = [_renamed(e, name) for e in source.entries]
                    write_entries(fd, parent or "/", entries, owner)
        finally:
            os.close(fd)


def _renamed(entry: CopyEntry, name: str) -> CopyEntry:
    return CopyEntry(name, entry.source, entry.st_mode, entry.mtime, entry.data, entry.link)


def _context_sources(
    ctx: BuildContext, pattern: str, *, links: bool = False
) -> Iterator[tuple[str, list[CopyEntry], bool]]:
    for source in ctx.sources(pattern):
        yield _as_copy(source, ctx.walk(source, check_links=not links))


def _as_copy(source: Source, walked: Iterable[Entry]) -> tuple[str, list[CopyEntry], bool]:
    """``(base name, entries, is_dir)`` of one source, from its walk."""
    entries = []
    for e in walked:
        link = os.readlink(e.path) if stat.S_ISLNK(e.st.st_mode) else None
        entries.append(CopyEntry(e.rel, e.path, e.st.st_mode, e.st.st_mtime, link=link))
    return posixpath.basename(source.rel) if source.rel != "." else "", entries, source.is_dir


def plan_copy(
    builder: Builder,
    df: D.Dockerfile,
    inst: D.Instruction,
    config: dict[str, Any],
    done: Mapping[int, _Stage],
    context: BuildContext,
    env: Mapping[str, str],
) -> CopyPlan:
    """Resolve the sources of a COPY/ADD and checksum them (no writes yet)."""
    words = D.words(df, inst, env)
    if len(words) < 2 and not inst.heredocs:
        raise df.error(inst, "needs at least one source and a destination")
    dest_word = words[-1]
    dest = (
        dest_word if dest_word.startswith("/") else posixpath.join(IC.workdir_of(config), dest_word)
    )
    if dest_word.endswith("/") and not dest.endswith("/"):
        dest += "/"
    chown = inst.flags.get("chown")
    chmod = _chmod(df, inst)
    owner_text = f"chown={chown} chmod={chmod}"
    h = hashlib.sha256()
    plan = CopyPlan("", owner_text, dest, [], chown, chmod)
    for doc in inst.heredocs:
        text = expand(doc.content, env, df.escape) if doc.expand else doc.content
        data = text.encode()
        plan.sources.append(_Source(doc.name, [CopyEntry("", None, 0o100644, 0, data)], False))
        h.update(f"heredoc {doc.name}\0".encode() + data)
    patterns = [w for w in words[:-1] if not w.startswith("<<")] if inst.heredocs else words[:-1]
    source_from = inst.flags.get("from")
    extra = builder.extra_contexts.get(source_from) if source_from else None
    if extra is not None:
        # build.additional_contexts: another directory, or an image by reference.
        if extra.startswith("docker-image://"):
            source_from = extra.removeprefix("docker-image://")
        elif "://" in extra or extra.startswith("service:"):
            raise df.error(
                inst,
                f"--from={source_from}: additional context {extra!r} is not supported here",
                hint="use a local directory, docker-image://<ref> or service:<name>",
            )
        else:
            context = builder.open_context(extra)
            source_from = None
    if source_from is not None:
        if inst.keyword != "COPY":
            raise df.error(inst, "--from is only for COPY")
        plan.from_lowers, origin = _from_lowers(builder, df, inst, source_from, done)
        plan.from_patterns = patterns
        h.update(f"from {origin} {patterns}\0".encode())
    else:
        for pattern in patterns:
            if inst.keyword == "ADD" and _is_url(pattern):
                path = _download(df, inst, pattern, builder.store.root.tmp)
                plan.cleanup.append(path)
                name = posixpath.basename(pattern.split("?")[0].rstrip("/")) or "download"
                st = os.stat(path)
                entry = CopyEntry("", path, 0o100600, st.st_mtime)
                plan.sources.append(_Source(name, [entry], False))
                h.update(f"url {pattern} {file_digest(path)}\0".encode())
                continue
            try:
                found = context.sources(pattern)
                walked = [list(context.walk(source)) for source in found]
                h.update(context.checksum(found, walked).encode())
            except ContextError as exc:
                raise df.error(inst, exc.message, exc.hint) from None
            for source, entries_walked in zip(found, walked, strict=True):
                name, entries, is_dir = _as_copy(source, entries_walked)
                archive = entries[0].source if inst.keyword == "ADD" and not is_dir else None
                if archive is not None and _is_archive(archive):
                    plan.sources.append(_Source(name, [], False, extract=archive))
                else:
                    plan.sources.append(_Source(name, entries, is_dir))
    plan.checksum = "sha256:" + h.hexdigest()
    return plan


def _chmod(df: D.Dockerfile, inst: D.Instruction) -> int | None:
    value = inst.flags.get("chmod")
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        raise df.error(inst, f"--chmod={value}: expected an octal mode like 0755") from None
    if not 0 <= mode <= 0o7777:
        raise df.error(inst, f"--chmod={value}: out of range")
    return mode


def _from_lowers(
    builder: Builder, df: D.Dockerfile, inst: D.Instruction, ref: str, done: Mapping[int, _Stage]
) -> tuple[list[Path], str]:
    by_name = {s.name: s.index for s in df.stages if s.name}
    index = by_name.get(ref.lower())
    if index is None and ref.isdigit():
        index = int(ref)
    if index is not None:
        if index not in done:
            raise df.error(inst, f"--from={ref}: that stage comes later or was not built")
        stage = done[index]
        return builder._lower_dirs(stage), stage.key
    image = builder._image(ref, pull=False)
    return list(image.layer_dirs), image.id


def _owner(root_fd: int, chown: str | None, chmod: int | None) -> Ownership:
    if chown is None:
        return Ownership(0, 0, chmod)
    user, _, group = chown.partition(":")
    uid, primary = _lookup(root_fd, "/etc/passwd", user, 2, 3)
    gid = primary if not group else _lookup(root_fd, "/etc/group", group, 2, 2)[0]
    return Ownership(uid, gid, chmod)


def _lookup(root_fd: int, path: str, name: str, id_field: int, gid_field: int) -> tuple[int, int]:
    if name.isdigit():
        number = int(name)
        return number, number
    try:
        fd = open_in_root(root_fd, path, os.O_RDONLY)
    except OSError:
        raise BackendError(f"--chown: cannot resolve {name!r}: the image has no {path}") from None
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if len(fields) > max(id_field, gid_field) and fields[0] == name:
                return int(fields[id_field]), int(fields[gid_field])
    raise BackendError(f"--chown: no {name!r} in the image's {path}")


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _download(df: D.Dockerfile, inst: D.Instruction, url: str, tmp: Path) -> Path:
    import httpx

    tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="add-", dir=tmp)
    size = 0
    try:
        with (
            os.fdopen(fd, "wb") as out,
            httpx.stream("GET", url, follow_redirects=True, timeout=60) as response,
        ):
            if response.status_code != 200:
                raise df.error(inst, f"{url}: HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > _MAX_DOWNLOAD:
                    raise df.error(inst, f"{url}: larger than {_MAX_DOWNLOAD} bytes")
                out.write(chunk)
    except httpx.HTTPError as exc:
        os.unlink(name)
        raise df.error(inst, f"{url}: {exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


_OPENERS: list[tuple[bytes, Callable[[Any], Any]]] = [
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw)),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
]


def _is_archive(path: Path) -> bool:
    """Whether ADD should extract ``path`` (a tar, maybe gzip/bzip2/xz compressed)."""
    try:
        with _open_tar_stream(path) as stream:
            return tarfile.is_tarfile(stream)
    except (OSError, EOFError, lzma.LZMAError):
        return False


@contextlib.contextmanager
def _open_tar_stream(path: Path) -> Iterator[IO[bytes]]:
    with open(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        for magic, opener in _OPENERS:
            if head.startswith(magic):
                with opener(raw) as stream:
                    yield stream
                return
        yield raw


def _extract_tar(root_fd: int, archive: Path, dest: str, owner: Ownership) -> None:
    """ADD's local-archive rule: unpack into ``dest`` keeping the archive's owners and modes."""
    dest_dir = dest if dest.endswith("/") else dest + "/"
    make_dirs(root_fd, dest_dir)
    with _open_tar_stream(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = PurePosixPath(member.name.lstrip("/")).parts
            if not parts or parts == (".",):
                continue
            if ".." in parts:
                raise BackendError(
                    f"ADD {archive.name}: entry {member.name!r} leaves the destination"
                )
            rel = "/".join(parts)
            mode = member.mode | _type_bits(member)
            if member.isdir():
                make_dirs(root_fd, posixpath.join(dest_dir, rel))
                continue
            parent = posixpath.dirname(rel)
            make_dirs(root_fd, posixpath.join(dest_dir, parent))
            own = Ownership(member.uid, member.gid, None) if owner.uid == 0 else owner
            if member.issym():
                entry = CopyEntry(
                    posixpath.basename(rel), None, mode, member.mtime, link=member.linkname
                )
            elif member.isreg() or member.islnk():
                src = tar.extractfile(member)
                data = src.read() if src is not None else b""
                entry = CopyEntry(posixpath.basename(rel), None, mode, member.mtime, data=data)
            else:
                continue  # devices and fifos are not extracted by ADD here
            write_entries(root_fd, posixpath.join(dest_dir, parent), [entry], own)


def _type_bits(member: tarfile.TarInfo) -> int:
    if member.isdir():
        return 0o040000
    if member.issym():
        return 0o120000
    return 0o100000
