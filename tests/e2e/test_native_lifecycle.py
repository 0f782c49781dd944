"""The CLI on the native engine over samples/busybox-stack: up, ps, logs, exec, down.

The stack runs under its own state root (``COMPOSER_ROOT`` in the test's
temporary directory) with ``bb:latest`` loaded from ``docker save``. An
override file gives the web service a free host port and the API a named
volume. After ``down`` nothing of the project may remain: no container
records, network records, supervisor, container processes, cgroups, mounts
or bridge; the named volume survives ``down``/``up`` and a recreate and is
gone after ``down -v``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer.backends.native.supervisor.records import pid_is_zombie, pid_start_time
from tests.e2e.ops_support import Run, free_port, save_test_image

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "busybox-stack" / "compose.yaml"

OVERRIDE = """\
services:
  web:
    ports: !override ["127.0.0.1:{port}:80"]
  api:
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""

RECREATE = """\
services:
  api:
    environment:
      REVISION: "2"
"""


@dataclass
class NativeStack:
    root: Path
    workdir: Path
    name: str
    files: list[str]

    def cli(self, *args: str) -> Run:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
        environ.update(
            {"COMPOSE_ANSI": "never", "COMPOSE_PROGRESS": "plain", "COMPOSER_ROOT": str(self.root)}
        )
        argv = [sys.executable, "-m", "composer", "--backend", "native", "-p", self.name]
        for f in self.files:
            argv += ["-f", f]
        proc = subprocess.run(
            [*argv, *args],
            cwd=self.workdir,
            env=environ,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str) -> Run:
        run = self.cli(*args)
        assert run.code == 0, f"composer {' '.join(args)}: {run.out}\n{run.err}"
        return run

    def records(self) -> dict[str, dict[str, object]]:
        """Container name → record of every container under the state root."""
        out: dict[str, dict[str, object]] = {}
        for d in (self.root / "containers").glob("*/record.json"):
            data = json.loads(d.read_text())
            out[str(data["name"])] = data
        return out


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[NativeStack]:
    archive = save_test_image(tmp_path / "bb.tar")
    root = tmp_path / "state"
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    load(NativeBackend({"COMPOSER_ROOT": str(root)}).images, archive)
    override = tmp_path / "override.yaml"
    override.write_text(OVERRIDE.format(port=free_port()))
    s = NativeStack(root, SAMPLE.parent, f"nat{uuid.uuid4().hex[:8]}", [str(SAMPLE), str(override)])
    try:
        yield s
    finally:
        s.cli("down", "-v", "-t", "0")


def _eventually(predicate: Callable[[], bool], limit: float = 15.0) -> None:
    """Poll until ``predicate`` holds (a process leaving takes its own time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.1)


def _cgroups_of(ids: list[str]) -> list[str]:
    found = []
    for base in Path("/sys/fs/cgroup").iterdir():
        for container_id in ids:
            found += [str(p) for p in base.rglob(container_id)] if base.is_dir() else []
    return found


def _processes_under(root: Path) -> list[int]:
    """PIDs whose command line names the state root: the project's supervisors.

    Container processes are checked through their cgroups (``_cgroups_of``): a
    cgroup directory can only be removed once no process is left in it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if str(root) in cmdline:
                pids.append(int(entry.name))
    return pids


def test_up_ps_logs_exec_down_leave_nothing(stack: NativeStack) -> None:
    stack.ok("up", "-d", "--wait")
    ps = stack.ok("ps", "--format", "json").out
    rows = [json.loads(line) for line in ps.splitlines() if line.strip()]
    services = {r["Service"]: r for r in rows}
    assert {"db", "api", "web"} <= set(services), ps
    assert "(healthy)" in services["db"]["Status"]
    assert "migrated" in stack.ok("logs", "migrate").out
    # Services find each other by name; the named volume is writable.
    out = stack.ok("exec", "-T", "api", "wget", "-qO-", "http://db:5432/etc/hostname").out
    assert out.strip()
    stack.ok("exec", "-T", "api", "sh", "-c", "echo kept > /data/marker")
    records = stack.records()
    ids = [str(r["id"]) for r in records.values()]
    networks = [json.loads(p.read_text()) for p in (stack.root / "networks").glob("*/network.json")]
    bridges = [str(n["bridge"]) for n in networks]
    assert ids and bridges

    stack.ok("down", "-t", "1")
    assert stack.records() == {}
    assert list((stack.root / "networks").iterdir()) == []
    # down asks the supervisor to leave; it is gone once its socket is.
    _eventually(lambda: not (stack.root / "projects" / stack.name / "supervisor.sock").exists())
    _eventually(lambda: _processes_under(stack.root) == [])
    assert not (stack.root / "events" / f"{stack.name}.jsonl").exists()
    # The supervisor's home (pid lock, log) and the networks' lock files go too.
    _eventually(lambda: not (stack.root / "projects" / stack.name).exists())
    assert list((stack.root / "locks").glob("network-*")) == []
    assert _cgroups_of(ids) == []
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(stack.root) not in mountinfo
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for bridge in bridges:
        assert f" {bridge}:" not in links
    volume = f"{stack.name}_data"
    assert (stack.root / "volumes" / volume / "_data" / "marker").read_text() == "kept\n"

    # The named volume survives down/up and a recreate.
    stack.ok("up", "-d", "--wait")
    assert stack.ok("exec", "-T", "api", "cat", "/data/marker").out == "kept\n"
    before = stack.records()[f"{stack.name}-api-1"]["id"]
    recreate = stack.root.parent / "recreate.yaml"
    recreate.write_text(RECREATE)
    stack.files.append(str(recreate))
    stack.ok("up", "-d", "--wait")
    after = stack.records()[f"{stack.name}-api-1"]["id"]
    assert after != before
    assert stack.ok("exec", "-T", "api", "cat", "/data/marker").out == "kept\n"
    assert stack.ok("exec", "-T", "api", "sh", "-c", "echo $REVISION").out == "2\n"

    stack.ok("down", "-v", "-t", "1")
    assert stack.records() == {}
    assert not (stack.root / "volumes" / volume).exists()


