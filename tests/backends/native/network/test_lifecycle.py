"""NetworkManager lifecycle: external and named networks, refusals, and a 50-cycle leak check."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.network import NetworkManager, hosts_file, resolv_conf
from composer.backends.native.network.bridge import link_exists
from composer.backends.native.network.firewall import TABLE, tag
from composer.backends.native.network.ipam import AddressBook
from composer.backends.native.network.manager import host_ifname
from composer.backends.specs import NetworkAttachment, NetworkSpec
from composer.errors import BackendError, ConfigError, Conflict, NotFound, Unsupported


def spec(name: str, **fields: Any) -> NetworkSpec:
    return NetworkSpec(name=name, key=name.rsplit("_", 1)[-1], **fields)


def attach(net: str, **fields: Any) -> NetworkAttachment:
    return NetworkAttachment(network=net, **fields)


def test_external_networks_are_looked_up_never_created(manager: NetworkManager, uid: str) -> None:
    with pytest.raises(NotFound, match="external"):
        manager.create(spec(f"shared{uid}", external=True))
    assert manager.list() == []
    made = manager.create(spec(f"shared{uid}"))
    assert manager.create(spec(f"shared{uid}", external=True)) == made


def test_custom_name_is_used_as_given_and_create_is_idempotent(
    manager: NetworkManager, uid: str
) -> None:
    rec = manager.create(NetworkSpec(name=f"my-net.{uid}", key="front", labels={"a": "b"}))
    assert (rec.name, rec.key, dict(rec.labels)) == (f"my-net.{uid}", "front", {"a": "b"})
    assert manager.create(NetworkSpec(name=f"my-net.{uid}", key="front")).id == rec.id
    assert [r.name for r in manager.list()] == [f"my-net.{uid}"]
    assert manager.inspect(f"my-net.{uid}") == rec


def test_refusals(manager: NetworkManager, netns: Any, uid: str) -> None:
    with pytest.raises(Unsupported, match="overlay"):
        manager.create(spec(f"t{uid}_o", driver="overlay"))
    with pytest.raises(NotFound):
        manager.remove(f"t{uid}_missing")
    for bad in ("x" * 16, 'br"x', "a b", ""):
        opts = {"com.docker.network.bridge.name": bad}
        with pytest.raises(ConfigError, match="invalid bridge name"):
            manager.create(spec(f"t{uid}_bad", driver_opts=opts))
    with pytest.raises(ConfigError, match="mtu"):
        manager.create(spec(f"t{uid}_bad", driver_opts={"com.docker.network.driver.mtu": "x"}))
    assert manager.list() == []
    rec = manager.create(spec(f"t{uid}_n"))
    ns = netns()
    manager.connect(rec.name, ns.path, f"{uid}c", attach(rec.name))
    with pytest.raises(Conflict, match="already connected"):
        manager.connect(rec.name, ns.path, f"{uid}c", attach(rec.name))
    with pytest.raises(Conflict, match="active endpoints"):
        manager.remove(rec.name)
    with pytest.raises(NotFound, match="does not exist"):
        manager.connect(rec.name, 999_999_999, f"{uid}d", attach(rec.name))
    other = netns()
    with pytest.raises(Conflict, match="interface lo exists"):
        manager.connect(rec.name, other.path, f"{uid}e", attach(rec.name, interface_name="lo"))
    assert manager.endpoint(rec.name, f"{uid}e") is None
    assert not link_exists(host_ifname(rec.id, f"{uid}e"))  # the failed veth was removed
    not_a_netns = manager.root.path / "plain-file"
    not_a_netns.write_text("")
    with pytest.raises(BackendError) as err:  # netlink's own error class does not escape
        manager.connect(rec.name, str(not_a_netns), f"{uid}f", attach(rec.name))
    assert type(err.value) is BackendError and "veth" in str(err.value)
    not_a_netns.unlink()
    book = AddressBook(manager.root.network(rec.name) / "ipam.json")
    assert not {f"{uid}e", f"{uid}f"} & set(book.entries.values())  # addresses released
    assert [e.container_id for e in manager.endpoints(rec.name)] == [f"{uid}c"]
    manager.disconnect(rec.name, f"{uid}c")
    manager.disconnect(rec.name, f"{uid}c")  # idempotent


def test_connect_by_pid(manager: NetworkManager, uid: str) -> None:
    rec = manager.create(spec(f"t{uid}_pid"))
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        # wait until the child is in its own namespace
        for _ in range(200):
            if os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.02)
        ep = manager.connect(rec.name, proc.pid, f"{uid}p", attach(rec.name))
        out = subprocess.run(["nsenter", "-t", str(proc.pid), "-n", "ip", "-o", "addr"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert f"{ep.ip}/" in out
    finally:
        proc.kill()
        proc.wait()
        manager.disconnect(rec.name, f"{uid}p")


def test_a_dead_container_is_pruned(manager: NetworkManager, netns: Any, uid: str) -> None:
    rec = manager.create(spec(f"t{uid}_dead"))
    ns = netns()
    ep = manager.connect(rec.name, ns.path, f"{uid}c", attach(rec.name))
    subprocess.run(["ip", "netns", "del", ns.name], check=True)  # the veth dies with it
    for _ in range(500):  # the kernel tears a namespace down asynchronously
        if not link_exists(ep.host_ifname):
            break
        time.sleep(0.02)
    assert manager.prune(rec.name) == [f"{uid}c"]
    assert manager.endpoints(rec.name) == []
    again = manager.connect(rec.name, netns().path, f"{uid}d", attach(rec.name))
    assert again.ip == ep.ip  # the dead container's address was released
    manager.disconnect(rec.name, f"{uid}d")
    manager.remove(rec.name)
    assert not link_exists(rec.bridge)


def test_container_files(manager: NetworkManager, uid: str, tmp_path: Path) -> None:
    rec = manager.create(spec(f"t{uid}_files"))
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp\noptions edns0\n")
    ns = manager.nameserver([f"t{uid}_nothing", rec.name])
    assert ns == rec.gateway
    assert resolv_conf(ns, host_resolv=str(host)) == (
        f"nameserver {rec.gateway}\nsearch corp\noptions edns0\n"
    )
    assert resolv_conf(
        ns, dns=["1.1.1.1"], dns_search=["a.test"], dns_opt=["ndots:2"], host_resolv=str(host)
    ) == (f"nameserver {rec.gateway}\nsearch a.test\noptions ndots:2\n")
    # without a network: the host's reachable servers, or dns: instead
    assert resolv_conf(None, host_resolv=str(host)).startswith("nameserver 192.0.2.1\n")
    assert resolv_conf(None, dns=["9.9.9.9"], host_resolv=str(host)).startswith(
        "nameserver 9.9.9.9\nsearch corp"
    )
    text = hosts_file([("10.88.0.5", ["web1", "proj-web-1"])],
                      extra_hosts=[("db.local", "10.0.0.9"), ("host.docker.internal",
                                   "host-gateway")], host_gateway=rec.gateway)  # fmt: skip
    assert "127.0.0.1\tlocalhost\n" in text and "10.0.0.9\tdb.local\n" in text
    assert f"{rec.gateway}\thost.docker.internal\n" in text
    assert text.endswith("10.88.0.5\tweb1 proj-web-1\n")


def _composer_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _tagged_rules(ids: list[str]) -> list[str]:
    text = subprocess.run(["nft", "list", "table", "inet", TABLE], capture_output=True,
                          text=True, check=False).stdout  # fmt: skip
    text += subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return [line for line in text.splitlines() if any(tag(i) in line for i in ids)]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "locks" not in p.parts)


def test_fifty_cycles_leave_nothing_behind(manager: NetworkManager, uid: str) -> None:
    """create → connect two namespaces → disconnect → remove, 50 times over."""
    manager.root.ensure()
    spaces = _netns()
    files, fds = _files(manager.root.path), len(os.listdir("/proc/self/fd"))
    ids: list[str] = []
    bridges: set[str] = set()
    veths: set[str] = set()
    for i in range(50):
        names = [f"cmpl-{uid}-{i}-{n}" for n in range(2)]
        for n in names:
            subprocess.run(["ip", "netns", "add", n], check=True)
        try:
            rec = manager.create(spec(f"t{uid}_leak{i}", internal=i % 2 == 1))
            ids.append(rec.id)
            bridges.add(rec.bridge)
            for k, n in enumerate(names):
                ep = manager.connect(rec.name, f"/run/netns/{n}", f"{uid}c{k}", attach(rec.name))
                veths.add(ep.host_ifname)
            for k in range(2):
                manager.disconnect(rec.name, f"{uid}c{k}")
            manager.remove(rec.name)
        finally:
            for n in names:
                subprocess.run(["ip", "netns", "del", n], check=False)
    now = _composer_links()
    assert not (now & (bridges | veths)), now & (bridges | veths)
    # (other tests may make composer links at the same time: only ours are counted)
    assert len(bridges) == 50 and len(veths) == 100
    sets = subprocess.run(["nft", "list", "set", "inet", TABLE, "bridges"], capture_output=True,
                          text=True, check=False).stdout  # fmt: skip
    assert not [b for b in bridges if b in sets]
    assert not {n for n in _netns() - spaces if uid in n}
    assert _tagged_rules(ids) == []
    assert _files(manager.root.path) == files
    assert len(os.listdir("/proc/self/fd")) == fds  # no netlink socket or fd left open
    assert len(ids) == len(set(ids)) == 50


def _connect_all(root: str, net: str, paths: list[str], prefix: str) -> None:
    from composer.backends.native.state import StateRoot

    mgr = NetworkManager(StateRoot(Path(root)))
    for i, path in enumerate(paths):
        mgr.connect(net, path, f"{prefix}{i}", attach(net))


def test_two_processes_connecting_at_once(manager: NetworkManager, netns: Any, uid: str) -> None:
    import multiprocessing

    rec = manager.create(spec(f"t{uid}_busy"))
    spaces = [netns().path for _ in range(8)]
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_connect_all,
                    args=(str(manager.root.path), rec.name, spaces[k::2], f"{uid}p{k}"))
        for k in range(2)
    ]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    eps = manager.endpoints(rec.name)
    assert len(eps) == 8 and len({e.ip for e in eps}) == 8
    assert all(link_exists(e.host_ifname) for e in eps)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_network_removed_while_a_container_joins_it(
    manager: NetworkManager, netns: Any, uid: str, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """``connect`` makes the veth without the network's lock: a ``remove`` that comes in
    meanwhile wins, the join fails, and nothing of either is left behind."""
    from composer.backends.native.network import bridge

    rec = manager.create(spec(f"t{uid}_gone"))
    ns = netns()
    real_plumb = bridge.plumb

    def racing_plumb(target: Any, p: Any) -> Any:
        if when == "before":
            manager.remove(rec.name)
            return real_plumb(target, p)
        got = real_plumb(target, p)
        manager.remove(rec.name)
        return got

    monkeypatch.setattr(bridge, "plumb", racing_plumb)
    cid = f"{uid}".ljust(64, "e")
    with pytest.raises(NotFound):
        manager.connect(rec.name, ns.path, cid, names=["x"])
    assert manager.get(rec.name) is None
    assert not manager.root.network(rec.name).exists()  # no ipam.json written back
    assert not link_exists(host_ifname(rec.id, cid))
    assert not link_exists(rec.bridge)


def test_disconnect_deletes_the_veth_then_frees_the_address(
    manager: NetworkManager, netns: Any, uid: str
) -> None:
    rec = manager.create(spec(f"t{uid}_free"))
    a, b = f"{uid}".ljust(64, "a"), f"{uid}".ljust(64, "b")
    ep = manager.connect(rec.name, netns().path, a, names=["a"])
    manager.disconnect(rec.name, a)
    assert not link_exists(ep.host_ifname)
    assert manager.endpoint(rec.name, a) is None
    assert AddressBook(manager.root.network(rec.name) / "ipam.json").entries == {}
    assert manager.connect(rec.name, netns().path, b, names=["b"]).ip == ep.ip
    manager.disconnect(rec.name, a)  # again: nothing to do
