"""Container logs in conmon's k8s-file format: the writer, the pump and the reader.

One line per chunk of output::

    2026-01-02T03:04:05.123456789Z stdout F hello world
    2026-01-02T03:04:05.123456790Z stderr P a partial line with no newline yet

``F`` ends a line; ``P`` is a fragment that the next record of the same
stream continues (output that did not end with a newline, or a line longer
than ``MAX_LINE``). Timestamps are UTC with nanoseconds. The reader joins
fragments back into lines, so ``logs`` shows what the process wrote.

``LogPump`` is the one thread that reads every container's stdout and
stderr for the supervisor (a selector over all their pipes), writes the
log file and copies the raw bytes to attached clients. One thread, not one
per container, keeps the supervisor small with many containers.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # composer.backends.runtime brings every spec dataclass with it
    from composer.backends.runtime import LogLine, LogStream

MAX_LINE = 16 * 1024
"""Longer lines are split into ``P`` fragments (conmon uses 8 KiB, Docker 16 KiB)."""

READ_SIZE = 64 * 1024


def format_timestamp(ns: int) -> str:
    """``RFC3339Nano`` in UTC: ``2026-01-02T03:04:05.123456789Z``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{base}.{frac:09d}Z"


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp with up to nanosecond precision.

    Accepts ``Z`` and numeric offsets (conmon writes local time with an
    offset), so logs written by other tools read too.
    """
    if text.endswith("Z"):
        body, offset = text[:-1], "+00:00"
    else:
        body, offset = text[:-6], text[-6:]
    frac = 0.0
    if "." in body:
        body, digits = body.split(".", 1)
        frac = int(digits) / 10 ** len(digits)
    return datetime.fromisoformat(body + offset).timestamp() + frac


def format_records(stream: LogStream, data: bytes, ns: int, *, ends_line: bool) -> bytes:
    """The log records for ``data`` (one chunk of output, any number of lines).

    Complete lines become ``F`` records; a trailing fragment becomes ``P``
    unless ``ends_line`` (end of stream: the last line is complete).
    """
    stamp = format_timestamp(ns).encode()
    head = stamp + b" " + stream.encode() + b" "
    out: list[bytes] = []
    lines = data.split(b"\n")
    last = lines.pop()
    for line in lines:
        for piece, more in _split_long(line):
            out.append(head + (b"P " if more else b"F ") + piece + b"\n")
    if last:
        for piece, more in _split_long(last):
            tag = b"F " if ends_line and not more else b"P "
            out.append(head + tag + piece + b"\n")
    return b"".join(out)


def _split_long(line: bytes) -> Iterator[tuple[bytes, bool]]:
    if len(line) <= MAX_LINE:
        yield line, False
        return
    for start in range(0, len(line), MAX_LINE):
        piece = line[start : start + MAX_LINE]
        yield piece, start + MAX_LINE < len(line)


# --- the pump -----------------------------------------------------------------


Sink = Callable[["LogStream", bytes], None]
"""Called with each chunk of raw output (attached clients); must not block long."""


@dataclass(eq=False)
class _Source:
    container_id: str
    stream: LogStream
    fd: int
    log: LogFile
    on_eof: Callable[[], None] | None = None


@dataclass(eq=False)
class LogFile:
    """The append-only log of one container; shared by its two streams."""

    path: Path
    fd: int = -1
    sinks: list[Sink] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> LogFile:
        if self.fd < 0:
            self.fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        return self

    def write(self, stream: LogStream, data: bytes, *, ends_line: bool = False) -> None:
        """Append ``data`` as records and hand it to every sink."""
        with self.lock:
            if data and self.fd >= 0:
                os.write(self.fd, format_records(stream, data, time.time_ns(), ends_line=ends_line))
            sinks = list(self.sinks)
        for sink in sinks:
            with contextlib.suppress(OSError):
                sink(stream, data)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


class LogPump:
    """Reads every registered output fd in one thread and writes it to its log.

    ``add`` hands over an fd (the pump closes it at end of stream and then
    calls ``on_eof``); ``drained(container_id)`` waits until every fd of
    that container has reached end of stream.
    """

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[_Source] = []
        self._open: dict[str, int] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="log-pump", daemon=True)
        self._thread.start()

    def add(
        self,
        container_id: str,
        stream: LogStream,
        fd: int,
        log: LogFile,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        os.set_blocking(fd, False)
        with self._cond:
            self._pending.append(_Source(container_id, stream, fd, log, on_eof))
            self._open[container_id] = self._open.get(container_id, 0) + 1
        self._wake()

    def drained(self, container_id: str, timeout: float) -> bool:
        """Wait for end of stream on every fd of the container; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._open.get(container_id, 0) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._stopping = True
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    break
                pending, self._pending = self._pending, []
            for src in pending:
                self._sel.register(src.fd, selectors.EVENT_READ, src)
            for key, _ in self._sel.select():
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                self._read(key.data)
        self._sel.close()

    def _read(self, src: _Source) -> None:
        try:
            data = os.read(src.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            src.log.write(src.stream, data)
            return
        self._sel.unregister(src.fd)
        os.close(src.fd)
        if src.on_eof is not None:
            src.on_eof()
        with self._cond:
            self._open[src.container_id] -= 1
            if self._open[src.container_id] <= 0:
                del self._open[src.container_id]
            self._cond.notify_all()


# --- the reader -----------------------------------------------------------------


def parse_record(line: bytes) -> tuple[float, LogStream, bool, bytes] | None:
    """``(time, stream, full, text)`` of one log record, ``None`` for a damaged one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    try:
        when = parse_timestamp(parts[0].decode())
    except ValueError:
        return None
    stream: LogStream = "stdout" if parts[1] == b"stdout" else "stderr"
    text = parts[3] if len(parts) == 4 else b""
    return when, stream, parts[2] != b"P", text


def _lines(chunks: Iterator[bytes]) -> Iterator[tuple[float, LogStream, bytes]]:
    """Whole lines from records: fragments joined per stream, timed by their first record."""
    partial: dict[LogStream, tuple[float, bytes]] = {}
    for raw in chunks:
        rec = parse_record(raw)
        if rec is None:
            continue
        when, stream, full, text = rec
        if stream in partial:
            first, head = partial.pop(stream)
            when, text = first, head + text
        if full:
            yield when, stream, text
        else:
            partial[stream] = (when, text)
    for stream, (when, text) in partial.items():
        yield when, stream, text


def _file_records(f: BinaryIO, *, follow: Callable[[], bool] | None) -> Iterator[bytes]:
    """Record lines from an open binary file; with ``follow``, wait for more while it says so."""
    buf = b""
    while True:
        chunk = f.readline()
        if chunk:
            buf += chunk
            if buf.endswith(b"\n"):
                yield buf
                buf = b""
            continue
        if follow is None or not follow():
            # One last read: the writer may have appended before it finished.
            rest = f.read()
            if rest:
                for line in (buf + rest).splitlines(keepends=True):
                    if line.endswith(b"\n"):
                        yield line
            return
        time.sleep(0.05)


def read_logs(
    path: Path,
    *,
    follow: Callable[[], bool] | None = None,
    since: float | None = None,
    until: float | None = None,
    tail: int | None = None,
    timestamps: bool = False,
) -> Iterator[LogLine]:
    """The lines of a container log, oldest first.

    ``since``/``until`` bound the line times (epoch seconds, inclusive /
    exclusive as Docker does); ``tail`` keeps the last N lines of what is
    already written; ``follow`` is polled while the end of the file is
    reached and the iterator keeps waiting for new lines while it returns
    ``True`` (the caller passes "the container is still running").
    ``timestamps`` fills ``LogLine.time``.
    """

    from composer.backends.runtime import LogLine

    def make(when: float, stream: LogStream, text: bytes) -> LogLine:
        return LogLine(stream, text.decode(errors="replace"), when if timestamps else None)

    def wanted(when: float) -> bool:
        return (since is None or when >= since) and (until is None or when < until)

    try:
        f = open(path, "rb")  # noqa: SIM115  (closed in the finally below)
    except FileNotFoundError:
        return
    try:
        if tail is not None:
            existing = [x for x in _lines(_file_records(f, follow=None)) if wanted(x[0])]
            for when, stream, text in existing[max(0, len(existing) - tail) :]:
                yield make(when, stream, text)
            if follow is None:
                return
        for when, stream, text in _lines(_file_records(f, follow=follow)):
            if until is not None and when >= until:
                return
            if wanted(when):
                yield make(when, stream, text)
    finally:
        f.close()
