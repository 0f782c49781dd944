"""Published ports as user-space proxies (TCP and UDP), run by the supervisor.

A proxy listens in the host's network namespace and copies bytes to the
container's address on the bridge, as docker-proxy does. Because it is an
ordinary listening socket, 127.0.0.1 and every other host address work
with no hairpin or ``route_localnet`` rules.

Sockets are bound in the caller's thread, so a port that is taken fails at
once with a ``Conflict`` naming the port and — found through
``/proc/net/{tcp,udp}[6]`` and ``/proc/*/fd`` — the process holding it. The
copying runs on one asyncio loop in a background thread
(``PortProxies.start()`` … ``stop()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from composer.backends.observed import PortBinding
from composer.backends.specs import PortSpec
from composer.errors import ConfigError, Conflict

UDP_IDLE = 60.0
"""Seconds after which an idle UDP flow's upstream socket is closed."""


def parse_range(published: str | None) -> tuple[int, int]:
    """``"8080"`` → (8080, 8080), ``"8000-8010"`` → (8000, 8010), unset/``"0"`` → (0, 0)."""
    if published is None or published in ("", "0"):
        return 0, 0
    lo, _, hi = str(published).partition("-")
    try:
        start, end = int(lo), int(hi or lo)
    except ValueError:
        raise ConfigError(f"invalid published port {published!r}") from None
    if not (0 <= start <= end <= 65535):
        raise ConfigError(f"invalid published port range {published!r}")
    return start, end


# --- who holds a port --------------------------------------------------------


def port_user(port: int, protocol: str = "tcp") -> str | None:
    """``"pid 123 (nginx)"`` for the process bound to ``port``, when /proc tells."""
    inodes: set[str] = set()
    for name in (protocol, f"{protocol}6"):
        with contextlib.suppress(OSError), open(f"/proc/net/{name}") as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) < 10:
                    continue
                local, state, inode = cols[1], cols[3], cols[9]
                if int(local.rsplit(":", 1)[1], 16) != port:
                    continue
                if protocol == "tcp" and state != "0A":  # LISTEN
                    continue
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in inodes:
                    return f"pid {pid} ({_comm(pid)})"
            except OSError:
                continue
    return None


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


# --- binding -------------------------------------------------------------------


