"""``pull``: an image from a registry into the ImageStore, layers in parallel, with progress.

The order is Docker's: resolve the reference's manifest (an index is
narrowed to one platform), fetch and verify the config, then download the
layers the store does not have yet, a few at a time (``MAX_DOWNLOADS``
threads, Docker's default of 3), and unpack them in order as soon as each
one and all below it are there, so unpacking overlaps later downloads.
The image is recorded and tagged only when every layer is in: a failed
pull tags nothing.

A layer is downloaded to ``<root>/tmp/downloads/<hex>.partial`` under a
per-blob lock (two pulls of one layer never write the same file), handed to
the store once verified, and the partial file removed. A pull that breaks
off leaves the partial file, and the next pull of any image with that layer
resumes it with a ``Range`` request.

Progress goes to the ``Progress`` callback one ``ProgressUpdate`` at a
time (never from two threads at once), keyed by the 12-digit short layer
digest with Docker's wording: ``Pulling fs layer``, ``Waiting``,
``Downloading`` (bytes), ``Verifying Checksum``, ``Download complete``,
``Extracting``, ``Pull complete``, ``Already exists``.

httpx is imported only when a pull runs: this module is safe to import at
CLI start-up.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.base import Progress, ProgressUpdate
from composer.backends.native.images import reference
from composer.backends.native.images.store import LAYER_MEDIA_TYPES, ImageStore, chain_id
from composer.errors import BackendError, Unsupported

if TYPE_CHECKING:
    import httpx

    from composer.backends.native.images.manifests import Descriptor
    from composer.backends.native.images.registry import RegistryClient

MAX_DOWNLOADS = 3
PROGRESS_STEP = 256 * 1024
PLATFORM_ENV = "DOCKER_DEFAULT_PLATFORM"


def short(digest: str) -> str:
    """The 12-digit id Docker shows for a layer."""
    return digest.partition(":")[2][:12]


class _Reporter:
    """Serialises progress updates from the download threads."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(
        self, id: str, status: str, current: int | None = None, total: int | None = None
    ) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._progress(ProgressUpdate(id, status, current, total))


