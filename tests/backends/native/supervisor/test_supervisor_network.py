"""The supervisor's networking: joining at start, DNS responders, port proxies, leaving.

A real bridge network (``NetworkManager``) and busybox containers on the
real runtime; the network and the containers are removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from composer.backends.base import NetworkSpec
from composer.backends.native.supervisor import records as R
from composer.backends.native.supervisor.logs import read_logs

Project = Any  # the conftest's Project


@pytest.fixture
def network(runtime_project: Project) -> Iterator[Any]:
    if shutil.which("nft") is None and shutil.which("iptables") is None:
        from tests.backends.conftest import engine_missing

        engine_missing("network tests need nft or iptables")
    from composer.backends.native.network import NetworkManager

    mgr = NetworkManager(runtime_project.root)
    name = f"sv{uuid.uuid4().hex[:8]}_default"
    rec = mgr.create(NetworkSpec(name=name, key="default"))
    try:
        yield rec
    finally:
        runtime_project.cleanup()
        for ep in mgr.endpoints(name):
            with contextlib.suppress(Exception):
                mgr.disconnect(name, ep.container_id)
        with contextlib.suppress(Exception):
            mgr.remove(name)


def text(p: Project, cid: str) -> list[str]:
    return [x.text for x in read_logs(R.log_path(p.root, cid))]


def test_published_port_dns_and_leaving(runtime_project: Project, network: Any) -> None:
    p = runtime_project
    join = R.NetworkJoin(network=network.name, attachment={"aliases": ["www"]}, names=("web",))
    web = p.add_box(
        "sh",
        "-c",
        "while true; do echo hello | nc -l -p 80; done",
        networks=(join,),
        ports=(R.PortPublish(container_port=80, host_ip="127.0.0.1"),),
    )
    p.client.start(web)
    bound = p.state(web).ports
    assert len(bound) == 1 and bound[0].container_port == 80 and bound[0].host_port > 0

    def fetch() -> bytes:
        with socket.create_connection(("127.0.0.1", bound[0].host_port), timeout=5) as s:
            return s.recv(100)

    assert p.poll(lambda: fetch() == b"hello\n", what="the proxy to answer")

    client_join = R.NetworkJoin(network=network.name, names=("client",))
    asker = p.add_box(
        "sh",
        "-c",
        f"nslookup www {network.gateway}; nslookup web {network.gateway}",
        networks=(client_join,),
    )
    p.client.start(asker)
    assert p.client.wait(asker, 30) == 0
    answers = " ".join(text(p, asker))
    from composer.backends.native.network import NetworkManager

    endpoint = NetworkManager(p.root).endpoint(network.name, web)
    assert endpoint is not None and endpoint.ip
    assert answers.count(endpoint.ip) == 2, answers  # the alias and the name

    p.client.stop(web, 1)
    assert p.state(web).ports == ()
    assert NetworkManager(p.root).endpoint(network.name, web) is None
    with pytest.raises(OSError):
        fetch()
