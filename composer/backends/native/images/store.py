"""The native image store: blobs, unpacked layers, configs and tags under the state root.

Layout (``<root>/images``)::

    blobs/sha256/<hex>            content-addressed blobs, layers as received (any compression)
    diffids/<blob-hex>            the DiffID a layer blob decompresses to (so it is read once)
    layers/<chain-hex>/diff/      the layer unpacked once per chain ID (an overlay lower dir)
    layers/<chain-hex>/meta.json  {chain_id, diff_id, parent, size, blob, media_type}
    configs/<id-hex>.json         image config, byte for byte (the image id is its sha256)
    tags.json                     {normalised reference: image id}

Two composer processes may use the store at once. Blobs and layers are
built in ``<root>/tmp`` and renamed into place, so they appear whole or not
at all and the second of two racing writers simply drops its copy. A per
layer lock keeps two processes from unpacking the same layer twice, the
``images`` lock serialises tag and config changes, and garbage collection
takes the ``images-gc`` lock exclusively while writers hold it shared
(``lease``), so a blob that a pull has fetched but not yet referenced is
never collected under it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.backends.native.images import reference
from composer.backends.native.images.layers import (
    LAYER_MEDIA_TYPES,
    SHA256,
    LayerInfo,
    as_digest,
    chain_id,
    chain_ids,
    digest_hex,
    place_layer,
    read_layer,
    unpack_layer,
)
from composer.backends.native.images.removal import RemoveResult
from composer.backends.native.state import StateRoot, atomic_write, read_json, write_json
from composer.errors import ConfigError, Conflict, NotFound, Unsupported

__all__ = [
    "LAYER_MEDIA_TYPES",
    "SHA256",
    "ImageStore",
    "LayerInfo",
    "RemoveResult",
    "StoredImage",
    "as_digest",
    "chain_id",
    "chain_ids",
    "digest_hex",
    "parse_config",
]
_COPY_CHUNK = 1 << 20
SCRATCH_BLOB = "blob-"


@dataclass(frozen=True)
class StoredImage:
    """An image in the store, ready to be run: config, layers and tags."""

    id: str
    config: dict[str, Any]
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    layers: tuple[LayerInfo, ...]
    tags: tuple[str, ...] = field(default=())

    @property
    def layer_dirs(self) -> list[Path]:
        """The overlay lower dirs, top-most first (``lowerdir=a:b:c`` order)."""
        return [layer.diff_dir for layer in reversed(self.layers)]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def created(self) -> str | None:
        value = self.config.get("created")
        return value if isinstance(value, str) else None

    @property
    def short_id(self) -> str:
        return self.id[len(SHA256) : len(SHA256) + 12]


class ImageStore:
    """Images under one state root (see the module doc for the layout and the locking)."""

    def __init__(self, root: StateRoot, *, in_use: Callable[[], set[str]] | None = None) -> None:
        self.root = root
        self.base = root.images
        self._in_use = in_use or (lambda: set())
        self._tags_key: tuple[int, int, int] | None = None
        self._tags: dict[str, str] = {}
        self._ready = False

    # -- paths -----------------------------------------------------------------

    def ensure(self) -> None:
        """Create the store's directories (once per process)."""
        if self._ready:
            return
        self.root.ensure()
        for sub in ("blobs/sha256", "layers", "configs", "diffids"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self._ready = True

    def blob_path(self, digest: str) -> Path:
        return self.base / "blobs" / "sha256" / digest_hex(digest)

    def layer_path(self, chain: str) -> Path:
        return self.base / "layers" / digest_hex(chain)

    def config_path(self, image_id: str) -> Path:
        return self.base / "configs" / f"{digest_hex(image_id)}.json"

    @property
    def tags_path(self) -> Path:
        return self.base / "tags.json"

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Keep garbage collection away while blobs and layers are added but not yet referenced."""
        self.ensure()
        with self.root.locked("images-gc", shared=True):
            yield

    # -- blobs -----------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def ingest_blob(
        self, expected_digest: str | None, chunks: Iterable[bytes], *, size: int | None = None
    ) -> str:
        """Stream ``chunks`` into the store, verifying sha256 and size; return the digest.

        Nothing is stored unless the content matches: the data goes to a
        temporary file (under a lease, so collection leaves it alone), is
        checked, and only then renamed into place.
        """
        self.ensure()
        if expected_digest is not None and self.has_blob(expected_digest):
            return as_digest(expected_digest)
        sha = hashlib.sha256()
        count = 0
        with self.lease():
            fd, tmp = tempfile.mkstemp(prefix=SCRATCH_BLOB, dir=self.root.tmp)
            try:
                with os.fdopen(fd, "wb") as f:
                    for chunk in chunks:
                        count += len(chunk)
                        if size is not None and count > size:
                            raise Conflict(
                                f"blob is larger than the expected {size} bytes",
                                hint="the source sent more data than its manifest says",
                            )
                        sha.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                digest = self._check(SHA256 + sha.hexdigest(), count, expected_digest, size)
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.blob_path(digest))
                return digest
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    @staticmethod
    def _check(digest: str, count: int, expected: str | None, size: int | None) -> str:
        if size is not None and count != size:
            raise Conflict(f"blob has {count} bytes, expected {size}")
        if expected is not None and digest != as_digest(expected):
            raise Conflict(
                f"blob digest mismatch: expected {expected}, got {digest}",
                hint="the data was corrupted or tampered with on the way; nothing was stored",
            )
        return digest

    def ingest_file(
        self, path: Path, expected_digest: str | None = None, *, move: bool = False
    ) -> str:
        """``ingest_blob`` from a file; with ``move`` the file itself is renamed into place.

        Moving saves a copy of a large download when ``path`` is on the
        state root's filesystem (``<root>/tmp``); the file is hashed first
        and left where it was when it does not match.
        """
        if not move:
            with open(path, "rb") as f:
                return self.ingest_blob(expected_digest, iter(lambda: f.read(_COPY_CHUNK), b""))
        self.ensure()
        sha = hashlib.sha256()
        with self.lease():
            with open(path, "rb") as f:
                while chunk := f.read(_COPY_CHUNK):
                    sha.update(chunk)
                count = f.tell()
                os.fsync(f.fileno())
            digest = self._check(SHA256 + sha.hexdigest(), count, expected_digest, None)
            os.chmod(path, 0o644)
            try:
                os.replace(path, self.blob_path(digest))
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                return self.ingest_file(path, digest)  # another filesystem: copy
        return digest

    def open_blob(self, digest: str) -> Any:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the image store") from None

    # -- layers ----------------------------------------------------------------

    def layer(self, chain: str) -> LayerInfo | None:
        """The unpacked layer with this chain ID, or None."""
        return read_layer(self.layer_path(chain))

    def known_diff_id(self, blob: str) -> str | None:
        """The DiffID of a layer blob unpacked before, without reading the blob."""
        try:
            return (self.base / "diffids" / digest_hex(blob)).read_text().strip() or None
        except FileNotFoundError:
            return None

    def add_layer(
        self,
        blob_digest_or_path: str | Path,
        *,
        media_type: str | None = None,
        parent: str | None = None,
        diff_id: str | None = None,
        max_bytes: int | None = None,
    ) -> LayerInfo:
        """Unpack a layer blob on top of the chain ``parent`` (once per chain ID).

        ``blob_digest_or_path`` is a blob already in the store or a file,
        which is ingested first. The compression is read from the data
        (uncompressed, gzip, zstd). With ``diff_id`` known (from the image
        config) an existing layer is found without opening the blob, and
        the unpacked content must hash to it.
        """
        if media_type is not None and media_type not in LAYER_MEDIA_TYPES:
            raise Unsupported(
                f"layer media type {media_type!r} is not supported",
                hint="layers may be tar, tar+gzip or tar+zstd",
            )
        self.ensure()
        with self.lease():
            if isinstance(blob_digest_or_path, Path):
                blob = self.ingest_file(blob_digest_or_path)
            else:
                blob = as_digest(blob_digest_or_path)
            if not self.has_blob(blob):
                raise NotFound(f"layer blob {blob} is not in the image store")
            known = diff_id or self.known_diff_id(blob)
            if known is not None:
                found = self.layer(chain_id(parent, known))
                if found is not None:
                    return found
            lock_key = digest_hex(chain_id(parent, known) if known else blob)
            with self.root.locked(f"layer-{lock_key}"):
                if known is not None:
                    found = self.layer(chain_id(parent, known))
                    if found is not None:
                        return found
                return self._unpack(blob, media_type, parent, diff_id, max_bytes)

    def commit_layer(
        self,
        tar: Path,
        diff_dir: Path,
        *,
        diff_id: str,
        parent: str | None,
        size: int,
    ) -> LayerInfo:
        """Store a layer the caller already holds both as a tar and as a directory.

        The builder's commit: ``diff_dir`` is a step's overlay upper
        directory (overlay form: whiteouts as 0/0 devices, opaque dirs by
        xattr) and ``tar`` the uncompressed OCI layer written from it, whose
        sha256 is ``diff_id``. The tar is verified and moved in as the blob;
        the directory is renamed into ``layers/<chain>/diff`` instead of
        unpacking the tar again. Both are consumed (``diff_dir`` is left
        alone when the chain exists already). A ``diff_dir`` on another
        filesystem falls back to unpacking the tar.
        """
        self.ensure()
        with self.lease():
            blob = self.ingest_file(tar, diff_id, move=True)
            chain = chain_id(parent, diff_id)
            found = self.layer(chain)
            if found is not None:
                return found
            with self.root.locked(f"layer-{digest_hex(chain)}"):
                found = self.layer(chain)
                if found is not None:
                    return found
                if parent is not None and self.layer(parent) is None:
                    raise NotFound(f"parent layer {parent} is not in the image store")
                tar_size = self.blob_path(blob).stat().st_size
                try:
                    place_layer(
                        diff_dir,
                        blob,
                        scratch=self.root.tmp,
                        layers_dir=self.base / "layers",
                        parent=parent,
                        diff_id=diff_id,
                        size=size,
                        tar_size=tar_size,
                    )
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    return self._unpack(blob, None, parent, diff_id, None)
                atomic_write(self.base / "diffids" / digest_hex(blob), diff_id.encode())
                info = self.layer(chain)
                assert info is not None
                return info

    def _unpack(
        self,
        blob: str,
        media_type: str | None,
        parent: str | None,
        expected_diff: str | None,
        max_bytes: int | None,
    ) -> LayerInfo:
        lowers: list[Path] = []
        if parent is not None:
            parent_layer = self.layer(parent)
            if parent_layer is None:
                raise NotFound(f"parent layer {parent} is not in the image store")
            lowers = self._chain_dirs(parent_layer)
        chain = unpack_layer(
            self.blob_path(blob),
            blob,
            scratch=self.root.tmp,
            layers_dir=self.base / "layers",
            media_type=media_type,
            parent=parent,
            expected_diff=expected_diff,
            max_bytes=max_bytes,
            lowers=lowers,
        )
        info = self.layer(chain)
        assert info is not None
        atomic_write(self.base / "diffids" / digest_hex(blob), info.diff_id.encode())
        return info

    def _chain_dirs(self, top: LayerInfo) -> list[Path]:
        """Diff dirs of ``top`` and its ancestors, top first."""
        out = [top.diff_dir]
        cur = top
        while cur.parent is not None:
            nxt = self.layer(cur.parent)
            if nxt is None:
                break
            out.append(nxt.diff_dir)
            cur = nxt
        return out

    # -- images ----------------------------------------------------------------

    def put_image(
        self,
        config: bytes,
        layer_blobs: list[str],
        *,
        media_types: list[str | None] | None = None,
    ) -> str:
        """Store an image: its config and its layers (unpacked if new). Returns the image id."""
        parsed = parse_config(config)
        diff_ids = parsed["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layer_blobs):
            raise Conflict(
                f"image config lists {len(diff_ids)} layers but {len(layer_blobs)} were given"
            )
        types = media_types or [None] * len(layer_blobs)
        image_id = SHA256 + hashlib.sha256(config).hexdigest()
        with self.lease():
            parent: str | None = None
            for blob, diff, mtype in zip(layer_blobs, diff_ids, types, strict=True):
                parent = self.add_layer(
                    blob, media_type=mtype, parent=parent, diff_id=diff
                ).chain_id
            path = self.config_path(image_id)
            if not path.is_file():
                atomic_write(path, config)
        return image_id

    def has_image(self, image_id: str) -> bool:
        return self.config_path(image_id).is_file()

    def image(self, image_id: str) -> StoredImage:
        """The stored image ``image_id`` (``NotFound`` when absent or incomplete)."""
        image_id = as_digest(image_id)
        try:
            raw = self.config_path(image_id).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no such image: {image_id}") from None
        config = parse_config(raw)
        diffs = tuple(config["rootfs"]["diff_ids"])
        chains = tuple(chain_ids(diffs))
        layers = []
        for chain in chains:
            layer = self.layer(chain)
            if layer is None:
                raise NotFound(f"image {image_id} is missing its layer {chain}")
            layers.append(layer)
        tags = tuple(sorted(ref for ref, iid in self._read_tags().items() if iid == image_id))
        return StoredImage(image_id, config, diffs, chains, tuple(layers), tags)

    def image_ids(self) -> list[str]:
        self.ensure()
        return sorted(
            SHA256 + p.name[: -len(".json")]
            for p in (self.base / "configs").iterdir()
            if p.name.endswith(".json") and not p.name.startswith(".")
        )

    def list(self) -> list[StoredImage]:
        """Every complete image, newest first (as ``docker images`` orders them)."""
        out = []
        for image_id in self.image_ids():
            with contextlib.suppress(NotFound):
                out.append(self.image(image_id))
        out.sort(key=lambda i: (i.created or "", i.id), reverse=True)
        return out

    # -- tags ------------------------------------------------------------------

    def _read_tags(self) -> dict[str, str]:
        """tags.json, read again only when the file changed (one stat per call)."""
        try:
            st = os.stat(self.tags_path)
        except FileNotFoundError:
            self._tags_key, self._tags = None, {}
            return self._tags
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._tags_key:
            data = read_json(self.tags_path)
            self._tags = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
            self._tags_key = key
        return self._tags

    def write_tags(self, tags: dict[str, str]) -> None:
        """Replace tags.json (callers hold the ``images`` lock, so what we wrote is current)."""
        write_json(self.tags_path, tags)
        st = os.stat(self.tags_path)
        self._tags, self._tags_key = dict(tags), (st.st_ino, st.st_mtime_ns, st.st_size)

    def tags(self) -> dict[str, str]:
        """A copy of {normalised reference: image id}."""
        return dict(self._read_tags())

    def tag(self, ref: str, image_id: str) -> str:
        """Point ``ref`` at ``image_id`` (moving it from another image); returns it normalised."""
        image_id = as_digest(image_id)
        if not self.has_image(image_id):
            raise NotFound(f"no such image: {image_id}")
        name = reference.normalize(ref)
        self.ensure()
        with self.root.locked("images"):
            tags = dict(self._read_tags())
            if tags.get(name) != image_id:
                tags[name] = image_id
                self.write_tags(tags)
        return name

    def untag(self, ref: str) -> str | None:
        """Remove the tag ``ref``; returns the image id it pointed at, if any."""
        name = reference.normalize(ref)
        self.ensure()
        with self.root.locked("images"):
            tags = dict(self._read_tags())
            image_id = tags.pop(name, None)
            if image_id is not None:
                self.write_tags(tags)
        return image_id

    def resolve(self, ref_or_id: str) -> str | None:
        """The image id that a reference, a full id or a unique id prefix names."""
        text = ref_or_id.strip()
        if reference.is_image_id(text):
            image_id = as_digest(text)
            return image_id if self.has_image(image_id) else None
        if not text:
            return None
        try:
            name = reference.normalize(text)
        except ConfigError:  # not a reference: maybe a short id
            name = None
        if name is not None:
            found = self._read_tags().get(name)
            if found is not None and self.has_image(found):
                return found
        if reference.looks_like_id_prefix(text):
            body = text[len(SHA256) :] if text.startswith(SHA256) else text
            matches = [i for i in self.image_ids() if i[len(SHA256) :].startswith(body)]
            if len(matches) > 1:
                raise Conflict(f"short id {text!r} is ambiguous", hint="give more digits")
            if matches:
                return matches[0]
        return None

    def get(self, ref_or_id: str) -> StoredImage:
        """``image(resolve(ref))``, with Docker's wording when it is missing."""
        image_id = self.resolve(ref_or_id)
        if image_id is None:
            raise NotFound(
                f"No such image: {ref_or_id}",
                hint="load it (composer image load), import it or pull it first",
            )
        return self.image(image_id)

    # -- removal ---------------------------------------------------------------

    def remove(self, ref_or_id: str, force: bool = False) -> RemoveResult:
        """``docker rmi`` (see ``removal.remove``)."""
        from composer.backends.native.images import removal

        return removal.remove(self, ref_or_id, force)

    def prune(self, all: bool = False) -> RemoveResult:
        """Delete dangling images, or with ``all`` every image no container uses."""
        from composer.backends.native.images import removal

        return removal.prune(self, all)

    def in_use(self) -> set[str]:
        """Ids of images that containers use."""
        return self._in_use()


def parse_config(raw: bytes) -> dict[str, Any]:
    """An image config as a dict, checked for what the store relies on (``rootfs.diff_ids``)."""
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise Conflict(f"image config is not JSON: {exc}") from exc
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diffs = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diffs, list) or not all(
        isinstance(d, str) and d.startswith(SHA256) and reference.is_image_id(d) for d in diffs
    ):
        raise Conflict("image config has no valid rootfs.diff_ids")
    out: dict[str, Any] = config
    return out
