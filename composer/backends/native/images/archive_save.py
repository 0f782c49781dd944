"""Saving images as one archive that ``docker load`` accepts, old and new.

Both descriptions are written, as Docker >= 25 does: the OCI layout
(``oci-layout``, ``index.json`` with ``io.containerd.image.name``
annotations, ``blobs/sha256``) and the legacy ``manifest.json`` whose paths
point into ``blobs/sha256``, which Docker 20.10 reads. Layers go out
uncompressed, so their digest is the DiffID, as Docker writes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any, BinaryIO

from composer.backends.native.images import reference
from composer.backends.native.images.decompress import open_decompressed
from composer.backends.native.images.oci import (
    NAME_ANNOTATION,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    REF_ANNOTATION,
    blob_name,
)
from composer.backends.native.images.store import SHA256, ImageStore, StoredImage, digest_hex
from composer.errors import ConfigError

_CHUNK = 1 << 20


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
            _add_bytes(tf, blob_name(image.id), config)
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
            _add_bytes(tf, blob_name(manifest_digest), manifest)
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
                "Config": blob_name(image.id),
                "RepoTags": [reference.familiar_name(t) for t in tags] or None,
                "Layers": [blob_name(d) for d in image.diff_ids],
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
    name = blob_name(diff_id)
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
