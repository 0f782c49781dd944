"""The supervisor with the real runtime: busybox containers in namespaces and cgroups.

Each test has its own state root, project and cgroups (removed afterwards,
as are the processes, even on failure). They need root and overlayfs:
skipped locally without them, failed in CI.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from composer.backends.native.runtime.cgroups import Cgroup
from composer.backends.native.supervisor import records as R
from composer.backends.native.supervisor.logs import read_logs
from composer.errors import Conflict

Project = Any  # the conftest's Project


def logs(p: Project, cid: str) -> list[tuple[str, str]]:
    return [(x.stream, x.text) for x in read_logs(R.log_path(p.root, cid))]


def test_exit_code_logs_and_namespaces(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sh", "-c", "echo pid $$; hostname; echo oops >&2; exit 3")
    p.client.start(cid)
    assert p.client.wait(cid, 30) == 3
    out = logs(p, cid)
    assert out == [("stdout", "pid 1"), ("stdout", cid[:12]), ("stderr", "oops")]
    assert p.state(cid).exit_code_known


def test_stop_without_init_kills_pid_1_that_cannot_get_the_signal(runtime_project: Project) -> None:
    p = runtime_project
    bare = p.add_box("sleep", "100")
    tini = p.add_box("sleep", "100", init=True)
    p.client.start(bare)
    p.client.start(tini)
    p.client.stop(bare, 0.5)  # PID 1 without a handler never gets SIGTERM: killed
    assert p.state(bare).exit_code == 128 + signal.SIGKILL
    p.client.stop(tini, 10)  # tini forwards SIGTERM
    assert p.state(tini).exit_code == 128 + signal.SIGTERM


def test_kill_with_a_signal(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sleep", "100", init=True)
    p.client.start(cid)
    p.client.kill(cid, "SIGUSR1")
    assert p.client.wait(cid, 30) == 128 + signal.SIGUSR1
    with pytest.raises(Conflict):
        p.client.kill(cid)


def test_restart_on_failure_two(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sh", "-c", "echo run; exit 2", restart="on-failure:2")
    p.client.start(cid)

    def done() -> bool:
        s = p.client.status(cid)
        return s["status"] == "exited" and not s["restart_pending"]

    p.poll(done, 30, "the restarts to end")
    st = p.state(cid)
    assert (st.exit_code, st.restart_count) == (2, 2)
    assert logs(p, cid) == [("stdout", "run")] * 3


def test_pause_freezes_the_cgroup(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sh", "-c", "while true; do echo t; sleep 0.05; done")
    p.client.start(cid)
    p.poll(lambda: logs(p, cid), what="output")
    p.client.pause(cid)
    st = p.state(cid)
    assert st.status == "paused"
    assert st.cgroup_path and Cgroup(st.cgroup_path).frozen()
    frozen = len(logs(p, cid))
    p.client.unpause(cid)
    assert not Cgroup(st.cgroup_path).frozen()
    p.poll(lambda: len(logs(p, cid)) > frozen + 2, what="output after unpause")
    p.client.stop(cid, 0.2)
    assert p.state(cid).exit_code == 137


def test_healthcheck_runs_inside_the_container(runtime_project: Project) -> None:
    p = runtime_project
    check = R.HealthcheckRecord(("CMD-SHELL", "test -f /tmp/ok"), interval=0.2, retries=100)
    cid = p.add_box("sh", "-c", "sleep 0.5; touch /tmp/ok; sleep 100", healthcheck=check)
    p.client.start(cid)
    assert (p.state(cid).health or R.HealthState()).status == "starting"
    p.poll(lambda: (p.state(cid).health or R.HealthState()).status == "healthy", 30)
    p.client.kill(cid)


def test_post_start_and_pre_stop_hooks(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box(
        "sleep",
        "100",
        init=True,
        post_start=(R.HookRecord(("sh", "-c", "echo started > /tmp/hook; echo post")),),
        pre_stop=(R.HookRecord(("sh", "-c", "cat /tmp/hook; echo pre")),),
    )
    p.client.start(cid)
    p.client.stop(cid, 10)
    assert [t for _, t in logs(p, cid)] == ["post", "started", "pre"]


def test_supervisor_kill_9_then_adoption_and_stop(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sh", "-c", "while true; do echo tick; sleep 0.05; done")
    p.client.start(cid)
    old = p.supervisor_pid()
    os.kill(old, signal.SIGKILL)
    p.poll(lambda: not p.alive(old), what="the old supervisor to die")
    assert R.live_status(p.state(cid)) == "running"
    before = len(logs(p, cid))
    assert p.client.status(cid)["status"] == "running"
    assert p.supervisor_pid() != old
    p.poll(lambda: len(logs(p, cid)) > before + 3, what="logging to resume")
    p.client.pause(cid)  # the cgroup is known from state.json
    p.client.stop(cid, 0.5)
    st = p.state(cid)
    assert (st.status, st.exit_code, st.exit_code_known) == ("exited", R.EXIT_UNKNOWN, False)


def test_the_supervisor_leaves_when_the_project_is_empty(runtime_project: Project) -> None:
    p = runtime_project
    cid = p.add_box("sleep", "100")
    p.client.start(cid)
    pid = p.supervisor_pid()
    p.client.kill(cid)
    p.poll(lambda: not p.alive(pid), what="the supervisor to leave")
    assert p.state(cid).exit_code == 137


def test_twenty_containers_under_one_supervisor(runtime_project: Project) -> None:
    p = runtime_project
    ids = [p.add_box("sleep", "100") for _ in range(20)]
    for cid in ids:
        p.client.start(cid)
    assert {p.state(c).status for c in ids} == {"running"}
    assert len({p.state(c).pid for c in ids}) == 20
    for cid in ids:
        p.client.kill(cid)
    for cid in ids:
        assert p.client.wait(cid, 30) == 137


def test_a_start_that_fails_in_the_runtime_is_a_backend_error(runtime_project: Project) -> None:
    from composer.errors import BackendError

    p = runtime_project
    cid = p.add_box("/no/such/program")
    with pytest.raises(BackendError, match="no/such/program"):
        p.client.start(cid)
    st = p.state(cid)
    assert st.status == "created" and "no/such/program" in st.error
