"""A misbehaving network between the pull client and a test registry.

``Front`` is a proxy on 127.0.0.1 before a registry that, for chosen blob
digests, redirects to ``BlobHost`` (a file server on another loopback
address, standing for a registry's storage service, that records the
headers it received), corrupts one byte, breaks the connection half-way
through the body, redirects to itself, or holds requests until several are
in flight at once. It records every request's path and headers.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.backends.native.images.registry_server import blob_path, free_port

# --- the front --------------------------------------------------------------------------


@dataclass
class FrontRules:
    """What ``Front`` does to which blob digests (everything else is passed through)."""

    redirect: set[str] = field(default_factory=set)  # to the Redirect target host
    corrupt: set[str] = field(default_factory=set)  # one byte flipped, same length
    cut: dict[str, int] = field(default_factory=dict)  # digest -> how many responses to cut
    same_origin_redirect: set[str] = field(default_factory=set)
    gather: int = 0  # hold GETs of these blobs until this many were in flight at once
    gathered: set[str] = field(default_factory=set)  # (or 10 s passed)


class BlobHost:
    """A plain file server on another loopback address, serving blobs from registry storage.

    It stands for the storage service a registry redirects downloads to, and
    records the headers of every request so a test can see what reached it.
    """

    def __init__(self, storage: Path, address: str = "127.0.0.2") -> None:
        self.storage = storage
        self.requests: list[dict[str, str]] = []
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append({k.lower(): v for k, v in self.headers.items()})
                digest = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
                path = blob_path(host.storage, digest)
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port(address)
        self.origin = f"http://{address}:{self.port}"
        self._httpd = http.server.ThreadingHTTPServer((address, self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Front:
    """A proxy on 127.0.0.1 before ``upstream`` that applies ``FrontRules`` to blob GETs."""

    def __init__(self, upstream: str, rules: FrontRules, blob_host: BlobHost | None = None) -> None:
        self.upstream = upstream
        self.rules = rules
        self.blob_host = blob_host
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._gate = threading.Condition()
        self._opened = False
        self._client = httpx.Client(timeout=30)
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                front.handle(self)

            def do_HEAD(self) -> None:
                front.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._client.close()

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        digest = urllib.parse.urlsplit(req.path).path.rsplit("/", 1)[-1]
        if req.command != "GET" or digest not in self.rules.gathered:
            self._handle(req)
            return
        with self._gate:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight >= self.rules.gather:
                self._opened = True  # once enough were in flight together, let all through
            self._gate.notify_all()
            self._gate.wait_for(lambda: self._opened, timeout=10)
        try:
            self._handle(req)
        finally:
            with self._gate:
                self.in_flight -= 1

    def _handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        self.requests.append((req.path, headers))
        path = urllib.parse.urlsplit(req.path).path
        digest = path.rsplit("/", 1)[-1] if "/blobs/" in path else ""
        if req.command == "GET" and digest in self.rules.redirect and self.blob_host:
            self._redirect(req, f"{self.blob_host.origin}/storage/{digest}")
            return
        moved = "moved=1" in req.path
        if req.command == "GET" and digest in self.rules.same_origin_redirect and not moved:
            self._redirect(req, f"{path}?moved=1")
            return
        forward = {
            k: v
            for k, v in headers.items()
            if k in ("authorization", "accept", "range", "user-agent")
        }
        forward["accept-encoding"] = "identity"
        upstream = self._client.build_request(
            req.command, f"{self.upstream}{path}", headers=forward
        )
        response = self._client.send(upstream, stream=True)
        try:
            body = response.read()
        finally:
            response.close()
        if req.command == "GET" and digest in self.rules.corrupt and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        cut = req.command == "GET" and self.rules.cut.get(digest, 0) > 0 and len(body) > 1
        if cut:
            self.rules.cut[digest] -= 1
        req.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in (
                "connection",
                "transfer-encoding",
                "keep-alive",
                "content-length",
            ):
                req.send_header(key, value)
        length = response.headers.get("content-length") if req.command == "HEAD" else len(body)
        req.send_header("Content-Length", str(length or 0))
        req.send_header("Connection", "close")
        req.end_headers()
        if req.command == "HEAD":
            return
        if cut:
            req.wfile.write(body[: len(body) // 2])
            req.wfile.flush()
            with contextlib.suppress(OSError):
                req.connection.shutdown(socket.SHUT_RDWR)
            req.close_connection = True
            return
        req.wfile.write(body)

    @staticmethod
    def _redirect(req: http.server.BaseHTTPRequestHandler, location: str) -> None:
        req.send_response(307)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.send_header("Connection", "close")
        req.end_headers()
