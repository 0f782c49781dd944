"""``run --rm --rm-deps``, ``down`` with one-off containers, and ``--logs-dir`` on
``up``, ``down`` and ``wait``, against dockerd."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.support import CiStack, ci_stack, environ

STACK = """\
services:
  db:
    image: bb:latest
    init: true
    command: ["sh", "-c", "echo db-up; sleep 300"]
  cache:
    image: bb:latest
    init: true
    command: ["sh", "-c", "echo cache-up; sleep 300"]
    scale: 2
  job:
    image: bb:latest
    command: ["sh", "-c", "echo job-done"]
    depends_on: [db, cache]
  slowjob:
    image: bb:latest
    command: ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; echo slow-done"]
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CiStack]:
    with ci_stack(tmp_path, "rl") as s:
        s.write(STACK)
        yield s


def test_run_rm_deps_removes_the_dependencies_it_started(stack: CiStack) -> None:
    run = stack.cli("run", "--rm", "--rm-deps", "-T", "job")
    assert run.code == 0, run.err
    assert "job-done" in run.out
    assert stack.containers() == {}


def test_run_rm_deps_keeps_dependencies_that_were_already_there(stack: CiStack) -> None:
    assert stack.cli("up", "-d", "db").code == 0
    run = stack.cli("run", "--rm", "--rm-deps", "-T", "job")
    assert run.code == 0, run.err
    assert stack.containers() == {f"{stack.name}-db-1": "running"}


def test_run_rm_keeps_dependencies_without_rm_deps(stack: CiStack) -> None:
    run = stack.cli("run", "--rm", "-T", "job")
    assert run.code == 0, run.err
    assert sorted(stack.containers()) == [
        f"{stack.name}-cache-1",
        f"{stack.name}-cache-2",
        f"{stack.name}-db-1",
    ]


def test_rm_deps_needs_rm(stack: CiStack) -> None:
    run = stack.cli("run", "--rm-deps", "-T", "job")
    assert run.code == 1
    assert "--rm-deps needs --rm" in run.err


def test_down_removes_one_off_containers(stack: CiStack) -> None:
    assert stack.cli("run", "-d", "--no-deps", "db").code == 0
    assert stack.cli("up", "-d", "db").code == 0
    assert len(stack.containers()) == 2
    down = stack.cli("down", "-t", "1")
    assert down.code == 0, down.err
    assert stack.containers() == {}


def test_logs_dir_on_attached_up(stack: CiStack, tmp_path: Path) -> None:
    logs = tmp_path / "artifacts"
    run = stack.cli("up", "--logs-dir", str(logs), "job", "--no-deps")
    assert run.code == 0, run.err
    assert (logs / "job.log").read_text() == "job-done\n"


def test_logs_dir_on_down_one_file_per_service(stack: CiStack, tmp_path: Path) -> None:
    assert stack.cli("up", "-d", "db", "cache").code == 0
    logs = tmp_path / "artifacts"
    down = stack.cli("down", "-t", "1", "--logs-dir", str(logs))
    assert down.code == 0, down.err
    assert sorted(p.name for p in logs.iterdir()) == ["cache.log", "db.log"]
    assert (logs / "db.log").read_text() == "db-up\n"
    assert (logs / "cache.log").read_text() == (
        f"==> {stack.name}-cache-1 <==\ncache-up\n==> {stack.name}-cache-2 <==\ncache-up\n"
    )
    assert stack.containers() == {}


def test_logs_dir_on_wait(stack: CiStack, tmp_path: Path) -> None:
    assert stack.cli("up", "-d", "slowjob").code == 0
    logs = tmp_path / "artifacts"
    command = [sys.executable, "-m", "composer", "-p", stack.name, "wait", "slowjob"]
    waiting = subprocess.Popen(
        [*command, "--logs-dir", str(logs)],
        cwd=stack.root,
        env=environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the job ends only once told to, so `wait` is surely waiting by then
        time.sleep(3)
        assert stack.cli("exec", "-T", "slowjob", "touch", "/tmp/go").code == 0
        _out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert (logs / "slowjob.log").read_text() == "slow-done\n"
