"""JSON lines, error classes and SCM_RIGHTS fd passing over a real socket pair."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from composer import errors
from composer.backends.native.supervisor import protocol as P


def test_lines_and_fds_travel_together() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left, right = P.Channel(a), P.Channel(b)
    r, w = os.pipe()
    try:
        left.send({"op": "attach", "id": "x"}, fds=[w])
        left.send({"op": "status", "id": "x"})
        got = right.recv()
        assert got is not None
        msg, fds = got
        assert msg == {"op": "attach", "id": "x"}
        assert len(fds) == 1 and fds[0] != w
        os.write(fds[0], b"through the passed fd")
        os.close(fds[0])
        assert os.read(r, 100) == b"through the passed fd"
        assert right.recv() == ({"op": "status", "id": "x"}, [])
        left.close()
        assert right.recv() is None
    finally:
        right.close()
        os.close(r)
        os.close(w)


def test_a_long_line_arrives_whole() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left, right = P.Channel(a), P.Channel(b)
    payload = "x" * 300_000
    import threading

    t = threading.Thread(target=left.send, args=({"v": payload},))
    t.start()
    got = right.recv()
    t.join()
    assert got == ({"v": payload}, [])
    left.close()
    right.close()


def test_garbage_and_half_lines_are_protocol_errors() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    right = P.Channel(b)
    a.sendall(b'not json\n{"half":')
    with pytest.raises(P.ProtocolError):
        right.recv()
    a.close()
    with pytest.raises(P.ProtocolError):
        right.recv()
    right.close()


@pytest.mark.parametrize(
    "exc", [errors.NotFound("no such container: x", "check the id"), errors.Conflict("busy")]
)
def test_errors_keep_their_class(exc: errors.BackendError) -> None:
    reply = P.error_reply(exc)
    assert reply["ok"] is False
    with pytest.raises(type(exc)) as got:
        P.raise_error(reply["error"])
    assert got.value.message == exc.message and got.value.hint == exc.hint


def test_unexpected_errors_become_backend_errors() -> None:
    reply = P.error_reply(RuntimeError("boom"))
    with pytest.raises(errors.BackendError, match="boom"):
        P.raise_error(reply["error"])


def test_socket_paths_longer_than_sun_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "supervisor.sock")
    assert len(path) > 108
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        P.bind_unix(server, path)
        server.listen(1)
        assert os.path.exists(path)
        P.connect_unix(client, path)
        conn, _ = server.accept()
        conn.sendall(b"hi")
        assert client.recv(2) == b"hi"
        conn.close()
    finally:
        client.close()
        server.close()