def _family(host_ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host_ip else socket.AF_INET


def bind_port(host_ip: str, published: str | None, protocol: str) -> socket.socket:
    """A socket bound to ``host_ip`` on the published port (first free of a range, 0 = any)."""
    start, end = parse_range(published)
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    last: OSError | None = None
    for port in range(start, end + 1):
        sock = socket.socket(_family(host_ip), kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if ":" in host_ip:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host_ip, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise Conflict(f"cannot publish {host_ip}:{port}/{protocol}: {exc.strerror}",
                               "check the host_ip of the port") from exc  # fmt: skip
            last = exc
    where = f"{start}" if start == end else f"{start}-{end}"
    user = port_user(start, protocol) if start == end else None
    by = f" by {user}" if user else ""
    raise Conflict(
        f"host port {host_ip}:{where}/{protocol} is already in use{by}",
        "stop what uses the port, publish another host port, or leave `published` "
        "out to get a free one",
    ) from last


def _bind_v6_too(port: int, protocol: str) -> socket.socket | None:
    """``[::]:port`` next to ``0.0.0.0:port``; None where the host has no IPv6."""
    if not socket.has_ipv6:
        return None
    try:
        return bind_port("::", str(port), protocol)
    except Conflict as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            raise
        return None


# --- proxies ---------------------------------------------------------------------


@dataclass
class _Proxy:
    owner: str
    binding: PortBinding
    sock: socket.socket
    target: tuple[str, int]
    hidden: bool = False
    """The ``[::]`` twin of an all-addresses binding: served, not reported."""
    closer: Any = None


class PortProxies:
    """The port proxies of one process; ``publish`` returns the bindings actually made."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proxies: list[_Proxy] = []
        self._lock = threading.Lock()

    def start(self) -> PortProxies:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="composer-ports", daemon=True)  # fmt: skip
            self._thread.start()
        return self

    def stop(self) -> None:
        for owner in {p.owner for p in self._proxies}:
            self.unpublish(owner)
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            loop.close()

    def __enter__(self) -> PortProxies:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, owner: str, target_ip: str, ports: Sequence[PortSpec]) -> list[PortBinding]:
        """Listen for every port of ``ports`` and forward to ``target_ip``; all or nothing."""
        self.start()
        made: list[_Proxy] = []
        try:
            for spec in ports:
                proto = (spec.protocol or "tcp").lower()
                if proto not in ("tcp", "udp"):
                    raise ConfigError(f"protocol {proto} cannot be published", "use tcp or udp")
                host_ip = spec.host_ip or "0.0.0.0"
                sock = bind_port(host_ip, spec.published, proto)
                port = sock.getsockname()[1]
                binding = PortBinding(spec.target, proto, host_ip, port)
                made.append(_Proxy(owner, binding, sock, (target_ip, spec.target)))
                if not spec.host_ip:  # all addresses: IPv6 ones too, on the same port
                    v6 = _bind_v6_too(port, proto)
                    if v6 is not None:
                        made.append(_Proxy(owner, binding, v6, (target_ip, spec.target), True))
            for proxy in made:
                proxy.closer = self._run(self._serve(proxy)).result(10)
        except BaseException:
            for proxy in made:
                self._close(proxy)
            raise
        with self._lock:
            self._proxies.extend(made)
        return [p.binding for p in made if not p.hidden]

    def unpublish(self, owner: str) -> None:
        with self._lock:
            mine = [p for p in self._proxies if p.owner == owner]
            self._proxies = [p for p in self._proxies if p.owner != owner]
        for proxy in mine:
            self._close(proxy)

    def bindings(self, owner: str) -> list[PortBinding]:
        with self._lock:
            return [p.binding for p in self._proxies if p.owner == owner and not p.hidden]

    # --- loop side ---------------------------------------------------------------

    def _run(self, coro: Any) -> Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _close(self, proxy: _Proxy) -> None:
        if proxy.closer is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._run(proxy.closer()).result(5)
        proxy.sock.close()

    async def _serve(self, proxy: _Proxy) -> Any:
        if proxy.binding.protocol == "udp":
            return await _serve_udp(proxy)
        return await _serve_tcp(proxy)


async def _serve_tcp(proxy: _Proxy) -> Any:
    # Open connections are ended by closing their transports, never by cancelling the
    # handler tasks (asyncio's stream server would log a cancelled handler as an error).
    writers: set[asyncio.StreamWriter] = set()
    done: set[asyncio.Future[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add(finished)
        writers.add(writer)
        try:
            try:
                up_r, up_w = await asyncio.open_connection(*proxy.target)
            except OSError:
                return
            writers.add(up_w)
            try:
                await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
            finally:
                up_w.close()
                writers.discard(up_w)
        finally:
            writer.close()
            writers.discard(writer)
            done.discard(finished)
            finished.set_result(None)

    server = await asyncio.start_server(handle, sock=proxy.sock)

    async def close() -> None:
        server.close()
        for w in list(writers):
            w.transport.abort()
        if done:
            await asyncio.wait(list(done), timeout=5)

    return close


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class _UdpFlow(asyncio.DatagramProtocol):
    """The upstream side of one client's UDP flow: replies go back through the listener."""

    def __init__(self, listener: asyncio.DatagramTransport, client: Any) -> None:
        self.listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last = asyncio.get_running_loop().time()
        self.listener.sendto(data, self.client)


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flows: dict[Any, _UdpFlow] = {}
        self.pending: dict[Any, list[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        flow = self.flows.get(addr)
        loop = asyncio.get_running_loop()
        if flow is not None and flow.transport is not None:
            flow.last = loop.time()
            flow.transport.sendto(data)
            return
        queue = self.pending.setdefault(addr, [])
        queue.append(data)
        if len(queue) == 1:
            task = loop.create_task(self._open(addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open(self, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        listener = self.transport
        try:
            _, flow = await loop.create_datagram_endpoint(
                lambda: _UdpFlow(listener, addr), remote_addr=self.target
            )
        except OSError:
            self.pending.pop(addr, None)
            return
        flow.last = loop.time()
        self.flows[addr] = flow
        assert flow.transport is not None
        for data in self.pending.pop(addr, []):
            flow.transport.sendto(data)

    def reap(self, now: float) -> None:
        for addr, flow in list(self.flows.items()):
            if now - flow.last > UDP_IDLE and flow.transport is not None:
                flow.transport.close()
                del self.flows[addr]

    def close(self) -> None:
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()


async def _serve_udp(proxy: _Proxy) -> Any:
    loop = asyncio.get_running_loop()
    _, listener = await loop.create_datagram_endpoint(
        lambda: _UdpListener(proxy.target), sock=proxy.sock
    )

    async def reaper() -> None:
        while True:
            await asyncio.sleep(UDP_IDLE / 2)
            listener.reap(loop.time())

    task = loop.create_task(reaper())

    async def close() -> None:
        task.cancel()
        listener.close()

    return close
