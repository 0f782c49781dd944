"""What ``composer image …`` asks of the native store, answered in the Docker API's shapes.

The CLI renders both backends alike, so this module returns what the Docker
Engine API returns for the same question (``/images/json`` summaries,
``/images/<id>/json`` inspect documents, ``rmi`` and prune reports): the
Docker side passes the engine's answers through, this side builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from composer.backends.native.images import archive, importer
from composer.backends.native.images import reference as refs
from composer.backends.native.images.store import ImageStore, StoredImage
from composer.backends.native.state import StateRoot


def created_epoch(created: str | None) -> int:
    """Seconds since the epoch of an RFC 3339 ``created`` (0 when absent or unreadable)."""
    if not created:
        return 0
    text = created.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Go writes nanoseconds; Python reads at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


class NativeImageAdmin:
    """Image administration on the native store under one state root."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store

    @classmethod
    def from_root(cls, root: StateRoot) -> NativeImageAdmin:
        """The store under ``root``; images that container records name count as in use."""

        def in_use() -> set[str]:
            from composer.backends.native.observe import scan

            return {r.image_id for r in scan(root) if r.image_id}

        return cls(ImageStore(root, in_use=in_use))

    def _names(self, image: StoredImage) -> tuple[list[str], list[str]]:
        tags = [refs.familiar_name(t) for t in image.tags if "@" not in t]
        digests = [refs.familiar_name(t) for t in image.tags if "@" in t]
        return tags, digests

    def summaries(self) -> list[dict[str, Any]]:
        out = []
        for image in self.store.list():
            tags, digests = self._names(image)
            out.append(
                {
                    "Id": image.id,
                    "ParentId": "",
                    "RepoTags": tags,
                    "RepoDigests": digests,
                    "Created": created_epoch(image.created),
                    "Size": image.size,
                    "Labels": (image.config.get("config") or {}).get("Labels") or {},
                }
            )
        return out

    def inspect(self, ref: str) -> dict[str, Any]:
        image = self.store.get(ref)
        tags, digests = self._names(image)
        config = image.config
        history = config.get("history") or []
        return {
            "Id": image.id,
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": "",
            "Comment": (history[-1].get("comment") or "") if history else "",
            "Created": image.created or "",
            "DockerVersion": config.get("docker_version", ""),
            "Author": config.get("author", ""),
            "Config": config.get("config") or {},
            "Architecture": config.get("architecture", ""),
            "Variant": config.get("variant"),
            "Os": config.get("os", ""),
            "Size": image.size,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {"LowerDir": ":".join(str(p) for p in image.layer_dirs)},
            },
            "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }

    def remove(self, ref: str, force: bool) -> list[dict[str, str]]:
        result = self.store.remove(ref, force=force)
        return [{"Untagged": t} for t in result.untagged] + [{"Deleted": d} for d in result.deleted]

    def prune(self, all: bool) -> dict[str, Any]:
        result = self.store.prune(all=all)
        return {
            "ImagesDeleted": [{"Untagged": t} for t in result.untagged]
            + [{"Deleted": d} for d in result.deleted],
            "SpaceReclaimed": result.reclaimed,
        }

    def import_image(
        self, tarball: Path, ref: str | None, changes: Sequence[str], message: str
    ) -> str:
        return importer.import_rootfs(
            self.store, tarball, ref=ref, changes=changes, message=message
        )

    def load(self, source: Path) -> list[str]:
        lines: list[str] = []
        for image in archive.load(self.store, source):
            if image.tags:
                lines.extend(f"Loaded image: {refs.familiar_name(t)}" for t in image.tags)
            else:
                lines.append(f"Loaded image ID: {image.id}")
        return lines

    def save(self, names: Sequence[str], out: BinaryIO) -> None:
        archive.save(self.store, list(names), out)

    def save_to_file(self, names: Sequence[str], path: Path) -> None:
        archive.save_to_file(self.store, list(names), path)
