"""IPAM: default pools, ipam.config, static addresses, and no double allocation across processes."""

from __future__ import annotations

import ipaddress
import multiprocessing
from pathlib import Path

import pytest

from composer.backends.native.network.ipam import (
    AddressBook,
    Subnet,
    pick_default_v4,
    plan_subnets,
)
from composer.backends.native.state import StateRoot
from composer.backends.specs import IpamPoolSpec, IpamSpec
from composer.errors import ConfigError, Conflict


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_default_pools_first_10_88_then_slash_24s_of_10_89() -> None:
    assert pick_default_v4([]) == Subnet("10.88.0.0/16", "10.88.0.1")
    assert pick_default_v4([net("10.88.0.0/16")]) == Subnet("10.89.0.0/24", "10.89.0.1")
    used = [net("10.88.0.0/16"), net("10.89.0.0/24"), net("10.89.1.0/24")]
    assert pick_default_v4(used).subnet == "10.89.2.0/24"
    # a host route inside 10.88/16 keeps the first pool out too
    assert pick_default_v4([net("10.88.5.0/24")]).subnet == "10.89.0.0/24"


def test_ipv6_gets_a_ula_slash_64() -> None:
    v4, v6 = plan_subnets(None, True, [])
    assert v4 is not None and v6 is not None
    assert v6.network.prefixlen == 64 and v6.network.is_private and v6.subnet.startswith("fd")
    _, other = plan_subnets(None, True, [v6.network])
    assert other is not None and other.subnet != v6.subnet


def test_ipam_config_subnet_gateway_range() -> None:
    ipam = IpamSpec(config=(
        IpamPoolSpec(subnet="172.28.0.0/16", gateway="172.28.5.254", ip_range="172.28.5.0/24"),
        IpamPoolSpec(subnet="fd12:3456::/64"),
    ))  # fmt: skip
    v4, v6 = plan_subnets(ipam, False, [])
    assert v4 == Subnet("172.28.0.0/16", "172.28.5.254", "172.28.5.0/24")
    assert v6 == Subnet("fd12:3456::/64", "fd12:3456::1")


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (IpamPoolSpec(subnet="10.0.0.0/33"), "invalid subnet"),
        (IpamPoolSpec(subnet="10.1.0.0/24", gateway="10.2.0.1"), "not in subnet"),
        (IpamPoolSpec(subnet="10.1.0.0/24", ip_range="10.1.1.0/25"), "not inside subnet"),
    ],
)
def test_bad_ipam_config_is_a_config_error(pool: IpamPoolSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_subnets(IpamSpec(config=(pool,)), False, [])


def test_configured_subnet_overlapping_another_is_a_conflict() -> None:
    ipam = IpamSpec(config=(IpamPoolSpec(subnet="10.88.1.0/24"),))
    with pytest.raises(Conflict, match="overlaps"):
        plan_subnets(ipam, False, [net("10.88.0.0/16")])


def test_addresses_skip_reserved_and_honour_range(tmp_path: Path) -> None:
    sub = Subnet("10.5.0.0/29", "10.5.0.1", aux=("10.5.0.2",))
    book = AddressBook(tmp_path / "ipam.json")
    got = [book.allocate(sub, f"c{i}", None) for i in range(4)]
    assert got == ["10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]  # .0 .1 .2 .7 reserved
    with pytest.raises(Conflict, match="no free address"):
        book.allocate(sub, "c9", None)
    assert book.allocate(sub, "c1", None) == "10.5.0.4"  # idempotent per owner
    book.release("c1")
    assert book.allocate(sub, "c9", None) == "10.5.0.4"
    ranged = Subnet("10.6.0.0/24", "10.6.0.1", ip_range="10.6.0.128/25")
    assert AddressBook(tmp_path / "other.json").allocate(ranged, "x", None) == "10.6.0.129"


def test_static_addresses(tmp_path: Path) -> None:
    sub = Subnet("10.7.0.0/24", "10.7.0.1")
    book = AddressBook(tmp_path / "ipam.json")
    assert book.allocate(sub, "a", "10.7.0.50") == "10.7.0.50"
    with pytest.raises(Conflict, match="already in use"):
        book.allocate(sub, "b", "10.7.0.50")
    with pytest.raises(Conflict, match="reserved"):
        book.allocate(sub, "b", "10.7.0.1")
    with pytest.raises(ConfigError, match="not in the network's subnet"):
        book.allocate(sub, "b", "10.8.0.5")
    book.save()
    assert AddressBook(tmp_path / "ipam.json").entries == {"10.7.0.50": "a"}


def _allocate_many(root: str, who: str, n: int) -> None:
    state = StateRoot(Path(root))
    sub = Subnet("10.9.0.0/16", "10.9.0.1")
    for i in range(n):
        with state.locked("network-x"):
            book = AddressBook(state.network("x") / "ipam.json")
            book.allocate(sub, f"{who}-{i}", None)
            book.save()


def test_two_processes_never_hand_out_one_address(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path), w, 40)) for w in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = AddressBook(StateRoot(tmp_path).network("x") / "ipam.json").entries
    assert len(entries) == 80 and len(set(entries.values())) == 80
