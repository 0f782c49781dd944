"""A real registry for the pull tests: Debian's docker-registry on 127.0.0.1, in three modes.

``start_registry`` writes a ``config.yml`` and runs ``docker-registry serve``
on a free loopback port with one of three authentication modes:

* ``none``: anonymous pull and push;
* ``htpasswd``: HTTP Basic against a bcrypt htpasswd file;
* ``token``: Bearer tokens from ``TokenServer``, a small token service in the
  test process that checks basic credentials and signs JWTs (RS256) with a
  key whose self-signed certificate is the registry's ``rootcertbundle``
  (the certificate rides in the token's ``x5c`` header). Anonymous callers
  get ``pull`` on repositories under ``public/`` only.

Several registries may share one storage directory, so an image pushed once
(by docker, to the anonymous one) is served by all three. The session
fixtures at the end start them (and push bb:latest) once per test session;
``registry_content`` crafts images, ``registry_fault`` misbehaves on purpose.
Everything listens on 127.0.0.0/8 only.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends.native.images.registry_content import docker_available, docker_push

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "composer-test-registry"
ISSUER = "composer-test-issuer"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def blob_path(storage: Path, digest: str) -> Path:
    """Where docker-registry's filesystem driver keeps a blob."""
    algorithm, _, hexpart = digest.partition(":")
    return storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"


