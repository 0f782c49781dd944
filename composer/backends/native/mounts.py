"""A ContainerSpec's mounts → the runtime's mount entries, decided once at create.

Each ``MountSpec`` (and ``tmpfs:``, ``volumes_from``, the image's
``VOLUME``s) becomes a ``ResolvedMount``: the host source, the container
target, the runtime options, and for volumes which volume it is. The
resolved list is kept next to the container record (``mounts.json``) so
that ``observe`` can tell named from anonymous volumes, ``remove -v`` knows
what to delete, and ``volumes_from`` copies exactly what the other
container mounts.

Rules follow Docker's:

* bind: a missing host path is created as a directory (``docker compose``
  relies on that) unless ``create_host_path: false``, which makes it an
  error; binds are recursive unless ``bind.recursive: disabled``;
  propagation defaults to ``rprivate``.
* volume: a named volume that does not exist yet is created (a container
  mounting a name creates it on Docker too); ``source: None`` is a new
  anonymous volume; ``subpath`` must exist inside the volume.
* tmpfs: ``nosuid,nodev,noexec`` plus ``size=``/``mode=``.
* config/secret: the bytes (host file, environment value or inline
  content) are written under the container directory with the asked
  ``uid``/``gid``/``mode`` (default root and 0444) and bind-mounted
  read-only, so the container cannot change them and their owner and mode
  are honoured — which Docker Compose cannot do outside Swarm.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from composer.backends.file_mounts import file_copy
from composer.backends.native.runtime.spec import MountEntry
from composer.backends.native.state import atomic_write
from composer.backends.native.volumes import VolumeMeta, Volumes
from composer.backends.specs import ContainerSpec, MountSpec
from composer.errors import BackendError, NotFound, Unsupported

MOUNTS_FILE = "mounts.json"
FILES_DIR = "files"
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")
_SIZE = re.compile(r"^(\d+)([kmgKMG]?)$")


@dataclass(frozen=True, slots=True)
class ResolvedMount:
    """One mount as the container will get it."""

    type: str
    """``bind``, ``volume``, ``tmpfs``, ``config`` or ``secret``."""
    target: str
    source: str = ""
    options: tuple[str, ...] = ()
    volume: str | None = None
    anonymous: bool = False

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    def entry(self) -> MountEntry:
        """The runtime's mount entry (volumes and files are binds of a host path)."""
        kind = "tmpfs" if self.type == "tmpfs" else "bind"
        source = "tmpfs" if kind == "tmpfs" and not self.source else self.source
        return MountEntry(target=self.target, type=kind, source=source, options=self.options)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "target": self.target,
            "source": self.source,
            "options": list(self.options),
            "volume": self.volume,
            "anonymous": self.anonymous,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResolvedMount:
        return cls(
            type=str(data["type"]),
            target=str(data["target"]),
            source=str(data.get("source") or ""),
            options=tuple(data.get("options") or ()),
            volume=data.get("volume"),
            anonymous=bool(data.get("anonymous")),
        )


@dataclass(frozen=True, slots=True)
class VolumeFill:
    """A volume mounted for the first time: filled from the image unless ``nocopy``."""

    meta: VolumeMeta
    target: str


@dataclass(frozen=True, slots=True)
class Resolution:
    mounts: tuple[ResolvedMount, ...]
    fills: tuple[VolumeFill, ...]
    created_volumes: tuple[str, ...]
    """Volumes made for this container (anonymous ones), to delete if create fails."""


PeerMounts = Callable[[str], Sequence[ResolvedMount]]
"""The resolved mounts of another container, by name or id (``NotFound`` if none)."""


def _rw(read_only: bool) -> tuple[str, ...]:
    return ("ro",) if read_only else ()


def bind_options(m: MountSpec) -> tuple[str, ...]:
    if m.bind_propagation and m.bind_propagation not in PROPAGATIONS:
        raise BackendError(
            f"bind mount {m.target}: invalid propagation {m.bind_propagation!r}",
            hint=f"use one of {', '.join(PROPAGATIONS)}",
        )
    recursive = m.bind_recursive in (None, "", "enabled", "readonly", "writable")
    return (
        "rbind" if recursive else "bind",
        *_rw(m.read_only),
        m.bind_propagation or "rprivate",
    )


