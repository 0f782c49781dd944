"""ps, logs, port, top, images, ls, exec, cp, events and wait against a real dockerd.

One small stack per module (a web server with a published port, a worker that
writes to stdout and stderr, and a job that exits with a code), brought up
through the planner; every check runs ``python -m composer`` as a user would.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
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
    up,
    wait_until,
    write_project,
)

STACK = """
services:
  web:
    image: bb:latest
    init: true
    command: ["httpd", "-f", "-p", "80", "-h", "/"]
    ports: ["127.0.0.1:{port}:80"]
  worker:
    image: bb:latest
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "echo hello from worker; echo oops >&2; sleep 300"]
  job:
    image: bb:latest
    command: ["sh", "-c", "echo one; echo two; exit 3"]
"""


@dataclass
class Stack:
    root: Path
    name: str
    port: int
    backend: Any

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> Run:
        return composer("-p", self.name, *args, cwd=self.root, stdin=stdin, timeout=timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    backend = docker_backend()
    port = free_port()
    root = write_project(tmp_path_factory.mktemp("ops"), STACK.format(port=port))
    name = project_name()
    try:
        up(backend, root, name)
        found = Stack(root, name, port, backend)
        # The job has exited and the worker has written its lines.
        wait_until(lambda: "hello from worker" in found.run("logs", "worker").out)
        wait_until(lambda: "Exited (3)" in found.run("ps", "-a", "job").out)
        yield found
    finally:
        remove_project(backend, name)
        backend.close()


# --- ps ---------------------------------------------------------------------------------


def test_ps_table_lists_running_containers_with_ports(stack: Stack) -> None:
    result = stack.run("ps")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == [f"{stack.name}-web-1", f"{stack.name}-worker-1"]  # the job has exited
    web = lines[1]
    assert f"127.0.0.1:{stack.port}->80/tcp" in web
    assert '"httpd -f -p 80 -h /"' in web
    assert re.search(r"\bUp \w+", web)
    # Columns line up as tabwriter pads them: PORTS starts at the same offset everywhere.
    assert web.index(f"127.0.0.1:{stack.port}") == lines[0].index("PORTS")


def test_ps_json_has_docker_compose_fields(stack: Stack) -> None:
    result = stack.run("ps", "--format", "json", "web")
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.out.splitlines()]
    assert len(records) == 1
    web = records[0]
    assert set(web) == {
        "Command", "CreatedAt", "ExitCode", "Health", "ID", "Image", "Labels", "LocalVolumes",
        "Mounts", "Name", "Names", "Networks", "Ports", "Project", "Publishers", "RunningFor",
        "Service", "Size", "State", "Status",
    }  # fmt: skip
    assert web["Name"] == f"{stack.name}-web-1"
    assert web["Project"] == stack.name
    assert web["Service"] == "web"
    assert web["State"] == "running"
    assert web["Image"] == "bb:latest"
    assert len(web["ID"]) == 12
    assert web["Networks"] == f"{stack.name}_default"
    assert web["Publishers"] == [
        {"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": stack.port, "Protocol": "tcp"}
    ]
    assert "com.docker.compose.service=web" in web["Labels"]


def test_ps_all_status_filters_quiet_and_services(stack: Stack) -> None:
    everything = stack.run("ps", "-a", "--format", "json")
    job = [json.loads(line) for line in everything.out.splitlines() if '"job"' in line]
    assert [(j["State"], j["ExitCode"]) for j in job] == [("exited", 3)]
    exited = stack.run("ps", "--status", "exited", "-q")
    assert exited.out.split() == [job[0]["ID"]] or exited.out.strip().startswith(job[0]["ID"])
    running = stack.run("ps", "--filter", "status=running", "--services")
    assert running.out.split() == ["web", "worker"]
    bad = stack.run("ps", "--filter", "colour=red")
    assert bad.code == 1 and "unknown filter colour" in bad.err
    unknown = stack.run("ps", "nosuch")
    assert unknown.code == 1 and "no such service: nosuch" in unknown.err


def test_ps_with_project_name_only_works_without_files(stack: Stack, tmp_path: Path) -> None:
    result = composer("-p", stack.name, "ps", "--services", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.split() == ["web", "worker"]


# --- logs -------------------------------------------------------------------------------


def test_logs_prefix_streams_and_options(stack: Stack) -> None:
    both = stack.run("logs", "worker", "job")
    assert both.code == 0, both.err
    lines = both.out.splitlines()
    assert "worker-1  | hello from worker" in lines
    assert "worker-1  | oops" in lines  # stderr lines are shown too
    assert [line for line in lines if line.startswith("job-1")] == [
        "job-1     | one",
        "job-1     | two",
    ]
    plain = stack.run("logs", "--no-log-prefix", "job")
    assert plain.out.splitlines() == ["one", "two"]
    tail = stack.run("logs", "-n", "1", "--no-log-prefix", "job")
    assert tail.out.splitlines() == ["two"]
    stamped = stack.run("logs", "-t", "job")
    assert re.fullmatch(
        r"job-1  \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one", stamped.out.splitlines()[0]
    )
    future = stack.run("logs", "--since", "2999-01-01T00:00:00Z", "job")
    assert future.code == 0 and future.out == ""
    indexed = stack.run("logs", "--index", "1", "--no-log-prefix", "job")
    assert indexed.out.splitlines() == ["one", "two"]
    refused = stack.run("logs", "--index", "1")
    assert refused.code == 1 and "--index requires one service" in refused.err


def test_logs_follow_ends_when_the_container_has_stopped(stack: Stack) -> None:
    result = stack.run("logs", "-f", "--no-log-prefix", "job", timeout=30)
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["one", "two"]


# --- port, top, images, ls ------------------------------------------------------------------


def test_port_prints_the_host_binding(stack: Stack) -> None:
    result = stack.run("port", "web", "80")
    assert (result.code, result.out) == (0, f"127.0.0.1:{stack.port}\n")
    missing = stack.run("port", "web", "81")
    assert missing.code == 1
    assert f"no port 81/tcp for container {stack.name}-web-1: 80/tcp" in missing.err
    udp = stack.run("port", "--protocol", "udp", "web", "80")
    assert udp.code == 1


def test_top_lists_processes_by_service(stack: Stack) -> None:
    result = stack.run("top")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:2] == ["SERVICE", "#"]
    assert lines[0].split()[-1] == "CMD"
    services = {line.split()[0] for line in lines[1:]}
    assert services == {"web", "worker"}
    assert any(line.split()[1] == "1" and "httpd -f -p 80" in line for line in lines[1:])


def test_images_table_json_and_quiet(stack: Stack) -> None:
    table = stack.run("images")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["CONTAINER", "REPOSITORY", "TAG", "IMAGE", "ID", "SIZE", "CREATED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {f"{stack.name}-{s}-1" for s in ("web", "worker", "job")}
    assert rows[f"{stack.name}-web-1"][1:3] == ["bb", "latest"]
    data = json.loads(stack.run("images", "--format", "json").out)
    assert {d["ContainerName"] for d in data} == set(rows)
    image_id = stack.backend.image_id("bb:latest")
    assert {d["ID"] for d in data} == {image_id}
    assert all(d["Repository"] == "bb" and d["Tag"] == "latest" and d["Size"] > 0 for d in data)
    quiet = stack.run("images", "-q")
    assert quiet.out.split() == [image_id.split(":", 1)[1]]


def test_ls_lists_the_project(stack: Stack, tmp_path: Path) -> None:
    result = composer("ls", "--format", "json", "--filter", f"name={stack.name}", cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {
            "Name": stack.name,
            "Status": "running(2)",
            "ConfigFiles": str(stack.root / "compose.yaml"),
        }
    ]
    everything = composer("ls", "-a", "--filter", f"name={stack.name}", cwd=tmp_path)
    lines = everything.out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "CONFIG", "FILES"]
    assert lines[1].startswith(stack.name)
    assert "exited(1), running(2)" in lines[1]
    quiet = composer("ls", "-q", "--filter", f"name={stack.name}", cwd=tmp_path)
    assert quiet.out == f"{stack.name}\n"


# --- exec, cp -----------------------------------------------------------------------------


def test_exec_runs_in_the_container_and_passes_the_exit_code(stack: Stack) -> None:
    assert stack.run("exec", "-T", "worker", "echo", "hi").out == "hi\n"
    failing = stack.run("exec", "-T", "worker", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (failing.code, failing.out) == (3, "out\n")
    assert "err" in failing.err
    env = stack.run("exec", "-T", "-e", "FOO=bar", "worker", "--", "sh", "-c", "echo $FOO")
    assert env.out == "bar\n"
    workdir = stack.run("exec", "-T", "-w", "/tmp", "worker", "pwd")
    assert workdir.out == "/tmp\n"
    user = stack.run("exec", "-T", "-u", "1000", "worker", "--", "id", "-u")
    assert user.out == "1000\n"
    # As in docker compose, flags after SERVICE belong to the command.
    shell = stack.run("exec", "-T", "worker", "sh", "-c", "echo $((6 * 7))")
    assert (shell.code, shell.out) == (0, "42\n")
    piped = stack.run("exec", "-T", "worker", "cat", stdin="through stdin\n")
    assert piped.out == "through stdin\n"
    stopped = stack.run("exec", "-T", "job", "true")
    assert stopped.code == 1 and 'service "job" is not running' in stopped.err


def test_cp_copies_files_and_trees_both_ways(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("hello cp\n")
    tree = tmp_path / "tree" / "sub"
    tree.mkdir(parents=True)
    (tree / "leaf").write_text("leaf\n")

    def cp(*args: str) -> Run:
        return composer("-p", stack.name, "cp", *args, cwd=tmp_path)

    assert cp("note.txt", "worker:/tmp/note.txt").code == 0
    assert stack.run("exec", "-T", "worker", "cat", "/tmp/note.txt").out == "hello cp\n"
    assert cp("tree", "worker:/tmp").code == 0
    assert stack.run("exec", "-T", "worker", "cat", "/tmp/tree/sub/leaf").out == "leaf\n"

    assert cp("worker:/tmp/note.txt", "back.txt").code == 0
    assert (tmp_path / "back.txt").read_text() == "hello cp\n"
    (tmp_path / "into").mkdir()
    assert cp("worker:/tmp/tree", "into").code == 0
    assert (tmp_path / "into" / "tree" / "sub" / "leaf").read_text() == "leaf\n"
    assert cp("worker:/tmp/tree", "copy").code == 0
    assert (tmp_path / "copy" / "sub" / "leaf").read_text() == "leaf\n"

    archive = composer_bytes(stack, tmp_path, "cp", "worker:/tmp/note.txt", "-")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["note.txt"]
    missing = cp("worker:/nonexistent", "x")
    assert missing.code == 1


def composer_bytes(stack: Stack, cwd: Path, *args: str) -> bytes:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE")}
    proc = subprocess.run(
        [sys.executable, "-m", "composer", "--backend", "docker", "-p", stack.name, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


# --- events, wait ----------------------------------------------------------------------------


def test_events_json_replays_a_window_of_the_projects_events(stack: Stack) -> None:
    assert stack.run("exec", "-T", "worker", "true").code == 0
    result = stack.run("events", "--json", "--since", "5m", "--until", "0s", timeout=30)
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert events, "no events"
    assert all(set(e) == {"action", "attributes", "id", "service", "time", "type"} for e in events)
    assert {e["type"] for e in events} == {"container"}
    starts = {e["service"] for e in events if e["action"] == "start"}
    assert starts >= {"web", "worker", "job"}
    assert any(e["action"].startswith("exec_") and e["service"] == "worker" for e in events)
    assert not any(k.startswith("com.docker.compose.") for e in events for k in e["attributes"])
    text = stack.run("events", "--since", "5m", "--until", "0s", "web", timeout=30)
    first = text.out.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} container \w+ [0-9a-f]{64} \(", first)


def test_wait_blocks_until_the_service_stops_and_returns_its_code(stack: Stack) -> None:
    started = stack.run("run", "-d", "job", "--", "sh", "-c", "sleep 2; exit 3")
    assert started.code == 0, started.err
    container_id = started.out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    result = stack.run("wait", "job", timeout=60)
    assert result.code == 3, result.err
    assert f'container "{container_id}" exited with status code 3' in result.out
    nothing = stack.run("wait", "job")
    assert nothing.code == 1 and "no containers" in nothing.err
