"""The native network layer's costs: create, connect, DNS answer, proxy, disconnect, remove.

In a throw-away state root, per round: one network is created (bridge,
subnet, nftables rules), ten network namespaces (``ip netns add``, not
timed) are connected to it and disconnected again, it is removed; a DNS
responder answers name queries over UDP on loopback from endpoint records;
a TCP port proxy carries 64 MiB from a loopback source. Prints the median of
each figure. For comparison it also times the same connect done by running
``ip`` (add veth with its peer in the namespace, master, up, address, lo up,
link up, default route: seven executions), the way a runtime without
in-process netlink would do it. Needs root, ``ip`` and ``nft``.

    .venv/bin/python benchmarks/network_bench.py --rounds 5

Not a test: figures go into the report or docs/benchmarks.md with the command.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from composer.backends.native.network import NetworkManager  # noqa: E402
from composer.backends.native.network.dns import DnsResponder  # noqa: E402
from composer.backends.native.network.ports import PortProxies  # noqa: E402
from composer.backends.native.state import StateRoot, write_json  # noqa: E402
from composer.backends.specs import NetworkAttachment, NetworkSpec, PortSpec  # noqa: E402

N = 10


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def one_round(mgr: NetworkManager, tag: str) -> dict[str, float]:
    spaces = [f"cmpb-{tag}-{i}" for i in range(N)]
    for ns in spaces:
        subprocess.run(["ip", "netns", "add", ns], check=True)
    out: dict[str, float] = {}
    try:
        t = time.perf_counter()
        rec = mgr.create(NetworkSpec(name=f"bench{tag}", key="default"))
        out["create"] = time.perf_counter() - t
        t = time.perf_counter()
        for i, ns in enumerate(spaces):
            mgr.connect(rec.name, f"/run/netns/{ns}", f"{tag}c{i}", NetworkAttachment(rec.name))
        out["connect (each)"] = (time.perf_counter() - t) / N
        t = time.perf_counter()
        for i in range(N):
            mgr.disconnect(rec.name, f"{tag}c{i}")
        out["disconnect (each)"] = (time.perf_counter() - t) / N
        t = time.perf_counter()
        mgr.remove(rec.name)
        out["remove"] = time.perf_counter() - t
        out["connect with `ip` (each)"] = ip_connect(spaces[0], tag)
    finally:
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    return out


def ip_connect(ns: str, tag: str) -> float:
    """The same plumbing as seven ``ip`` executions, on a scratch bridge."""
    br, veth = f"cmpbb{tag}", f"cmpbv{tag}"
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    try:
        t = time.perf_counter()
        for argv in (
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
            ["ip", "link", "set", veth, "master", br, "up"],
            ["ip", "-n", ns, "addr", "add", "10.250.0.2/24", "dev", "eth0"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
            ["ip", "-n", ns, "route", "add", "default", "via", "10.250.0.1"],
            ["ip", "link", "set", br, "up"],
        ):
            subprocess.run(argv, check=True, capture_output=True)
        return time.perf_counter() - t
    finally:
        subprocess.run(["ip", "link", "del", veth], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", br], check=False)


def dns_round(tmp: Path) -> float:
    from dnslib import DNSRecord

    d = tmp / "endpoints"
    d.mkdir(exist_ok=True)
    for i in range(20):
        write_json(d / f"c{i}.json", {"ip": f"10.88.0.{i + 2}", "names": [f"svc{i % 5}"]})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with DnsResponder(d, ["127.0.0.1"], port=port, upstreams=[]):
        q = DNSRecord.question("svc3", "A")
        q.send("127.0.0.1", port, timeout=5)  # warm
        t = time.perf_counter()
        for _ in range(200):
            q.send("127.0.0.1", port, timeout=5)
        return (time.perf_counter() - t) / 200


def proxy_round() -> float:
    """Seconds to carry 64 MiB through a TCP proxy (source and sink on loopback)."""
    size = 64 << 20
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)

    def drain() -> None:
        conn, _ = sink.accept()
        with conn:
            while conn.recv(1 << 20):
                pass

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    with PortProxies() as p:
        (b,) = p.publish("bench", "127.0.0.1", [PortSpec(target=sink.getsockname()[1])])
        chunk = b"x" * (1 << 20)
        t = time.perf_counter()
        with socket.create_connection(("127.0.0.1", b.host_port or 0)) as c:
            for _ in range(size // len(chunk)):
                c.sendall(chunk)
            c.shutdown(socket.SHUT_WR)
            th.join(60)
        took = time.perf_counter() - t
    sink.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        mgr = NetworkManager(StateRoot(Path(tmp) / "state"))
        for r in range(args.rounds):
            tag = uuid.uuid4().hex[:5]
            for k, v in one_round(mgr, tag).items():
                figures.setdefault(k, []).append(v)
            figures.setdefault("DNS answer (UDP, each)", []).append(dns_round(Path(tmp)))
            figures.setdefault("proxy 64 MiB", []).append(proxy_round())
            del r
    for k, vals in figures.items():
        med = statistics.median(vals)
        extra = f"  ({64 / med:.0f} MiB/s)" if k == "proxy 64 MiB" else ""
        print(f"{k:28} median {ms(med)} over {len(vals)} rounds{extra}")


if __name__ == "__main__":
    main()
