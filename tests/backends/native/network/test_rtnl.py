"""The rtnetlink messages of ``rtnl.py``: encoding, and real requests against the kernel.

The bridge, veth, address and route requests are exercised end to end by
``test_connectivity.py`` and ``test_lifecycle.py`` (through ``bridge.py``);
here are the encoding rules and what the kernel answers to simple requests
in the test's own namespace objects.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import uuid

import pytest

from composer.backends.native.network import rtnl
from tests.backends.native.network.conftest import need_root


def test_attributes_are_padded_to_four_bytes_and_parse_back() -> None:
    raw = rtnl.attr(3, b"eth0\0") + rtnl.attr(4, (1500).to_bytes(4, "little"))
    assert len(raw) == 4 + 8 + 4 + 4  # "eth0\0" (5 bytes) padded to 8
    got = rtnl.parse_attrs(raw)
    assert got == {3: b"eth0\0", 4: (1500).to_bytes(4, "little")}
    nested = rtnl.attr(18 | rtnl.NLA_F_NESTED, rtnl.attr(1, b"veth\0"))
    assert rtnl.parse_attrs(rtnl.parse_attrs(nested)[18]) == {1: b"veth\0"}
    assert rtnl.parse_attrs(b"\x02\x00") == {}  # truncated: nothing rather than garbage


def test_links_routes_and_errors_from_the_kernel() -> None:
    need_root()
    with rtnl.Rtnl() as nl:
        links = {link.ifname: link for link in nl.links()}
        assert links["lo"].index == socket.if_nametoindex("lo")
        assert links["lo"].mac == "00:00:00:00:00:00"
        assert all(r.family == socket.AF_INET for r in nl.routes(socket.AF_INET))
        with pytest.raises(rtnl.NetlinkError) as caught:
            nl.del_link(0x7FFFFFF0)  # no such interface
        assert caught.value.errno == errno.ENODEV
        nl.links()  # the socket is still in step after an error


def test_a_bridge_with_an_address_made_and_deleted() -> None:
    need_root()
    name = f"rt{uuid.uuid4().hex[:8]}"
    try:
        with rtnl.Rtnl() as nl:
            nl.add_bridge(name, mtu=1400)
            index = rtnl.link_index(name)
            assert index is not None
            nl.add_addr(index, "10.231.77.1", 24)
            nl.set_link(index, up=True)
            with pytest.raises(rtnl.NetlinkError) as caught:
                nl.add_bridge(name)
            assert caught.value.errno == errno.EEXIST
            shown = subprocess.run(["ip", "addr", "show", name], capture_output=True, text=True)
            assert "mtu 1400" in shown.stdout and "inet 10.231.77.1/24" in shown.stdout
            assert ",UP" in shown.stdout
            routes = nl.routes(socket.AF_INET)
            assert any(r.dst == "10.231.77.0" and r.dst_len == 24 for r in routes)
            nl.del_link(index)
        assert rtnl.link_index(name) is None
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
