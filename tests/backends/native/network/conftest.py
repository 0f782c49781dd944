"""Fixtures for the network tests: a manager on a private state root, and "containers".

A container here is a plain network namespace (``ip netns add`` with a
unique name) with processes started in it by ``ip netns exec``; that is all
the network code needs, and it keeps these tests independent of the
runtime. Everything made is removed in the fixtures' finalizers, whether the
test passed or not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.network import NetworkManager
from composer.backends.native.state import StateRoot
from tests.backends.conftest import engine_missing

PROG = str(Path(__file__).with_name("nsprog.py"))


def need_root() -> None:
    if os.geteuid() != 0:
        engine_missing("network tests need root")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            engine_missing(f"network tests need `{tool}`")


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def state(tmp_path: Path) -> StateRoot:
    return StateRoot(tmp_path / "state")


@pytest.fixture
def manager(state: StateRoot) -> Iterator[NetworkManager]:
    need_root()
    mgr = NetworkManager(state)
    try:
        yield mgr
    finally:
        for rec in mgr.list():
            for ep in mgr.endpoints(rec.name):
                with contextlib.suppress(Exception):
                    mgr.disconnect(rec.name, ep.container_id)
            with contextlib.suppress(Exception):
                mgr.remove(rec.name)


@dataclass
class Netns:
    """One test "container": a named network namespace and the processes started in it."""

    name: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def run(self, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def prog(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, PROG, *args)

    def serve(self, mode: str, port: int, ident: str) -> None:
        """Start ``nsprog`` server ``mode`` and wait until it listens."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, PROG, mode, str(port), ident],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

    def write_resolv_conf(self, text: str) -> None:
        """``ip netns exec`` bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf."""
        d = Path("/etc/netns") / self.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text(text)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        shutil.rmtree(Path("/etc/netns") / self.name, ignore_errors=True)


@pytest.fixture
def netns(uid: str) -> Iterator[Any]:
    """A factory: ``netns()`` makes a new namespace, removed at the end of the test."""
    need_root()
    made: list[Netns] = []

    def make() -> Netns:
        ns = Netns(f"cmpt-{uid}-{len(made)}")
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
        made.append(ns)
        return ns

    try:
        yield make
    finally:
        for ns in made:
            ns.close()


class FakeUpstream:
    """dnslib resolver: ``outside.test`` is 192.0.2.55, everything else NXDOMAIN."""

    def resolve(self, request: Any, handler: Any) -> Any:
        from dnslib import QTYPE, RCODE, RR, A

        reply = request.reply()
        if str(request.q.qname).rstrip(".") == "outside.test" and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.55"), ttl=5))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture
def fake_upstream() -> Iterator[tuple[str, int]]:
    """A DNS server on 127.0.0.1 standing in for the host's resolvers (nothing leaves the host)."""
    from dnslib.server import DNSLogger, DNSServer

    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    server = DNSServer(FakeUpstream(), address="127.0.0.1", port=0, logger=quiet)
    server.start_thread()
    try:
        yield ("127.0.0.1", int(server.server.server_address[1]))
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def proxies() -> Iterator[Any]:
    from composer.backends.native.network.ports import PortProxies

    p = PortProxies().start()
    try:
        yield p
    finally:
        p.stop()
