"""Removing images: ``docker rmi`` and ``image prune``, then collecting what nothing references.

Layers and blobs are reference-counted by scanning the configs that remain:
a layer shared by two images stays until the last of them is removed.
Collection holds the ``images-gc`` lock exclusively, so nothing that a
writer holds a lease for (a pull between fetching and ``put_image``) goes.
A layer dir is renamed out of sight before it is deleted, so a half-deleted
layer is never taken for a layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.backends.native.images import reference
from composer.backends.native.images.layers import SHA256, chain_ids
from composer.errors import ConfigError, Conflict, NotFound

if TYPE_CHECKING:
    from composer.backends.native.images.store import ImageStore

# Scratch names of the store in <root>/tmp: ingests, unpacks, deletions.
SCRATCH_PREFIXES = ("blob-", "layer-", "doomed-")


@dataclass(frozen=True, slots=True)
class RemoveResult:
    """What ``remove``/``prune`` did, in Docker's words (``Untagged``/``Deleted``)."""

    untagged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    reclaimed: int = 0


def remove(store: ImageStore, ref_or_id: str, force: bool = False) -> RemoveResult:
    """``docker rmi``: untag a reference; delete the image when no tag is left.

    By id, an image with several tags needs ``force``. The last name of
    an image that a container uses is kept unless ``force``; forced, the
    image loses its names but stays (dangling, its layers under the
    container's overlay) until the container is gone and a prune runs.
    """
    store.ensure()
    image_id = store.resolve(ref_or_id)
    if image_id is None:
        raise NotFound(f"No such image: {ref_or_id}")
    by_id = not _is_tag(store, ref_or_id, image_id)
    with store.root.locked("images-gc"), store.root.locked("images"):
        tags = dict(store.tags())
        mine = sorted(r for r, i in tags.items() if i == image_id)
        if by_id and len(mine) > 1 and not force:
            raise Conflict(
                f"unable to delete {image_id[7:19]} (must be forced) - image is referenced "
                "in multiple repositories",
                hint="remove it by name, or use -f",
            )
        untag = mine if by_id else [reference.normalize(ref_or_id)]
        last_name = len(set(mine) - set(untag)) == 0
        used = last_name and image_id in store.in_use()
        if used and not force:
            raise Conflict(
                f"unable to remove {ref_or_id} (must be forced) - image {image_id[7:19]} "
                "is being used by a container",
                hint="remove the container first, or use -f",
            )
        for ref in untag:
            tags.pop(ref, None)
        if untag:
            store.write_tags(tags)
        deleted: list[str] = []
        if last_name and not used:
            store.config_path(image_id).unlink(missing_ok=True)
            deleted.append(image_id)
        reclaimed = _collect(store) if deleted else 0
    return RemoveResult(tuple(reference.familiar_name(r) for r in untag), tuple(deleted), reclaimed)


def _is_tag(store: ImageStore, text: str, image_id: str) -> bool:
    if reference.is_image_id(text):
        return False
    try:
        return store.tags().get(reference.normalize(text)) == image_id
    except ConfigError:  # not a reference
        return False


def prune(store: ImageStore, all: bool = False) -> RemoveResult:
    """Delete dangling (untagged) images, or with ``all`` every image no container uses."""
    store.ensure()
    with store.root.locked("images-gc"), store.root.locked("images"):
        tags = dict(store.tags())
        tagged = set(tags.values())
        used = store.in_use()
        deleted: list[str] = []
        untagged: list[str] = []
        for image_id in store.image_ids():
            if image_id in used or (image_id in tagged and not all):
                continue
            for ref in [r for r, i in tags.items() if i == image_id]:
                untagged.append(reference.familiar_name(ref))
                del tags[ref]
            store.config_path(image_id).unlink(missing_ok=True)
            deleted.append(image_id)
        if untagged:
            store.write_tags(tags)
        reclaimed = _collect(store)
    return RemoveResult(tuple(untagged), tuple(deleted), reclaimed)


def _collect(store: ImageStore) -> int:
    """Delete layers and blobs that no image references (callers hold ``images-gc``)."""
    from composer.backends.native.images.store import parse_config

    keep_chains: set[str] = set()
    keep_blobs: set[str] = set()
    for image_id in store.image_ids():
        try:
            config = parse_config(store.config_path(image_id).read_bytes())
        except (FileNotFoundError, Conflict):
            continue
        keep_chains.update(chain_ids(config["rootfs"]["diff_ids"]))
    reclaimed = 0
    layers_dir = store.base / "layers"
    for entry in layers_dir.iterdir():
        chain = SHA256 + entry.name
        info = store.layer(chain) if reference.is_image_id(chain) else None
        if info is not None and chain in keep_chains:
            keep_blobs.add(info.blob)
            continue
        if info is not None:
            reclaimed += info.size
        _delete_tree(store, entry)
    for entry in (store.base / "blobs" / "sha256").iterdir():
        if SHA256 + entry.name in keep_blobs or entry.name.startswith("."):
            continue
        reclaimed += entry.stat().st_size
        entry.unlink(missing_ok=True)
        (store.base / "diffids" / entry.name).unlink(missing_ok=True)
    _clear_scratch(store)
    return reclaimed


def _clear_scratch(store: ImageStore) -> None:
    """Remove what interrupted ingests and unpacks left in ``<root>/tmp``, and layer locks.

    Every ingest and unpack holds a lease, and the caller holds
    ``images-gc`` exclusively, so none of these is in use right now.
    """
    with contextlib.suppress(FileNotFoundError):
        # per-layer lock files: every holder holds a lease too, so none is held now
        for entry in os.scandir(store.root.path / "locks"):
            if entry.name.startswith("layer-") and entry.name.endswith(".lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(store.root.tmp):
            if not entry.name.startswith(SCRATCH_PREFIXES):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _delete_tree(store: ImageStore, path: Path) -> None:
    """Rename out of sight first, so a half-deleted layer is never seen as a layer."""
    doomed = Path(tempfile.mkdtemp(prefix="doomed-", dir=store.root.tmp))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, doomed / "x")
    shutil.rmtree(doomed, ignore_errors=True)
