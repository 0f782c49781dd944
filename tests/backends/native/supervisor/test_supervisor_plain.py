"""The supervisor process end to end, with containers run as plain host processes.

The supervisor is started for real (daemonised, subreaper, socket, lock)
by ``SupervisorClient``; only the launcher is the test helper of
``plain_launcher.py``, so these run without namespaces. The same paths
with the real runtime are in ``test_supervisor_runtime.py``.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from composer.backends.native.supervisor import records as R
from composer.backends.native.supervisor.client import SupervisorClient
from composer.backends.native.supervisor.logs import read_logs
from composer.errors import Conflict, NotFound, Unavailable

Project = Any  # the conftest's Project (conftest modules are not importable)


def logs(p: Project, cid: str) -> list[tuple[str, str]]:
    return [(x.stream, x.text) for x in read_logs(R.log_path(p.root, cid))]


def test_start_logs_and_exit_code(plain: Project) -> None:
    cid = plain.add(("sh", "-c", "echo out; echo err >&2; printf partial; exit 3"))
    plain.client.start(cid)
    assert plain.client.wait(cid, 15) == 3
    st = plain.state(cid)
    assert (st.status, st.exit_code, st.exit_code_known) == ("exited", 3, True)
    assert st.started_at > 0 and st.finished_at >= st.started_at
    assert sorted(logs(plain, cid)) == [("stderr", "err"), ("stdout", "out"), ("stdout", "partial")]


def test_stop_sends_the_stop_signal_then_sigkill(plain: Project) -> None:
    polite = plain.add(("sleep", "100"))
    stubborn = plain.add(("sh", "-c", "trap '' TERM; echo ready; sleep 100 & wait"))
    plain.client.start(polite)
    plain.client.start(stubborn)
    assert plain.state(polite).status == "running"
    plain.client.stop(polite, 5)
    assert plain.state(polite).exit_code == 128 + signal.SIGTERM
    plain.poll(lambda: logs(plain, stubborn), what="the trap to be set")
    plain.client.stop(stubborn, 0.3)
    assert plain.state(stubborn).exit_code == 128 + signal.SIGKILL
    plain.client.stop(stubborn, 1)  # stopping a stopped container is nothing


def test_stop_signal_of_the_record(plain: Project) -> None:
    cid = plain.add(("sleep", "100"), stop_signal="SIGINT")
    plain.client.start(cid)
    plain.client.stop(cid, 5)
    assert plain.state(cid).exit_code == 128 + signal.SIGINT


def test_kill_and_its_errors(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    with pytest.raises(Conflict, match="not running"):
        plain.client.kill(cid)
    plain.client.start(cid)
    plain.client.kill(cid, "USR1")
    assert plain.client.wait(cid, 15) == 128 + signal.SIGUSR1
    with pytest.raises(NotFound):
        plain.client.start("0" * 64)
    from composer.errors import BackendError

    plain.client.start(cid)
    with pytest.raises(BackendError, match="invalid signal"):
        plain.client.kill(cid, "SIGNOPE")
    plain.client.kill(cid, "9")
    assert plain.client.wait(cid, 15) == 137


def test_restart_on_failure_two(plain: Project) -> None:
    cid = plain.add(("sh", "-c", "echo run; exit 1"), restart="on-failure:2")
    plain.client.start(cid)

    def done() -> bool:
        s = plain.client.status(cid)
        return s["status"] == "exited" and not s["restart_pending"]

    plain.poll(done, what="the restarts to end")
    st = plain.state(cid)
    assert (st.exit_code, st.restart_count) == (1, 2)
    assert logs(plain, cid) == [("stdout", "run")] * 3
    # The restarts the supervisor made are in the event log (the last exit is in state.json).
    from composer.backends.native import events

    actions = [
        (e.action, e.attributes.get("exitCode")) for e in events.read(plain.root, plain.name)
    ]
    assert actions == [("die", "1"), ("start", None), ("die", "1"), ("start", None)]


def test_no_restart_after_a_user_stop(plain: Project) -> None:
    cid = plain.add(("sleep", "100"), restart="always")
    plain.client.start(cid)
    plain.client.stop(cid, 5)
    s = plain.client.status(cid)
    assert (s["status"], s["restart_pending"], s["restart_count"]) == ("exited", False, 0)
    plain.client.start(cid)
    first = plain.state(cid).pid
    os.kill(first, signal.SIGTERM)  # not a user stop: the policy applies
    plain.poll(lambda: plain.state(cid).status == "running" and plain.state(cid).pid != first)
    assert plain.state(cid).restart_count == 1
    plain.client.kill(cid, "SIGKILL")  # a user kill: no restart
    assert plain.client.wait(cid, 15) == 137
    assert not plain.client.status(cid)["restart_pending"]


def test_pause_and_unpause(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    plain.client.start(cid)
    plain.client.pause(cid)
    assert plain.state(cid).status == "paused"
    with pytest.raises(Conflict, match="already paused"):
        plain.client.pause(cid)
    plain.client.unpause(cid)
    assert plain.state(cid).status == "running"
    with pytest.raises(Conflict, match="not paused"):
        plain.client.unpause(cid)
    plain.client.pause(cid)
    plain.client.stop(cid, 5)
    assert plain.state(cid).exit_code == 128 + signal.SIGTERM


def test_wait_times_out_with_unavailable(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    plain.client.start(cid)
    with pytest.raises(Unavailable):
        plain.client.wait(cid, 0.2)
    plain.client.kill(cid)


def test_attach_copies_output_and_stdin(plain: Project) -> None:
    cid = plain.add(
        ("sh", "-c", "echo start; cat; echo bye >&2; exit 4"), stdin_open=True, oneoff=True
    )
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(in_w, b"hello\n")
    os.close(in_w)
    code = plain.client.attach(cid, stdin=in_r, stdout=out_w, stderr=err_w)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    assert code == 4
    assert os.read(out_r, 1000) == b"start\nhello\n"
    assert os.read(err_r, 1000) == b"bye\n"
    assert logs(plain, cid) == [("stdout", "start"), ("stdout", "hello"), ("stderr", "bye")]


def test_healthcheck_runs_and_changes_status(plain: Project, tmp_path: Any) -> None:
    flag = tmp_path / "ok"
    check = R.HealthcheckRecord(("CMD-SHELL", f"test -f {flag}"), interval=0.1, retries=2)
    cid = plain.add(("sleep", "100"), healthcheck=check)
    plain.client.start(cid)
    plain.poll(lambda: (plain.state(cid).health or R.HealthState()).status == "unhealthy")
    flag.touch()
    plain.poll(lambda: (plain.state(cid).health or R.HealthState()).status == "healthy")
    log = plain.state(cid).health.log  # type: ignore[union-attr]
    assert 1 <= len(log) <= 5 and log[-1].exit_code == 0
    from composer.backends.native import events

    def actions() -> list[str]:
        return [e.action for e in events.read(plain.root, plain.name)]

    # the event is appended just after state.json is written: wait for it, not for more
    plain.poll(lambda: len(actions()) >= 2, what="the second health event")
    assert actions() == ["health_status: unhealthy", "health_status: healthy"]
    plain.client.kill(cid)


def test_one_supervisor_per_project(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    pids: list[int] = []
    clients = [
        SupervisorClient(plain.root, plain.name, launcher=plain.client.launcher) for _ in range(4)
    ]

    def ping(c: SupervisorClient) -> None:
        pids.append(c.ping())

    threads = [threading.Thread(target=ping, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 1 and pids[0] == plain.supervisor_pid()
    plain.client.start(cid)
    plain.client.kill(cid)


def test_the_supervisor_leaves_when_the_project_is_empty(plain: Project) -> None:
    cid = plain.add(("sleep", "0.3"))
    plain.client.start(cid)
    pid = plain.supervisor_pid()
    assert pid and plain.alive(pid)
    plain.poll(lambda: not plain.alive(pid), what="the supervisor to leave")
    assert plain.state(cid).exit_code == 0
    assert not (plain.root.project(plain.name) / "supervisor.sock").exists()
    assert plain.client.wait(cid, 5) == 0  # a new one answers from the records


def test_kill_9_of_the_supervisor_then_a_new_one_adopts(plain: Project) -> None:
    ticker = plain.add(("sh", "-c", "while true; do echo tick; sleep 0.05; done"))
    plain.client.start(ticker)
    old = plain.supervisor_pid()
    assert old
    os.kill(old, signal.SIGKILL)
    plain.poll(lambda: not plain.alive(old), what="the old supervisor to die")
    st = plain.state(ticker)
    assert st.status == "running" and plain.alive(st.pid)
    before = len(logs(plain, ticker))
    assert plain.client.status(ticker)["status"] == "running"  # starts a successor
    assert plain.supervisor_pid() != old
    plain.poll(lambda: len(logs(plain, ticker)) > before + 3, what="logging to resume")
    plain.client.stop(ticker, 5)
    st = plain.state(ticker)
    # Not our child any more: the exit status cannot be known.
    assert (st.status, st.exit_code, st.exit_code_known) == ("exited", R.EXIT_UNKNOWN, False)
    assert not plain.alive(st.pid or 0) if st.pid else True


def test_a_container_that_died_with_its_supervisor_is_recorded_exited(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    plain.client.start(cid)
    old = plain.supervisor_pid()
    pid = plain.state(cid).pid
    assert old
    os.kill(old, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    plain.poll(lambda: not plain.alive(old) and not plain.alive(pid))
    assert R.live_status(plain.state(cid)) == "exited"
    plain.client.ping()
    st = plain.state(cid)
    assert (st.status, st.exit_code, st.exit_code_known) == ("exited", R.EXIT_UNKNOWN, False)


def test_forget_refuses_a_running_container_unless_forced(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    plain.client.start(cid)
    with pytest.raises(Conflict, match="container is running"):
        plain.client.forget(cid)
    plain.client.forget(cid, force=True)
    assert plain.state(cid).exit_code == 137


def test_start_failure_is_a_backend_error(plain: Project) -> None:
    from composer.backends.native.runtime.spec import LaunchSpec, RootfsSpec

    cid = plain.add((), launch=LaunchSpec(id="x", rootfs=RootfsSpec("/"), args=("/nonexistent",)))
    plain.client.start(cid)
    assert plain.client.wait(cid, 15) == 127


def test_attach_with_a_tty(plain: Project) -> None:
    cid = plain.add(
        ("sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; read x; echo got $x; exit 5"),
        tty=True,
        stdin_open=True,
    )
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    os.write(in_w, b"hi\n")
    code = plain.client.attach(cid, stdin=in_r, stdout=out_w)
    os.close(in_w)
    os.close(in_r)
    os.close(out_w)
    assert code == 5
    with os.fdopen(out_r, "rb") as f:
        out = f.read()
    assert b"is-a-tty\r\n" in out and b"got hi\r\n" in out
    assert [x.text for x in read_logs(R.log_path(plain.root, cid))][-1] == "got hi\r"


def test_a_service_ready_early_is_healthy_long_before_its_first_interval(
    plain: Project, tmp_path: Any
) -> None:
    """The early window (docs/native-backend.md): probes on a short backoff before the
    first regular one, so dependents need not wait out a 30 s interval."""
    flag = tmp_path / "ready"
    check = R.HealthcheckRecord(("CMD-SHELL", f"test -f {flag}"), interval=30, retries=1)
    cid = plain.add(("sh", "-c", f"sleep 0.3; touch {flag}; sleep 100"), healthcheck=check)
    plain.client.start(cid)
    plain.poll(  # poll gives up after 15 s, half the interval
        lambda: (plain.state(cid).health or R.HealthState()).status == "healthy",
        what="healthy from an early probe",
    )
    plain.client.kill(cid)


def test_failures_in_the_early_window_do_not_count(plain: Project, tmp_path: Any) -> None:
    flag = tmp_path / "ready"
    check = R.HealthcheckRecord(("CMD-SHELL", f"test -f {flag}"), interval=30, retries=1)
    cid = plain.add(("sleep", "100"), healthcheck=check)
    plain.client.start(cid)
    plain.poll(
        lambda: len((plain.state(cid).health or R.HealthState()).log) >= 3,
        what="three early probes",
    )
    health = plain.state(cid).health
    assert health is not None
    assert all(p.exit_code == 1 for p in health.log)
    assert (health.status, health.failing_streak) == ("starting", 0)
    flag.touch()
    plain.poll(
        lambda: (plain.state(cid).health or R.HealthState()).status == "healthy",
        what="healthy once the check passes",
    )
    plain.client.kill(cid)


def test_a_disabled_healthcheck_never_probes(plain: Project) -> None:
    cid = plain.add(("sleep", "100"), healthcheck=R.HealthcheckRecord(("NONE",), interval=0.05))
    plain.client.start(cid)
    assert plain.state(cid).health is None
    plain.client.kill(cid)


def test_a_supervisor_that_cannot_start_says_why(plain: Project) -> None:
    broken = SupervisorClient(plain.root, plain.name, launcher="/nonexistent/launcher.py:X")
    with pytest.raises(Unavailable, match="did not start") as got:
        broken.ensure_running()
    assert "supervisor.log" in (got.value.hint or "")


def test_sigterm_makes_the_supervisor_leave_and_the_next_one_adopts(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    plain.client.start(cid)
    old = plain.supervisor_pid()
    assert old
    os.kill(old, signal.SIGTERM)
    plain.poll(lambda: not plain.alive(old), what="the supervisor to leave")
    assert not (plain.root.project(plain.name) / "supervisor.sock").exists()
    assert plain.alive(plain.state(cid).pid)
    plain.client.stop(cid, 5)
    assert plain.supervisor_pid() != old
    assert plain.state(cid).exit_code == R.EXIT_UNKNOWN
