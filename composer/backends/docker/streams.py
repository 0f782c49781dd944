"""Byte streams of the Engine API: multiplexed frames, log lines, hijacked sockets.

A container without a TTY has its output multiplexed on one connection:
each frame carries an 8-byte header naming the stream (1 stdout, 2 stderr)
and the payload length. With a TTY the output is raw bytes, all stdout.
``logs`` reads frames from an HTTP response; ``exec``/``attach`` read them
from a hijacked socket, on which stdin is written by a pump thread and
half-closed at its end so that the process sees end-of-file.
"""

from __future__ import annotations

import re
import socket as pysocket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from composer.backends.base import LogLine, LogStream

STDOUT = 1
STDERR = 2
HEADER_SIZE = 8
CHUNK = 64 * 1024

Frame = tuple[int, bytes]

_RFC3339 = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE
)


def parse_time(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 time with up to nanosecond precision.

    ``None`` for an empty or zero time (``0001-01-01T00:00:00Z``, the
    engine's "never").
    """
    match = _RFC3339.match(text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    if whole.startswith("0001-"):
        return None
    offset = "+00:00" if zone.upper() == "Z" else zone
    seconds = datetime.fromisoformat(whole + offset).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def api_time(seconds: float) -> str:
    """An epoch time as the Engine API's ``since``/``until`` parameters take it."""
    return f"{seconds:.9f}"


def response_frames(read: Callable[[int], bytes], tty: bool) -> Iterator[Frame]:
    """Frames from a blocking ``read(n)`` (fewer bytes only at the end of the stream)."""
    if tty:
        while True:
            data = read(CHUNK)
            if not data:
                return
            yield STDOUT, data
    while True:
        header = read(HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            return
        kind, length = struct.unpack(">BxxxL", header)
        payload = read(length) if length else b""
        if len(payload) < length:
            return
        yield kind, payload


def log_lines(frames: Iterable[Frame], timestamps: bool) -> Iterator[LogLine]:
    """Split frames into lines per stream; a timestamp prefix becomes ``LogLine.time``.

    A line split across frames is joined; an unterminated last line is
    delivered when the stream ends.
    """
    pending: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
    for kind, data in frames:
        if kind not in (STDOUT, STDERR):
            continue
        buffered = pending[kind] + data
        *complete, pending[kind] = buffered.split(b"\n")
        for raw in complete:
            yield _line(kind, raw, timestamps)
    for kind, rest in pending.items():
        if rest:
            yield _line(kind, rest, timestamps)


def _line(kind: int, raw: bytes, timestamps: bool) -> LogLine:
    text = raw.decode("utf-8", "replace").removesuffix("\r")
    stream: LogStream = "stderr" if kind == STDERR else "stdout"
    if timestamps:
        stamp, sep, rest = text.partition(" ")
        when = parse_time(stamp)
        if when is not None:
            return LogLine(stream, rest if sep else "", when)
    return LogLine(stream, text, None)


def raw_socket(sock: Any) -> pysocket.socket:
    """The OS socket under what the SDK returns for a hijacked connection."""
    inner = getattr(sock, "_sock", sock)
    if not isinstance(inner, pysocket.socket):
        raise TypeError(f"not a socket: {type(inner).__name__}")
    return inner


def pump_stdin(source: BinaryIO, sock: Any) -> threading.Thread:
    """Copy ``source`` into the hijacked socket in a daemon thread, then half-close it."""

    def run() -> None:
        target = raw_socket(sock)
        try:
            while True:
                reader = getattr(source, "read1", None)
                data = reader(CHUNK) if reader is not None else source.read(CHUNK)
                if not data:
                    break
                target.sendall(data)
        except (OSError, ValueError):
            return  # the process or the container went away first
        try:
            target.shutdown(pysocket.SHUT_WR)
        except OSError:
            return

    thread = threading.Thread(target=run, name="composer-stdin", daemon=True)
    thread.start()
    return thread


def copy_frames(frames: Iterable[Frame], stdout: BinaryIO | None, stderr: BinaryIO | None) -> None:
    """Write each frame to its stream as it comes (dropped when the stream is ``None``)."""
    for kind, data in frames:
        target = stderr if kind == STDERR else stdout
        if target is None:
            continue
        target.write(data)
        target.flush()
