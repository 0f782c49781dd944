"""DNS for a one-off the CLI process runs: its networks answered for as long as it runs.

The container's ``nameserver`` is its first network's gateway. A supervisor
may answer there already, but it stops when its own containers on that
network do, which need not wait for the one-off; so the CLI serves each of
the one-off's networks itself, next to any other responder (the sockets use
``SO_REUSEPORT``, as the supervisor's do, and every responder reads the same
endpoint records, so it does not matter which one a query reaches).

Most one-offs never ask: the sockets are bound before the container runs,
but dnslib (and the resolver around it) is loaded only when the first query
arrives, which waits in the socket's queue meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.network.dns import DnsResponder
    from composer.backends.native.supervisor.records import ContainerRecord

PORT = 53


def bind(address: str, kind: int, port: int = PORT) -> socket.socket:
    """A socket on ``address:port`` sharing the port with the other responders there."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(16)
    except BaseException:
        sock.close()
        raise
    return sock


class LazyResponder:
    """A network's responder whose sockets are bound now and served from the first query."""

    def __init__(self, responder: DnsResponder, port: int = PORT) -> None:
        self.responder = responder
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._servers: list[Any] = []
        self._stopped = False
        try:
            for address in responder.addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    self.sockets.append(bind(address, kind, port))
        except BaseException:
            self._close()
            raise
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        threading.Thread(target=self._wait, name="oneoff-dns", daemon=True).start()

    def _wait(self) -> None:
        try:
            ready, _, _ = select.select([*(s.fileno() for s in self.sockets), self._wake_r], [], [])
        except (OSError, ValueError):
            return
        if self._wake_r in ready:
            return
        self._serve()

    def _serve(self) -> None:
        from dnslib.server import DNSLogger, DNSServer, TCPServer, UDPServer

        from composer.backends.native.network.dns import _Resolver

        logger = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        resolver = _Resolver(self.responder)  # the supervisor's answers, to the letter
        with self._lock:
            if self._stopped:
                return
            for sock in self.sockets:
                base = UDPServer if sock.type == socket.SOCK_DGRAM else TCPServer
                host, port = sock.getsockname()[:2]
                server = DNSServer(resolver, address=host, port=port, logger=logger,
                                   server=_adopting(base, sock))  # fmt: skip
                self._servers.append(server)
                server.start_thread()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            servers, self._servers = self._servers, []
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for server in servers:
            with contextlib.suppress(Exception):
                server.server.shutdown()
        self._close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _adopting(base: Any, sock: socket.socket) -> Any:
    """``base`` (a dnslib socketserver class) serving the already bound ``sock``."""

    class Adopting(base):  # type: ignore[misc]
        socket: Any
        server_address: Any

        def server_bind(self) -> None:
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()

        def server_activate(self) -> None:
            pass  # a stream socket listens already

    return Adopting


def serve(backend: NativeBackend, record: ContainerRecord) -> list[LazyResponder]:
    """A lazy responder on each of the record's networks (those with a gateway)."""
    started: list[LazyResponder] = []
    try:
        for join in record.networks:
            net = backend.networks.get(join.network)
            if net is None or not net.gateway:
                continue
            started.append(LazyResponder(backend.networks.dns_responder(join.network)))
    except BaseException:
        for responder in started:
            responder.stop()
        raise
    return started