def size_bytes(text: str) -> int:
    """``64m``, ``1g``, ``65536k``, ``1024`` → bytes."""
    found = _SIZE.match(text.strip())
    if not found:
        raise BackendError(f"invalid size {text!r}", hint="use a number with k, m or g")
    unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[found.group(2).lower()]
    return int(found.group(1)) * unit


def tmpfs_options(size: int | None, mode: int | None, read_only: bool = False) -> tuple[str, ...]:
    out = [*TMPFS_DEFAULTS, *_rw(read_only)]
    if size is not None:
        out.append(f"size={size}")
    if mode is not None:
        out.append(f"mode={mode:o}")
    return tuple(out)


def tmpfs_from_string(target: str, text: str) -> ResolvedMount:
    """A ``tmpfs:`` entry's option string (``size=64m,mode=1777``, ``ro``…)."""
    options = list(TMPFS_DEFAULTS)
    for raw in (o.strip() for o in text.split(",")):
        if not raw or raw == "rw":
            continue
        if raw.startswith("size="):
            raw = f"size={size_bytes(raw[5:])}"
        if raw.startswith("exec") and "noexec" in options:
            options.remove("noexec")
        if raw.startswith("suid") and "nosuid" in options:
            options.remove("nosuid")
        if raw.startswith("dev") and "nodev" in options:
            options.remove("nodev")
        if raw not in options and raw not in ("exec", "suid", "dev"):
            options.append(raw)
    return ResolvedMount("tmpfs", target, "tmpfs", tuple(options))


def _bind(spec: ContainerSpec, m: MountSpec) -> ResolvedMount:
    if not m.source or not os.path.isabs(m.source):
        raise BackendError(
            f"{spec.name}: bind mount at {m.target} needs an absolute host path, got {m.source!r}"
        )
    if not os.path.lexists(m.source):
        if not m.bind_create_host_path:
            raise NotFound(
                f"{spec.name}: bind source path does not exist: {m.source}",
                hint="create it, or remove create_host_path: false to let composer create it",
            )
        try:
            os.makedirs(m.source, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"{spec.name}: cannot create bind source {m.source}: {exc.strerror or exc}"
            ) from exc
    return ResolvedMount("bind", m.target, m.source, bind_options(m))


def _subpath(meta: VolumeMeta, source: Path, subpath: str | None) -> Path:
    if not subpath:
        return source
    rel = PurePosixPath(subpath)
    if rel.is_absolute() or ".." in rel.parts:
        raise BackendError(f"volume {meta.name}: subpath {subpath!r} must stay inside the volume")
    path = source.joinpath(*rel.parts)
    real = os.path.realpath(path)
    if not (real == str(source) or real.startswith(str(source) + os.sep)):
        raise BackendError(f"volume {meta.name}: subpath {subpath!r} leaves the volume")
    if not os.path.exists(real):
        raise NotFound(f"volume {meta.name}: subpath {subpath} does not exist")
    return Path(real)


def _volume_mount(meta: VolumeMeta, volumes: Volumes, m: MountSpec) -> ResolvedMount:
    tmpfs = meta.tmpfs_options
    if tmpfs is not None:
        return ResolvedMount(
            "volume", m.target, "tmpfs", (*tmpfs, *_rw(m.read_only)), meta.name, meta.anonymous
        )
    source = _subpath(meta, volumes.mount_source(meta), m.volume_subpath)
    options = ("rbind", *_rw(m.read_only), "rprivate")
    return ResolvedMount("volume", m.target, str(source), options, meta.name, meta.anonymous)


def write_file(container_dir: Path, index: int, spec: ContainerSpec, m: MountSpec) -> Path:
    """Write one config/secret under the container directory; return its host path."""
    copy = file_copy(spec, m)
    mode = copy.mode
    name = PurePosixPath(m.target).name or m.type
    path = container_dir / FILES_DIR / f"{index}-{name}"
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    atomic_write(path, copy.data, mode=mode & 0o7777)
    os.chown(path, copy.uid, copy.gid)
    os.chmod(path, mode & 0o7777)  # after chown, which clears set-id bits
    return path


