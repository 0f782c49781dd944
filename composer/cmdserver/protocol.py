"""The few messages between a client, the server and the server's child.

One connection per command:

1. client -> server: one ``sendmsg`` carrying the descriptors of the
   client's stdin, stdout, stderr and working directory, and a length-prefixed
   ``marshal`` record: (context, argv, environment, umask);
2. server -> client: ``ACCEPTED`` (a child runs the command) or ``DECLINED``
   (run it yourself: another context, or the code changed);
3. client -> child: one byte per signal the client received, to be raised in
   the child;
4. child (or the server, when the child died of a signal) -> client:
   ``EXITED`` and the exit code as one byte.

``marshal`` is used because both ends are the same interpreter (the context
says so) and it costs no import; the peer is the same user (checked with
``SO_PEERCRED``). The client's side uses ``_socket``: ``socket`` would
import ``enum`` and ``selectors`` on every command for nothing.
"""

from __future__ import annotations

import _socket
import array
import contextlib
import marshal
import os
import struct

ACCEPTED = b"A"
DECLINED = b"D"
EXITED = b"X"
FDS = 4  # stdin, stdout, stderr, working directory
_LENGTH = struct.Struct("!I")
_MAX_HEADER = 16 << 20


class Request:
    """What the client hands over (a plain class: the client imports no dataclasses)."""

    __slots__ = ("argv", "context", "environ", "umask")

    def __init__(self, context: bytes, argv: list[str], environ: dict[str, str], umask: int):
        self.context = context
        self.argv = argv
        self.environ = environ
        self.umask = umask


def send_request(sock: _socket.socket, request: Request, fds: list[int]) -> None:
    body = marshal.dumps((request.context, request.argv, request.environ, request.umask))
    data = _LENGTH.pack(len(body)) + body
    sent = sock.sendmsg(
        [data[:4096]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))]
    )
    sock.sendall(data[sent:])


def receive_request(sock: _socket.socket) -> tuple[Request, list[int]]:
    """Read one request; the descriptors are the receiver's to close."""
    size = _socket.CMSG_SPACE(FDS * array.array("i").itemsize)
    data, ancillary, _flags, _addr = sock.recvmsg(4096, size)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
            fds.extend(received)
    try:
        if len(data) < _LENGTH.size or len(fds) != FDS:
            raise ValueError("malformed request")
        (length,) = _LENGTH.unpack_from(data)
        if length > _MAX_HEADER:
            raise ValueError("request too large")
        body = bytearray(data[_LENGTH.size :])
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                raise ValueError("truncated request")
            body += chunk
        context, argv, environ, umask = marshal.loads(bytes(body))
        request = Request(context=context, argv=list(argv), environ=dict(environ), umask=umask)
    except Exception:
        for fd in fds:
            _close(fd)
        raise
    return request, fds


def exit_message(code: int) -> bytes:
    return EXITED + bytes([code & 0xFF])


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
