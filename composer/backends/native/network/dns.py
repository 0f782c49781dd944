"""The DNS responder of one network (dnslib), listening on the gateway address.

Containers get the gateway as their ``nameserver``. The responder answers
A/AAAA (and PTR) for the names of the network's endpoints — container
names, service names (every replica, rotated on each answer so that clients
spread over them), aliases and hostnames — from the endpoint records on
disk, which it re-reads whenever the directory changes (every write is an
atomic rename, so a changed listing of names and inode numbers is a reliable
signal). Any other name is forwarded to upstream resolvers: the container's
own ``dns:`` servers when its endpoint record has some, else the host's
(``/etc/resolv.conf``, read by this host-side process, so a host stub
resolver on 127.0.0.53 works too). Internal networks forward nothing.

It runs inside another process (the supervisor), one thread serving all its
sockets: ``DnsResponder(...).start()`` … ``stop()``. Its sockets use
``SO_REUSEPORT``, so two supervisors whose projects share a network
(``external: true``) can both serve it: they read the same records and give
the same answers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import selectors
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.backends.native.state import read_json

TTL = 60
UPSTREAM_TIMEOUT = 2.0
"""Seconds to wait for one upstream."""
FORWARD_BUDGET = 4.0
"""Seconds for all upstreams together: the answer (SERVFAIL at worst) reaches the client
before its own resolver gives up on us (glibc waits 5 s)."""


def host_resolvers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The ``nameserver`` entries of a resolv.conf, as ``(address, 53)``."""
    out: list[tuple[str, int]] = []
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append((parts[1].split("%")[0], 53))
    return out


@dataclass
class _Names:
    """The endpoint records of a network, indexed by name and by address."""

    signature: tuple[tuple[str, int], ...] = ()
    v4: dict[str, list[str]] = field(default_factory=dict)
    v6: dict[str, list[str]] = field(default_factory=dict)
    ptr: dict[str, str] = field(default_factory=dict)
    dns_of: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    container_of: dict[str, str] = field(default_factory=dict)


def _signature(directory: Path) -> tuple[tuple[str, int], ...]:
    try:
        with os.scandir(directory) as it:
            return tuple(sorted((e.name, e.inode()) for e in it if e.name.endswith(".json")))
    except FileNotFoundError:
        return ()


def load_names(directory: Path) -> _Names:
    """Index the endpoint records (``*.json``) of ``directory``."""
    names = _Names(signature=_signature(directory))
    for name, _ in names.signature:
        try:
            rec = read_json(directory / name)
        except (OSError, ValueError):
            continue
        if not isinstance(rec, Mapping):
            continue
        ip, ip6 = rec.get("ip"), rec.get("ipv6")
        aliases = [str(n).lower().rstrip(".") for n in rec.get("names") or () if n]
        for alias in aliases:
            if ip:
                names.v4.setdefault(alias, []).append(str(ip))
            if ip6:
                names.v6.setdefault(alias, []).append(str(ip6))
        if aliases:
            for addr in (ip, ip6):
                if addr:
                    names.ptr[ipaddress.ip_address(str(addr)).reverse_pointer] = aliases[0]
        container = str(rec.get("container_id") or name.removesuffix(".json"))
        for addr in (ip, ip6):
            if addr:
                names.container_of[str(addr)] = container
        servers = [(str(s), 53) for s in rec.get("dns") or ()]
        if servers:
            for addr in (ip, ip6):
                if addr:
                    names.dns_of[str(addr)] = servers
    for table in (names.v4, names.v6):
        for key in table:
            table[key].sort(key=lambda a: ipaddress.ip_address(a))
    return names