def _volumes_from(entry: str, peers: PeerMounts) -> list[ResolvedMount]:
    """``name[:ro|rw]``: every mount of the other container, its mode overridden if asked."""
    name, _, mode = entry.partition(":")
    if name.startswith("container:"):
        name = name[len("container:") :]
    if mode not in ("", "ro", "rw"):
        raise BackendError(f"volumes_from {entry!r}: the mode must be ro or rw")
    out: list[ResolvedMount] = []
    for m in peers(name):
        if m.type in ("config", "secret"):
            continue
        options = m.options
        if mode:
            options = tuple(o for o in options if o not in ("ro", "rw"))
            if mode == "ro":
                options = (options[0], "ro", *options[1:]) if options else ("ro",)
        out.append(replace(m, options=options))
    return out


def resolve(
    spec: ContainerSpec,
    *,
    container_dir: Path,
    volumes: Volumes,
    peers: PeerMounts,
    image_volumes: Iterable[str] = (),
    carried: Mapping[str, str] | None = None,
    anonymous_labels: Mapping[str, str] | None = None,
) -> Resolution:
    """Every mount of ``spec`` in the order the runtime applies them.

    ``image_volumes`` are the image's ``VOLUME`` targets: each one not
    covered by another mount gets an anonymous volume, or the one in
    ``carried`` (target → volume name) kept from the container this one
    replaces.
    """
    out: list[ResolvedMount] = []
    fills: list[VolumeFill] = []
    created: list[str] = []
    try:
        for entry in spec.volumes_from:
            out.extend(_volumes_from(entry, peers))
        for index, m in enumerate(spec.mounts):
            if m.type == "bind":
                out.append(_bind(spec, m))
            elif m.type == "volume":
                if m.source:
                    known = volumes.get(m.source)
                    meta = volumes.ensure(m.source, m.volume_labels)
                    if known is None:
                        created.append(meta.name)
                else:
                    meta = volumes.create_anonymous(anonymous_labels)
                    created.append(meta.name)
                if not m.volume_nocopy and not m.volume_subpath:
                    fills.append(VolumeFill(meta, m.target))
                out.append(_volume_mount(meta, volumes, m))
            elif m.type == "tmpfs":
                out.append(
                    ResolvedMount(
                        "tmpfs", m.target, "tmpfs", tmpfs_options(m.tmpfs_size, m.tmpfs_mode)
                    )
                )
            elif m.type in ("config", "secret"):
                path = write_file(container_dir, index, spec, m)
                out.append(ResolvedMount(m.type, m.target, str(path), ("bind", "ro", "rprivate")))
            else:
                raise Unsupported(
                    f"{spec.name}: {m.type} mounts are not supported by the native backend",
                    hint="use --backend docker for this service",
                )
        for target, options in spec.tmpfs.items():
            out.append(tmpfs_from_string(target, options))
        covered = {PurePosixPath(m.target) for m in out}
        for target in image_volumes:
            if PurePosixPath(target) in covered:
                continue
            name = (carried or {}).get(target)
            kept = volumes.get(name) if name else None
            if kept is None:
                kept = volumes.create_anonymous(anonymous_labels)
                created.append(kept.name)
            fills.append(VolumeFill(kept, target))
            out.append(_volume_mount(kept, volumes, MountSpec("volume", target)))
    except BaseException:
        for name in created:
            if (meta_ := volumes.get(name)) is not None and meta_.anonymous:
                volumes.remove(name)
        raise
    return Resolution(tuple(_parents_first(out)), tuple(fills), tuple(created))


def _parents_first(mounts: list[ResolvedMount]) -> list[ResolvedMount]:
    """Order by target depth (stable), so ``/a`` is mounted before ``/a/b``; a later
    mount on the same target replaces an earlier one, as Docker keeps one per target."""
    by_target: dict[str, ResolvedMount] = {}
    for m in mounts:
        by_target[str(PurePosixPath(m.target))] = m
    return sorted(by_target.values(), key=lambda m: len(PurePosixPath(m.target).parts))


def save(container_dir: Path, mounts: Sequence[ResolvedMount]) -> None:
    import json

    atomic_write(
        container_dir / MOUNTS_FILE,
        json.dumps([m.to_json() for m in mounts], sort_keys=True).encode(),
        mode=0o600,
    )


def load(container_dir: Path) -> tuple[ResolvedMount, ...]:
    import json

    try:
        data = json.loads((container_dir / MOUNTS_FILE).read_bytes())
    except FileNotFoundError:
        return ()
    return tuple(ResolvedMount.from_json(d) for d in data)