TWO_NETWORKS = """\
services:
  front:
    image: bb:latest
    init: true
    command: ["httpd", "-f", "-p", "80", "-h", "/"]
    networks: [edge, inner]
  back:
    image: bb:latest
    init: true
    command: ["sleep", "300"]
    networks: [inner]
    volumes: ["/scratch"]
networks:
  edge: {}
  inner: {}
"""


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _our_links(root: Path) -> set[str]:
    """The bridges and host-side veths the state root's networks made."""
    found: set[str] = set()
    for net in (root / "networks").glob("*/network.json"):
        found.add(str(json.loads(net.read_text())["bridge"]))
        for endpoint in (net.parent / "endpoints").glob("*.json"):
            found.add(str(json.loads(endpoint.read_text())["host_ifname"]))
    return found


def _files(root: Path) -> set[str]:
    """Every path under the state root except the image store and scratch space."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.relative_to(root).parts[0] not in ("images", "tmp", "locks")
    }


def _net_namespaces() -> set[int]:
    """Inodes of the network namespaces any process on the host is in."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.add((entry / "ns" / "net").stat().st_ino)
    return found


def _networks(root: Path) -> dict[str, str]:
    """Network id → bridge, of every network under the state root."""
    out = {}
    for path in (root / "networks").glob("*/network.json"):
        data = json.loads(path.read_text())
        out[str(data["id"])] = str(data["bridge"])
    return out


def _firewall_mentions(ids: list[str], bridges: list[str]) -> list[str]:
    """Lines of the nftables ruleset and of iptables that name these networks."""
    from composer.backends.native.network.firewall import tag

    text = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    if shutil.which("iptables-save"):
        text += subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    marks = [tag(i) for i in ids] + bridges
    return [line for line in text.splitlines() if any(m in line for m in marks)]


def test_up_down_cycles_leave_nothing_behind(stack: NativeStack, tmp_path: Path) -> None:
    """50 up/down cycles of a two-network stack: no bridge, veth, network namespace,
    mount, cgroup, firewall rule, process or file stays behind."""
    compose = tmp_path / "two-networks.yaml"
    compose.write_text(TWO_NETWORKS)
    stack.files = [str(compose)]
    cycles = int(os.environ.get("COMPOSER_LEAK_CYCLES", "50"))
    stack.ok("up", "-d")
    stack.ok("down", "-v", "-t", "0")
    _eventually(lambda: _processes_under(stack.root) == [])
    files = _files(stack.root)
    seen: list[str] = []
    networks: dict[str, str] = {}
    for _ in range(cycles):
        stack.ok("up", "-d")
        records = stack.records().values()
        seen += [str(r["id"]) for r in records]
        namespaces = set()  # checked per cycle: the kernel reuses a freed namespace's inode
        for r in records:
            state_file = stack.root / "containers" / str(r["id"]) / "state.json"
            state = json.loads(state_file.read_text())
            namespaces.add(Path(f"/proc/{state['pid']}/ns/net").stat().st_ino)
        assert len(namespaces) == 2
        current = _networks(stack.root)
        assert _firewall_mentions(list(current), list(current.values()))  # what down must remove
        networks.update(current)
        ours = _our_links(stack.root)
        assert len(ours) == 2 + 3  # two bridges, three veths (front is on both networks)
        stack.ok("exec", "-T", "back", "ping", "-c1", "-W2", "front")
        stack.ok("down", "-v", "-t", "0")
        _eventually(lambda: _processes_under(stack.root) == [])
        assert _host_links() & ours == set()
        _eventually(lambda ns=frozenset(namespaces): _net_namespaces() & ns == set())
    assert len(seen) == len(set(seen)) == 2 * cycles
    assert len(networks) == 2 * cycles
    _eventually(lambda: not (stack.root / "projects" / stack.name).exists())
    assert _files(stack.root) - files == set()
    assert _cgroups_of(seen) == []
    assert str(stack.root) not in Path("/proc/self/mountinfo").read_text()
    assert _firewall_mentions(list(networks), list(networks.values())) == []


def test_down_cleans_up_after_the_supervisor_was_killed(stack: NativeStack) -> None:
    stack.ok("up", "-d", "--wait")
    ids = [str(r["id"]) for r in stack.records().values()]
    pid = int((stack.root / "projects" / stack.name / "supervisor.pid").read_text())
    os.kill(pid, 9)
    _eventually(lambda: pid_start_time(pid) is None or pid_is_zombie(pid))
    # The containers outlive their supervisor; the next command adopts them.
    assert len(stack.ok("ps", "-q").out.split()) == len(ids) - 1  # migrate has exited
    assert stack.ok("exec", "-T", "api", "true").code == 0
    stack.ok("down", "-t", "1")
    assert stack.records() == {}
    _eventually(lambda: _processes_under(stack.root) == [])
    assert _cgroups_of(ids) == []
    assert str(stack.root) not in Path("/proc/self/mountinfo").read_text()
