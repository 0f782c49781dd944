"""Links over netlink (pyroute2, in-process): the bridge of a network and container veths.

Everything is done with netlink messages from this process, never by running
``ip``: a connect costs a few milliseconds instead of a handful of process
starts. Work inside a container's network namespace runs on a short-lived
thread that has ``setns``'d into it (a network namespace is per thread), so
the calling process — possibly a multi-threaded supervisor — never forks and
never leaves its own namespace.

The veth pair is created with its peer directly inside the target namespace
under its final name (``eth0``, ``eth1`` … or ``interface_name``), so no
interface with a temporary name is ever left behind in the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from composer.errors import BackendError, ComposerError, Conflict, NotFound, Unavailable

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
T = TypeVar("T")


@contextlib.contextmanager
def _ipr() -> Iterator[Any]:
    """An rtnetlink socket of the calling thread's namespace, closed after the block.

    The one place where netlink failures become composer errors: anything
    but a ``ComposerError`` leaving the block is re-raised as ``BackendError``
    (after the block's own code had its chance to look at the errno).
    """
    from pyroute2 import IPRoute

    try:
        ipr = IPRoute()
    except Exception as exc:
        raise Unavailable(f"cannot open a netlink socket: {exc}",
                          "composer's native networking needs root on Linux") from exc  # fmt: skip
    try:
        yield ipr
    except ComposerError:
        raise
    except Exception as exc:
        raise BackendError(f"network setup failed: {exc}") from exc
    finally:
        ipr.close()


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


@contextlib.contextmanager
def netns_fd(target: int | str) -> Iterator[int]:
    """An fd of the network namespace of a pid, or of a namespace file path."""
    path = f"/proc/{target}/ns/net" if isinstance(target, int) else target
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} does not exist",
                       "the container process has exited") from None  # fmt: skip
    try:
        yield fd
    finally:
        os.close(fd)


def in_netns(fd: int, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread that has joined the network namespace ``fd``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise BackendError(f"cannot enter the network namespace: {os.strerror(err)}")
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="composer-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# --- bridges ---------------------------------------------------------------


def link_exists(name: str) -> bool:
    """Whether interface ``name`` exists in the calling thread's namespace.

    ``if_nametoindex`` is one ioctl; a netlink socket and dump cost more, and
    ``connect`` asks this under the network's lock for every container.
    """
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def ensure_bridge(name: str, mtu: int | None, addresses: list[tuple[str, int]]) -> None:
    """Create bridge ``name`` (if missing), give it ``addresses`` and bring it up."""
    with _ipr() as ipr:
        if not ipr.link_lookup(ifname=name):
            kw: dict[str, Any] = {"ifname": name, "kind": "bridge"}
            if mtu:
                kw["mtu"] = mtu
            try:
                ipr.link("add", **kw)
            except Exception as exc:
                raise BackendError(f"cannot create bridge {name}: {exc}") from exc
        idx = ipr.link_lookup(ifname=name)[0]
        for addr, prefix in addresses:
            flags = IFA_F_NODAD if ":" in addr else 0
            try:
                ipr.addr("add", index=idx, address=addr, prefixlen=prefix, flags=flags)
            except Exception as exc:
                if _code(exc) != errno.EEXIST:
                    raise BackendError(f"cannot add {addr}/{prefix} to {name}: {exc}") from exc
        ipr.link("set", index=idx, state="up")


def delete_link(name: str) -> bool:
    """Delete interface ``name``; False when it was already gone.

    Looked up first with ``if_nametoindex`` (an ioctl in the calling thread's
    namespace): the host end of a veth goes with the container's namespace when
    its last process exits, so removing a stopped container usually finds nothing
    to delete and need not import pyroute2 (0.17 s of CPU) in the CLI.
    """
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        try:
            ipr.link("del", index=found[0])
        except Exception as exc:
            if _code(exc) in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def host_routes(ipv6: bool = True) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Destinations of the host's routes (to keep new subnets clear of them)."""
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with _ipr() as ipr:
        for family in (2, 10) if ipv6 else (2,):
            for r in ipr.get_routes(family=family, table=254):
                dst = r.get_attr("RTA_DST")
                if dst and r["dst_len"]:
                    with contextlib.suppress(ValueError):
                        out.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
    return out


# --- container endpoints ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plumbing:
    """What to set up for one endpoint."""

    host_ifname: str
    bridge: str
    mtu: int | None
    ifname: str | None
    mac: str | None
    ipv4: tuple[str, int] | None
    ipv6: tuple[str, int] | None
    gateway: str | None
    gateway6: str | None
    default_route: bool


def plumb(target: int | str, p: Plumbing) -> tuple[str, str]:
    """Create the veth, attach the host end to the bridge, configure the container end.

    The peer is created in the namespace under a temporary name and renamed
    there to ``interface_name`` or the first free ``ethN``, so the
    namespace is visited once. Returns ``(ifname inside the container, its
    MAC address)``. On any failure the host end is deleted again (which
    removes the peer with it).
    """
    temp = "cmt" + p.host_ifname[3:]
    with netns_fd(target) as fd, _ipr() as ipr:
        bridges = ipr.link_lookup(ifname=p.bridge)
        if not bridges:
            raise NotFound(f"bridge {p.bridge} is missing", "recreate the network")
        peer: dict[str, Any] = {"ifname": temp, "net_ns_fd": fd}
        kw: dict[str, Any] = {"ifname": p.host_ifname, "kind": "veth", "peer": peer,
                              "master": bridges[0], "state": "up"}  # fmt: skip
        if p.mtu:
            kw["mtu"] = p.mtu
            peer["mtu"] = p.mtu
        try:
            ipr.link("add", **kw)
        except Exception as exc:
            if _code(exc) == errno.EEXIST:
                hint = "the container is already connected to this network"
                raise Conflict(f"interface {p.host_ifname} exists already", hint) from exc
            raise BackendError(f"cannot create veth {p.host_ifname}: {exc}") from exc
        try:
            return in_netns(fd, lambda: _with_ipr(lambda c: _configure_inside(c, temp, p)))
        except BaseException:
            with contextlib.suppress(Exception):
                ipr.link("del", ifname=p.host_ifname)
            raise


def _with_ipr(fn: Callable[[Any], T]) -> T:
    with _ipr() as ipr:
        return fn(ipr)


def _configure_inside(ipr: Any, temp: str, p: Plumbing) -> tuple[str, str]:
    """Rename, address and raise the peer, and route through the gateway: five messages."""
    links = {link.get("ifname"): link for link in ipr.get_links()}
    if "lo" in links:
        ipr.link("set", index=links["lo"]["index"], state="up")
    peer = links[temp]
    idx = peer["index"]
    n = 0
    while f"eth{n}" in links:
        n += 1
    ifname = p.ifname or f"eth{n}"
    for addr in (p.ipv4, p.ipv6):
        if addr:
            flags = IFA_F_NODAD if ":" in addr[0] else 0
            ipr.addr("add", index=idx, address=addr[0], prefixlen=addr[1], flags=flags)
    # one message: the kernel applies the name and the address before the flags
    change: dict[str, Any] = {"index": idx, "ifname": ifname, "state": "up"}
    if p.mac:
        change["address"] = p.mac
    try:
        ipr.link("set", **change)
    except Exception as exc:
        if _code(exc) == errno.EEXIST:
            raise Conflict(f"interface {ifname} exists already in the container",
                           "pick another interface_name") from exc  # fmt: skip
        raise
    if p.default_route:
        for gw, family in ((p.gateway, 2), (p.gateway6, 10)):
            if not gw:
                continue
            try:
                ipr.route("add", dst="default", gateway=gw, oif=idx, family=family)
            except Exception as exc:  # another network's default route came first
                if _code(exc) != errno.EEXIST:
                    raise
    return ifname, p.mac or str(peer.get_attr("IFLA_ADDRESS"))


def unplumb(host_ifname: str) -> None:
    """Delete the host end of an endpoint's veth (the peer goes with it)."""
    delete_link(host_ifname)


def netns_routes(target: int | str) -> list[dict[str, Any]]:
    """The main-table routes inside a namespace, as ``{dst, gateway, oif}`` dicts."""

    def read(ipr: Any) -> list[dict[str, Any]]:
        out = []
        for family in (2, 10):
            for r in ipr.get_routes(family=family, table=254):
                out.append({
                    "dst": f"{r.get_attr('RTA_DST') or 'default'}/{r['dst_len']}",
                    "gateway": r.get_attr("RTA_GATEWAY"),
                    "family": family,
                })  # fmt: skip
        return out

    with netns_fd(target) as fd:
        return in_netns(fd, lambda: _with_ipr(read))
