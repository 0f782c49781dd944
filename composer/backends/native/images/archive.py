"""Image archives: load ``docker save`` output and OCI layouts, save what ``docker load`` reads.

Three inputs are accepted, told apart by what they contain:

* a legacy ``docker save`` archive (``manifest.json`` naming ``<id>/layer.tar``
  files, Docker < 25), where repeated layers may be symlinks to each other;
* an archive in OCI layout (``oci-layout``, ``index.json``, ``blobs/``), with
  or without the legacy ``manifest.json`` that Docker >= 25 adds;
* an OCI layout directory (skopeo, buildah, crane).

Every blob is verified against its digest as it is read, member names
may not leave the archive, and layers go through the safe extractor.
``save`` lives in ``archive_save`` and is re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from composer.backends.native.images import reference
from composer.backends.native.images.archive_save import save, save_to_file
from composer.backends.native.images.extract import UnsafeLayer, split_name
from composer.backends.native.images.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    NAME_ANNOTATION,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    REF_ANNOTATION,
    ArchiveError,
    blob_name,
    host_platform,
)
from composer.backends.native.images.store import SHA256, ImageStore, parse_config
from composer.errors import NotFound

__all__ = [
    "NAME_ANNOTATION",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "REF_ANNOTATION",
    "ArchiveError",
    "LoadedImage",
    "host_platform",
    "load",
    "save",
    "save_to_file",
]

_MAX_JSON = 16 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One image taken from an archive: its id and the (normalised) tags it received."""

    id: str
    tags: tuple[str, ...]


# -- reading sources -----------------------------------------------------------


