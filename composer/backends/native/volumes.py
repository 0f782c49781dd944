"""Named and anonymous volumes of the native backend.

A volume is a directory under the state root: ``<root>/volumes/<name>/``
holds ``meta.json`` (driver, options, labels, creation time) and ``_data``,
the directory bind-mounted into containers. The ``local`` driver's bind
style (``type: none``, ``o: bind``, ``device: /host/path``) keeps no data of
its own: its mount source is the device path. Volumes are removed only when
asked (``down -v``, ``volume rm``), never by ``down``.

A new volume is filled from the image's content at its mount point the
first time it is mounted while still empty (as Docker's ``local`` driver
does), unless the mount says ``nocopy``; ``fill_from_layers`` reads the
image's layers directly, applying whiteouts and opaque directories, so no
overlay has to be mounted for it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from composer.backends.native.state import StateRoot, check_name, read_json, write_json
from composer.backends.specs import VolumeSpec
from composer.errors import BackendError, Conflict, NotFound, Unsupported

META_FILE = "meta.json"
DATA_DIR = "_data"
LOCAL_DRIVER = "local"
OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True, slots=True)
class VolumeMeta:
    """What ``meta.json`` holds about one volume."""

    name: str
    driver: str = LOCAL_DRIVER
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    anonymous: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "driver": self.driver,
            "driver_opts": dict(self.driver_opts),
            "labels": dict(self.labels),
            "created_at": self.created_at,
            "anonymous": self.anonymous,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VolumeMeta:
        return cls(
            name=str(data["name"]),
            driver=str(data.get("driver") or LOCAL_DRIVER),
            driver_opts=dict(data.get("driver_opts") or {}),
            labels=dict(data.get("labels") or {}),
            created_at=float(data.get("created_at") or 0.0),
            anonymous=bool(data.get("anonymous")),
        )

    @property
    def bind_device(self) -> str | None:
        """The host path of a bind-style local volume, else ``None``."""
        opts = self.driver_opts
        if opts.get("type", "none") == "none" and "bind" in opts.get("o", "").split(","):
            return opts.get("device") or None
        return None

    @property
    def tmpfs_options(self) -> tuple[str, ...] | None:
        """Mount options of a ``type: tmpfs`` local volume, else ``None``."""
        if self.driver_opts.get("type") != "tmpfs":
            return None
        extra = [o for o in self.driver_opts.get("o", "").split(",") if o]
        return ("nosuid", "nodev", *extra)


def _check_driver(spec_name: str, driver: str | None, opts: Mapping[str, str]) -> None:
    """Only the ``local`` driver exists here; its options must be ones we can honour."""
    if driver not in (None, "", LOCAL_DRIVER):
        raise Unsupported(
            f"volume {spec_name}: driver {driver!r} is not available on the native backend",
            hint="use the local driver, or --backend docker for volume plugins",
        )
    kind = opts.get("type")
    if not opts or kind == "tmpfs":
        return
    if kind in (None, "none") and "bind" in opts.get("o", "").split(","):
        device = opts.get("device")
        if not device or not os.path.isabs(device):
            raise BackendError(
                f"volume {spec_name}: a bind volume needs an absolute device path",
                hint="set driver_opts.device to an existing host directory",
            )
        return
    raise Unsupported(
        f"volume {spec_name}: local driver options {dict(opts)!r} are not supported "
        "by the native backend (bind-style and tmpfs volumes are)",
        hint="use --backend docker for other local volume types",
    )


class Volumes:
    """The volumes under one state root; every method is safe across processes."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    # --- create / read / remove --------------------------------------------------

    def create(self, spec: VolumeSpec) -> VolumeMeta:
        """Create ``spec`` (``Conflict`` when it exists, ``Unsupported`` when external)."""
        if spec.external:
            raise Unsupported(f"volume {spec.name} is external: composer does not create it")
        self._name(spec.name)
        _check_driver(spec.name, spec.driver, spec.driver_opts)
        meta = VolumeMeta(
            name=spec.name,
            driver=spec.driver or LOCAL_DRIVER,
            driver_opts=dict(spec.driver_opts),
            labels=dict(spec.labels),
            created_at=time.time(),
        )
        with self.root.locked("volumes"):
            if self.exists(spec.name):
                raise Conflict(f"create volume {spec.name}: volume already exists")
            self._write(meta)
        return meta

    def create_anonymous(self, labels: Mapping[str, str] | None = None) -> VolumeMeta:
        """A new volume named by 64 random hex digits, as Docker names anonymous ones."""
        meta = VolumeMeta(
            name=secrets.token_hex(32),
            labels=dict(labels or {}),
            created_at=time.time(),
            anonymous=True,
        )
        with self.root.locked("volumes"):
            self._write(meta)
        return meta

    def ensure(self, name: str, labels: Mapping[str, str] | None = None) -> VolumeMeta:
        """The volume ``name``, created (local, no options) when missing, as Docker does
        for a volume a container mounts by name."""
        self._name(name)
        with self.root.locked("volumes"):
            found = self.get(name)
            if found is not None:
                return found
            meta = VolumeMeta(name=name, labels=dict(labels or {}), created_at=time.time())
            self._write(meta)
            return meta

    def _name(self, name: str) -> str:
        try:
            return check_name("volume", name)
        except ValueError as exc:
            raise BackendError(
                f"invalid volume name {name!r}",
                hint="volume names use letters, digits, '_', '.' and '-'",
            ) from exc

    def _write(self, meta: VolumeMeta) -> None:
        base = self.root.volume(meta.name)
        (base / DATA_DIR).mkdir(parents=True, exist_ok=True)
        os.chmod(base / DATA_DIR, 0o755)
        write_json(base / META_FILE, meta.to_json())

    def exists(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> VolumeMeta | None:
        try:
            return VolumeMeta.from_json(read_json(self.root.volume(name) / META_FILE))
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError):
            return None

    def require(self, name: str) -> VolumeMeta:
        found = self.get(name) if _safe(name) else None
        if found is None:
            raise NotFound(f"volume {name} not found")
        return found

    def list(self) -> list[VolumeMeta]:
        """Every volume, sorted by name (one directory scan)."""
        base = self.root.path / "volumes"
        out: list[VolumeMeta] = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(base):
                meta = self.get(entry.name) if _safe(entry.name) else None
                if meta is not None:
                    out.append(meta)
        out.sort(key=lambda m: m.name)
        return out

    def remove(self, name: str, users: Sequence[str] = ()) -> None:
        """Delete the volume and its data; ``Conflict`` when ``users`` (container names) use it.

        A bind-style volume's device directory belongs to the user and is
        never touched.
        """
        self.require(name)
        if users:
            raise Conflict(
                f"remove volume {name}: volume is in use by {', '.join(sorted(users))}",
                hint="remove those containers first",
            )
        with self.root.locked("volumes"):
            base = self.root.volume(name)
            # Rename first so that a crash half-way never leaves a half volume in the list.
            doomed = self.root.tmp / f"volume-{name}-{secrets.token_hex(4)}"
            doomed.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(base, doomed)
            except FileNotFoundError:
                raise NotFound(f"volume {name} not found") from None
        shutil.rmtree(doomed, ignore_errors=True)

    # --- what containers mount ---------------------------------------------------------

    def data_dir(self, name: str) -> Path:
        return self.root.volume(name) / DATA_DIR

    def mount_source(self, meta: VolumeMeta) -> Path:
        """The host directory bind-mounted for ``meta``."""
        device = meta.bind_device
        if device is not None:
            path = Path(device)
            if not path.is_dir():
                raise NotFound(
                    f"volume {meta.name}: device {device} does not exist",
                    hint="create the directory, or change driver_opts.device",
                )
            return path
        return self.data_dir(meta.name)

    def fill_from_layers(self, meta: VolumeMeta, layer_dirs: Sequence[str], target: str) -> bool:
        """Copy the image's content at ``target`` into an empty new volume.

        ``layer_dirs`` are the image's unpacked layers, top first. Returns
        whether anything was copied. Bind-style and tmpfs volumes are never
        filled (their content is not composer's to change).
        """
        if meta.bind_device is not None or meta.tmpfs_options is not None:
            return False
        data = self.data_dir(meta.name)
        if any(os.scandir(data)):
            return False
        return merge_layers_into(list(reversed(layer_dirs)), target, data)


