"""The DNS responder on loopback: names from endpoint records, rotation, reloads, forwarding."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.network.dns import DnsResponder, host_resolvers
from composer.backends.native.state import write_json


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


def ask(port: int, name: str, qtype: str = "A", tcp: bool = False) -> Any:
    from dnslib import DNSRecord

    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp,
                                                                timeout=5))  # fmt: skip


def rdata(reply: Any) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr]


def endpoint(d: Path, cid: str, ip: str, names: list[str], **extra: Any) -> None:
    write_json(d / f"{cid}.json", {"ip": ip, "names": names, "container_id": cid, **extra})


@pytest.fixture
def records(tmp_path: Path) -> Path:
    d = tmp_path / "endpoints"
    d.mkdir()
    endpoint(d, "c1", "10.88.0.2", ["proj-web-1", "web", "frontend"], ipv6="fd88::2")
    endpoint(d, "c2", "10.88.0.3", ["proj-web-2", "web"])
    endpoint(d, "c3", "10.88.0.4", ["proj-db-1", "db", "dbhost"])
    return d


@pytest.fixture
def responder(records: Path, fake_upstream: tuple[str, int]) -> Iterator[tuple[DnsResponder, int]]:
    port = free_udp_tcp_port()
    with DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[fake_upstream]) as r:
        yield r, port


def test_names_aliases_and_hostnames(responder: tuple[DnsResponder, int]) -> None:
    _, port = responder
    assert rdata(ask(port, "db")) == ["10.88.0.4"]
    assert rdata(ask(port, "dbhost.")) == ["10.88.0.4"]
    assert rdata(ask(port, "PROJ-DB-1")) == ["10.88.0.4"]  # names are case-insensitive
    assert rdata(ask(port, "frontend", "AAAA")) == ["fd88::2"]
    assert rdata(ask(port, "db", tcp=True)) == ["10.88.0.4"]
    reply = ask(port, "db", "AAAA")  # known name without IPv6: empty, not forwarded
    assert reply.header.rcode == 0 and reply.rr == [] and reply.header.aa == 1


def test_service_names_rotate_over_replicas(responder: tuple[DnsResponder, int]) -> None:
    _, port = responder
    first = rdata(ask(port, "web"))
    second = rdata(ask(port, "web"))
    assert sorted(first) == sorted(second) == ["10.88.0.2", "10.88.0.3"]
    assert first != second


def test_records_are_reread_when_they_change(
    responder: tuple[DnsResponder, int], records: Path
) -> None:
    _, port = responder
    assert rdata(ask(port, "db")) == ["10.88.0.4"]
    endpoint(records, "c4", "10.88.0.9", ["cache"])
    assert rdata(ask(port, "cache")) == ["10.88.0.9"]
    endpoint(records, "c3", "10.88.0.44", ["proj-db-1", "db"])  # replaced in place
    assert rdata(ask(port, "db")) == ["10.88.0.44"]
    (records / "c4.json").unlink()
    assert ask(port, "cache").header.rcode == 3  # forwarded: the upstream says NXDOMAIN


def test_reverse_lookup(responder: tuple[DnsResponder, int]) -> None:
    _, port = responder
    assert rdata(ask(port, "4.0.88.10.in-addr.arpa", "PTR")) == ["proj-db-1."]


def test_unknown_names_are_forwarded(responder: tuple[DnsResponder, int]) -> None:
    _, port = responder
    assert rdata(ask(port, "outside.test")) == ["192.0.2.55"]
    assert rdata(ask(port, "outside.test", tcp=True)) == ["192.0.2.55"]
    assert ask(port, "nowhere.test").header.rcode == 3


def test_container_dns_servers_are_used_for_its_queries(
    records: Path, fake_upstream: tuple[str, int]
) -> None:
    """A container with ``dns:`` (in its endpoint record) gets its queries forwarded there."""
    port = free_udp_tcp_port()
    endpoint(records, "self", "127.0.0.1", ["me"], dns=["127.0.0.1"])
    with DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[fake_upstream]) as r:
        assert r.upstreams_for("127.0.0.1") == [("127.0.0.1", 53)]
        assert r.upstreams_for("10.88.0.2") == [fake_upstream]


def test_internal_networks_forward_nothing(records: Path, fake_upstream: tuple[str, int]) -> None:
    port = free_udp_tcp_port()
    with DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[fake_upstream],
                      forward=False):  # fmt: skip
        assert rdata(ask(port, "db")) == ["10.88.0.4"]
        assert ask(port, "outside.test").header.rcode == 5  # REFUSED


def test_stop_frees_the_port(records: Path) -> None:
    port = free_udp_tcp_port()
    DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[]).start().stop()
    with DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[]):
        assert rdata(ask(port, "db")) == ["10.88.0.4"]
        assert ask(port, "outside.test").header.rcode == 2  # no upstream: SERVFAIL


def test_one_thread_serves_udp_and_tcp_and_stop_ends_it(records: Path) -> None:
    import threading

    from dnslib import DNSRecord

    port = free_udp_tcp_port()
    before = set(threading.enumerate())
    responder = DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[]).start()
    try:
        assert rdata(ask(port, "db")) == ["10.88.0.4"]
        assert rdata(ask(port, "db", tcp=True)) == ["10.88.0.4"]
        serving = [t for t in set(threading.enumerate()) - before if t.name == "dns"]
        assert len(serving) == 1
    finally:
        responder.stop()
    assert not serving[0].is_alive()
    with pytest.raises(OSError):  # the sockets are closed: TCP is refused
        DNSRecord.question("db", "A").send("127.0.0.1", port, tcp=True, timeout=1)


def test_host_resolvers_read_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nnameserver 192.0.2.1\nsearch example\nnameserver fe80::1%eth0\n")
    assert host_resolvers(str(conf)) == [("192.0.2.1", 53), ("fe80::1", 53)]


def test_an_ipv6_upstream(records: Path) -> None:
    from dnslib.server import DNSLogger, DNSServer

    from tests.backends.native.network.conftest import FakeUpstream

    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send")
    try:
        upstream = DNSServer(FakeUpstream(), address="::1", port=0, logger=quiet)
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    upstream.start_thread()
    try:
        port = free_udp_tcp_port()
        where = ("::1", int(upstream.server.server_address[1]))
        with DnsResponder(records, ["127.0.0.1"], port=port, upstreams=[where]):
            assert rdata(ask(port, "outside.test")) == ["192.0.2.55"]
    finally:
        upstream.server.shutdown()
        upstream.server.server_close()


def test_a_container_resolves_the_names_of_all_its_networks(
    tmp_path: Path, fake_upstream: tuple[str, int]
) -> None:
    """As with Docker: ``proxy`` on front and back asks back's resolver for ``web``
    (front only) and gets it; ``app`` on back alone does not."""
    front = tmp_path / "networks" / "front" / "endpoints"
    back = tmp_path / "networks" / "back" / "endpoints"
    front.mkdir(parents=True)
    back.mkdir(parents=True)
    endpoint(back, "proxy", "127.0.0.1", ["p-proxy-1", "proxy"])
    endpoint(front, "proxy", "10.90.0.2", ["p-proxy-1", "proxy"])
    endpoint(front, "web", "10.90.0.3", ["p-web-1", "web"])
    endpoint(back, "app", "10.91.0.3", ["p-app-1", "app"])
    port = free_udp_tcp_port()
    with DnsResponder(back, ["127.0.0.1"], port=port, upstreams=[fake_upstream]) as r:
        assert rdata(ask(port, "web")) == ["10.90.0.3"]  # asked from 127.0.0.1: proxy
        assert rdata(ask(port, "app", tcp=True)) == ["10.91.0.3"]
        assert rdata(ask(port, "3.0.90.10.in-addr.arpa", "PTR")) == ["p-web-1."]
        assert r.lookup("web", 4, client="10.91.0.3") is None  # app: back only
        assert r.lookup("web", 4) is None  # no client: this network only
        endpoint(front, "web2", "10.90.0.4", ["p-web-2", "web"])  # front changes: seen
        assert sorted(rdata(ask(port, "web"))) == ["10.90.0.3", "10.90.0.4"]
