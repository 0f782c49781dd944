"""``composer run`` against a real dockerd: one-off containers and their dependencies."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ops_support import (
    Run,
    composer,
    docker_backend,
    free_port,
    project_name,
    remove_project,
    write_project,
)

STACK = """
services:
  db:
    image: bb:latest
    init: true
    command: ["httpd", "-f", "-p", "5432", "-h", "/"]
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:5432/bin/busybox"]
      interval: 1s
      timeout: 1s
      retries: 30
  app:
    image: bb:latest
    init: true
    environment:
      FROM_FILE: yes-from-file
    labels:
      team: core
    depends_on:
      db: {condition: service_healthy}
    command: ["sleep", "300"]
"""


class Project:
    def __init__(self, root: Path, name: str, backend: Any) -> None:
        self.root = root
        self.name = name
        self.backend = backend

    def run(self, *args: str, stdin: str | None = None) -> Run:
        return composer("-p", self.name, *args, cwd=self.root, stdin=stdin)

    def ps(self) -> list[dict[str, Any]]:
        out = self.run("ps", "-a", "--format", "json").out
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    backend = docker_backend()
    name = project_name()
    try:
        yield Project(write_project(tmp_path, STACK), name, backend)
    finally:
        remove_project(backend, name)
        backend.close()


def test_run_starts_healthy_dependencies_then_the_one_off(project: Project) -> None:
    result = project.run("run", "--rm", "-T", "app", "echo", "hello from run")
    assert result.code == 0, result.err
    assert result.out == "hello from run\n"
    containers = project.ps()
    # The dependency runs (healthy); the one-off was removed; app's own replica was never made.
    assert [(c["Service"], c["State"], c["Health"]) for c in containers] == [
        ("db", "running", "healthy")
    ]
    assert "Container " + f"{project.name}-db-1" in result.err  # progress of the dependency


def test_run_without_deps_and_detached_one_off(project: Project) -> None:
    started = project.run(
        "run", "-d", "--no-deps", "-l", "extra=1", "-e", "ADDED=1", "app", "sleep", "30"
    )
    assert started.code == 0, started.err
    container_id = started.out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    containers = project.ps()
    assert len(containers) == 1  # no db: --no-deps
    one_off = containers[0]
    assert re.fullmatch(rf"{project.name}-app-run-[0-9a-f]{{12}}", one_off["Name"])
    assert one_off["State"] == "running"
    labels = dict(kv.split("=", 1) for kv in one_off["Labels"].split(","))
    assert labels["com.docker.compose.oneoff"] == "True"
    assert len(labels["com.docker.compose.slug"]) == 64
    assert one_off["Name"].endswith(labels["com.docker.compose.slug"][:12])
    assert "com.docker.compose.container-number" not in labels
    assert (labels["team"], labels["extra"]) == ("core", "1")
    env = project.run("exec", "-T", "app", "--", "sh", "-c", "echo $ADDED $FROM_FILE")
    assert env.out == "1 yes-from-file\n"  # exec reaches the one-off when it is all there is


def test_run_flags_shape_the_container(project: Project, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("mounted\n")
    mounted = project.run("run", "--rm", "-T", "--no-deps", "-v", f"{shared}:/mnt:ro", "app",
                          "cat", "/mnt/file")  # fmt: skip
    assert (mounted.code, mounted.out) == (0, "mounted\n"), mounted.err
    entry = project.run("run", "--rm", "-T", "--no-deps", "--entrypoint", "echo", "app", "via")
    assert entry.out == "via\n"
    where = project.run("run", "--rm", "-T", "--no-deps", "-w", "/tmp", "-u", "1000", "app",
                        "--", "sh", "-c", "pwd; id -u")  # fmt: skip
    assert where.out == "/tmp\n1000\n"
    failed = project.run("run", "--rm", "-T", "--no-deps", "app", "--", "sh", "-c", "exit 7")
    assert failed.code == 7
    assert project.ps() == []  # --rm removed every one-off

    port = free_port()
    named = project.run("run", "-d", "--no-deps", "--name", "k3-custom-" + project.name[-6:],
                        "-p", f"127.0.0.1:{port}:80", "app", "sleep", "30")  # fmt: skip
    assert named.code == 0, named.err
    (container,) = project.ps()
    assert container["Name"] == "k3-custom-" + project.name[-6:]
    assert container["Publishers"] == [
        {"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": port, "Protocol": "tcp"}
    ]


def test_run_refuses_unknown_services_and_needs_files(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    unknown = project.run("run", "nosuch")
    assert unknown.code == 1 and "no such service: nosuch" in unknown.err
    empty = tmp_path_factory.mktemp("nofiles")
    without = composer("-p", project.name, "run", "app", cwd=empty)
    assert without.code == 2 and "no configuration file provided" in without.err


def test_run_forwards_piped_stdin(project: Project) -> None:
    piped = composer(
        "-p", project.name, "run", "--rm", "-T", "--no-deps", "app", "cat",
        cwd=project.root, stdin="from stdin\n", timeout=15,
    )  # fmt: skip
    assert piped.out == "from stdin\n"
