"""The one-off's lazy DNS responder: bound at once, dnslib loaded by the first query.

Each case runs in a fresh interpreter (whether dnslib is loaded is a fact
about the whole process) on a free loopback port, with an endpoint record
written the way the network manager writes them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import socket, struct, sys
from pathlib import Path
from composer.backends.native.network.dns import DnsResponder
from composer.backends.native.oneoff_dns import LazyResponder

endpoints, port = Path(sys.argv[1]), int(sys.argv[2])
lazy = LazyResponder(DnsResponder(endpoints, ["127.0.0.1"], port=port, forward=False), port)
print("dnslib before a query:", "dnslib" in sys.modules, flush=True)

def query(name, tcp=False):
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(struct.pack(">H", len(packet)) + packet)
            size = struct.unpack(">H", s.recv(2))[0]
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
            return data
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(packet, ("127.0.0.1", port))
        return s.recv(4096)

for name, tcp in (("web", False), ("web", True), ("nosuch", False)):
    reply = query(name, tcp)
    rcode = reply[3] & 0x0F
    answers = struct.unpack(">H", reply[6:8])[0]
    address = socket.inet_ntoa(reply[-4:]) if answers else "-"
    print(f"{name} tcp={tcp}: rcode {rcode} answers {answers} {address}", flush=True)
lazy.stop()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind(("127.0.0.1", port))  # the port is free again once stopped
print("stopped")
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(tmp_path: Path, *, idle: bool = False) -> list[str]:
    endpoints = tmp_path / "endpoints"
    endpoints.mkdir()
    (endpoints / f"{'a' * 64}.json").write_text(
        json.dumps({"ip": "10.77.0.5", "names": ["web", "proj-web-1"]})
    )
    script = SCRIPT
    if idle:  # no query at all: stopping must not load anything either
        script = SCRIPT.split("def query")[0] + (
            "lazy.stop()\nprint('dnslib after stop:', 'dnslib' in sys.modules)\n"
        )
    done = subprocess.run(
        [sys.executable, "-c", script, str(endpoints), str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_first_query_loads_the_resolver_and_both_protocols_answer(tmp_path: Path) -> None:
    assert _run(tmp_path) == [
        "dnslib before a query: False",
        "web tcp=False: rcode 0 answers 1 10.77.0.5",
        "web tcp=True: rcode 0 answers 1 10.77.0.5",
        "nosuch tcp=False: rcode 5 answers 0 -",  # REFUSED: this network forwards nothing
        "stopped",
    ]


def test_a_one_off_that_never_asks_never_loads_dnslib(tmp_path: Path) -> None:
    assert _run(tmp_path, idle=True) == [
        "dnslib before a query: False",
        "dnslib after stop: False",
    ]
