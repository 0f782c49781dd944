"""The CI features of the CLI on the native backend: the exit-code matrix, the
``--wait`` failure report, and the reaper after ``kill -9`` of the parent. Each
test has its own state root with ``bb:latest`` loaded from ``docker save``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci.support import EXIT_CODE_STACK, Run, engine_missing, environ


@dataclass
class NativeStack:
    root: Path
    state: Path
    name: str

    def write(self, text: str) -> None:
        (self.root / "compose.yaml").write_text(textwrap.dedent(text))

    def cli(self, *args: str) -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "composer", "-p", self.name, *args],
            cwd=self.root,
            env=environ(COMPOSER_BACKEND="native", COMPOSER_ROOT=str(self.state)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def records(self) -> list[Path]:
        return list((self.state / "containers").glob("*/record.json"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from composer.backends.factory import native_unavailable

    reason = native_unavailable()
    if reason is not None:
        engine_missing(f"native backend: {reason}")
    if shutil.which("docker") is None:
        engine_missing("the docker CLI is needed to save bb:latest")
    path = tmp_path_factory.mktemp("image") / "bb.tar"
    if subprocess.run(["docker", "save", "-o", str(path), "bb:latest"], check=False).returncode:
        engine_missing("docker save bb:latest failed")
    return path


@pytest.fixture
def stack(tmp_path: Path, archive: Path) -> Iterator[NativeStack]:
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    state = tmp_path / "state"
    load(NativeBackend({"COMPOSER_ROOT": str(state)}).images, archive)
    project = tmp_path / "project"
    project.mkdir()
    s = NativeStack(project, state, f"cn{uuid.uuid4().hex[:8]}")
    try:
        yield s
    finally:
        s.cli("down", "-v", "-t", "0")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--exit-code-from", "tests", "app", "tests"], 7),
        (["--exit-code-from", "app", "app", "flaky"], 143),
        (["--abort-on-container-exit", "app", "done"], 0),
        (["--abort-on-container-failure", "app", "done", "flaky"], 3),
    ],
)
def test_exit_code_matrix(stack: NativeStack, args: list[str], expected: int) -> None:
    stack.write(EXIT_CODE_STACK)
    run = stack.cli("up", *args)
    assert run.code == expected, run.out + run.err
    assert "Aborting on container exit..." in run.err


def test_wait_failure_report(stack: NativeStack) -> None:
    stack.write(
        """\
        services:
          db:
            image: bb:latest
            init: true
            command: ["sh", "-c", "echo line-1; echo line-2; sleep 60"]
            x-composer:
              ready:
                log: "never printed"
                timeout: 1s
        """
    )
    run = stack.cli("up", "--wait", "--wait-log-lines", "1")
    assert run.code == 3, run.err
    assert f"service 'db' ({stack.name}-db-1) is not ready" in run.err
    assert "readiness probe log:/never printed/ still failing after 1s" in run.err
    assert "last readiness probe results:" in run.err
    assert f"last 1 log lines of {stack.name}-db-1:" in run.err
    assert "| line-2" in run.err


def test_unhealthy_service_reports_its_healthcheck_results(stack: NativeStack) -> None:
    stack.write(
        """\
        services:
          db:
            image: bb:latest
            init: true
            command: ["sh", "-c", "echo started; sleep 60"]
            healthcheck:
              test: ["CMD", "sh", "-c", "echo probe-said-no; exit 1"]
              interval: 1s
              timeout: 1s
              retries: 2
        """
    )
    run = stack.cli("up", "--wait", "--wait-log-lines", "3")
    assert run.code == 3, run.err
    assert f"container {stack.name}-db-1 is unhealthy" in run.err
    assert "last healthcheck results:" in run.err
    assert "exit 1: probe-said-no" in run.err
    assert "| started" in run.err


def test_reaper_after_kill_9(stack: NativeStack) -> None:
    stack.write(
        """\
        services:
          db:
            image: bb:latest
            init: true
            command: ["sleep", "300"]
            volumes: ["data:/data"]
        volumes:
          data: {}
        """
    )
    parent = subprocess.Popen(["sleep", "300"])
    try:
        run = stack.cli("up", "-d", "--reap-with-parent", str(parent.pid))
        assert run.code == 0, run.err
        assert stack.records()
        # On native the project's supervisor is the reaper: no watchdog process.
        commands = [_cmdline(int(p)) for p in os.listdir("/proc") if p.isdigit()]
        assert not [c for c in commands if "composer.reaper" in c and stack.name in c]
    finally:
        parent.kill()
        parent.wait()
    from composer.backends.native.backend import NativeBackend

    engine = NativeBackend({"COMPOSER_ROOT": str(stack.state)})

    def left() -> list[str]:
        observed = engine.observe(stack.name)
        owned = [
            name
            for name, v in observed.volumes.items()
            if v.labels.get("com.docker.compose.project") == stack.name
        ]
        return [c.name for c in observed.containers] + owned

    # the watchdog works asynchronously: containers go first, then the volume
    deadline = time.monotonic() + 60
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left() == []
    assert stack.records() == []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
