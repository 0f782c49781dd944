"""Docker backend: builds through the Engine build API, pulls with progress and credentials.

Nothing leaves the machine: builds start FROM bb:latest, and pulls come from
a tiny registry served by this test on 127.0.0.1 (the engine trusts plain
HTTP on loopback), which also checks the credentials the pull sends.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from composer.backends.base import BuildSpec, MountSpec, ProgressUpdate
from composer.backends.docker import DockerBackend
from composer.backends.docker.images import credentials_for, load_auth, split_ref
from composer.errors import BackendError, NotFound, Unsupported

# --- build ------------------------------------------------------------------

DOCKERFILE = """\
FROM bb:latest AS base
ARG GREETING=none
RUN echo "$GREETING" > /greeting
COPY . /ctx/
FROM base AS final
RUN echo final > /final
"""


@pytest.fixture
def tags(docker_backend: Any) -> Iterator[list[str]]:
    """Unique image tags, removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        with contextlib.suppress(Exception):
            docker_backend.api.remove_image(tag, force=True)


def new_tag(tags: list[str], name: str = "ctbuild") -> str:
    tag = f"{name}-{uuid.uuid4().hex[:8]}:1"
    tags.append(tag)
    return tag


def run_image(backend: Any, image: str, *cmd: str) -> str:
    api = backend.api
    cid = api.create_container(image, list(cmd))["Id"]
    try:
        api.start(cid)
        assert api.wait(cid, timeout=30)["StatusCode"] == 0
        return str(api.logs(cid).decode())
    finally:
        api.remove_container(cid, force=True)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("bb", ("bb", "latest")),
        ("bb:1", ("bb", "1")),
        ("localhost:5000/a/b", ("localhost:5000/a/b", "latest")),
        ("localhost:5000/a/b:2", ("localhost:5000/a/b", "2")),
        ("x@sha256:ab", ("x", "sha256:ab")),
    ],
)
def test_split_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_ref(ref) == expected


def test_build_with_dockerignore_args_target_labels_tags(
    docker_backend: Any, tags: list[str], tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / ".dockerignore").write_text("# comment\nsecret.txt\n/ignored\n*.log\n!keep.log\n")
    (tmp_path / "app.txt").write_text("app")
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x").write_text("no")
    (tmp_path / "drop.log").write_text("no")
    (tmp_path / "keep.log").write_text("yes")
    tag, extra = new_tag(tags), new_tag(tags)
    updates: list[ProgressUpdate] = []
    image_id = docker_backend.build_image(
        BuildSpec(
            tag=tag,
            context=str(tmp_path),
            args={"GREETING": "hello"},
            target="base",
            labels={"org.example.built-by": "composer-test"},
            tags=(extra,),
            network="none",
            extra_hosts=(("build.local", "10.9.8.7"),),
            shm_size=16 << 20,
            no_cache=True,
        ),
        updates.append,
    )
    assert image_id.startswith("sha256:")
    assert docker_backend.image_id(tag) == image_id == docker_backend.image_id(extra)
    info = docker_backend.api.inspect_image(tag)
    assert info["Config"]["Labels"]["org.example.built-by"] == "composer-test"
    script = "ls -A /ctx; cat /greeting; test -e /final && echo final || echo no-final"
    lines = run_image(docker_backend, tag, "sh", "-c", script).splitlines()
    assert sorted(lines[:4]) == [".dockerignore", "Dockerfile", "app.txt", "keep.log"]
    assert lines[4:] == ["hello", "no-final"]
    steps = sorted({u.id for u in updates if u.id.startswith("Step ")})
    # FROM, ARG, RUN, COPY of the target stage (engines may count a LABEL step too).
    assert len(steps) >= 4 and steps[0].startswith("Step 1/"), steps
    assert any("RUN echo" in u.status for u in updates)


def test_build_with_inline_dockerfile(docker_backend: Any, tags: list[str], tmp_path: Path) -> None:
    tag = new_tag(tags)
    docker_backend.build_image(
        BuildSpec(
            tag=tag, context=str(tmp_path), dockerfile_inline="FROM bb:latest\nRUN echo in > /i\n"
        )
    )
    assert run_image(docker_backend, tag, "cat", "/i") == "in\n"


