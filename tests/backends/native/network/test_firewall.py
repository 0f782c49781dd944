"""The firewall policy through nftables and through the iptables fallback, on real traffic."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.network import NetworkManager
from composer.backends.native.network.firewall import Firewall
from composer.backends.native.state import StateRoot, locked_file
from composer.backends.specs import NetworkAttachment, NetworkSpec
from tests.backends.conftest import engine_missing


@pytest.fixture(params=["nft", "iptables"])
def fw_manager(request: Any, tmp_path: Path) -> Iterator[NetworkManager]:
    if os.geteuid() != 0 or shutil.which(request.param) is None:
        engine_missing(f"firewall tests need root and {request.param}")
    mgr = NetworkManager(StateRoot(tmp_path / "state"), firewall=Firewall(request.param))
    try:
        yield mgr
    finally:
        for rec in mgr.list():
            for ep in mgr.endpoints(rec.name):
                mgr.disconnect(rec.name, ep.container_id)
            mgr.remove(rec.name)


def test_isolation_nat_and_internal(fw_manager: NetworkManager, netns: Any, uid: str) -> None:
    m = fw_manager
    a = m.create(NetworkSpec(name=f"t{uid}_a", key="a"))
    b = m.create(NetworkSpec(name=f"t{uid}_b", key="b", internal=True))
    a1, a2, b1 = netns(), netns(), netns()
    m.connect(a.name, a1.path, f"{uid}a1", NetworkAttachment(a.name))
    ep_a2 = m.connect(a.name, a2.path, f"{uid}a2", NetworkAttachment(a.name))
    ep_b1 = m.connect(b.name, b1.path, f"{uid}b1", NetworkAttachment(b.name))
    a2.serve("tcp-server", 9000, "a2")
    b1.serve("tcp-server", 9000, "b1")

    assert a1.prog("tcp", str(ep_a2.ip), "9000").stdout.strip() == "a2"  # same network
    assert a1.prog("tcp", str(ep_b1.ip), "9000").returncode == 1  # other network
    assert b1.prog("tcp", str(ep_a2.ip), "9000").returncode == 1  # internal, no route out

    rules_a, rules_b = m.firewall.rules(a.id), m.firewall.rules(b.id)
    assert any(a.subnet and a.subnet in r and "masquerade" in r.lower() for r in rules_a)
    assert rules_b and not any("masquerade" in r.lower() for r in rules_b)

    for rec in (a, b):
        for ep in m.endpoints(rec.name):
            m.disconnect(rec.name, ep.container_id)
        m.remove(rec.name)
        assert m.firewall.rules(rec.id) == []


def test_masquerade_can_be_turned_off(fw_manager: NetworkManager, uid: str) -> None:
    opts = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
    rec = fw_manager.create(NetworkSpec(name=f"t{uid}_nomasq", key="n", driver_opts=opts))
    rules = fw_manager.firewall.rules(rec.id)
    assert rules and not any("masquerade" in r.lower() for r in rules), rules


OUTSIDE_LOCK = Path("/run/lock/composer-test-outside.lock")


@pytest.fixture
def outside(netns: Any, uid: str) -> Iterator[Any]:
    """A stand-in for "the outside": a namespace routed from the host over its own veth.

    198.51.100.1/24 (TEST-NET-2) on the host end, .2 in the namespace; nothing
    leaves the machine. The subnet is fixed, so one test at a time holds it
    (a lock, for ``pytest -n``).
    """
    ns = netns()
    host_end = f"cmo{uid}"
    with locked_file(OUTSIDE_LOCK):
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                        "netns", ns.name], check=True)  # fmt: skip
        try:
            subprocess.run(["ip", "addr", "add", "198.51.100.1/24", "dev", host_end], check=True)
            subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
            for argv in (
                ["ip", "addr", "add", "198.51.100.2/24", "dev", "eth0"],
                ["ip", "link", "set", "eth0", "up"],
                ["ip", "link", "set", "lo", "up"],
            ):
                assert ns.run(*argv).returncode == 0
            ns.serve("whoami-server", 8080, "-")
            yield ns
        finally:
            subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)


def test_egress_is_masqueraded_and_internal_has_none(
    fw_manager: NetworkManager, netns: Any, uid: str, outside: Any
) -> None:
    m = fw_manager
    net = m.create(NetworkSpec(name=f"t{uid}_out", key="out"))
    internal = m.create(NetworkSpec(name=f"t{uid}_in", key="in", internal=True))
    c, d = netns(), netns()
    ep = m.connect(net.name, c.path, f"{uid}c", NetworkAttachment(net.name))
    m.connect(internal.name, d.path, f"{uid}d", NetworkAttachment(internal.name))
    seen = c.prog("tcp", "198.51.100.2", "8080").stdout.strip()
    assert seen == "198.51.100.1" and seen != ep.ip  # the outside sees the host, not the container
    assert d.prog("tcp", "198.51.100.2", "8080").returncode == 1
    # control: without the NAT rule the outside cannot answer (it has no route back)
    opts = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
    plain = m.create(NetworkSpec(name=f"t{uid}_plain", key="plain", driver_opts=opts))
    e = netns()
    m.connect(plain.name, e.path, f"{uid}e", NetworkAttachment(plain.name))
    assert e.prog("tcp", "198.51.100.2", "8080").returncode == 1


def test_side_by_side_runs_every_step_and_raises_the_first_failure() -> None:
    from composer.backends.native.network.firewall import side_by_side
    from composer.errors import BackendError

    ran: list[str] = []

    def fail(name: str) -> None:
        ran.append(name)
        raise BackendError(f"{name} failed")

    side_by_side(lambda: ran.append("a"), lambda: ran.append("b"))
    assert sorted(ran) == ["a", "b"]
    ran.clear()
    with pytest.raises(BackendError, match="x failed"):
        side_by_side(lambda: fail("x"), lambda: ran.append("after"))
    assert sorted(ran) == ["after", "x"]  # the other step still ran to its end
