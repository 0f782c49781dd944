"""DNS for a one-off the CLI process runs: a responder only where nobody answers yet.

The container's ``nameserver`` is its first network's gateway. When the
project's supervisor (or another project's, on a shared network) already
answers there, its responder reads the same endpoint records and knows the
one-off's names too: nothing is started. Otherwise the CLI serves the
network itself for as long as the one-off runs (``DnsResponder``, whose
sockets share the port with ``SO_REUSEPORT``, so a supervisor starting
meanwhile can still bind next to it).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.supervisor.records import ContainerRecord

PORT = 53


def served(address: str, port: int = PORT) -> bool:
    """Whether a responder already listens on ``address:port`` (UDP).

    Binding without ``SO_REUSEPORT`` fails with ``EADDRINUSE`` exactly when
    some socket holds the address; the probe socket is closed at once.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def ensure_served(backend: NativeBackend, record: ContainerRecord) -> list[Any]:
    """Start a responder for each of the record's networks nobody serves; the started ones."""
    started: list[Any] = []
    for join in record.networks:
        net = backend.networks.get(join.network)
        if net is None or not net.gateway:
            continue
        with contextlib.suppress(OSError):
            if served(net.gateway):
                continue
        try:
            started.append(backend.networks.dns_responder(join.network).start())
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return started