# --- the token server ---------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry tokens on ``http://127.0.0.1:PORT/token`` for the users it knows."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = users
        self.requests: list[dict[str, Any]] = []
        self.expire_next = 0  # how many of the next tokens to issue already expired
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "composer test token issuer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert_path = workdir / "token-root.crt"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(req.path).query)
        user = None
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            name, _, password = raw.partition(":")
            if self.users.get(name) != password:
                self.requests.append({"query": query, "user": name, "refused": True})
                self._send(req, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad login"}]})
                return
            user = name
        self.requests.append({"query": query, "user": user, "refused": False})
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = [a for a in wanted if user is not None or repo.startswith("public/")]
            granted = [a for a in granted if a in ("pull", "push") or user is not None]
            access.append({"type": kind, "name": repo, "actions": granted})
        service = (query.get("service") or [SERVICE])[0]
        self._send(req, 200, {"token": self.issue(user or "", service, access), "expires_in": 300})

    def issue(self, subject: str, audience: str, access: list[dict[str, Any]]) -> str:
        """A JWT the registry accepts: RS256, signed by the key of the root certificate."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        if self.expire_next > 0:
            self.expire_next -= 1
            now -= 3600
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    @staticmethod
    def _send(req: http.server.BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


# --- the registry -------------------------------------------------------------------------------


@dataclass
class Registry:
    """A running docker-registry."""

    mode: str
    host: str  # 127.0.0.1:PORT, as in image references
    storage: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    users: dict[str, str] = field(default_factory=dict)
    token_server: TokenServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.token_server is not None:
            self.token_server.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _config(mode: str, port: int, storage: Path, workdir: Path, realm: str, cert: Path) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
        "health:",
        "  storagedriver:",
        "    enabled: false",
    ]
    if mode == "htpasswd":
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: composer-test",
            f"    path: {workdir / 'htpasswd'}",
        ]
    elif mode == "token":
        lines += [
            "auth:",
            "  token:",
            f"    realm: {realm}",
            f"    service: {SERVICE}",
            f"    issuer: {ISSUER}",
            f"    rootcertbundle: {cert}",
        ]
    return "\n".join(lines) + "\n"


def start_registry(
    workdir: Path, storage: Path, mode: str = "none", users: dict[str, str] | None = None
) -> Registry:
    """Start docker-registry on 127.0.0.1 (a free port) and wait until ``/v2/`` answers."""
    if mode not in ("none", "htpasswd", "token"):
        raise ValueError(mode)
    users = dict(users or {})
    workdir.mkdir(parents=True, exist_ok=True)
    storage.mkdir(parents=True, exist_ok=True)
    token_server = None
    realm, cert = "", workdir / "unused.crt"
    if mode == "htpasswd":
        import bcrypt

        entries = [
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}"
            for u, p in users.items()
        ]
        (workdir / "htpasswd").write_text("\n".join(entries) + "\n")
    elif mode == "token":
        token_server = TokenServer(workdir, users)
        realm, cert = token_server.realm, token_server.cert_path
    last_log = ""
    for _ in range(5):  # the free port may be taken before the registry binds it
        port = free_port()
        config = workdir / f"config-{mode}.yml"
        config.write_text(_config(mode, port, storage, workdir, realm, cert))
        log_path = workdir / f"registry-{mode}-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        registry = Registry(mode, f"127.0.0.1:{port}", storage, process, log_path, users)
        registry.token_server = token_server
        if _wait_ready(registry):
            return registry
        last_log = registry.log()
        registry.token_server = None
        registry.stop()
    if token_server is not None:
        token_server.close()
    raise RuntimeError(f"docker-registry did not start:\n{last_log}")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, so no registry outlives it."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _wait_ready(registry: Registry, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            status = httpx.get(f"{registry.url}/v2/", timeout=2).status_code
            if status in (200, 401):
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def running(workdir: Path, storage: Path, mode: str, users: dict[str, str]) -> Iterator[Registry]:
    registry = start_registry(workdir, storage, mode, users)
    try:
        yield registry
    finally:
        registry.stop()


def docker_env(config_dir: Path) -> dict[str, str]:
    """The environment for docker CLI calls, with its own DOCKER_CONFIG (never the user's)."""
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(config_dir)
    return env


# --- fixtures (imported by the test modules) -----------------------------------------------------

USERS = {"alice": "wonder-land-7"}


def engine_missing(reason: str) -> None:
    """Skip locally, fail in CI (as tests/backends/conftest.py does)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires every engine)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def registry_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.access(REGISTRY_BIN, os.X_OK):
        engine_missing(f"{REGISTRY_BIN} is missing: run `bash scripts/engines.sh start`")
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def plain_registry(registry_workdir: Path) -> Iterator[Registry]:
    with running(registry_workdir / "none", registry_workdir / "storage", "none", {}) as reg:
        yield reg


@pytest.fixture(scope="session")
def basic_registry(registry_workdir: Path, plain_registry: Registry) -> Iterator[Registry]:
    with running(registry_workdir / "htpasswd", plain_registry.storage, "htpasswd", USERS) as reg:
        yield reg


@pytest.fixture(scope="session")
def token_registry(registry_workdir: Path, plain_registry: Registry) -> Iterator[Registry]:
    with running(registry_workdir / "token", plain_registry.storage, "token", USERS) as reg:
        yield reg


@pytest.fixture(scope="session")
def pushed(plain_registry: Registry, registry_workdir: Path) -> dict[str, str]:
    """bb:latest pushed by docker as x/bb:1 and public/bb:1; the image id docker gives it."""
    if not docker_available():
        engine_missing("no Docker engine to push bb:latest with")
    env = docker_env(registry_workdir / "docker-config")
    inspect = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "bb:latest"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    if not inspect:
        engine_missing("bb:latest is missing: run `bash scripts/engines.sh start`")
    image_id, layers = inspect.split(" ", 1)
    docker_push("bb:latest", plain_registry.host, "x/bb:1", env)
    docker_push("bb:latest", plain_registry.host, "public/bb:1", env)
    return {
        "repo": "x/bb",
        "tag": "1",
        "public": "public/bb",
        "image_id": image_id,
        "layers": layers,
    }


@pytest.fixture(scope="session")
def upload(plain_registry: Registry) -> Iterator[httpx.Client]:
    """An httpx client for pushing crafted content to the anonymous registry."""
    with httpx.Client(timeout=30) as client:
        yield client