def _safe(name: str) -> bool:
    try:
        check_name("volume", name)
    except ValueError:
        return False
    return True


# --- reading an image's layers without mounting them ---------------------------------


def _layer_path(layer: str, target: str) -> str | None:
    """``target`` inside one layer, or ``None`` when a component on the way is not a
    plain directory (a symlink is not followed: the content stays where it is)."""
    current = layer
    parts = [p for p in PurePosixPath(target).parts if p not in ("/", "")]
    for part in parts:
        if part in (".", ".."):
            return None
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
    return current


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def merge_layers_into(layers_bottom_first: Sequence[str], target: str, dest: Path) -> bool:
    """Overlay ``target`` of each layer onto ``dest`` in order, as overlayfs would show it.

    A whiteout (char device 0/0) deletes what lower layers put there; an
    opaque directory hides all of it. Owners, modes and times are kept.
    """
    copied = False
    for layer in layers_bottom_first:
        src = _layer_path(layer, target)
        if src is None:
            continue
        if _is_opaque(src):
            _clear(dest)
        copied = _merge_dir(src, str(dest)) or copied
    if copied:
        st = os.lstat(_top_dir(layers_bottom_first, target) or dest)
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, stat.S_IMODE(st.st_mode))
    return copied


def _top_dir(layers_bottom_first: Sequence[str], target: str) -> str | None:
    for layer in reversed(layers_bottom_first):
        found = _layer_path(layer, target)
        if found is not None:
            return found
    return None


def _clear(path: Path | str) -> None:
    for entry in os.scandir(path):
        _remove(entry.path)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _merge_dir(src: str, dest: str) -> bool:
    copied = False
    for entry in os.scandir(src):
        s = entry.path
        d = os.path.join(dest, entry.name)
        st = os.lstat(s)
        if _is_whiteout(st):
            _remove(d)
            continue
        copied = True
        if stat.S_ISDIR(st.st_mode):
            try:
                dst = os.lstat(d)
                if not stat.S_ISDIR(dst.st_mode):
                    _remove(d)
                    raise FileNotFoundError
                if _is_opaque(s):
                    _clear(d)
            except FileNotFoundError:
                os.mkdir(d)
            _merge_dir(s, d)
            _copy_meta(st, d)
            continue
        _remove(d)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                out = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    while chunk := os.read(fd, 1 << 20):
                        os.write(out, chunk)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
        else:
            os.mknod(d, st.st_mode, st.st_rdev)
        _copy_meta(st, d)
    return copied


def _copy_meta(st: os.stat_result, path: str) -> None:
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
