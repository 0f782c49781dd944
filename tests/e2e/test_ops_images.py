"""``build``, ``push`` and ``pull`` against a real dockerd and a registry on 127.0.0.1.

The registry is Debian's ``docker-registry`` (the CNCF distribution server),
started by the fixture with its storage in a temporary directory and stopped
afterwards; the engine talks plain HTTP to registries on loopback addresses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ops_support import composer, docker_backend, engine_missing, free_port, write_project

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""

STACK = """
services:
  app:
    image: {registry}/{repo}:1
    build:
      context: .
      dockerfile_inline: |
        FROM bb:latest
        ARG MESSAGE=from-the-file
        RUN echo "$$MESSAGE" > /message
  mirror:
    image: {registry}/{repo}:1
  missing:
    image: {registry}/{repo}-missing:1
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a registry that lives as long as the module."""
    binary = shutil.which("docker-registry")
    if binary is None:
        engine_missing("docker-registry is not installed (apt-get install docker-registry)")
    assert binary is not None
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=root / "data", port=port))
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the registry did not start: {(root / 'registry.log').read_text()}"
                    )
                time.sleep(0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def project(registry: str, tmp_path: Path) -> Iterator[tuple[Path, str, Any]]:
    backend = docker_backend()
    repo = f"composer-test/{uuid.uuid4().hex[:8]}"
    root = write_project(tmp_path, STACK.format(registry=registry, repo=repo))
    ref = f"{registry}/{repo}:1"
    try:
        yield root, ref, backend
    finally:
        for tag in (ref, f"{registry}/{repo}-missing:1"):
            if backend.image_id(tag) is not None:
                backend.remove_image(tag)
        backend.close()


def catalog(registry: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog", timeout=5) as answer:
        return list(json.loads(answer.read())["repositories"])


def test_build_push_and_pull_round_trip(registry: str, project: tuple[Path, str, Any]) -> None:
    root, ref, backend = project
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0]

    built = composer("-p", "opsimg", "build", "--build-arg", "MESSAGE=from-the-flag", cwd=root)
    assert built.code == 0, built.err
    assert "Image " + ref in built.err and "Built" in built.err
    assert "RUN echo" in built.err  # the build output is streamed
    assert backend.image_id(ref) is not None
    message = composer(
        "-p", "opsimg", "run", "--rm", "-T", "--no-deps", "app", "cat", "/message", cwd=root
    )
    assert message.out == "from-the-flag\n", message.err

    pushed = composer("-p", "opsimg", "push", cwd=root)
    assert pushed.code == 0, pushed.err
    assert repo in catalog(registry)

    backend.remove_image(ref)
    assert backend.image_id(ref) is None
    pulled = composer("-p", "opsimg", "pull", "mirror", cwd=root)
    assert pulled.code == 0, pulled.err
    assert "Pulled" in pulled.err
    assert backend.image_id(ref) is not None


def test_pull_failures_fail_unless_ignored(project: tuple[Path, str, Any]) -> None:
    root, _, _ = project
    failed = composer("-p", "opsimg", "pull", "missing", cwd=root)
    assert failed.code == 1
    assert "missing:1" in failed.err
    ignored = composer("-p", "opsimg", "pull", "--ignore-pull-failures", "missing", cwd=root)
    assert ignored.code == 0, ignored.err
    quiet = composer("-p", "opsimg", "pull", "-q", "--ignore-pull-failures", "missing", cwd=root)
    assert (quiet.code, quiet.err) == (0, "")


def test_push_skips_services_that_are_not_built(project: tuple[Path, str, Any]) -> None:
    root, _, _ = project
    result = composer("-p", "opsimg", "push", "mirror", cwd=root)
    assert result.code == 0, result.err
    assert "Push" not in result.err
