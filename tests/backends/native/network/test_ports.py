"""Port proxies against loopback targets: forms of ``ports:``, conflicts, release."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from composer.backends.native.network.ports import PortProxies, parse_range, port_user
from composer.backends.specs import PortSpec
from composer.errors import Conflict


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1 (the "container")."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        srv.close()


def roundtrip(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        out = b""
        while data := c.recv(65536):
            out += data
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_range() -> None:
    assert parse_range(None) == (0, 0) and parse_range("0") == (0, 0)
    assert parse_range("8080") == (8080, 8080)
    assert parse_range("8000-8010") == (8000, 8010)


def test_random_host_port_is_reported_and_carries_bytes(proxies: Any, echo: int) -> None:
    (b,) = proxies.publish("c1", "127.0.0.1", [PortSpec(target=echo)])
    assert b.host_port and b.host_port != echo and b.host_ip == "0.0.0.0" and b.protocol == "tcp"
    payload = os.urandom(300_000)
    assert roundtrip(b.host_port, payload) == payload
    assert proxies.bindings("c1") == [b]


def test_host_ip_and_fixed_port(proxies: Any, echo: int) -> None:
    port = free_port()
    wanted = PortSpec(target=echo, published=str(port), host_ip="127.0.0.1")
    (b,) = proxies.publish("c1", "127.0.0.1", [wanted])
    assert (b.host_ip, b.host_port) == ("127.0.0.1", port)
    assert roundtrip(port, b"x") == b"x"


def test_range_takes_the_first_free_port(proxies: Any, echo: int) -> None:
    base = free_port()
    with socket.socket() as taken:
        try:
            taken.bind(("0.0.0.0", base))
        except OSError:
            pytest.skip("port raced away")
        taken.listen(1)
        (b,) = proxies.publish("c1", "127.0.0.1",
                               [PortSpec(target=echo, published=f"{base}-{base + 5}")])  # fmt: skip
        assert base < (b.host_port or 0) <= base + 5


def test_port_in_use_names_the_port_and_its_process(proxies: Any, echo: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        assert port_user(port) == f"pid {os.getpid()} ({_comm()})"
        with pytest.raises(Conflict) as err:
            proxies.publish("c1", "127.0.0.1", [
                PortSpec(target=echo), PortSpec(target=echo, published=str(port)),
            ])  # fmt: skip
    msg = str(err.value)
    assert f":{port}/tcp is already in use by pid {os.getpid()}" in msg, msg
    assert err.value.hint and "published" in err.value.hint
    assert proxies.bindings("c1") == []  # all or nothing: the first port was released


def _comm() -> str:
    with open(f"/proc/{os.getpid()}/comm") as f:
        return f.read().strip()


def test_unpublish_frees_the_port(proxies: Any, echo: int) -> None:
    (b,) = proxies.publish("c1", "127.0.0.1", [PortSpec(target=echo)])
    proxies.unpublish("c1")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", b.host_port or 0))  # would raise if the proxy still listened
    assert proxies.bindings("c1") == []


def test_udp(echo: int) -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = target.recvfrom(2048)
            except OSError:
                return
            target.sendto(b"re:" + data, addr)

    threading.Thread(target=serve, daemon=True).start()
    with PortProxies() as p:
        (b,) = p.publish("u", "127.0.0.1",
                         [PortSpec(target=target.getsockname()[1], protocol="udp")])  # fmt: skip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(5)
            for msg in (b"one", b"two"):
                c.sendto(msg, ("127.0.0.1", b.host_port or 0))
                assert c.recvfrom(100)[0] == b"re:" + msg
    stop.set()
    target.close()


def test_all_addresses_include_ipv6_loopback(proxies: Any, echo: int) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    (b,) = proxies.publish("c1", "127.0.0.1", [PortSpec(target=echo)])
    assert roundtrip(b.host_port or 0, b"over v6", host="::1") == b"over v6"
    assert proxies.bindings("c1") == [b]  # the [::] twin is served, not reported


def test_unpublish_ends_open_connections(proxies: Any, echo: int) -> None:
    (b,) = proxies.publish("c1", "127.0.0.1", [PortSpec(target=echo)])
    with socket.create_connection(("127.0.0.1", b.host_port or 0), timeout=5) as c:
        c.sendall(b"a")
        assert c.recv(10) == b"a"
        proxies.unpublish("c1")
        c.settimeout(5)
        try:
            data = c.recv(10)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed by the proxy (a timeout here would fail the test)
