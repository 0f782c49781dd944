"""Small servers and clients run inside test network namespaces (``python nsprog.py MODE …``).

Kept as a script so that each "container" is a real process in its own
namespace, talking through the real devices.

* ``tcp-server PORT IDENT``: prints ``ready``; each connection gets ``IDENT\\n``
  then an echo of what it sends.
* ``whoami-server PORT -``: each connection gets the address it came from.
* ``udp-server PORT IDENT``: answers each datagram with ``IDENT:<datagram>``.
* ``tcp HOST PORT``: connects, prints the first line it receives (exit 1 on failure).
* ``resolve NAME``: the IPv4 addresses of NAME through the system resolver.
* ``dig SERVER NAME TYPE``: the answer records of one query, in order.
"""

from __future__ import annotations

import socket
import sys


def tcp_server(port: int, ident: str) -> None:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.sendall((peer[0] if ident == "-" else ident).encode() + b"\n")
            conn.settimeout(2)
            try:
                data = conn.recv(1024)
                if data:
                    conn.sendall(data)
            except OSError:
                pass


def udp_server(port: int, ident: str) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, addr = srv.recvfrom(2048)
        srv.sendto(ident.encode() + b":" + data, addr)


def tcp_client(host: str, port: int) -> int:
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.settimeout(3)
            print(conn.recv(1024).decode().strip())
            return 0
    except OSError as exc:
        print(f"error: {exc}")
        return 1


def resolve(name: str) -> int:
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        print(f"error: {exc}")
        return 1
    print(" ".join(sorted({str(i[4][0]) for i in infos})))
    return 0


def dig(server: str, name: str, qtype: str) -> int:
    from dnslib import DNSRecord

    raw = DNSRecord.question(name, qtype).send(server, 53, timeout=3, ipv6=":" in server)
    reply = DNSRecord.parse(raw)
    print(" ".join(str(rr.rdata) for rr in reply.rr) or f"rcode={reply.header.rcode}")
    return 0


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode in ("tcp-server", "whoami-server"):
        tcp_server(int(argv[1]), argv[2])
    elif mode == "udp-server":
        udp_server(int(argv[1]), argv[2])
    elif mode == "tcp":
        return tcp_client(argv[1], int(argv[2]))
    elif mode == "resolve":
        return resolve(argv[1])
    elif mode == "dig":
        return dig(argv[1], argv[2], argv[3])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
