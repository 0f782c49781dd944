"""``--reap-with-parent PID`` on the Docker backend: the watchdog removes the whole
stack, volumes included, after ``kill -9`` of the parent; ``--logs-dir`` keeps
the logs."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.support import CiStack, ci_stack

STACK = """\
services:
  db:
    image: bb:latest
    init: true
    command: ["sh", "-c", "echo db-started; sleep 300"]
    volumes: ["data:/data"]
  web:
    image: bb:latest
    init: true
    command: ["sleep", "300"]
    depends_on: [db]
volumes:
  data: {}
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CiStack]:
    with ci_stack(tmp_path, "rp") as s:
        s.write(STACK)
        yield s


def _eventually(check: object, limit: float = 60.0) -> bool:
    """Poll ``check`` until it holds (the watchdog works asynchronously)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def _watchdogs(project: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"--project {project} " in line]


def test_stack_removed_after_kill_9_of_the_parent(stack: CiStack, tmp_path: Path) -> None:
    parent = subprocess.Popen(["sleep", "300"])
    logs = tmp_path / "logs"
    try:
        run = stack.cli("up", "-d", "--reap-with-parent", str(parent.pid), "--logs-dir", str(logs))
        assert run.code == 0, run.err
        assert len(stack.containers()) == 2
        assert len(_watchdogs(stack.name)) == 1
        # arming again for the same project starts no second watchdog
        assert stack.cli("up", "-d", "--reap-with-parent", str(parent.pid)).code == 0
        time.sleep(0.5)
        assert len(_watchdogs(stack.name)) == 1
    finally:
        parent.kill()
        parent.wait()
    assert _eventually(lambda: stack.resources(stack.name) == ([], [], []))
    assert _eventually(lambda: not _watchdogs(stack.name))
    assert (logs / "db.log").read_text() == "db-started\n"
    assert (logs / "web.log").exists()


def test_isolated_stack_reaped_too(stack: CiStack) -> None:
    parent = subprocess.Popen(["sleep", "300"])
    try:
        run = stack.cli(
            "up", "-d", "--isolate", "--reap-with-parent", str(parent.pid), project=False
        )
        assert run.code == 0, run.err
        found = re.search(r"Isolated project (\S+):", run.err)
        assert found
        name = found.group(1)
        assert stack.resources(name)[0]
    finally:
        parent.kill()
        parent.wait()
    assert _eventually(lambda: stack.resources(name) == ([], [], []))


def test_no_such_parent(stack: CiStack) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    run = stack.cli("up", "-d", "--reap-with-parent", str(dead.pid))
    assert run.code == 1
    assert f"no process {dead.pid}" in run.err
    assert stack.containers() == {}