def test_build_with_dockerfile_elsewhere(
    docker_backend: Any, tags: list[str], tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("f")
    (tmp_path / "Custom.Dockerfile").write_text("FROM bb:latest\nCOPY f.txt /f.txt\n")
    tag = new_tag(tags)
    docker_backend.build_image(
        BuildSpec(tag=tag, context=str(ctx), dockerfile=str(tmp_path / "Custom.Dockerfile"))
    )
    assert run_image(docker_backend, tag, "cat", "/f.txt") == "f"


def test_build_error_names_the_step(docker_backend: Any, tags: list[str], tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM bb:latest\nRUN echo ok\nRUN exit 7\n")
    with pytest.raises(BackendError) as info:
        docker_backend.build_image(BuildSpec(tag=new_tag(tags), context=str(tmp_path)))
    assert "failed at Step 3/3 `RUN exit 7`" in info.value.message
    assert "7" in info.value.message.rsplit(":", 1)[-1]


def test_build_options_the_engine_api_lacks_are_unsupported(tmp_path: Path) -> None:
    # Refused before the engine is contacted, so no daemon is needed here.
    backend = DockerBackend({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    spec = BuildSpec(
        tag="x",
        context=str(tmp_path),
        ssh=("default",),
        secrets=(MountSpec(type="secret", target="/s", content="x"),),
    )
    with pytest.raises(Unsupported, match=r"does not support ssh, secrets$"):
        backend.build_image(spec)


# --- pull ----------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TinyRegistry:
    """An OCI distribution registry serving one image, behind Basic auth."""

    def __init__(self, user: str, password: str) -> None:
        layer_tar = io.BytesIO()
        with tarfile.open(fileobj=layer_tar, mode="w") as tar:
            payload = os.urandom(200_000)
            info = tarfile.TarInfo("payload.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        raw = layer_tar.getvalue()
        self.layer = gzip.compress(raw)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/payload.bin"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
        }
        self.config = json.dumps(config).encode()
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(self.config),
                    "digest": _digest(self.config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer),
                        "digest": _digest(self.layer),
                    }
                ],
            }
        ).encode()
        self.expected_auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen_auth: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                if auth:
                    registry.seen_auth.append(auth)
                if auth != registry.expected_auth:
                    self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="tiny"'})
                    return
                path = self.path.split("?")[0]
                if path == "/v2/":
                    self._send(200, b"{}", {"Content-Type": "application/json"})
                elif path in (
                    "/v2/app/manifests/1",
                    f"/v2/app/manifests/{_digest(registry.manifest)}",
                ):
                    self._send(
                        200,
                        registry.manifest,
                        {
                            "Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
                            "Docker-Content-Digest": _digest(registry.manifest),
                        },
                    )
                elif path == f"/v2/app/blobs/{_digest(registry.config)}":
                    self._send(200, registry.config, {"Content-Type": "application/octet-stream"})
                elif path == f"/v2/app/blobs/{_digest(registry.layer)}":
                    self._send(200, registry.layer, {"Content-Type": "application/octet-stream"})
                else:
                    self._send(
                        404,
                        b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                        {"Content-Type": "application/json"},
                    )

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[TinyRegistry]:
    reg = TinyRegistry("alice", "s3cret")
    yield reg
    reg.close()


def docker_home(tmp_path: Path, host: str, user: str, password: str) -> dict[str, str]:
    config = tmp_path / ".docker"
    config.mkdir()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    env = {"HOME": str(tmp_path)}
    if os.environ.get("DOCKER_HOST"):
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env


def test_credentials_come_from_the_docker_config(tmp_path: Path) -> None:
    env = docker_home(tmp_path, "https://registry.example:5000", "bob", "pw")
    auth = load_auth(tmp_path / ".docker" / "config.json", env)
    creds = credentials_for(auth, "registry.example:5000/team/app:1")
    assert (creds["username"], creds["password"]) == ("bob", "pw")
    assert credentials_for(auth, "other.example/app") == {}


def test_pull_with_progress_and_credentials(
    docker_backend: Any, registry: TinyRegistry, tmp_path: Path
) -> None:
    host = f"127.0.0.1:{registry.port}"
    ref = f"{host}/app:1"
    backend = DockerBackend(docker_home(tmp_path, host, "alice", "s3cret"))
    updates: list[ProgressUpdate] = []
    try:
        image_id = backend.pull_image(ref, updates.append)
        assert image_id == _digest(registry.config)
        assert backend.image_id(ref) == image_id
        assert registry.expected_auth in registry.seen_auth
        layer = _digest(registry.layer)[len("sha256:") :][:12]
        layer_updates = [u for u in updates if u.id == layer]
        statuses = [u.status for u in layer_updates]
        assert "Pull complete" in statuses
        assert any(u.total for u in layer_updates if u.status == "Downloading") or (
            "Download complete" in statuses
        )
        observed = backend.observe("ct-none", [ref])
        assert observed.images[ref].id == image_id
    finally:
        with contextlib.suppress(Exception):
            docker_backend.api.remove_image(ref, force=True)


def test_pull_with_wrong_credentials_or_unknown_tag(
    docker_backend: Any, registry: TinyRegistry, tmp_path: Path
) -> None:
    host = f"127.0.0.1:{registry.port}"
    wrong = DockerBackend(docker_home(tmp_path, host, "alice", "nope"))
    with pytest.raises(BackendError) as info:
        wrong.pull_image(f"{host}/app:1")
    assert info.value.message.startswith(f"pull {host}/app:1")
    right_home = tmp_path / "right"
    right_home.mkdir()
    right = DockerBackend(docker_home(right_home, host, "alice", "s3cret"))
    with pytest.raises(NotFound):
        right.pull_image(f"{host}/app:404")
