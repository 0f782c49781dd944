"""``composer run --rm`` on the native engine, run by the CLI process itself.

Each test has a state root of its own (``bb:latest`` loaded from ``docker
save``) and a project of its own. The one-off must behave as before — exit
codes (``128 + signal``), stdout/stderr/stdin relayed, a terminal with
``-t``, signals forwarded, names answered by DNS, dependencies started first,
``--service-ports`` published — and leave nothing behind: no container
directory, owner file, network endpoint, veth, cgroup or mount, and no
supervisor started for it. A CLI killed with SIGKILL takes the container
with it, and the next command removes what it left.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer.backends.native import events as native_events
from composer.backends.native.network.manager import host_ifname
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import same_process
from tests.e2e.ops_support import Run, free_port, save_test_image

STACK = """\
services:
  app:
    image: bb:latest
    depends_on: [db]
    ports: ["127.0.0.1:{port}:80"]
  db:
    image: bb:latest
    command: [sleep, "300"]
  checked:
    image: bb:latest
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
"""


@dataclass
class Project:
    root: Path
    workdir: Path
    name: str
    port: int

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "composer", "--backend", "native", "-p", self.name, *args]

    def env(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
        environ.update(
            {
                "COMPOSE_ANSI": "never",
                "COMPOSE_PROGRESS": "plain",
                "COMPOSER_ROOT": str(self.root),
                "COMPOSER_SERVER": "0",
            }
        )
        return environ

    def cli(self, *args: str, stdin: str | None = None) -> Run:
        proc = subprocess.run(
            self.argv(*args),
            cwd=self.workdir,
            env=self.env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ps(self) -> list[tuple[str, str, str]]:
        """``ps -a``: (service, name, state) of each container."""
        done = self.cli("ps", "-a", "--format", "json")
        assert done.code == 0, done.err
        rows = [json.loads(line) for line in done.out.splitlines() if line.strip()]
        return [(r["Service"], r["Name"], r["State"]) for r in rows]

    def supervisor_pid(self) -> str | None:
        try:
            return (self.root / "projects" / self.name / "supervisor.pid").read_text()
        except FileNotFoundError:
            return None

    def one_off_ids(self) -> list[str]:
        """Ids of the project's one-offs from its event log (``create`` events)."""
        return [
            e.id
            for e in native_events.read(StateRoot(self.root), self.name)
            if e.type == "container" and e.action == "create" and "-run-" in e.name
        ]

    def actions(self, container_id: str) -> list[str]:
        return [
            e.action
            for e in native_events.read(StateRoot(self.root), self.name)
            if e.id == container_id
        ]

    def running_one_off(self, nth: int = 0) -> tuple[str, dict[str, object]]:
        """The ``nth`` one-off of the test (its id and ``state.json``), once it runs."""
        found: list[tuple[str, dict[str, object]]] = []

        def running() -> bool:
            ids = self.one_off_ids()
            if len(ids) <= nth:
                return False
            try:
                state = json.loads((self.root / "containers" / ids[nth] / "state.json").read_text())
            except (FileNotFoundError, ValueError):
                return False
            if state.get("status") == "running":
                found.append((ids[nth], state))
                return True
            return False

        _eventually(running)
        return found[0]


