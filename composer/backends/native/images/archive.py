"""Image archives: load ``docker save`` output and OCI layouts, save what ``docker load`` reads.

Three inputs are accepted, told apart by what they contain:

* a legacy ``docker save`` archive (``manifest.json`` naming ``<id>/layer.tar``
  files, Docker < 25), where repeated layers may be symlinks to each other;
* an archive in OCI layout (``oci-layout``, ``index.json``, ``blobs/``), with
  or without the legacy ``manifest.json`` that Docker >= 25 adds;
* an OCI layout directory (skopeo, buildah, crane).

``save`` writes both descriptions at once, as Docker >= 25 does: the OCI
layout with ``io.containerd.image.name`` annotations and the legacy
``manifest.json`` whose paths point into ``blobs/sha256``, so old and new
``docker load`` accept it. Layers are written uncompressed (their digest is
the DiffID), as Docker writes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from composer.backends.native.images import reference
from composer.backends.native.images.extract import UnsafeLayer, open_decompressed, split_name
from composer.backends.native.images.store import (
    SHA256,
    ImageStore,
    StoredImage,
    digest_hex,
)
from composer.errors import ComposerError, ConfigError, NotFound, Unsupported

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_MAX_JSON = 16 << 20
_CHUNK = 1 << 20


class ArchiveError(ComposerError):
    """An archive that is not an image archive, or is damaged."""


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


def _blob_name(digest: str) -> str:
    algo = digest.partition(":")[0]
    if algo != "sha256":
        raise Unsupported(f"digest algorithm {algo!r} is not supported", hint="use sha256")
    try:
        return f"blobs/sha256/{digest_hex(digest)}"
    except ValueError:
        raise ArchiveError(f"bad digest {digest!r} in the archive") from None


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
        layers = entry.get("Layers") or []
        blobs = [_ingest(store, source, name, _digest_of_name(name)) for name in layers]
        image_id = store.put_image(config, blobs)
        tags = tuple(store.tag(ref, image_id) for ref in entry.get("RepoTags") or ())
        loaded.append(LoadedImage(image_id, tags))
    return loaded


def _load_oci(store: ImageStore, source: _Source, tag: str | None) -> list[LoadedImage]:
    index = source.read_json("index.json")
    loaded: list[LoadedImage] = []
    for desc in _manifests(source, index):
        manifest = source.read_json(_blob_name(desc["digest"]))
        config_digest = manifest["config"]["digest"]
        with source.open(_blob_name(config_digest)) as f:
            config = f.read(_MAX_JSON + 1)
        blobs, types = [], []
        for layer in manifest.get("layers", []):
            blobs.append(_ingest(store, source, _blob_name(layer["digest"]), layer["digest"]))
            types.append(_layer_type(layer.get("mediaType")))
        image_id = store.put_image(config, blobs, media_types=types)
        names = _names(desc.get("annotations") or {}, tag)
        tags = tuple(store.tag(ref, image_id) for ref in names)
        loaded.append(LoadedImage(image_id, tags))
    return loaded


def _layer_type(media_type: Any) -> str | None:
    if media_type in (None, OCI_LAYER + "+gzip", OCI_LAYER, OCI_LAYER + "+zstd"):
        return media_type if isinstance(media_type, str) else None
    if isinstance(media_type, str) and media_type.startswith("application/vnd.docker."):
        return media_type
    return str(media_type)


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
            nested = source.read_json(_blob_name(desc["digest"]))
            chosen = _pick_platform(nested.get("manifests") or [])
            if chosen is not None:
                merged = dict(chosen)
                merged["annotations"] = {
                    **(chosen.get("annotations") or {}),
                    **(desc.get("annotations") or {}),
                }
                yield merged


def host_platform() -> tuple[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return "linux", arch


def _pick_platform(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    want_os, want_arch = host_platform()
    for desc in manifests:
        plat = desc.get("platform") or {}
        if plat.get("os") == want_os and plat.get("architecture") == want_arch:
            return desc
    return None


# -- save ----------------------------------------------------------------------


def save(store: ImageStore, refs: list[str], out: BinaryIO) -> None:
    """Write the images named by ``refs`` as one archive that ``docker load`` accepts."""
    chosen: list[tuple[StoredImage, list[str]]] = []
    for ref in refs:
        image = store.get(ref)
        tags: list[str] = []
        if not reference.is_image_id(ref) and store.resolve(ref) == image.id:
            try:
                name = reference.normalize(ref)
            except ConfigError:
                name = None
            if name is not None and name in image.tags:
                tags.append(name)
        for known, tag_list in chosen:
            if known.id == image.id:
                tag_list.extend(t for t in tags if t not in tag_list)
                break
        else:
            chosen.append((image, tags))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _write_archive(store, tf, chosen)


def save_to_file(store: ImageStore, refs: list[str], path: Path) -> None:
    """``save`` into ``path`` atomically (a temporary file renamed over it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            save(store, refs, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_archive(
    store: ImageStore, tf: tarfile.TarFile, chosen: list[tuple[StoredImage, list[str]]]
) -> None:
    written: set[str] = set()
    sizes: dict[str, int] = {}
    _add_dir(tf, "blobs")
    _add_dir(tf, "blobs/sha256")
    legacy: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image, tags in chosen:
        layer_descs = []
        for layer in image.layers:
            if layer.diff_id not in written:
                sizes[layer.diff_id] = _add_layer(
                    store, tf, layer.blob, layer.diff_id, layer.tar_size
                )
                written.add(layer.diff_id)
            size = sizes[layer.diff_id]
            layer_descs.append({"mediaType": OCI_LAYER, "digest": layer.diff_id, "size": size})
        config = store.config_path(image.id).read_bytes()
        if image.id not in written:
            _add_bytes(tf, _blob_name(image.id), config)
            written.add(image.id)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": len(config)},
                "layers": layer_descs,
            },
            separators=(",", ":"),
        ).encode()
        manifest_digest = SHA256 + hashlib.sha256(manifest).hexdigest()
        if manifest_digest not in written:
            _add_bytes(tf, _blob_name(manifest_digest), manifest)
            written.add(manifest_digest)
        desc = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
        named: list[str | None] = list(tags) or [None]
        for tag in named:
            entry = dict(desc)
            if tag is not None:
                parsed = reference.parse(tag)
                entry["annotations"] = {
                    NAME_ANNOTATION: tag,
                    REF_ANNOTATION: parsed.tag or "latest",
                }
                repo = reference.familiar_name(parsed.repository)
                if image.diff_ids:
                    top = digest_hex(image.chain_ids[-1])
                    repositories.setdefault(repo, {})[parsed.tag or "latest"] = top
            index.append(entry)
        legacy.append(
            {
                "Config": _blob_name(image.id),
                "RepoTags": [reference.familiar_name(t) for t in tags] or None,
                "Layers": [_blob_name(d) for d in image.diff_ids],
            }
        )
    _add_bytes(
        tf, "index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index})
    )
    _add_bytes(tf, "manifest.json", _json(legacy))
    _add_bytes(tf, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    if repositories:
        _add_bytes(tf, "repositories", _json(repositories))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    return info


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    tf.addfile(_info(name, kind=tarfile.DIRTYPE))


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    tf.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_layer(
    store: ImageStore, tf: tarfile.TarFile, blob: str, diff_id: str, tar_size: int | None
) -> int:
    """The layer uncompressed, as ``blobs/sha256/<diff-id>``, streamed from the stored blob."""
    name = _blob_name(diff_id)
    with store.open_blob(blob) as raw:
        stream: IO[bytes] = open_decompressed(raw)
        if tar_size is not None:
            tf.addfile(_info(name, tar_size), stream)
            return tar_size
        with tempfile.TemporaryFile(dir=store.root.tmp) as tmp:
            shutil.copyfileobj(stream, tmp, _CHUNK)
            size = tmp.tell()
            tmp.seek(0)
            tf.addfile(_info(name, size), tmp)
            return size
