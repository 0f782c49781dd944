"""Layers of the image store: ids (DiffID, ChainID), records, and unpacking one into place.

A layer is unpacked into a scratch directory beside the store and renamed
to ``layers/<chain-hex>`` only when complete, with its ``meta.json``
({chain_id, diff_id, parent, size, tar_size, blob, media_type}); two
processes racing on the same chain both finish, and the loser drops its
copy. Unpacked layers are never modified afterwards. A layer the builder
made itself is already a directory in overlay form (a step's upper dir):
``place_layer`` moves it into place the same way, without a tar round trip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.images import reference
from composer.backends.native.state import read_json, write_json

SHA256 = "sha256:"
LAYER_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        "application/x-tar",
    }
)


def digest_hex(digest: str) -> str:
    """The hex part of ``sha256:<hex>``; ``ValueError`` for anything else."""
    if not reference.is_image_id(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest[len(SHA256) :] if digest.startswith(SHA256) else digest


def as_digest(digest: str) -> str:
    return SHA256 + digest_hex(digest)


def chain_id(parent: str | None, diff_id: str) -> str:
    """ChainID(L0) = DiffID(L0); ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    if parent is None:
        return diff_id
    return SHA256 + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    out: list[str] = []
    for diff in diff_ids:
        out.append(chain_id(out[-1] if out else None, diff))
    return out


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One unpacked layer: its ids, where its files are, and where it came from."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    blob: str
    media_type: str | None
    path: Path
    tar_size: int | None = None

    @property
    def diff_dir(self) -> Path:
        return self.path / "diff"


def read_layer(path: Path) -> LayerInfo | None:
    """The layer recorded in ``path/meta.json``, or None when there is none."""
    try:
        meta = read_json(path / "meta.json")
    except FileNotFoundError:
        return None
    return LayerInfo(
        chain_id=meta["chain_id"],
        diff_id=meta["diff_id"],
        parent=meta.get("parent"),
        size=int(meta.get("size", 0)),
        blob=meta["blob"],
        media_type=meta.get("media_type"),
        path=path,
        tar_size=meta.get("tar_size"),
    )


def place_layer(
    diff_dir: Path,
    blob: str,
    *,
    scratch: Path,
    layers_dir: Path,
    parent: str | None,
    diff_id: str,
    size: int,
    tar_size: int,
) -> str:
    """Rename the overlay-form directory ``diff_dir`` to ``layers_dir/<chain-hex>/diff``.

    ``diff_dir`` must be on the same filesystem as ``scratch`` (``OSError``
    with ``EXDEV`` otherwise, before anything moved). Returns the chain ID.
    """
    tmp = Path(tempfile.mkdtemp(prefix="layer-", dir=scratch))
    try:
        os.chmod(tmp, 0o711)
        os.rename(diff_dir, tmp / "diff")
        os.chmod(tmp / "diff", 0o755)
        chain = chain_id(parent, diff_id)
        meta = {
            "chain_id": chain,
            "diff_id": diff_id,
            "parent": parent,
            "size": size,
            "tar_size": tar_size,
            "blob": blob,
            "media_type": None,
        }
        _publish(tmp, meta, layers_dir / digest_hex(chain))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return chain


def _publish(tmp: Path, meta: Mapping[str, object], target: Path) -> None:
    """Write ``meta.json`` into the finished ``tmp`` and rename it to ``target``."""
    write_json(tmp / "meta.json", meta)
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / "meta.json").is_file():
            raise
        shutil.rmtree(tmp)  # another process stored the same chain first


def unpack_layer(
    blob_path: Path,
    blob: str,
    *,
    scratch: Path,
    layers_dir: Path,
    media_type: str | None,
    parent: str | None,
    expected_diff: str | None,
    max_bytes: int | None,
    lowers: Sequence[Path],
) -> str:
    """Unpack ``blob_path`` into ``layers_dir/<chain-hex>``; returns the chain ID."""
    # The extractor is loaded only when a layer is unpacked (not for a build
    # whose layers are all in the store already).
    from composer.backends.native.images.extract import UnsafeLayer, extract_layer

    tmp = Path(tempfile.mkdtemp(prefix="layer-", dir=scratch))
    try:
        diff = tmp / "diff"
        diff.mkdir(mode=0o755)
        os.chmod(diff, 0o755)
        os.chmod(tmp, 0o711)
        result = extract_layer(blob_path, diff, max_bytes=max_bytes, lowers=lowers)
        if expected_diff is not None and result.diff_id != expected_diff:
            raise UnsafeLayer(
                f"layer {blob} unpacks to {result.diff_id}, but the image says {expected_diff}",
                hint="the image config and its layers do not match; nothing was stored",
            )
        chain = chain_id(parent, result.diff_id)
        meta = {
            "chain_id": chain,
            "diff_id": result.diff_id,
            "parent": parent,
            "size": result.content_size,
            "tar_size": result.tar_size,
            "blob": blob,
            "media_type": media_type,
        }
        _publish(tmp, meta, layers_dir / digest_hex(chain))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return chain