def _eventually(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {limit} s: {predicate}")
        time.sleep(0.05)


def _alive(pid: int, start: int) -> bool:
    """Whether the process still runs (a zombie does not: a test runner that was made a
    subreaper by another test may be its parent now, and not reap it)."""
    return same_process(pid, start)


def _cgroups(container_id: str) -> list[Path]:
    base = Path("/sys/fs/cgroup")
    return [*base.glob(f"composer/{container_id}"), *base.glob(f"*/composer/{container_id}")]


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def assert_nothing_left(project: Project, container_id: str, *, logged: bool = True) -> None:
    """The one-off's directory, owner file, endpoints, cgroups and mounts are all gone
    (and, while the project has an event log, its last event is ``destroy``)."""
    root = project.root
    assert not (root / "containers" / container_id).exists()
    assert not list((root / "oneoffs").glob(f"{container_id}*"))
    assert not list((root / "locks").glob(f"*{container_id}*"))
    assert not list((root / "networks").glob(f"*/endpoints/{container_id}.json"))
    assert _cgroups(container_id) == []
    with open("/proc/self/mountinfo") as f:
        assert container_id not in f.read()
    links = _host_links()
    for record in (root / "networks").glob("*/network.json"):
        network_id = json.loads(record.read_text())["id"]
        assert host_ifname(network_id, container_id) not in links
    if logged:
        assert project.actions(container_id)[-1] == "destroy"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_test_image(tmp_path_factory.mktemp("image") / "bb.tar")


@pytest.fixture
def project(tmp_path: Path, archive: Path) -> Iterator[Project]:
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    root = tmp_path / "state"
    load(NativeBackend({"COMPOSER_ROOT": str(root)}).images, archive)
    workdir = tmp_path / "work"
    workdir.mkdir()
    port = free_port()
    (workdir / "compose.yaml").write_text(STACK.format(port=port))
    p = Project(root, workdir, f"runrm{uuid.uuid4().hex[:8]}", port)
    try:
        yield p
    finally:
        p.cli("down", "-v", "-t", "0")


def test_exit_code_streams_and_nothing_left(project: Project) -> None:
    done = project.cli(
        "run", "--rm", "-T", "--no-deps", "app", "sh", "-c", "cat; echo to-err >&2; exit 7",
        stdin="piped in\n",
    )  # fmt: skip
    assert done.code == 7, done.err
    assert done.out == "piped in\n"
    assert "to-err" in done.err
    [cid] = project.one_off_ids()
    assert project.actions(cid) == ["create", "start", "die", "destroy"]
    assert_nothing_left(project, cid)
    # The CLI runs it: no supervisor is started for a one-off (the first run above made the
    # project's network, which starts one ahead of the containers that usually follow).
    before = project.supervisor_pid()
    again = project.cli("run", "--rm", "-T", "--no-deps", "app", "true")
    assert again.code == 0, again.err
    # (that supervisor leaves when it finds no container, taking its pid file along)
    assert project.supervisor_pid() in (before, None)


def test_flags_dns_and_dependencies(project: Project, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note").write_text("from the host\n")
    script = 'echo "$A $(id -u) $(pwd)"; cat /mnt/note; nslookup db >/dev/null && echo db-known'
    done = project.cli(
        "run", "--rm", "-T", "-e", "A=set", "-u", "1000", "-w", "/tmp",
        "-v", f"{shared}:/mnt:ro", "-l", "extra=1", "--name", f"{project.name}-named",
        "--entrypoint", "sh", "app", "-c", script,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert done.out.splitlines() == ["set 1000 /tmp", "from the host", "db-known"]
    # depends_on started db first, and it stays; the one-off is gone.
    assert [(svc, state) for svc, _, state in project.ps()] == [("db", "running")]


def test_own_names_resolve_without_a_supervisor(project: Project) -> None:
    done = project.cli(
        "run", "--rm", "-T", "--no-deps", "app", "sh", "-c", "nslookup $(hostname)",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "Address: 10." in done.out


def test_service_ports_are_published(project: Project) -> None:
    proc = project.popen(
        "run", "--rm", "-T", "--no-deps", "--service-ports", "app",
        "sh", "-c", "echo served | nc -l -p 80",
    )  # fmt: skip
    try:
        got: list[bytes] = []

        def answered() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", project.port), timeout=2) as s:
                    got.append(s.recv(100))
            except OSError:
                return False
            return got[-1] == b"served\n"

        _eventually(answered)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [cid] = project.one_off_ids()
    assert_nothing_left(project, cid)


def test_signals_are_forwarded_and_a_second_one_kills(project: Project) -> None:
    trap = project.popen(
        "run", "--rm", "-T", "--no-deps", "app",
        "sh", "-c", "trap 'echo got-term; exit 5' TERM; while :; do sleep 0.1; done",
    )  # fmt: skip
    project.running_one_off()
    trap.send_signal(signal.SIGTERM)
    out, _ = trap.communicate(timeout=30)
    assert trap.returncode == 5
    assert "got-term" in out
    # PID 1 without a handler ignores SIGINT: the second SIGINT kills it (128 + 9).
    stubborn = project.popen("run", "--rm", "-T", "--no-deps", "app", "sleep", "300")
    cid, _ = project.running_one_off(1)
    stubborn.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert stubborn.poll() is None
    stubborn.send_signal(signal.SIGINT)
    assert stubborn.wait(timeout=30) == 137
    assert_nothing_left(project, cid)


@pytest.mark.parametrize("served", [False, True], ids=["own-process", "served"])
def test_tty(project: Project, served: bool) -> None:
    """On a terminal, in a process of its own or through a warm command server
    (whose child sets the caller's terminal raw through the descriptor it was
    handed): the one-off sees a tty, its code comes back, the terminal is as
    it was afterwards."""
    env = project.env()
    server_dir = Path(tempfile.mkdtemp(prefix="cs", dir="/tmp"))  # socket paths are short
    if served:
        env = {**env, "COMPOSER_SERVER": "1", "COMPOSER_SERVER_DIR": str(server_dir)}
        env["COMPOSER_DEBUG"] = "1"
        warm = subprocess.run(
            project.argv("config", "-q"), cwd=project.workdir, env=env, check=False
        )
        assert warm.returncode == 0
        _eventually(lambda: any(server_dir.glob("*.sock")))
    try:
        code, text = _on_a_terminal(project, env)
    finally:
        subprocess.run([sys.executable, "-m", "composer.cmdserver", "stop", str(server_dir)],
                       check=False)  # fmt: skip
        _eventually(lambda: not any(server_dir.glob("*.sock")))
        shutil.rmtree(server_dir, ignore_errors=True)
    assert code == 3, text
    assert "on-a-tty" in text
    assert ("served by the command server" in text) is served
    # stty after composer: cooked mode again (icanon and echo on)
    modes = text.split("stty:", 1)[1].split()
    assert "icanon" in modes and "echo" in modes, text
    [cid] = project.one_off_ids()
    assert_nothing_left(project, cid)


def _on_a_terminal(project: Project, env: dict[str, str]) -> tuple[int, str]:
    """``run --rm`` on a terminal of its own, then ``stty -a`` there; (code, all output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the CLI on a terminal of its own
        os.chdir(project.workdir)
        argv = project.argv("run", "--rm", "--no-deps", "app", "sh", "-c",
                            "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; exit 3")  # fmt: skip
        script = '"$@"; code=$?; printf "stty: "; stty -a; exit $code'
        os.execve("/bin/sh", ["sh", "-c", script, "sh", *argv], env)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_killed_cli_takes_the_container_and_the_next_command_cleans(project: Project) -> None:
    proc = project.popen("run", "--rm", "-T", "--no-deps", "app", "sleep", "300")
    cid, state = project.running_one_off()
    pid, start = int(str(state["pid"])), int(str(state["pid_start_time"]))
    assert _alive(pid, start)
    assert [(svc, state) for svc, _, state in project.ps()] == [("app", "running")]
    proc.kill()
    proc.wait()
    _eventually(lambda: not _alive(pid, start))  # PID 1 died with the CLI
    assert (project.root / "containers" / cid).exists()  # left for the next command
    assert project.ps() == []
    assert_nothing_left(project, cid)


def test_without_rm_the_exited_container_stays(project: Project) -> None:
    done = project.cli("run", "-T", "--no-deps", "app", "sh", "-c", "echo kept; exit 2")
    assert done.code == 2, done.err
    assert done.out == "kept\n"
    [(service, _, state)] = project.ps()
    assert (service, state) == ("app", "exited")
    [cid] = project.one_off_ids()
    assert "stdout F kept" in (project.root / "containers" / cid / "container.log").read_text()
    assert project.cli("down", "-t", "0").code == 0
    assert project.ps() == []


def test_down_removes_a_one_off_the_cli_is_running(project: Project) -> None:
    proc = project.popen("run", "--rm", "-T", "--no-deps", "app", "sleep", "300")
    cid, state = project.running_one_off()
    pid, start = int(str(state["pid"])), int(str(state["pid_start_time"]))
    down = project.cli("down", "-t", "0")
    assert down.code == 0, down.err
    assert proc.wait(timeout=60) == 137  # its cgroup was killed under it
    assert not _alive(pid, start)
    assert project.ps() == []
    assert_nothing_left(project, cid, logged=False)  # down took the event log too


def test_a_one_off_with_a_healthcheck_is_still_run_by_the_supervisor(project: Project) -> None:
    done = project.cli("run", "--rm", "-T", "checked", "sh", "-c", "echo checked; exit 3")
    assert done.code == 3, done.err
    assert done.out == "checked\n"
    assert project.supervisor_pid() is not None  # the supervisor ran its probes
    [cid] = project.one_off_ids()
    assert_nothing_left(project, cid)


def test_a_supervisor_started_meanwhile_leaves_the_one_off_to_its_cli(project: Project) -> None:
    proc = project.popen("run", "--rm", "-T", "--no-deps", "app", "sh", "-c", "sleep 3; exit 4")
    cid, _ = project.running_one_off()
    up = project.cli("up", "-d", "db")  # starts the project's supervisor, which adopts what runs
    assert up.code == 0, up.err
    assert project.supervisor_pid() is not None
    assert proc.wait(timeout=60) == 4  # its own exit code, not the supervisor's "unknown"
    assert_nothing_left(project, cid)
    assert [(svc, state) for svc, _, state in project.ps()] == [("db", "running")]
