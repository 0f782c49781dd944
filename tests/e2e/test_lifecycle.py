"""The lifecycle verbs as a user runs them: ``python -m composer`` against dockerd.

Every test has its own project name and removes whatever carries its label
afterwards; states are checked through the Engine API, not through composer.
A missing engine skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TEST_IMAGE = "bb:latest"
PROJECT_LABEL = "com.docker.compose.project"

STACK = """\
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
  api:
    image: bb:latest
    init: true
    command: ["httpd", "-f", "-p", "8000", "-h", "/"]
    depends_on:
      db: {condition: service_healthy}
    volumes: ["data:/data"]
volumes:
  data: {}
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


def _engine_missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires every engine)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    """The Engine API client of the environment's daemon, with ``bb:latest`` present."""
    try:
        import docker
    except ImportError:
        _engine_missing("the docker SDK is not installed")
    try:
        client = docker.APIClient(version="auto")
        client.ping()
    except Exception as exc:  # any failure to reach the daemon
        _engine_missing(f"no Docker engine: {exc}")
    if not client.images(name=TEST_IMAGE):
        _engine_missing(f"{TEST_IMAGE} is missing: run `bash scripts/engines.sh start`")
    yield client
    client.close()


@dataclass
class Stack:
    """One project directory and name on the engine."""

    api: Any
    root: Path
    name: str

    def write(self, text: str, file: str = "compose.yaml") -> None:
        (self.root / file).write_text(textwrap.dedent(text))

    def cli(self, *args: str, stdin: str | None = None, progress: str = "plain") -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "composer", "--backend", "docker", "-p", self.name, *args],
            cwd=self.root,
            env=_environ(progress),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "composer", "--backend", "docker", "-p", self.name, *args],
            cwd=self.root,
            env=_environ("plain"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def containers(self) -> dict[str, str]:
        """Container name -> state of every container of the project."""
        flt = {"label": [f"{PROJECT_LABEL}={self.name}"]}
        return {
            c["Names"][0].lstrip("/"): c["State"]
            for c in self.api.containers(all=True, filters=flt)
        }

    def networks(self) -> list[str]:
        flt = {"label": [f"{PROJECT_LABEL}={self.name}"]}
        return sorted(n["Name"] for n in self.api.networks(filters=flt))

    def volumes(self) -> list[str]:
        flt = {"label": [f"{PROJECT_LABEL}={self.name}"]}
        return sorted(v["Name"] for v in (self.api.volumes(filters=flt) or {}).get("Volumes") or [])


def _environ(progress: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    environ.update({"COMPOSE_ANSI": "never", "COMPOSE_PROGRESS": progress})
    return environ


@pytest.fixture
def stack(api: Any, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(api, tmp_path, f"lc{uuid.uuid4().hex[:10]}")
    s.write(STACK)
    yield s
    flt = {"label": [f"{PROJECT_LABEL}={s.name}"]}
    for c in api.containers(all=True, filters=flt):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True, v=True)
    for n in api.networks(filters=flt):
        with contextlib.suppress(Exception):
            api.remove_network(n["Id"])
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            api.remove_volume(v["Name"])


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- up -d, no-op, down ------------------------------------------------------------


def test_up_detached_then_noop_then_down(stack: Stack) -> None:
    first = stack.cli("up", "-d")
    assert first.code == 0, first.err
    n = stack.name
    assert stack.containers() == {f"{n}-db-1": "running", f"{n}-api-1": "running"}
    assert stack.networks() == [f"{n}_default"]
    assert stack.volumes() == [f"{n}_data"]
    events = lines(first.err)
    # The api waits for db to be healthy: it starts after db's start.
    assert events.index(f"Container {n}-db-1  Started") < events.index(
        f"Container {n}-api-1  Starting"
    )
    assert f"Network {n}_default  Created" in events
    assert f"Volume {n}_data  Created" in events

    again = stack.cli("up", "-d")
    assert again.code == 0, again.err
    assert sorted(lines(again.err)) == [
        f"Container {n}-api-1  Running",
        f"Container {n}-db-1  Running",
    ]

    down = stack.cli("down", "-t", "1")
    assert down.code == 0, down.err
    assert stack.containers() == {}
    assert stack.networks() == []
    assert stack.volumes() == [f"{n}_data"]  # kept without -v
    assert f"Container {n}-api-1  Removed" in lines(down.err)

    assert stack.cli("down", "-v").code == 0
    assert stack.volumes() == []


def test_dry_run_changes_nothing(stack: Stack) -> None:
    run = stack.cli("--dry-run", "up", "-d")
    assert run.code == 0, run.err
    n = stack.name
    assert f"container {n}-db-1  create  (missing)" in run.out.splitlines()
    assert f"network {n}_default  create  (missing)" in run.out.splitlines()
    assert all(line.startswith("DRY-RUN MODE - ") for line in run.err.splitlines())
    assert f"DRY-RUN MODE -  Container {n}-api-1  Started" in run.err.splitlines()
    assert stack.containers() == {}
    assert stack.networks() == []
    assert stack.volumes() == []


def test_config_change_recreates_only_that_service(stack: Stack) -> None:
    assert stack.cli("up", "-d").code == 0
    stack.write(STACK.replace('"8000"', '"8001"'))
    run = stack.cli("up", "-d")
    assert run.code == 0, run.err
    n = stack.name
    events = lines(run.err)
    assert f"Container {n}-api-1  Recreated" in events
    assert f"Container {n}-db-1  Running" in events
    assert not any("db-1  Recreat" in e for e in events)
    assert stack.containers() == {f"{n}-db-1": "running", f"{n}-api-1": "running"}


# --- the verbs on existing containers --------------------------------------------------


def test_stop_start_restart_pause_unpause_kill(stack: Stack) -> None:
    n = stack.name
    assert stack.cli("create").code == 0
    assert set(stack.containers().values()) == {"created"}
    assert stack.cli("start").code == 0
    assert set(stack.containers().values()) == {"running"}

    stop = stack.cli("stop", "-t", "1", "api")
    assert stop.code == 0, stop.err
    assert stack.containers() == {f"{n}-db-1": "running", f"{n}-api-1": "exited"}
    assert lines(stop.err) == [f"Container {n}-api-1  Stopping", f"Container {n}-api-1  Stopped"]

    assert stack.cli("start", "api").code == 0
    assert stack.containers()[f"{n}-api-1"] == "running"

    restart = stack.cli("restart", "-t", "1")
    assert restart.code == 0, restart.err
    assert f"Container {n}-db-1  Restarted" in lines(restart.err)

    assert stack.cli("pause").code == 0
    assert set(stack.containers().values()) == {"paused"}
    assert stack.cli("unpause").code == 0
    assert set(stack.containers().values()) == {"running"}

    kill = stack.cli("kill", "-s", "SIGKILL", "db")
    assert kill.code == 0, kill.err
    assert stack.containers()[f"{n}-db-1"] == "exited"
    assert f"Container {n}-db-1  Killed" in lines(kill.err)


def test_rm_asks_unless_forced(stack: Stack) -> None:
    n = stack.name
    assert stack.cli("up", "-d").code == 0
    nothing = stack.cli("rm", "-f")
    assert nothing.code == 0 and "No stopped containers" in nothing.err
    assert stack.cli("stop", "-t", "1", "api").code == 0

    declined = stack.cli("rm", stdin="n\n")
    assert declined.code == 0
    assert f"Going to remove {n}-api-1" in declined.err
    assert f"{n}-api-1" in stack.containers()

    accepted = stack.cli("rm", stdin="y\n")
    assert accepted.code == 0, accepted.err
    assert f"{n}-api-1" not in stack.containers()

    stopped = stack.cli("rm", "-s", "-f", "-v")
    assert stopped.code == 0, stopped.err
    assert stack.containers() == {}


def test_scale_up_and_down(stack: Stack) -> None:
    n = stack.name
    assert stack.cli("up", "-d", "--scale", "api=3").code == 0
    assert sorted(c for c in stack.containers() if "-api-" in c) == [
        f"{n}-api-1",
        f"{n}-api-2",
        f"{n}-api-3",
    ]
    down_scale = stack.cli("up", "-d", "--scale", "api=1", "-t", "1")
    assert down_scale.code == 0, down_scale.err
    assert sorted(c for c in stack.containers() if "-api-" in c) == [f"{n}-api-1"]


def test_orphans_warn_then_removed(stack: Stack) -> None:
    n = stack.name
    assert stack.cli("up", "-d").code == 0
    stack.write(STACK.split("  api:")[0] + "volumes:\n  data: {}\n")
    warned = stack.cli("up", "-d")
    assert warned.code == 0
    assert "orphan containers" in warned.err and f"{n}-api-1" in warned.err
    removed = stack.cli("down", "--remove-orphans", "-t", "1")
    assert removed.code == 0, removed.err
    assert stack.containers() == {}


# --- --wait ---------------------------------------------------------------------------


def test_wait_returns_once_healthy(stack: Stack) -> None:
    run = stack.cli("up", "--wait", "--wait-timeout", "60")
    assert run.code == 0, run.err
    n = stack.name
    assert f"Container {n}-db-1  Healthy" in lines(run.err)
    health = stack.api.inspect_container(f"{n}-db-1")["State"]["Health"]["Status"]
    assert health == "healthy"


def test_wait_failure_shows_the_logs(stack: Stack) -> None:
    stack.write(
        """\
        services:
          bad:
            image: bb:latest
            command: ["sh", "-c", "echo cannot reach the database; exit 4"]
        """
    )
    run = stack.cli("up", "--wait", "--wait-timeout", "30")
    assert run.code == 3  # --wait: a service failed (docs/ci.md)
    assert f"container {stack.name}-bad-1 exited (4)" in run.err
    assert "| cannot reach the database" in run.err


# --- progress modes ---------------------------------------------------------------------


def test_json_and_quiet_progress(stack: Stack) -> None:
    run = stack.cli("up", "-d", progress="json")
    assert run.code == 0, run.err
    records = [json.loads(line) for line in run.err.splitlines()]
    started = {r["id"] for r in records if r["status"] == "Started"}
    assert started == {f"Container {stack.name}-db-1", f"Container {stack.name}-api-1"}
    assert {r["state"] for r in records} == {"working", "done"}
    quiet = stack.cli("stop", "-t", "1", progress="quiet")
    assert quiet.code == 0 and quiet.err == ""
    assert set(stack.containers().values()) == {"exited"}


# --- attached up ----------------------------------------------------------------------

ATTACHED = """\
services:
  quick:
    image: bb:latest
    init: true
    command: ["sh", "-c", "echo quick says hi; sleep 1; echo quick fails >&2; exit 3"]
  slow:
    image: bb:latest
    init: true
    command: ["sh", "-c", "echo slow says hi; exec sleep 60"]
"""


def test_attached_abort_on_container_exit(stack: Stack) -> None:
    stack.write(ATTACHED)
    run = stack.cli("up", "--abort-on-container-exit", "-t", "1")
    assert run.code == 3, run.err
    out = run.out.splitlines()
    assert out[0] == "Attaching to quick-1, slow-1"
    assert "quick-1  | quick says hi" in out
    assert "slow-1   | slow says hi" in out
    assert "quick-1  | quick fails" in out
    assert "quick-1 exited with code 3" in out
    assert "slow-1 exited with code 143" in out
    assert "Aborting on container exit..." in run.err
    assert set(stack.containers().values()) == {"exited"}


def test_attached_exit_code_from_and_no_prefix(stack: Stack) -> None:
    stack.write(ATTACHED)
    run = stack.cli("up", "--exit-code-from", "quick", "--no-log-prefix", "--attach", "quick")
    assert run.code == 3, run.err
    out = run.out.splitlines()
    assert out[0] == "Attaching to quick-1"
    assert "quick says hi" in out
    assert not any("slow says hi" in line for line in out)


def test_attached_ends_when_every_container_stopped(stack: Stack) -> None:
    stack.write(
        """\
        services:
          one:
            image: bb:latest
            command: ["echo", "one done"]
          two:
            image: bb:latest
            command: ["sh", "-c", "sleep 1; echo two done"]
        """
    )
    run = stack.cli("up", "--timestamps")
    assert run.code == 0, run.err
    assert "one exited with code 0" not in run.out
    assert "one-1 exited with code 0" in run.out
    assert "two-1 exited with code 0" in run.out
    stamped = [line for line in run.out.splitlines() if "one done" in line]
    assert stamped and stamped[0].split("| ")[1][:2] == "20"  # an RFC 3339 timestamp


def test_ctrl_c_stops_then_second_ctrl_c_kills(stack: Stack) -> None:
    stack.write(
        """\
        services:
          stubborn:
            image: bb:latest
            command: ["sh", "-c", "trap 'echo no' TERM; echo ready; while true; do sleep 1; done"]
        """
    )  # catches SIGTERM and carries on: only a kill ends it
    proc = stack.popen("up", "-t", "30")
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = ""
    while "stubborn-1  | ready" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    time.sleep(1.5)
    assert stack.containers()[f"{stack.name}-stubborn-1"] == "running"  # still stopping
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Gracefully stopping... (press Ctrl+C again to force)" in err
    assert "stubborn-1 exited with code 137" in out
    assert stack.containers()[f"{stack.name}-stubborn-1"] == "exited"


# --- flags refused before anything runs -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "-d", "--abort-on-container-exit"], "cannot be combined"),
        (
            ["up", "--abort-on-container-exit", "--abort-on-container-failure"],
            "are incompatible",
        ),
        (["up", "--force-recreate", "--no-recreate"], "are incompatible"),
        (["up", "--scale", "api"], "--scale: invalid value"),
        (["up", "--pull", "sometimes"], "--pull: invalid value"),
        (["down", "--rmi", "some"], "--rmi: invalid value"),
        (["up", "-d", "nosuch"], "no such service: nosuch"),  # the loader's ConfigError
        (["up", "--exit-code-from", "nosuch"], "no such service: nosuch"),
    ],
)
def test_bad_flags(stack: Stack, args: list[str], message: str) -> None:
    run = stack.cli(*args)
    assert run.code == (2 if args == ["up", "-d", "nosuch"] else 1)
    assert message in run.err
    assert stack.containers() == {}