class DnsResponder:
    """One network's resolver on ``addresses`` (UDP and TCP), started and stopped as threads."""

    def __init__(
        self,
        endpoints_dir: Path,
        addresses: Sequence[str],
        *,
        port: int = 53,
        upstreams: Sequence[tuple[str, int]] | None = None,
        forward: bool = True,
    ) -> None:
        self.endpoints_dir = Path(endpoints_dir)
        self.addresses = list(addresses)
        self.port = port
        self.upstreams = list(upstreams) if upstreams is not None else None
        self.forward = forward
        self._names = _Names()
        self._others: dict[Path, _Names] = {}
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._servers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> DnsResponder:
        from dnslib.server import DNSLogger, DNSServer, TCPServer, UDPServer

        class SharedUDP(UDPServer):  # type: ignore[misc]
            allow_reuse_port = True

        class SharedTCP(TCPServer):  # type: ignore[misc]
            allow_reuse_port = True

        logger = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        try:
            for addr in self.addresses:
                for kind in (SharedUDP, SharedTCP):
                    server = DNSServer(_Resolver(self), address=addr, port=self.port,
                                       logger=logger, server=kind)  # fmt: skip
                    self._servers.append(server.server)
            self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._thread = threading.Thread(
                target=self._serve, args=(list(self._servers), self._wake[0]), name="dns",
                daemon=True,
            )  # fmt: skip
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _serve(servers: list[Any], wake: int) -> None:
        """Every socket of the responder on one thread, until ``wake`` is written to.

        (``socketserver``'s own ``serve_forever`` is a thread per socket that notices a
        ``shutdown`` only at its next 0.5 s poll, which a ``down`` would wait out.)
        Each request is still answered on a thread of its own (``ThreadingMixIn``).
        """
        with selectors.DefaultSelector() as sel:
            for server in servers:
                sel.register(server, selectors.EVENT_READ, server)
            sel.register(wake, selectors.EVENT_READ, None)
            while True:
                for key, _ in sel.select():
                    if key.data is None:
                        return
                    key.data._handle_request_noblock()

    def stop(self) -> None:
        """Stop serving and close the sockets; returns at once (no poll interval to wait)."""
        servers, self._servers = self._servers, []
        thread, self._thread = self._thread, None
        wake, self._wake = self._wake, None
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
            if thread is not None:
                thread.join(5)
            for fd in wake:
                os.close(fd)
        for server in servers:
            with contextlib.suppress(Exception):
                server.server_close()

    def __enter__(self) -> DnsResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- lookups --------------------------------------------------------------

    def names(self) -> _Names:
        """The current index, re-read when the endpoint records changed."""
        sig = _signature(self.endpoints_dir)
        with self._lock:
            if sig != self._names.signature or not sig:
                self._names = load_names(self.endpoints_dir)
            return self._names

    def _indexes_for(self, client: str | None) -> list[_Names]:
        """This network's index, then those of the client's other networks.

        As with Docker's resolver, a container answers to the names of every
        network it is attached to, whichever of them it asks through: a
        container on ``front`` and ``back`` resolves services of both, one on
        ``back`` alone only those of ``back``. Other networks' endpoint
        directories are siblings of this one (``networks/<name>/endpoints``).
        """
        own = self.names()
        container = own.container_of.get(client) if client else None
        if container is None:
            return [own]
        found = [own]
        networks = self.endpoints_dir.parent.parent
        with contextlib.suppress(OSError), os.scandir(networks) as it:
            for entry in sorted(it, key=lambda e: e.name):
                directory = Path(entry.path) / "endpoints"
                if (
                    directory == self.endpoints_dir
                    or not (directory / f"{container}.json").exists()
                ):
                    continue
                found.append(self._other(directory))
        return found

    def _other(self, directory: Path) -> _Names:
        sig = _signature(directory)
        with self._lock:
            cached = self._others.get(directory)
            if cached is None or cached.signature != sig:
                cached = self._others[directory] = load_names(directory)
            return cached

    def lookup(self, name: str, family: int, client: str | None = None) -> list[str] | None:
        """Addresses of ``name`` (rotated per call), or None when no network of the
        client knows it (``client``: the asking address; without it, this network only)."""
        key = name.lower().rstrip(".")
        idx = next((i for i in self._indexes_for(client) if key in i.v4 or key in i.v6), None)
        if idx is None:
            return None
        addrs = (idx.v4 if family == 4 else idx.v6).get(key, [])
        if len(addrs) > 1:
            k = next(self._turn) % len(addrs)
            addrs = addrs[k:] + addrs[:k]
        return addrs

    def upstreams_for(self, client: str) -> list[tuple[str, int]]:
        own = self.names().dns_of.get(client)
        if own:
            return own
        return self.upstreams if self.upstreams is not None else host_resolvers()


class _Resolver:
    """dnslib's resolver interface: answers known names, forwards the rest."""

    def __init__(self, owner: DnsResponder) -> None:
        self.owner = owner

    def resolve(self, request: Any, handler: Any) -> Any:
        from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A

        q = request.q
        qname = str(q.qname)
        client = str(handler.client_address[0])
        reply = request.reply()
        reply.header.ra = 1
        if q.qtype == QTYPE.PTR:
            key = qname.lower().rstrip(".")
            target = next(
                (t for i in self.owner._indexes_for(client) if (t := i.ptr.get(key))), None
            )
            if target is not None:
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
                return reply
        else:
            v4 = self.owner.lookup(qname, 4, client)
            if v4 is not None:
                reply.header.aa = 1
                if q.qtype in (QTYPE.A, QTYPE.ANY):
                    for a in v4:
                        reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(a), ttl=TTL))
                if q.qtype in (QTYPE.AAAA, QTYPE.ANY):
                    for a in self.owner.lookup(qname, 6, client) or []:
                        reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=AAAA(a), ttl=TTL))
                return reply
        if not self.owner.forward:
            reply.header.rcode = RCODE.REFUSED
            return reply
        return self._forward(request, handler, reply)

    def _forward(self, request: Any, handler: Any, fallback: Any) -> Any:
        from dnslib import RCODE, DNSRecord

        client = str(handler.client_address[0])
        deadline = time.monotonic() + FORWARD_BUDGET
        for host, port in self.owner.upstreams_for(client):
            wait = min(UPSTREAM_TIMEOUT, deadline - time.monotonic())
            if wait <= 0.05:
                break
            try:
                # UDP first whatever the client used; TCP only for a truncated answer
                v6 = ":" in host
                raw = request.send(host, port, tcp=False, timeout=wait, ipv6=v6)
                answer = DNSRecord.parse(raw)
                if answer.header.tc:
                    raw = request.send(host, port, tcp=True, timeout=wait, ipv6=v6)
                    answer = DNSRecord.parse(raw)
                answer.header.id = request.header.id
                return answer
            except Exception:  # try the next upstream
                continue
        fallback.header.rcode = RCODE.SERVFAIL
        return fallback
