"""The supervisor's wire protocol: JSON lines over a unix stream socket.

A client sends one request per line and reads one reply per line::

    {"op": "start", "id": "<container id>"}
    {"ok": true, "result": null}
    {"ok": false, "error": {"type": "Conflict", "message": "...", "hint": "..."}}

Requests are answered in order, one at a time per connection (a client
that wants two things at once opens two connections). ``attach`` carries
the client's stdin/stdout/stderr as file descriptors in the same
``sendmsg`` as its line (``SCM_RIGHTS``): the supervisor writes the
container's output straight into them, so attached output never passes
through the client process. ``error.type`` names a ``composer.errors``
class, and the client raises that class.
"""

from __future__ import annotations

import array
import json
import os
import socket
from collections.abc import Callable
from typing import Any

from composer import errors

MAX_LINE = 1 << 20
MAX_FDS = 8

_ERROR_TYPES: dict[str, type[errors.BackendError]] = {
    "BackendError": errors.BackendError,
    "NotFound": errors.NotFound,
    "Conflict": errors.Conflict,
    "Unavailable": errors.Unavailable,
    "Unsupported": errors.Unsupported,
}


class ProtocolError(Exception):
    """The peer sent something that is not a protocol line (or hung up mid-line)."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def error_reply(exc: BaseException) -> dict[str, Any]:
    """The reply for a failed request: a ``BackendError`` keeps its class, anything else is one."""
    if isinstance(exc, errors.ComposerError):
        name = next((n for n, c in _ERROR_TYPES.items() if type(exc) is c), "BackendError")
        return {"ok": False, "error": {"type": name, "message": exc.message, "hint": exc.hint}}
    return {"ok": False, "error": {"type": "BackendError", "message": str(exc), "hint": None}}


def raise_error(error: dict[str, Any]) -> None:
    """Raise the ``composer.errors`` class an error reply names."""
    cls = _ERROR_TYPES.get(str(error.get("type")), errors.BackendError)
    raise cls(str(error.get("message", "supervisor error")), error.get("hint"))


class Channel:
    """One end of a supervisor connection: lines in and out, with fds alongside.

    File descriptors received are queued in arrival order; ``recv`` returns
    them with the line they came with (a sender attaches them to the first
    byte of its line, so they never arrive after it).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""
        self._fds: list[int] = []

    def send(self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
        data = encode(message)
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            data = data[sent:]
        if data:
            self.sock.sendall(data)

    def recv(self) -> tuple[dict[str, Any], list[int]] | None:
        """The next message and the fds that came with it; ``None`` at a clean end of stream."""
        while b"\n" not in self._buf:
            chunk = self._recv_chunk()
            if not chunk:
                if self._buf:
                    raise ProtocolError("connection closed in the middle of a message")
                self._close_fds()
                return None
            self._buf += chunk
            if len(self._buf) > MAX_LINE:
                raise ProtocolError("message too long")
        line, self._buf = self._buf.split(b"\n", 1)
        fds, self._fds = self._fds, []
        try:
            message = json.loads(line)
        except ValueError as exc:
            for fd in fds:
                os.close(fd)
            raise ProtocolError(f"not a JSON line: {line[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        return message, fds

    def _recv_chunk(self) -> bytes:
        fds = array.array("i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(
            65536, socket.CMSG_SPACE(MAX_FDS * fds.itemsize)
        )
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        for fd in fds:
            os.set_inheritable(fd, False)
        self._fds.extend(fds)
        return data

    def _close_fds(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def close(self) -> None:
        self._close_fds()
        self.sock.close()


# --- socket paths ---------------------------------------------------------------

_SUN_PATH_MAX = 107


def _with_short_path(path: str, use: Callable[[str], None]) -> None:
    """Call ``use`` with ``path``, or with ``/proc/self/fd/N/<name>`` when it is too long.

    ``sun_path`` holds 108 bytes; a deep state root (a test's temporary
    directory) can exceed that, and going through a directory fd keeps the
    name short without changing the working directory.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        use(path)
        return
    head, name = os.path.split(path)
    dirfd = os.open(head, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        use(f"/proc/self/fd/{dirfd}/{name}")
    finally:
        os.close(dirfd)


def bind_unix(sock: socket.socket, path: str) -> None:
    _with_short_path(path, sock.bind)


def connect_unix(sock: socket.socket, path: str) -> None:
    _with_short_path(path, sock.connect)