class _Source:
    """Named members of an archive or a directory, read by relative path."""

    def open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def read_json(self, name: str) -> Any:
        with self.open(name) as f:
            data = f.read(_MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise ArchiveError(f"{name} in the archive is too large")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ArchiveError(f"{name} in the archive is not JSON: {exc}") from exc


def _clean(name: str) -> str:
    try:
        return "/".join(split_name(name, what="archive member"))
    except UnsafeLayer as exc:
        raise ArchiveError(exc.message, hint="the archive is not a docker save archive") from None


class _TarSource(_Source):
    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tf.getmembers():
            with_name = _clean(member.name)
            self.members[with_name] = member

    def _member(self, name: str, depth: int = 0) -> tarfile.TarInfo:
        member = self.members.get(_clean(name))
        if member is None:
            raise ArchiveError(f"the archive has no {name}")
        if member.issym() or member.islnk():
            if depth > 8:
                raise ArchiveError(f"{name}: too many links in the archive")
            base = os.path.dirname(_clean(name)) if member.issym() else ""
            target = os.path.normpath(os.path.join(base, member.linkname))
            return self._member(target, depth + 1)
        if not member.isreg():
            raise ArchiveError(f"{name} in the archive is not a file")
        return member

    def open(self, name: str) -> BinaryIO:
        f = self.tf.extractfile(self._member(name))
        assert f is not None
        return f  # type: ignore[return-value]

    def exists(self, name: str) -> bool:
        return _clean(name) in self.members


class _DirSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        path = self.root / _clean(name)
        if os.path.realpath(path).startswith(os.path.realpath(self.root) + os.sep):
            return path
        raise ArchiveError(f"{name} leaves the layout directory")

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise ArchiveError(f"the layout has no {name}") from None

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()


@contextlib.contextmanager
def _open_source(path: Path) -> Iterator[_Source]:
    if path.is_dir():
        yield _DirSource(path)
        return
    try:
        tf = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(
            f"{path} is not an image archive (not a tar file, plain or compressed)",
            hint="give a file written by `docker save` or `composer image save`",
        ) from exc
    with tf:
        yield _TarSource(tf)


# -- load ----------------------------------------------------------------------


def load(store: ImageStore, path: Path, *, tag: str | None = None) -> list[LoadedImage]:
    """Load every image of the archive or OCI layout at ``path`` into ``store``.

    ``tag`` names an image that the archive leaves unnamed (an OCI layout
    whose index carries only a tag, or none).
    """
    with _open_source(path) as source, store.lease():
        try:
            if source.exists("manifest.json"):
                return _load_legacy(store, source)
            if source.exists("index.json"):
                return _load_oci(store, source, tag)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(
                f"{path} is not a valid image archive: missing or bad {exc}",
                hint="give a file written by `docker save` or an OCI image layout",
            ) from exc
    raise ArchiveError(
        f"{path} has neither manifest.json nor index.json",
        hint="give a file written by `docker save` or an OCI image layout",
    )


def _ingest(store: ImageStore, source: _Source, name: str, digest: str | None) -> str:
    if digest is not None and store.has_blob(digest):
        return digest
    with source.open(name) as f:
        return store.ingest_blob(digest, iter(lambda: f.read(_CHUNK), b""))


def _stored(store: ImageStore, config: bytes) -> str | None:
    """The id of ``config`` when the store has that image whole already (nothing to read)."""
    image_id = SHA256 + hashlib.sha256(config).hexdigest()
    try:
        store.image(image_id)
    except NotFound:
        return None
    return image_id


def _digest_of_name(name: str) -> str | None:
    """``sha256:<hex>`` when ``name`` is ``blobs/sha256/<hex>``, so it can be verified."""
    parts = _clean(name).split("/")
    if len(parts) == 3 and parts[:2] == ["blobs", "sha256"] and reference.is_image_id(parts[2]):
        return SHA256 + parts[2]
    return None


def _load_legacy(store: ImageStore, source: _Source) -> list[LoadedImage]:
    manifest = source.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError("manifest.json is not a list of images")
    loaded = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ArchiveError("manifest.json has an entry without Config")
        with source.open(entry["Config"]) as f:
            config = f.read(_MAX_JSON + 1)
        image_id = _stored(store, config)
        if image_id is None:
            diff_ids = parse_config(config)["rootfs"]["diff_ids"]
            layers = entry.get("Layers") or []
            if len(layers) != len(diff_ids):
                raise ArchiveError("manifest.json and the image config disagree on the layers")
            blobs = [
                # legacy layer.tar files are uncompressed: their digest is the DiffID
                diff
                if store.has_blob(diff)
                else _ingest(store, source, name, _digest_of_name(name))
                for name, diff in zip(layers, diff_ids, strict=True)
            ]
            image_id = store.put_image(config, blobs)
        tags = tuple(store.tag(ref, image_id) for ref in entry.get("RepoTags") or ())
        loaded.append(LoadedImage(image_id, tags))
    return loaded


def _load_oci(store: ImageStore, source: _Source, tag: str | None) -> list[LoadedImage]:
    index = source.read_json("index.json")
    loaded: list[LoadedImage] = []
    for desc in _manifests(source, index):
        manifest = source.read_json(blob_name(desc["digest"]))
        config_digest = manifest["config"]["digest"]
        with source.open(blob_name(config_digest)) as f:
            config = f.read(_MAX_JSON + 1)
        image_id = _stored(store, config)
        if image_id is None:
            blobs, types = [], []
            for layer in manifest.get("layers", []):
                blobs.append(_ingest(store, source, blob_name(layer["digest"]), layer["digest"]))
                types.append(_layer_type(layer.get("mediaType")))
            image_id = store.put_image(config, blobs, media_types=types)
        names = _names(desc.get("annotations") or {}, tag)
        tags = tuple(store.tag(ref, image_id) for ref in names)
        loaded.append(LoadedImage(image_id, tags))
    return loaded


def _layer_type(media_type: Any) -> str | None:
    """The descriptor's media type as a string (the store refuses the ones it cannot unpack)."""
    return media_type if isinstance(media_type, str) else None


def _names(annotations: dict[str, Any], tag: str | None) -> list[str]:
    full = annotations.get(NAME_ANNOTATION)
    if isinstance(full, str) and full:
        return [full]
    ref = annotations.get(REF_ANNOTATION)
    if isinstance(ref, str) and ref:
        if tag is not None and ":" not in tag.rsplit("/", 1)[-1]:
            return [f"{tag}:{ref}"]
        if "/" in ref or ":" in ref:
            return [ref]
    return [tag] if tag else []


def _manifests(source: _Source, index: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Image manifest descriptors of an index, nested indexes resolved to this platform."""
    if depth > 4 or not isinstance(index, dict):
        raise ArchiveError("index.json is not an OCI image index")
    for desc in index.get("manifests") or []:
        media = desc.get("mediaType")
        if media in (OCI_MANIFEST, DOCKER_MANIFEST):
            yield desc
        elif media in (OCI_INDEX, DOCKER_LIST):
            nested = source.read_json(blob_name(desc["digest"]))
            chosen = _pick_platform(nested.get("manifests") or [])
            if chosen is not None:
                merged = dict(chosen)
                merged["annotations"] = {
                    **(chosen.get("annotations") or {}),
                    **(desc.get("annotations") or {}),
                }
                yield merged


def _pick_platform(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    want_os, want_arch = host_platform()
    for desc in manifests:
        plat = desc.get("platform") or {}
        if plat.get("os") == want_os and plat.get("architecture") == want_arch:
            return desc
    return None
