"""Downloading one blob to a file: streamed, verified, and resumed after a break.

Layers are the large part of a pull and connections do break, so a layer
is written to a partial file as it arrives, hashed on the way, and a
broken transfer continues from the file's end with ``Range: bytes=N-``
(the bytes already there are hashed first) instead of starting over: in
the same call, or in a later pull that finds the partial file. A server
that ignores the range (200) or refuses it (416) makes the file start
over. Nothing unverified survives: a blob longer than its descriptor, or
with the wrong digest, deletes the partial file. When a resumed file turns
out wrong (its old prefix was not the blob's), the blob is fetched once
more from the start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from composer.backends.native.images.manifests import Descriptor, new_hasher, verify_blob
from composer.backends.native.images.registry_errors import is_retryable, transport_error
from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.backends.native.images.registry import ProgressFn, RegistryClient


def download(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    partial: Path,
    progress: ProgressFn | None = None,
    *,
    attempts: int,
) -> Path:
    """Fetch ``desc`` into ``partial`` until complete and verified; ``partial`` on success."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    resumed = partial.exists() and partial.stat().st_size > 0
    try:
        return _download(client, repository, desc, partial, progress, attempts)
    except BackendError:
        if not resumed or partial.exists():
            raise
    # the old partial file was not a prefix of this blob: once more from nothing
    return _download(client, repository, desc, partial, progress, attempts)


def _download(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    partial: Path,
    progress: ProgressFn | None,
    attempts: int,
) -> Path:
    hasher = new_hasher(desc.digest)
    for attempt in range(attempts):
        hasher = new_hasher(desc.digest)
        have = _hash_existing(partial, hasher, desc.size)
        if progress:
            progress(have)
        if have == desc.size:
            break
        try:
            hasher = _stream_into(client, repository, desc, partial, have, hasher, progress)
            break
        except httpx.HTTPError as exc:
            if not is_retryable(exc) or attempt == attempts - 1:
                raise transport_error(exc, client.domain) from exc
    size = partial.stat().st_size if partial.exists() else 0
    try:
        verify_blob(f"blob {desc.digest}", size, f"{hasher.name}:{hasher.hexdigest()}", desc)
    except BackendError:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _stream_into(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    partial: Path,
    have: int,
    hasher: Any,
    progress: ProgressFn | None,
) -> Any:
    """Append the rest of the blob to ``partial``; the hasher over the whole file."""
    what = f"blob {desc.digest}"
    headers = {"Accept-Encoding": "identity"}  # ranges count stored bytes, not re-encoded ones
    if have:
        headers["Range"] = f"bytes={have}-"
    with client.stream(f"/v2/{repository}/blobs/{desc.digest}", repository, headers) as resp:
        if resp.status_code == 416:
            partial.unlink(missing_ok=True)
            raise httpx.RemoteProtocolError("range not satisfiable; starting over")
        if resp.status_code == 206 and have:
            if _range_start(resp.headers.get("content-range", "")) != have:
                partial.unlink(missing_ok=True)
                raise httpx.RemoteProtocolError("unexpected content range; starting over")
            mode = "ab"
        elif resp.status_code == 200:
            if have:  # the server ignored the range: start over
                hasher = new_hasher(desc.digest)
                have = 0
            mode = "wb"
        else:
            resp.read()
            raise client.error_for(resp, what)
        with open(partial, mode) as out:
            for chunk in resp.iter_raw():  # unbuffered: a break loses no received byte
                have += len(chunk)
                if have > desc.size:
                    out.close()
                    partial.unlink(missing_ok=True)
                    raise BackendError(
                        f"{what} is longer than the {desc.size} bytes its manifest says",
                        hint="the registry or something between it and composer altered it",
                    )
                out.write(chunk)
                hasher.update(chunk)
                if progress:
                    progress(have)
    # no fsync: a partial file cut short by a crash is only resumed from, and a wrong
    # prefix is caught by the digest and fetched again; the store syncs the blob it keeps
    return hasher


def _hash_existing(path: Path, hasher: Any, size: int) -> int:
    """Hash what ``path`` holds (dropping it when longer than ``size``); its length, 0 if none."""
    try:
        with open(path, "rb") as f:
            length = os.fstat(f.fileno()).st_size
            if length > size:
                f.close()
                path.unlink()
                return 0
            while chunk := f.read(1024 * 1024):
                hasher.update(chunk)
            return length
    except FileNotFoundError:
        return 0


def _range_start(content_range: str) -> int | None:
    """The first byte of ``Content-Range: bytes START-END/TOTAL``."""
    unit, _, rest = content_range.strip().partition(" ")
    if unit != "bytes":
        return None
    start = rest.split("-", 1)[0]
    return int(start) if start.isdigit() else None
