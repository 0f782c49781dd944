"""IP address management: which subnet a network gets and which address a container gets.

Two decisions, both made under an ``flock`` so that two composer processes
(the CLI and a supervisor, or two CLIs) never hand out the same thing:

* a subnet per network, from ``ipam.config`` when given, else from the
  default pools (10.88.0.0/16 for the first network, then /24s out of
  10.89.0.0/16, as netavark does; IPv6 /64s out of a ULA /48), skipping
  subnets already used by another network record or by a host route;
* an address per endpoint, recorded in ``<network dir>/ipam.json`` as
  ``{address: container id}``: a static ``ipv4_address``/``ipv6_address``
  when asked (must be inside the subnet and free), else the lowest free
  address of ``ip_range`` (or of the subnet), never the network, broadcast,
  gateway or an ``aux_addresses`` entry.

The functions here do no locking themselves; ``NetworkManager`` holds the
locks around them (one for subnets, one per network for addresses).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.state import read_json, write_json
from composer.backends.specs import IpamSpec
from composer.errors import ConfigError, Conflict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FIRST_POOL = ipaddress.IPv4Network("10.88.0.0/16")
"""The first network's subnet (podman's default), when it is free."""
NEXT_POOL = ipaddress.IPv4Network("10.89.0.0/16")
"""Further networks get /24s out of this pool."""
ULA_POOL = ipaddress.IPv6Network("fd88:c0de:5eed::/48")
"""IPv6 networks get /64s out of this unique-local pool."""


@dataclass(frozen=True, slots=True)
class Subnet:
    """One subnet of a network: where addresses come from and which are reserved."""

    subnet: str
    gateway: str
    ip_range: str | None = None
    aux: tuple[str, ...] = ()

    @property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.subnet)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def to_json(self) -> dict[str, object]:
        return {
            "subnet": self.subnet,
            "gateway": self.gateway,
            "ip_range": self.ip_range,
            "aux": list(self.aux),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Subnet:
        ip_range = data.get("ip_range")
        aux = data.get("aux") or []
        return cls(
            subnet=str(data["subnet"]),
            gateway=str(data["gateway"]),
            ip_range=str(ip_range) if ip_range else None,
            aux=tuple(str(a) for a in aux) if isinstance(aux, list) else (),
        )


def _bad(message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, hint)


def _parse_net(text: str, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _bad(
            f"invalid {what} {text!r}", "write it as address/prefix, e.g. 10.5.0.0/24"
        ) from None


def _parse_addr(text: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        raise _bad(f"invalid {what} {text!r}") from None


def subnet_from_config(subnet: str, gateway: str | None, ip_range: str | None,
                       aux: Iterable[str] = ()) -> Subnet:  # fmt: skip
    """A ``Subnet`` from an ``ipam.config`` entry, checked for consistency."""
    net = _parse_net(subnet, "subnet")
    if net.num_addresses < 4 and net.version == 4:
        raise _bad(f"subnet {subnet} is too small", "use a prefix of /30 or shorter")
    if gateway:
        gw: IPAddress = _parse_addr(gateway, "gateway")
        if gw not in net:
            raise _bad(f"gateway {gateway} is not in subnet {net}")
    else:
        gw = next(iter(net.hosts()))  # type: ignore[assignment]
    if ip_range:
        rng = _parse_net(ip_range, "ip_range")
        if rng.version != net.version or not rng.subnet_of(net):  # type: ignore[arg-type]
            raise _bad(f"ip_range {ip_range} is not inside subnet {net}")
    aux_list = tuple(str(_parse_addr(a, "aux_address")) for a in aux)
    return Subnet(str(net), str(gw), str(_parse_net(ip_range, "ip_range")) if ip_range else None,
                  aux_list)  # fmt: skip


def overlaps(net: IPNetwork, used: Iterable[IPNetwork]) -> bool:
    return any(u.version == net.version and u.overlaps(net) for u in used)


def pick_default_v4(used: Iterable[IPNetwork]) -> Subnet:
    """The first free default IPv4 subnet: 10.88.0.0/16, then 10.89.N.0/24."""
    taken = list(used)
    for net in (FIRST_POOL, *NEXT_POOL.subnets(new_prefix=24)):
        if not overlaps(net, taken):
            return Subnet(str(net), str(net.network_address + 1))
    raise Conflict(
        "no free subnet left in the default pools 10.88.0.0/16 and 10.89.0.0/16",
        "remove unused networks or give the network an ipam subnet",
    )


def pick_default_v6(used: Iterable[IPNetwork]) -> Subnet:
    """The first free /64 of the ULA pool."""
    taken = list(used)
    for net in ULA_POOL.subnets(new_prefix=64):
        if not overlaps(net, taken):
            return Subnet(str(net), str(net.network_address + 1))
    raise Conflict("no free IPv6 subnet left in the default pool", "give the network a subnet")


def plan_subnets(ipam: IpamSpec | None, enable_ipv6: bool,
                 used: Iterable[IPNetwork]) -> tuple[Subnet | None, Subnet | None]:  # fmt: skip
    """The (IPv4, IPv6) subnets a new network gets; ``used`` are subnets to avoid."""
    taken = list(used)
    v4: Subnet | None = None
    v6: Subnet | None = None
    for pool in ipam.config if ipam else ():
        if not pool.subnet:
            continue
        sub = subnet_from_config(pool.subnet, pool.gateway, pool.ip_range,
                                 pool.aux_addresses.values())  # fmt: skip
        if overlaps(sub.network, taken):
            raise Conflict(
                f"subnet {sub.subnet} overlaps a subnet already in use",
                "pick another subnet in ipam.config, or remove the network that uses it",
            )
        if sub.network.version == 4 and v4 is None:
            v4 = sub
        elif sub.network.version == 6 and v6 is None:
            v6 = sub
        taken.append(sub.network)
    if v4 is None:
        v4 = pick_default_v4(taken)
    if enable_ipv6 and v6 is None:
        v6 = pick_default_v6(taken)
    return v4, v6


# --- addresses within a network --------------------------------------------


def _reserved(sub: Subnet) -> set[IPAddress]:
    net = sub.network
    out: set[IPAddress] = {net.network_address, ipaddress.ip_address(sub.gateway)}
    if net.version == 4:
        out.add(net.broadcast_address)
    out.update(ipaddress.ip_address(a) for a in sub.aux)
    return out


class AddressBook:
    """The allocations of one network, kept in ``ipam.json`` (caller holds the lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        with contextlib.suppress(FileNotFoundError):
            data = read_json(path)
            if isinstance(data, dict):
                self.entries = {str(k): str(v) for k, v in data.items()}

    def save(self) -> None:
        write_json(self.path, self.entries)

    def allocate(self, sub: Subnet, owner: str, static: str | None) -> str:
        """Reserve an address in ``sub`` for ``owner``; idempotent per owner."""
        net = sub.network
        mine = [a for a, o in self.entries.items() if o == owner and ipaddress.ip_address(a) in net]
        if static:
            addr = _parse_addr(static, "static address")
            if addr not in net:
                raise _bad(f"address {static} is not in the network's subnet {net}")
            if addr in _reserved(sub):
                raise Conflict(f"address {addr} is reserved in {net}", "pick another address")
            holder = self.entries.get(str(addr))
            if holder is not None and holder != owner:
                raise Conflict(
                    f"address {addr} is already in use on {net}",
                    "pick another address or stop the container that holds it",
                )
            for a in mine:
                if a != str(addr):
                    del self.entries[a]
            self.entries[str(addr)] = owner
            return str(addr)
        if mine:
            return mine[0]
        pool = ipaddress.ip_network(sub.ip_range) if sub.ip_range else net
        reserved = _reserved(sub)
        for addr in pool.hosts() if pool.num_addresses > 2 else pool:
            if addr in reserved or str(addr) in self.entries or addr not in net:
                continue
            self.entries[str(addr)] = owner
            return str(addr)
        raise Conflict(f"no free address left in {pool}",
                       "use a larger subnet or ip_range, or remove containers")  # fmt: skip

    def release(self, owner: str) -> None:
        for addr in [a for a, o in self.entries.items() if o == owner]:
            del self.entries[addr]
