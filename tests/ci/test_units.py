"""The small pieces: isolation of a project, the ports map, PID checks of the
reaper, Docker's healthcheck log, and --logs-dir on the fake engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from composer import isolate
from composer.backends.base import ObservedContainer, PortBinding
from composer.backends.docker.health import health_from_inspect
from composer.backends.fake import FakeBackend
from composer.backends.optional import HealthLog, HealthResult, ParentReaper
from composer.cli_ci import port_rows, render_ports
from composer.clock import FakeClock
from composer.events import CollectingReporter
from composer.logs_dir import save_logs
from composer.planner.executor import execute
from composer.planner.options import UpOptions
from composer.planner.reconcile import reconcile
from composer.planner.specs import image_ref
from composer.reaper import alive, start_time
from tests.planner.planfixtures import project


def test_isolate_drops_published_ports_and_container_names() -> None:
    p = project(
        {
            "web": {
                "image": "bb",
                "container_name": "fixed",
                "ports": [
                    {"target": 80, "published": "8080", "host_ip": "127.0.0.1"},
                    {"target": 53, "protocol": "udp", "published": "5353"},
                ],
            }
        }
    )
    out = isolate.isolate(p)
    web = out.services["web"]
    assert web.container_name is None
    assert [(q.target, q.published, q.host_ip, q.protocol) for q in web.ports] == [
        (80, None, "127.0.0.1", "tcp"),
        (53, None, None, "udp"),
    ]
    assert p.services["web"].ports[0].published == "8080"  # the input is untouched


def test_isolate_switches() -> None:
    assert isolate.wanted(True, {})
    assert isolate.wanted(False, {"COMPOSER_ISOLATE": "1"})
    assert not isolate.wanted(False, {"COMPOSER_ISOLATE": "0"})
    assert isolate.name_given("x", {})
    assert isolate.name_given(None, {"COMPOSE_PROJECT_NAME": "y"})
    assert not isolate.name_given(None, {})
    assert isolate.unique_name("demo", "0a1b2c3d") == "demo-0a1b2c3d"
    assert isolate.unique_name("demo") != isolate.unique_name("demo")


def _container(
    name: str, service: str, ports: tuple[PortBinding, ...], oneoff: bool = False
) -> ObservedContainer:
    return ObservedContainer(
        id=name, name=name, service=service, number=1, oneoff=oneoff, state="running", ports=ports
    )


def test_port_rows_and_rendering() -> None:
    rows = port_rows(
        [
            _container(
                "d-web-1", "web", (PortBinding(80, "tcp", "0.0.0.0", 32768), PortBinding(81))
            ),
            _container("d-db-1", "db", (PortBinding(5432, "tcp", "127.0.0.1", 32769),)),
            _container("d-web-run-1", "web", (PortBinding(80, "tcp", "0.0.0.0", 1),), oneoff=True),
        ]
    )
    assert [(r.service, r.container_port, r.host_port) for r in rows] == [
        ("db", 5432, 32769),
        ("web", 80, 32768),
    ]
    assert '"host_port": 32769' in render_ports(rows, "json")
    assert render_ports(rows, "table").splitlines()[1].split() == [
        "db",
        "d-db-1",
        "5432/tcp",
        "127.0.0.1:32769",
    ]


def test_alive_tells_a_dead_or_reused_pid() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = start_time(child.pid)
        assert started is not None
        assert alive(child.pid, started)
        assert not alive(child.pid, str(int(started) + 1))  # another process, same PID
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid, started)
    assert alive(os.getpid(), None)


def test_docker_health_log() -> None:
    data = {
        "State": {
            "Health": {
                "Log": [
                    {"Start": "2026-01-02T03:04:05.123456789Z", "ExitCode": 1, "Output": "no\n"},
                    {"Start": "bad", "ExitCode": 0, "Output": ""},
                ]
            }
        }
    }
    first, second = health_from_inspect(data)
    assert first == HealthResult(1767323045.123456, 1, "no\n")
    assert second == HealthResult(0.0, 0, "")
    assert health_from_inspect({"State": {}}) == []


def test_optional_verbs() -> None:
    from composer.backends.docker.backend import DockerBackend

    docker = DockerBackend({})
    assert isinstance(docker, HealthLog)
    assert not isinstance(docker, ParentReaper)  # the watchdog does it for Docker
    assert not isinstance(FakeBackend(FakeClock()), HealthLog)


def test_logs_dir_writes_one_file_per_service(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock)
    p = project({"db": {"image": "bb"}, "web": {"image": "bb", "scale": 2}})
    for name in p.services:
        backend.add_image(image_ref(p, name))
    backend.script("db", output=(("stdout", "db line"), ("stderr", "db warn")))
    backend.script("web", output=(("stdout", "web line"),))
    plan = reconcile(p, backend.observe(p.name, ["bb"]), UpOptions(), now=0.0)
    assert execute(plan, backend, CollectingReporter(), parallel=None, clock=clock).ok
    written = save_logs(backend, p.name, tmp_path / "out")
    assert [f.name for f in written] == ["db.log", "web.log"]
    assert (tmp_path / "out" / "db.log").read_text() == "db line\ndb warn\n"
    assert (tmp_path / "out" / "web.log").read_text() == (
        "==> demo-web-1 <==\nweb line\n==> demo-web-2 <==\nweb line\n"
    )


def test_purge_removes_one_project_and_nothing_else(tmp_path: Path) -> None:
    from composer.reaper import purge

    clock = FakeClock()
    backend = FakeBackend(clock)
    stacks = [
        project(
            {
                "db": {
                    "image": "bb",
                    "volumes": [{"type": "volume", "source": "data", "target": "/d"}],
                }
            },
            volumes={"data": {}},
        ),
        project({"db": {"image": "bb"}}, name="other"),
    ]
    for p in stacks:
        backend.add_image(image_ref(p, "db"))
        plan = reconcile(p, backend.observe(p.name, ["bb"]), UpOptions(), now=0.0)
        assert execute(plan, backend, CollectingReporter(), parallel=None, clock=clock).ok
    backend.script("db", output=(("stdout", "db line"),))
    purge(backend, "demo", logs_dir=str(tmp_path / "logs"))
    gone = backend.observe("demo")
    assert gone.containers == ()
    assert [n for n, v in gone.volumes.items() if not v.external] == []
    assert [n for n, v in gone.networks.items() if not v.external] == []
    assert [c.name for c in backend.observe("other").containers] == ["other-db-1"]
    assert "other_default" in backend.observe("other").networks
    assert (tmp_path / "logs" / "db.log").exists()