class _Throttle:
    """``Downloading`` updates for one layer, one per 1% (at least 256 KiB) and at the end."""

    def __init__(self, report: _Reporter, ident: str, total: int) -> None:
        self.report, self.ident, self.total = report, ident, total
        self.step = max(total // 100, PROGRESS_STEP)
        self.last = -1

    def __call__(self, done: int) -> None:
        if self.last < 0 or done - self.last >= self.step or done == self.total or done < self.last:
            self.last = done
            self.report(self.ident, "Downloading", done, self.total)


def pull(
    ref: str,
    store: ImageStore,
    progress: Progress | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    transport: httpx.BaseTransport | None = None,
    max_downloads: int = MAX_DOWNLOADS,
) -> str:
    """Pull ``ref`` into ``store``, tag it, and return the image id (``sha256:`` of the config).

    ``environ`` supplies ``HOME``/``DOCKER_CONFIG`` for credentials and
    ``DOCKER_DEFAULT_PLATFORM``; ``platform`` (``os/arch[/variant]``) wins
    over it, and the host's platform is the default.
    """
    from composer.backends.native.images import auth
    from composer.backends.native.images.manifests import Platform
    from composer.backends.native.images.registry import RegistryClient

    env = environ or {}
    parsed = reference.parse(ref)
    wanted = platform or env.get(PLATFORM_ENV) or None
    report = _Reporter(progress)
    name = str(parsed)
    credentials = auth.lookup(parsed.domain, env)
    with RegistryClient(parsed.domain, credentials=credentials, transport=transport) as client:
        report(name, f"Pulling from {parsed.path}")
        manifest, index = client.image_manifest(
            parsed.path,
            parsed.digest or parsed.tag or reference.DEFAULT_TAG,
            Platform.parse(wanted) if wanted else None,
        )
        layers = manifest.layers
        _check_layers(name, layers)
        config = client.image_config(parsed.path, manifest)
        diff_ids = _diff_ids(name, config, len(layers))
        had = store.has_image("sha256:" + hashlib.sha256(config).hexdigest())
        with store.lease():
            _fetch_layers(client, parsed.path, store, layers, diff_ids, report, max_downloads)
            image_id = store.put_image(config, [d.digest for d in layers])
            store.tag(name, image_id)
    report(name, f"Digest: {(index or manifest).digest}")
    outcome = "Image is up to date for" if had else "Downloaded newer image for"
    report(name, f"Status: {outcome} {parsed.familiar}")
    return image_id


def _check_layers(name: str, layers: list[Descriptor]) -> None:
    """Refuse layers the store cannot unpack before anything is downloaded."""
    for layer in layers:
        if layer.media_type not in LAYER_MEDIA_TYPES:
            raise Unsupported(
                f"{name}: layer {short(layer.digest)} has media type {layer.media_type!r}",
                hint="composer unpacks tar layers, uncompressed, gzip or zstd"
                + (" (foreign layers are Windows images)" if "foreign" in layer.media_type else ""),
            )


def _diff_ids(name: str, config: bytes, count: int) -> list[str]:
    """The config's ``rootfs.diff_ids``, which must list one DiffID per manifest layer."""
    try:
        data: Any = json.loads(config)
        diff_ids = data["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(
            f"{name}: the image config has no rootfs.diff_ids",
            hint="the image is malformed; rebuild and push it again",
        ) from exc
    if not isinstance(diff_ids, list) or len(diff_ids) != count:
        raise BackendError(
            f"{name}: the image config lists {len(diff_ids) if isinstance(diff_ids, list) else 0} "
            f"layers but its manifest has {count}",
            hint="the image is malformed; rebuild and push it again",
        )
    return [str(d) for d in diff_ids]


def _fetch_layers(
    client: RegistryClient,
    repository: str,
    store: ImageStore,
    layers: list[Descriptor],
    diff_ids: list[str],
    report: _Reporter,
    max_downloads: int,
) -> None:
    """Download what is missing in parallel; unpack in order as the downloads complete."""
    chains: list[str] = []
    parent: str | None = None
    for diff in diff_ids:
        parent = chain_id(parent, diff)
        chains.append(parent)
    present = [store.layer(chain) is not None for chain in chains]
    for layer, have in zip(layers, present, strict=True):
        report(short(layer.digest), "Already exists" if have else "Pulling fs layer")
    downloads = store.root.tmp / "downloads"
    with ThreadPoolExecutor(max_workers=max(1, max_downloads), thread_name_prefix="pull") as pool:
        futures: list[Future[None] | None] = []
        for layer, have in zip(layers, present, strict=True):
            if have:
                futures.append(None)
                continue
            report(short(layer.digest), "Waiting")
            futures.append(
                pool.submit(_download, client, repository, store, layer, downloads, report)
            )
        try:
            parent = None
            for n, layer in enumerate(layers):
                future = futures[n]
                if future is not None:
                    future.result()
                    report(short(layer.digest), "Extracting")
                    store.add_layer(
                        layer.digest,
                        media_type=layer.media_type,
                        parent=parent,
                        diff_id=diff_ids[n],
                    )
                    report(short(layer.digest), "Pull complete")
                parent = chains[n]
        except BaseException:
            for pending in futures:
                if pending is not None:
                    pending.cancel()
            raise


def _download(
    client: RegistryClient,
    repository: str,
    store: ImageStore,
    layer: Descriptor,
    downloads: Path,
    report: _Reporter,
) -> None:
    """One layer blob into the store, through a resumable partial file."""
    ident = short(layer.digest)
    hexpart = layer.digest.partition(":")[2]
    with store.root.locked(f"download-{hexpart}"):
        if store.has_blob(layer.digest):
            report(ident, "Download complete")
            return
        partial = downloads / f"{hexpart}.partial"
        client.download_blob(repository, layer, partial, _Throttle(report, ident, layer.size))
        report(ident, "Verifying Checksum")
        store.ingest_file(partial, layer.digest)
        partial.unlink(missing_ok=True)
        report(ident, "Download complete")
