"""``NetworkManager``: networks and endpoints of the native backend, kept under the state root.

The one entry point the backend and the supervisor use. It ties the parts
together in a crash-safe order: a network's record is written before its
bridge and rules exist (so ``remove`` can always clean up after a crash),
and an endpoint's address is reserved before its veth exists and released
after the veth is gone. Locks: ``networks`` for creating and removing
networks (subnets are chosen under it), ``network-<name>`` for one
network's addresses and endpoint records — not for the veths themselves:
``connect`` plumbs after reserving the addresses and checks, when it writes
the record, that the network was not removed meanwhile; ``disconnect``
deletes the veth before it takes the lock to free the addresses.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from composer.backends.native.network import bridge as br
from composer.backends.native.network.dns import DnsResponder
from composer.backends.native.network.firewall import Firewall, NetworkRules, side_by_side
from composer.backends.native.network.ipam import AddressBook, IPNetwork, plan_subnets
from composer.backends.native.network.records import Endpoint, NetworkRecord
from composer.backends.native.state import StateRoot, locked_file, read_json, write_json
from composer.backends.specs import NetworkAttachment, NetworkSpec
from composer.errors import ConfigError, Conflict, NotFound, Unsupported

BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
MTU_OPT = "com.docker.network.driver.mtu"
MASQUERADE_OPT = "com.docker.network.bridge.enable_ip_masquerade"
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
"""A Linux interface name (at most 15 bytes) that is also safe inside firewall rules."""
HOST_LOCK = Path("/run/lock/composer-networks.lock")
"""Bridges, subnets and firewall rules are machine-wide: creating them is serialised across
state roots too, so two roots never pick the same default subnet at the same moment."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _mtu(opts: dict[str, str]) -> int | None:
    raw = opts.get(MTU_OPT)
    if not raw:
        return None
    try:
        mtu = int(raw)
    except ValueError:
        raise ConfigError(f"invalid {MTU_OPT} {raw!r}", "give a number such as 1450") from None
    if not 68 <= mtu <= 65535:
        raise ConfigError(f"{MTU_OPT} {mtu} is out of range", "use a value within 68-65535")
    return mtu


def host_ifname(network_id: str, container_id: str) -> str:
    """The host end of a container's veth on a network: ``cmv`` + 12 hex."""
    return "cmv" + hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()[:12]


