"""exec_in: a process inside a running container, with the container's rules."""

from __future__ import annotations

import os
import signal

import pytest

from composer.backends.native.runtime.exec import exec_in, exec_spec_for
from composer.backends.native.runtime.report import ExecutableNotFound, LaunchError
from composer.backends.native.runtime.spec import Launched, LaunchSpec, Stdio

from .conftest import Box, Result


def run_exec(box: Box, pid: int, spec: object) -> Result:
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        started = exec_in(pid, spec, Stdio(null, out_w, out_w))  # type: ignore[arg-type]
    finally:
        os.close(out_w)
        os.close(null)
    with os.fdopen(out_r, "rb") as f:
        data = f.read().decode()
    _, status = os.waitpid(started.pid, 0)
    return Result(os.waitstatus_to_exitcode(status), data, "")


@pytest.fixture
def running(box: Box) -> tuple[LaunchSpec, Launched]:
    spec = box.spec("sleep", "60", hostname="target", user="", env=("PATH=/bin", "A=container"))
    return spec, box.start(spec)


def test_exec_joins_namespaces_cgroup_and_keeps_the_rules(
    box: Box, running: tuple[LaunchSpec, Launched]
) -> None:
    spec, started = running
    r = run_exec(
        box,
        started.pid,
        exec_spec_for(
            spec,
            (
                "sh",
                "-c",
                "hostname; echo $A $B; ps -o pid,args | awk '$1 == 1 {print $2, $3}';"
                " cat /proc/self/cgroup | grep pids;"
                " grep -E '^(CapEff|Seccomp):' /proc/self/status",
            ),
            env=("B=exec",),
        ),
    )
    lines = r.out.splitlines()
    assert lines[0] == "target"
    assert lines[1] == "container exec"
    assert lines[2] == "sleep 60"  # sees the container's PID 1: same pid namespace
    assert spec.cgroup is not None and lines[3].endswith(f"/{spec.cgroup.path}")
    assert lines[4:] == ["CapEff:\t00000000a80425fb", "Seccomp:\t2"]
    for ns in ("mnt", "uts", "ipc", "net", "pid"):
        assert os.readlink(f"/proc/{started.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")


def test_exec_as_another_user_and_directory(box: Box, running: tuple[LaunchSpec, Launched]) -> None:
    spec, started = running
    r = run_exec(
        box, started.pid, exec_spec_for(spec, ("sh", "-c", "id -u; pwd"), user="app", cwd="/tmp")
    )
    assert r.out.split() == ["1000", "/tmp"]


def test_exec_privileged_gets_every_capability_and_no_filter(
    box: Box, running: tuple[LaunchSpec, Launched]
) -> None:
    spec, started = running
    r = run_exec(
        box,
        started.pid,
        exec_spec_for(
            spec, ("grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"), privileged=True
        ),
    )
    cap_eff = r.out.split()[1]
    assert int(cap_eff, 16) & ~0xA80425FB  # more than the defaults
    assert r.out.split()[3] == "0"


def test_exec_errors_come_back_with_docker_codes(
    box: Box, running: tuple[LaunchSpec, Launched]
) -> None:
    spec, started = running
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with pytest.raises(ExecutableNotFound) as info:
            exec_in(started.pid, exec_spec_for(spec, ("nope",)), Stdio(null, null, null))
        assert info.value.exit_code == 127
        with pytest.raises(LaunchError, match="unable to find user ghost"):
            exec_in(
                started.pid, exec_spec_for(spec, ("true",), user="ghost"), Stdio(null, null, null)
            )
    finally:
        os.close(null)


def test_exec_into_a_dead_container_fails_clearly(box: Box) -> None:
    spec = box.spec("true")
    r = box.run(spec)
    assert r.code == 0
    with pytest.raises(LaunchError, match="not running"):
        exec_in(999_999_999, exec_spec_for(spec, ("true",)), Stdio(0, 1, 2))


def test_exec_process_has_no_parent_inside_the_container(
    box: Box, running: tuple[LaunchSpec, Launched]
) -> None:
    """CVE-2019-5736: nothing of the host runtime is visible from inside.

    The helper that joins the namespaces is non-dumpable and has exited by
    the time the program runs; the program's parent is the caller, outside
    the container's PID namespace, so it shows as PPID 0.
    """
    spec, started = running
    r = run_exec(box, started.pid, exec_spec_for(spec, ("sh", "-c", "echo $PPID; ls /proc")))
    lines = r.out.split()
    assert lines[0] == "0"
    assert sorted(p for p in lines[1:] if p.isdigit()) == sorted(
        p for p in lines[1:] if p.isdigit() and int(p) < 50
    )


def test_exec_processes_die_with_the_container(
    box: Box, running: tuple[LaunchSpec, Launched]
) -> None:
    spec, started = running
    null = os.open(os.devnull, os.O_RDWR)
    try:
        child = exec_in(started.pid, exec_spec_for(spec, ("sleep", "60")), Stdio(null, null, null))
    finally:
        os.close(null)
    os.kill(started.pid, signal.SIGKILL)  # PID 1 dies: the kernel kills its namespace
    _, status = os.waitpid(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL


def test_exec_gets_the_containers_oom_score_adj(box: Box) -> None:
    spec = box.spec("sleep", "60", oom_score_adj=300)
    started = box.start(spec)
    r = run_exec(box, started.pid, exec_spec_for(spec, ("cat", "/proc/self/oom_score_adj")))
    assert r.out == "300\n"
