"""The on-disk records of networks and endpoints, and their JSON forms.

``<root>/networks/<name>/network.json`` is a ``NetworkRecord``;
``<root>/networks/<name>/endpoints/<container id>.json`` is an
``Endpoint`` plus the DNS names it answers to. The DNS responder reads the
endpoint files directly, so their field names (``ip``, ``ipv6``,
``names``, ``dns``) are an interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from composer.backends.native.network.ipam import Subnet


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """A network as created: its bridge, subnets and options."""

    id: str
    name: str
    key: str
    bridge: str
    ipv4: Subnet | None
    ipv6: Subnet | None = None
    internal: bool = False
    mtu: int | None = None
    attachable: bool = False
    driver: str = "bridge"
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def gateway(self) -> str | None:
        return self.ipv4.gateway if self.ipv4 else None

    @property
    def subnet(self) -> str | None:
        return self.ipv4.subnet if self.ipv4 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "key": self.key,
            "bridge": self.bridge,
            "ipv4": self.ipv4.to_json() if self.ipv4 else None,
            "ipv6": self.ipv6.to_json() if self.ipv6 else None,
            "internal": self.internal,
            "mtu": self.mtu,
            "attachable": self.attachable,
            "driver": self.driver,
            "driver_opts": dict(self.driver_opts),
            "labels": dict(self.labels),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NetworkRecord:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            key=str(d.get("key") or d["name"]),
            bridge=str(d["bridge"]),
            ipv4=Subnet.from_json(d["ipv4"]) if d.get("ipv4") else None,
            ipv6=Subnet.from_json(d["ipv6"]) if d.get("ipv6") else None,
            internal=bool(d.get("internal")),
            mtu=int(d["mtu"]) if d.get("mtu") else None,
            attachable=bool(d.get("attachable")),
            driver=str(d.get("driver") or "bridge"),
            driver_opts={str(k): str(v) for k, v in (d.get("driver_opts") or {}).items()},
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            created=str(d.get("created") or ""),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container's attachment to a network, as plumbed."""

    ip: str | None
    ipv6: str | None
    mac: str
    ifname: str
    gateway: str | None
    gateway6: str | None = None
    prefixlen: int | None = None
    prefixlen6: int | None = None
    network: str = ""
    container_id: str = ""
    host_ifname: str = ""
    names: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["names"] = list(self.names)
        d["dns"] = list(self.dns)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Endpoint:
        def opt(key: str) -> str | None:
            v = d.get(key)
            return str(v) if v else None

        def opt_int(key: str) -> int | None:
            v = d.get(key)
            return int(v) if v is not None else None

        return cls(
            ip=opt("ip"),
            ipv6=opt("ipv6"),
            mac=str(d.get("mac") or ""),
            ifname=str(d.get("ifname") or ""),
            gateway=opt("gateway"),
            gateway6=opt("gateway6"),
            prefixlen=opt_int("prefixlen"),
            prefixlen6=opt_int("prefixlen6"),
            network=str(d.get("network") or ""),
            container_id=str(d.get("container_id") or ""),
            host_ifname=str(d.get("host_ifname") or ""),
            names=tuple(str(n) for n in d.get("names") or ()),
            dns=tuple(str(n) for n in d.get("dns") or ()),
        )