class NetworkManager:
    """Create, connect, disconnect and remove networks under one state root."""

    def __init__(
        self, root: StateRoot, *, firewall: Firewall | None = None, host_lock: Path = HOST_LOCK
    ) -> None:
        self.root = root
        self.firewall = firewall or Firewall()
        self.host_lock = host_lock

    @contextlib.contextmanager
    def _host_locked(self) -> Iterator[None]:
        self.host_lock.parent.mkdir(parents=True, exist_ok=True)
        with locked_file(self.host_lock):
            yield

    # --- paths -------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root.network(name)

    def _record_path(self, name: str) -> Path:
        return self._dir(name) / "network.json"

    def endpoints_dir(self, name: str) -> Path:
        """Where the endpoint records of network ``name`` live (read by its DNS responder)."""
        return self._dir(name) / "endpoints"

    def _endpoint_path(self, name: str, container_id: str) -> Path:
        self.root.container(container_id)  # validates the id as a path component
        return self.endpoints_dir(name) / f"{container_id}.json"

    @contextlib.contextmanager
    def _net_lock(self, name: str) -> Iterator[None]:
        with self.root.locked(f"network-{name}"):
            yield

    # --- networks --------------------------------------------------------------

    def get(self, name: str) -> NetworkRecord | None:
        try:
            return NetworkRecord.from_json(read_json(self._record_path(name)))
        except FileNotFoundError:
            return None

    def inspect(self, name: str) -> NetworkRecord:
        rec = self.get(name)
        if rec is None:
            raise NotFound(f"network {name} not found", "run `composer up` to create it")
        return rec

    def list(self) -> list[NetworkRecord]:
        base = self.root.path / "networks"
        out = []
        for d in sorted(base.iterdir()) if base.is_dir() else ():
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                out.append(NetworkRecord.from_json(read_json(d / "network.json")))
        return out

    def create(self, spec: NetworkSpec) -> NetworkRecord:
        """Create the network (bridge, subnets, firewall rules); an existing one is returned."""
        if spec.external:
            rec = self.get(spec.name)
            if rec is None:
                raise NotFound(
                    f"network {spec.name} declared as external, but could not be found",
                    f"create it first (a network named {spec.name}) or drop `external: true`",
                )
            return rec
        if spec.driver not in (None, "", "bridge"):
            raise Unsupported(f"network driver {spec.driver!r} is not supported by the native "
                              "backend", "use the bridge driver or the docker backend")  # fmt: skip
        opts = dict(spec.driver_opts)
        mtu = _mtu(opts)
        bridge = opts.get(BRIDGE_NAME_OPT)
        if bridge is not None and not _IFNAME.fullmatch(bridge):
            raise ConfigError(f"invalid bridge name {bridge!r}",
                              "use 1-15 letters, digits, '_', '.' or '-'")  # fmt: skip
        self.root.ensure()
        with self.root.locked("networks"), self._host_locked():
            existing = self.get(spec.name)
            if existing is not None:
                return existing
            v6 = bool(spec.enable_ipv6) or any(
                p.subnet and ":" in p.subnet for p in (spec.ipam.config if spec.ipam else ())
            )
            used: list[IPNetwork] = list(br.host_routes(ipv6=v6))
            for other in self.list():
                used += [s.network for s in (other.ipv4, other.ipv6) if s]
            v4_sub, v6_sub = plan_subnets(spec.ipam, v6, used)
            net_id = secrets.token_hex(32)
            bridge = bridge or f"cmp-{net_id[:11]}"
            if br.link_exists(bridge):
                raise Conflict(f"interface {bridge} exists already",
                               f"pick another {BRIDGE_NAME_OPT}")  # fmt: skip
            rec = NetworkRecord(
                id=net_id, name=spec.name, key=spec.key, bridge=bridge, ipv4=v4_sub, ipv6=v6_sub,
                internal=spec.internal, mtu=mtu, attachable=spec.attachable,
                driver_opts=opts, labels=dict(spec.labels), created=_now(),
            )  # fmt: skip
            write_json(self._record_path(spec.name), rec.to_json())
            try:
                addrs = [(s.gateway, s.prefixlen) for s in (v4_sub, v6_sub) if s]
                # side by side: the rules name the bridge, they do not need it to exist
                side_by_side(
                    lambda: br.ensure_bridge(rec.bridge, mtu, addrs),
                    lambda: self.firewall.add(self._rules(rec), fresh=True),
                )
            except BaseException:
                with contextlib.suppress(Exception):  # the first failure is the one to report
                    self._teardown(rec)
                raise
        return rec

    def _rules(self, rec: NetworkRecord) -> NetworkRules:
        masquerade = rec.driver_opts.get(MASQUERADE_OPT, "true").lower() not in ("false", "0")
        return NetworkRules(rec.id, rec.bridge, rec.subnet, rec.ipv6.subnet if rec.ipv6 else None,
                            rec.internal, masquerade)  # fmt: skip

    def _teardown(self, rec: NetworkRecord) -> None:
        """Delete rules and bridge (side by side), then the record; a failed step keeps the
        record for a retry."""
        side_by_side(lambda: self.firewall.remove(rec.id), lambda: br.delete_link(rec.bridge))
        shutil.rmtree(self._dir(rec.name), ignore_errors=True)

    def remove(self, name: str) -> None:
        """Delete the network's rules, bridge and records; it must have no live endpoints."""
        with self.root.locked("networks"):
            rec = self.inspect(name)
            with self._net_lock(name):
                live = [e for e in self.endpoints(name) if br.link_exists(e.host_ifname)]
                if live:
                    ids = ", ".join(e.container_id[:12] for e in live)
                    raise Conflict(f"network {name} has active endpoints ({ids})",
                                   "stop or disconnect those containers first")  # fmt: skip
                self._teardown(rec)
                self.root.drop_lock(f"network-{name}")

    # --- endpoints -------------------------------------------------------------

    def endpoints(self, name: str) -> builtins.list[Endpoint]:
        d = self.endpoints_dir(name)
        out = []
        for f in sorted(d.glob("*.json")) if d.is_dir() else ():
            with contextlib.suppress(FileNotFoundError, ValueError):
                out.append(Endpoint.from_json(read_json(f)))
        return out

    def endpoint(self, name: str, container_id: str) -> Endpoint | None:
        try:
            return Endpoint.from_json(read_json(self._endpoint_path(name, container_id)))
        except FileNotFoundError:
            return None

    def connect(
        self,
        name: str,
        target: int | str,
        container_id: str,
        attachment: NetworkAttachment | None = None,
        names: Sequence[str] = (),
        *,
        dns: Sequence[str] = (),
    ) -> Endpoint:
        """Plumb a veth from the network's bridge into the namespace ``target``.

        ``target`` is a pid (its ``/proc/<pid>/ns/net``) or a namespace file
        path. ``names`` are the DNS names of the container on this network
        (container name, service name, hostname); the attachment's aliases
        and the short container id are added. ``dns`` are the container's own
        ``dns:`` servers, used by the responder for its forwarded queries.
        """
        att = attachment or NetworkAttachment(network=name)
        path = self._endpoint_path(name, container_id)
        with self._net_lock(name):
            rec = self.inspect(name)  # read under the lock: remove() holds it while deleting
            host_if = host_ifname(rec.id, container_id)
            if br.link_exists(host_if):
                if path.exists():
                    raise Conflict(
                        f"container {container_id[:12]} is already connected to {name}",
                        "disconnect it first",
                    )
                br.delete_link(host_if)  # a stale end from a container that died unannounced
            if att.ipv6_address and not rec.ipv6:
                raise ConfigError(
                    f"ipv6_address {att.ipv6_address} given but network {name} has no IPv6",
                    "set enable_ipv6: true on the network",
                )
            book = AddressBook(self._dir(name) / "ipam.json")
            ip = book.allocate(rec.ipv4, container_id, att.ipv4_address) if rec.ipv4 else None
            ip6 = book.allocate(rec.ipv6, container_id, att.ipv6_address) if rec.ipv6 else None
            book.save()
        # The veth is made without the lock, so that the containers of an ``up`` are
        # plumbed side by side; only the addresses and the record are decided under it.
        try:
            ifname, mac = br.plumb(target, br.Plumbing(
                host_ifname=host_if, bridge=rec.bridge, mtu=rec.mtu,
                ifname=att.interface_name, mac=att.mac_address,
                ipv4=(ip, rec.ipv4.prefixlen) if ip and rec.ipv4 else None,
                ipv6=(ip6, rec.ipv6.prefixlen) if ip6 and rec.ipv6 else None,
                gateway=rec.gateway, gateway6=rec.ipv6.gateway if rec.ipv6 else None,
                default_route=not rec.internal,
            ))  # fmt: skip
        except BaseException:
            with self._net_lock(name):
                if self._same(name, rec):
                    self._release(name, container_id)
            raise
        all_names = _unique([*names, *att.aliases, container_id[:12]])
        ep = Endpoint(
            ip=ip, ipv6=ip6, mac=mac, ifname=ifname, gateway=rec.gateway,
            gateway6=rec.ipv6.gateway if rec.ipv6 else None,
            prefixlen=rec.ipv4.prefixlen if rec.ipv4 else None,
            prefixlen6=rec.ipv6.prefixlen if rec.ipv6 else None,
            network=name, container_id=container_id, host_ifname=host_if,
            names=tuple(all_names), dns=tuple(dns),
        )  # fmt: skip
        with self._net_lock(name):
            if not self._same(name, rec):  # removed (and maybe made again) meanwhile
                br.delete_link(host_if)
                raise NotFound(f"network {name} was removed while a container was joining it",
                               "run `composer up` again")  # fmt: skip
            write_json(path, ep.to_json())
        return ep

    def _same(self, name: str, rec: NetworkRecord) -> bool:
        """Whether network ``name`` is still the one of ``rec`` (caller holds its lock)."""
        now = self.get(name)
        return now is not None and now.id == rec.id

    def _release(self, name: str, container_id: str) -> None:
        """Free the container's addresses on ``name`` (caller holds its lock)."""
        book = AddressBook(self._dir(name) / "ipam.json")
        book.release(container_id)
        book.save()

    def disconnect(self, name: str, container_id: str) -> None:
        """Remove the container's veth, address and endpoint record (nothing to do is fine).

        The veth goes first and without the lock (deleting a link waits for the
        kernel, tens of milliseconds when a whole stack stops); the address is
        released after it, under the lock.
        """
        path = self._endpoint_path(name, container_id)
        rec = self.get(name)
        if rec is None:
            return
        br.unplumb(host_ifname(rec.id, container_id))
        with self._net_lock(name):
            if not self._same(name, rec):
                return
            self._release(name, container_id)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def prune(self, name: str) -> builtins.list[str]:
        """Disconnect endpoints whose veth is gone (their namespace died unannounced).

        Returns the container ids released, whose addresses are free again.
        """
        stale = [e.container_id for e in self.endpoints(name) if not br.link_exists(e.host_ifname)]
        for container_id in stale:
            self.disconnect(name, container_id)
        return stale

    # --- what the supervisor and the container files need ------------------------

    def dns_responder(
        self,
        name: str,
        *,
        port: int = 53,
        upstreams: Sequence[tuple[str, int]] | None = None,
    ) -> DnsResponder:
        """The (not yet started) DNS responder of network ``name`` on its gateway address(es).

        ``upstreams`` default to the host's ``/etc/resolv.conf``; internal
        networks answer only their own names.
        """
        rec = self.inspect(name)
        addrs = [s.gateway for s in (rec.ipv4, rec.ipv6) if s]
        return DnsResponder(self.endpoints_dir(name), addrs, port=port, upstreams=upstreams,
                            forward=not rec.internal)  # fmt: skip

    def nameserver(self, networks: Sequence[str]) -> str | None:
        """The nameserver for a container on ``networks`` (in priority order): the first gateway."""
        for name in networks:
            rec = self.get(name)
            if rec is not None and rec.gateway:
                return rec.gateway
        return None


def _unique(items: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)
