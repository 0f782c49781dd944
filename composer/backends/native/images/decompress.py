"""Reading a layer blob: decompression by magic bytes, the DiffID hash, and the size cap.

The cap is what stops a decompression bomb: the decompressed stream is
metered as the extractor reads it and ends with ``LayerTooLarge`` once it
passes the cap, so a few kilobytes of gzip cannot fill the disk.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
from collections.abc import Iterator
from typing import IO, BinaryIO

from composer.errors import BackendError

_CHUNK = 1 << 20
GIB = 1 << 30
DEFAULT_MIN_CAP = 8 * GIB
DEFAULT_MAX_CAP = 256 * GIB
DEFAULT_RATIO = 200


class UnsafeLayer(BackendError):
    """A layer that would write outside its root, or that is not a valid layer."""


class LayerTooLarge(UnsafeLayer):
    """The decompressed layer passed the size cap (a decompression bomb)."""


def size_cap(compressed_size: int) -> int:
    """The decompressed size allowed for a blob of ``compressed_size`` bytes.

    Real layers rarely pass a 200:1 ratio; a floor keeps small layers of
    zero-filled files working and a ceiling bounds any single layer.
    """
    return max(DEFAULT_MIN_CAP, min(DEFAULT_MAX_CAP, compressed_size * DEFAULT_RATIO))


class Meter:
    """A read-only stream that hashes and counts what passes and stops past a cap."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self.count = 0
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        data = self._raw.read(min(n, self._limit - self.count + 1))
        self.count += len(data)
        if self.count > self._limit:
            raise LayerTooLarge(
                f"layer decompresses to more than {self._limit} bytes",
                hint="the layer looks like a decompression bomb; it was not stored",
            )
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def open_decompressed(raw: BinaryIO) -> IO[bytes]:
    """``raw`` decompressed according to its magic bytes (tar, gzip, zstd, xz, bzip2)."""
    head = _peek(raw, 6)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, mode="rb")
    if head[:3] == b"BZh":
        return bz2.BZ2File(raw, mode="rb")
    return raw


def _peek(raw: BinaryIO, n: int) -> bytes:
    pos = raw.tell()
    head = raw.read(n)
    raw.seek(pos)
    return head


@contextlib.contextmanager
def decompressed(raw: BinaryIO) -> Iterator[IO[bytes]]:
    stream = open_decompressed(raw)
    try:
        yield stream
    finally:
        if stream is not raw:
            stream.close()
