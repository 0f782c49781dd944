"""Real bridges, veths and namespaces: containers talk, resolve each other, and are isolated."""

from __future__ import annotations

import socket
from typing import Any

from composer.backends.native.network import NetworkManager, resolv_conf
from composer.backends.native.network.bridge import link_exists, netns_routes
from composer.backends.specs import IpamPoolSpec, IpamSpec, NetworkAttachment, NetworkSpec


def spec(name: str, **fields: Any) -> NetworkSpec:
    return NetworkSpec(name=name, key=name.rsplit("_", 1)[-1], **fields)


def attach(net: str, **fields: Any) -> NetworkAttachment:
    return NetworkAttachment(network=net, **fields)


def test_two_containers_talk_by_ip_and_resolve_each_other(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    net = manager.create(spec(f"t{uid}_default")).name
    web, db = netns(), netns()
    ep_web = manager.connect(
        net, web.path, f"{uid}web1", attach(net), names=[f"p{uid}-web-1", "web"]
    )
    ep_db = manager.connect(net, db.path, f"{uid}db1", attach(net, aliases=("database",)),
                            names=[f"p{uid}-db-1", "db"])  # fmt: skip
    assert ep_web.ifname == "eth0" and ep_web.gateway == manager.inspect(net).gateway
    link = web.run("ip", "-o", "link", "show", "eth0").stdout
    assert f"link/ether {ep_web.mac} " in link and "state UP" in link  # the MAC reported is real
    db.serve("tcp-server", 5432, "db-answers")

    got = web.prog("tcp", str(ep_db.ip), "5432")
    assert got.stdout.strip() == "db-answers", got.stdout

    with manager.dns_responder(net):
        conf = resolv_conf(manager.nameserver([net]))
        assert conf.startswith(f"nameserver {ep_web.gateway}\n")
        web.write_resolv_conf(conf)
        for name in ("db", "database", f"p{uid}-db-1"):
            got = web.prog("resolve", name)
            assert got.stdout.strip() == ep_db.ip, (name, got.stdout)
        got = web.prog("tcp", "database", "5432")
        assert got.stdout.strip() == "db-answers"


def test_replicas_answer_round_robin(manager: NetworkManager, netns: Any, uid: str) -> None:
    net = manager.create(spec(f"t{uid}_default")).name
    client = netns()
    manager.connect(net, client.path, f"{uid}client", attach(net), names=["client"])
    ips = set()
    for i in (1, 2, 3):
        ep = manager.connect(net, netns().path, f"{uid}api{i}", attach(net), names=["api"])
        ips.add(ep.ip)
    gateway = manager.inspect(net).gateway
    assert gateway
    with manager.dns_responder(net):
        answers = [client.prog("dig", gateway, "api", "A").stdout.split() for _ in range(3)]
    assert all(set(a) == ips for a in answers), answers
    assert len({a[0] for a in answers}) == 3, answers  # each replica comes first once


def test_unknown_names_are_forwarded_to_the_upstream(
    manager: NetworkManager, netns: Any, uid: str, fake_upstream: tuple[str, int]
) -> None:
    net = manager.create(spec(f"t{uid}_default")).name
    ns = netns()
    manager.connect(net, ns.path, f"{uid}c", attach(net), names=["c"])
    ns.write_resolv_conf(resolv_conf(manager.nameserver([net])))
    with manager.dns_responder(net, upstreams=[fake_upstream]):
        assert ns.prog("resolve", "outside.test").stdout.strip() == "192.0.2.55"
        assert ns.prog("resolve", "c").stdout.strip() != "192.0.2.55"


def test_networks_are_isolated_from_each_other(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    net_a = manager.create(spec(f"t{uid}_a")).name
    net_b = manager.create(spec(f"t{uid}_b")).name
    a, b, b2 = netns(), netns(), netns()
    manager.connect(net_a, a.path, f"{uid}a", attach(net_a))
    ep_b = manager.connect(net_b, b.path, f"{uid}b", attach(net_b))
    manager.connect(net_b, b2.path, f"{uid}b2", attach(net_b))
    b.serve("tcp-server", 8000, "on-b")

    assert b2.prog("tcp", str(ep_b.ip), "8000").stdout.strip() == "on-b"  # B itself works
    got = a.prog("tcp", str(ep_b.ip), "8000")
    assert got.returncode == 1 and "on-b" not in got.stdout, got.stdout


def test_internal_network_has_no_default_route_and_no_nat(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    rec = manager.create(spec(f"t{uid}_internal", internal=True))
    ns = netns()
    ep = manager.connect(rec.name, ns.path, f"{uid}c", attach(rec.name))
    routes = netns_routes(ns.path)
    assert not [r for r in routes if r["dst"].startswith("default")], routes
    assert any(r["dst"] == rec.subnet for r in routes), routes
    rules = manager.firewall.rules(rec.id)
    assert rules and not [r for r in rules if "masquerade" in r.lower()], rules
    assert any(f'iifname "{rec.bridge}" oifname != "{rec.bridge}" drop' in r for r in rules)
    # the gateway (the host side, where DNS answers) is still reachable
    assert ep.gateway and ep.ip

    normal = manager.create(spec(f"t{uid}_normal"))
    ns2 = netns()
    manager.connect(normal.name, ns2.path, f"{uid}d", attach(normal.name))
    assert [r for r in netns_routes(ns2.path) if r["dst"].startswith("default")]
    assert any("masquerade" in r for r in manager.firewall.rules(normal.id))


def test_ipam_config_static_addresses_mac_mtu_and_names(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    ipam = IpamSpec(config=(IpamPoolSpec(subnet="10.123.45.0/24", gateway="10.123.45.254",
                                         ip_range="10.123.45.128/25"),))  # fmt: skip
    rec = manager.create(spec(f"t{uid}_custom", ipam=ipam, enable_ipv6=True, driver_opts={
        "com.docker.network.bridge.name": f"br{uid}",
        "com.docker.network.driver.mtu": "1400",
    }))  # fmt: skip
    assert rec.bridge == f"br{uid}" and rec.mtu == 1400 and rec.gateway == "10.123.45.254"
    assert rec.ipv6 is not None and rec.ipv6.subnet.startswith("fd")
    a, b = netns(), netns()
    ep_a = manager.connect(rec.name, a.path, f"{uid}a", attach(rec.name))
    assert ep_a.ip == "10.123.45.129"  # first of ip_range
    ep_b = manager.connect(rec.name, b.path, f"{uid}b", attach(
        rec.name, ipv4_address="10.123.45.7", mac_address="02:42:0a:7b:2d:07",
        interface_name="net0",
    ))  # fmt: skip
    assert (ep_b.ip, ep_b.mac, ep_b.ifname) == ("10.123.45.7", "02:42:0a:7b:2d:07", "net0")
    link = b.run("ip", "-o", "link", "show", "net0").stdout
    assert "mtu 1400" in link and "02:42:0a:7b:2d:07" in link
    addrs = b.run("ip", "-o", "addr", "show", "net0").stdout
    assert "10.123.45.7/24" in addrs and f"{ep_b.ipv6}/64" in addrs
    b.serve("tcp-server", 7000, "b")
    assert a.prog("tcp", "10.123.45.7", "7000").stdout.strip() == "b"
    assert a.run("ip", "-6", "route", "show", "default").stdout.strip().startswith("default via")
    with manager.dns_responder(rec.name):  # answers on the IPv6 gateway too
        got = a.prog("dig", rec.ipv6.gateway, f"{uid}b", "AAAA").stdout.split()
        assert got == [ep_b.ipv6]
        assert a.prog("dig", rec.ipv6.gateway, f"{uid}b", "A").stdout.split() == [ep_b.ip]


def test_second_network_becomes_eth1(manager: NetworkManager, netns: Any, uid: str) -> None:
    one = manager.create(spec(f"t{uid}_one")).name
    two = manager.create(spec(f"t{uid}_two")).name
    ns = netns()
    assert manager.connect(one, ns.path, f"{uid}c", attach(one)).ifname == "eth0"
    assert manager.connect(two, ns.path, f"{uid}c", attach(two)).ifname == "eth1"
    defaults = [r for r in netns_routes(ns.path) if r["dst"].startswith("default")]
    assert len(defaults) == 1 and defaults[0]["gateway"] == manager.inspect(one).gateway


def test_remove_leaves_no_bridge_veth_rule_or_record(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    rec = manager.create(spec(f"t{uid}_gone"))
    ns = netns()
    ep = manager.connect(rec.name, ns.path, f"{uid}c", attach(rec.name))
    assert link_exists(rec.bridge) and link_exists(ep.host_ifname)
    manager.disconnect(rec.name, f"{uid}c")
    manager.remove(rec.name)
    assert not link_exists(rec.bridge) and not link_exists(ep.host_ifname)
    assert manager.firewall.rules(rec.id) == []
    assert not manager.root.network(rec.name).exists()
    assert ns.run("ip", "-o", "link").stdout.count(": eth") == 0


def test_published_port_through_the_proxy(
    manager: NetworkManager, netns: Any, uid: str, proxies: Any
) -> None:
    from composer.backends.specs import PortSpec

    net = manager.create(spec(f"t{uid}_default")).name
    ns = netns()
    ep = manager.connect(net, ns.path, f"{uid}web", attach(net))
    ns.serve("tcp-server", 80, "web-80")
    ns.serve("udp-server", 53, "udp-53")
    tcp, udp = proxies.publish(f"{uid}web", str(ep.ip), [
        PortSpec(target=80), PortSpec(target=53, protocol="udp", published="0"),
    ])  # fmt: skip
    assert tcp.host_port and tcp.host_port > 0 and tcp.host_ip == "0.0.0.0"
    with socket.create_connection(("127.0.0.1", tcp.host_port), timeout=5) as conn:
        conn.settimeout(5)
        assert conn.recv(100) == b"web-80\n"
        conn.sendall(b"ping")
        assert conn.recv(100) == b"ping"
    # another host address (the bridge's gateway), from the host and from a container
    with socket.create_connection((str(ep.gateway), tcp.host_port), timeout=5) as conn:
        conn.settimeout(5)
        assert conn.recv(100) == b"web-80\n"
    peer = netns()
    manager.connect(net, peer.path, f"{uid}peer", attach(net))
    got = peer.prog("tcp", str(ep.gateway), str(tcp.host_port))
    assert got.stdout.strip() == "web-80", got.stdout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        assert udp.host_port
        s.sendto(b"hello", ("127.0.0.1", udp.host_port))
        assert s.recvfrom(100)[0] == b"udp-53:hello"
