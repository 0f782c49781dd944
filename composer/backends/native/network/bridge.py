"""Links over netlink (in-process, ``rtnl.py``): the bridge of a network and container veths.

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

from composer.backends.native.network.rtnl import Rtnl, link_index
from composer.errors import BackendError, ComposerError, Conflict, NotFound, Unavailable

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
T = TypeVar("T")


@contextlib.contextmanager
def _ipr() -> Iterator[Rtnl]:
    """An rtnetlink socket of the calling thread's namespace, closed after the block.

    The one place where netlink failures become composer errors: anything
    but a ``ComposerError`` leaving the block is re-raised as ``BackendError``
    (after the block's own code had its chance to look at the errno).
    """
    try:
        ipr = Rtnl()
    except OSError as exc:
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
    code = getattr(exc, "errno", None)
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
        if link_index(name) is None:
            try:
                ipr.add_bridge(name, mtu)
            except OSError as exc:
                raise BackendError(f"cannot create bridge {name}: {exc}") from exc
        idx = link_index(name)
        if idx is None:
            raise BackendError(f"bridge {name} vanished while it was being set up")
        for addr, prefix in addresses:
            flags = IFA_F_NODAD if ":" in addr else 0
            try:
                ipr.add_addr(idx, addr, prefix, flags=flags)
            except OSError as exc:
                if _code(exc) != errno.EEXIST:
                    raise BackendError(f"cannot add {addr}/{prefix} to {name}: {exc}") from exc
        ipr.set_link(idx, up=True)


def delete_link(name: str) -> bool:
    """Delete interface ``name``; False when it was already gone.

    Looked up first with ``if_nametoindex`` (an ioctl in the calling thread's
    namespace): the host end of a veth goes with the container's namespace when
    its last process exits, so removing a stopped container usually finds nothing
    to delete.
    """
    idx = link_index(name)
    if idx is None:
        return False
    with _ipr() as ipr:
        try:
            ipr.del_link(idx)
        except OSError as exc:
            if _code(exc) in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def host_routes(ipv6: bool = True) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Destinations of the host's routes (to keep new subnets clear of them)."""
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with _ipr() as ipr:
        for family in (socket.AF_INET, socket.AF_INET6) if ipv6 else (socket.AF_INET,):
            for r in ipr.routes(family):
                if r.dst and r.dst_len:
                    with contextlib.suppress(ValueError):
                        out.append(ipaddress.ip_network(f"{r.dst}/{r.dst_len}", strict=False))
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
        bridge = link_index(p.bridge)
        if bridge is None:
            raise NotFound(f"bridge {p.bridge} is missing", "recreate the network")
        try:
            ipr.add_veth(p.host_ifname, temp, fd, master=bridge, mtu=p.mtu)
        except OSError as exc:
            if _code(exc) == errno.EEXIST:
                hint = "the container is already connected to this network"
                raise Conflict(f"interface {p.host_ifname} exists already", hint) from exc
            raise BackendError(f"cannot create veth {p.host_ifname}: {exc}") from exc
        try:
            return in_netns(fd, lambda: _with_ipr(lambda c: _configure_inside(c, temp, p)))
        except BaseException:
            with contextlib.suppress(Exception):
                delete_link(p.host_ifname)
            raise


def _with_ipr(fn: Callable[[Rtnl], T]) -> T:
    with _ipr() as ipr:
        return fn(ipr)


def _configure_inside(ipr: Rtnl, temp: str, p: Plumbing) -> tuple[str, str]:
    """Rename, address and raise the peer, and route through the gateway: five messages."""
    links = {link.ifname: link for link in ipr.links()}
    if "lo" in links:
        ipr.set_link(links["lo"].index, up=True)
    peer = links[temp]
    idx = peer.index
    n = 0
    while f"eth{n}" in links:
        n += 1
    ifname = p.ifname or f"eth{n}"
    for addr in (p.ipv4, p.ipv6):
        if addr:
            flags = IFA_F_NODAD if ":" in addr[0] else 0
            ipr.add_addr(idx, addr[0], addr[1], flags=flags)
    # one message: the kernel applies the name and the address before the flags
    try:
        ipr.set_link(idx, ifname=ifname, mac=p.mac, up=True)
    except OSError as exc:
        if _code(exc) == errno.EEXIST:
            raise Conflict(f"interface {ifname} exists already in the container",
                           "pick another interface_name") from exc  # fmt: skip
        raise
    if p.default_route:
        for gw in (p.gateway, p.gateway6):
            if not gw:
                continue
            try:
                ipr.add_default_route(gw, idx)
            except OSError as exc:  # another network's default route came first
                if _code(exc) != errno.EEXIST:
                    raise
    return ifname, p.mac or peer.mac


def unplumb(host_ifname: str) -> None:
    """Delete the host end of an endpoint's veth (the peer goes with it)."""
    delete_link(host_ifname)


def netns_routes(target: int | str) -> list[dict[str, Any]]:
    """The main-table routes inside a namespace, as ``{dst, gateway, family}`` dicts."""

    def read(ipr: Rtnl) -> list[dict[str, Any]]:
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in ipr.routes(family):
                out.append({
                    "dst": f"{r.dst or 'default'}/{r.dst_len}",
                    "gateway": r.gateway,
                    "family": family,
                })  # fmt: skip
        return out

    with netns_fd(target) as fd:
        return in_netns(fd, lambda: _with_ipr(read))
