"""``--isolate`` / ``COMPOSER_ISOLATE=1`` and ``composer ports`` against dockerd:
two runs of one file with a fixed host port live side by side."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.support import CiStack, ci_stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CiStack]:
    with ci_stack(tmp_path, "iso") as s:
        s.write(
            f"""\
            name: {s.name}
            services:
              web:
                image: bb:latest
                init: true
                container_name: {s.name}-fixed
                command: ["httpd", "-f", "-p", "80", "-h", "/"]
                ports: ["127.0.0.1:{_free_port()}:80"]
                volumes: ["data:/data"]
            volumes:
              data: {{}}
            """
        )
        yield s


def _isolated_name(err: str) -> str:
    found = re.search(r"Isolated project (\S+):", err)
    assert found, err
    return found.group(1)


def test_two_isolated_runs_of_one_file_do_not_collide(stack: CiStack) -> None:
    first = stack.cli("up", "-d", "--isolate", project=False)
    second = stack.cli("up", "-d", project=False, COMPOSER_ISOLATE="1")
    assert first.code == 0, first.err
    assert second.code == 0, second.err
    names = {_isolated_name(first.err), _isolated_name(second.err)}
    assert len(names) == 2
    assert all(n.startswith(stack.name + "-") for n in names)
    maps = {}
    for name in names:
        containers, networks, volumes = stack.resources(name)
        assert containers == [f"/{name}-web-1"]  # container_name dropped
        assert networks == [f"{name}_default"]
        assert volumes == [f"{name}_data"]
        ports = stack.cli("-p", name, "ports", "--format", "json", project=False)
        assert ports.code == 0, ports.err
        rows = json.loads(ports.out)
        assert [(r["service"], r["container_port"], r["host_ip"]) for r in rows] == [
            ("web", 80, "127.0.0.1")
        ]
        maps[name] = rows[0]["host_port"]
        with socket.create_connection(("127.0.0.1", rows[0]["host_port"]), timeout=5):
            pass
    assert len(set(maps.values())) == 2


def test_isolated_up_again_changes_nothing_and_ps_json_has_the_map(stack: CiStack) -> None:
    first = stack.cli("up", "-d", "--isolate", project=False)
    name = _isolated_name(first.err)
    again = stack.cli("-p", name, "up", "-d", "--isolate", project=False)
    assert again.code == 0, again.err
    assert f"Container {name}-web-1  Running" in again.err
    assert "Isolated project" not in again.err  # the name was given
    ps = stack.cli("-p", name, "ps", "--format", "json", project=False)
    record = json.loads(ps.out.splitlines()[0])
    ports = json.loads(stack.cli("-p", name, "ports", "--format", "json", project=False).out)
    assert record["Publishers"][0]["PublishedPort"] == ports[0]["host_port"]
    assert record["Publishers"][0]["TargetPort"] == 80


def test_ports_table(stack: CiStack) -> None:
    name = _isolated_name(stack.cli("up", "-d", "--isolate", project=False).err)
    table = stack.cli("-p", name, "ports", project=False)
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    assert header.split() == ["SERVICE", "CONTAINER", "PORT", "HOST"]
    assert row.split()[:3] == ["web", f"{name}-web-1", "80/tcp"]
