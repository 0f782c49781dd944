"""The ``/etc/resolv.conf`` and ``/etc/hosts`` a container gets.

With a network, the container's only nameserver is the network's DNS
responder on the gateway: it answers the project's names and forwards the
rest (to the ``dns:`` servers of the container when it has some — the
endpoint record carries them — else to the host's resolvers), which is how
Docker's embedded DNS behaves. Without a network (``network_mode: host``
or ``none``) the host's file is the base and ``dns:`` replaces its
nameservers. ``dns_search`` and ``dns_opt`` replace the host's ``search``
and ``options`` lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence


def _host_lines(path: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0].startswith(("#", ";")):
                continue
            if parts[0] == "nameserver":
                servers.append(parts[1])
            elif parts[0] in ("search", "domain"):
                search = parts[1:]
            elif parts[0] == "options":
                options += parts[1:]
    return servers, search, options


def resolv_conf(
    nameserver: str | None,
    *,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_opt: Sequence[str] = (),
    host_resolv: str = "/etc/resolv.conf",
) -> str:
    """The text of the container's resolv.conf.

    ``nameserver`` is the DNS responder's address (the gateway of the
    container's first network), or None for a container without one.
    """
    host_servers, host_search, host_options = _host_lines(host_resolv)
    if nameserver:
        servers = [nameserver]
    else:
        # loopback resolvers of the host are unreachable from another namespace
        servers = list(dns) or [s for s in host_servers if not s.startswith("127.")]
    search = list(dns_search) or host_search
    options = list(dns_opt) or host_options
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(
    own: Sequence[tuple[str, Sequence[str]]],
    *,
    extra_hosts: Sequence[tuple[str, str]] = (),
    host_gateway: str | None = None,
) -> str:
    """The text of the container's /etc/hosts.

    ``own`` lists ``(address, names)`` for the container itself (its
    hostname, and its container name on each network address);
    ``extra_hosts`` are ``(name, address)`` pairs where the address
    ``host-gateway`` means ``host_gateway`` (the gateway, which is a host
    address).
    """
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    for name, addr in extra_hosts:
        if addr == "host-gateway":
            if not host_gateway:
                continue
            addr = host_gateway
        lines.append(f"{addr}\t{name}")
    for addr, names in own:
        if names:
            lines.append(f"{addr}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"
