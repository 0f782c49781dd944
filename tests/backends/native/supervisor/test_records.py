"""The record contract: round trips through JSON, defaults, PID identity."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from composer.backends.base import (
    ContainerSpec,
    HealthcheckSpec,
    MountSpec,
    NetworkAttachment,
    PortSpec,
    UlimitSpec,
)
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor import records as R


def _spec() -> ContainerSpec:
    return ContainerSpec(
        name="p-web-1",
        service="web",
        image="bb:latest",
        labels={"com.docker.compose.project": "p"},
        command=("sleep", "100"),
        environment={"A": "1"},
        ports=(PortSpec(target=80, published="8080"),),
        mounts=(MountSpec(type="tmpfs", target="/t", tmpfs_size=1024),),
        networks=(NetworkAttachment(network="p_default", aliases=("w",)),),
        extra_hosts=(("h", "1.2.3.4"),),
        healthcheck=HealthcheckSpec(test=("CMD", "true"), interval=1.5),
        ulimits={"nofile": UlimitSpec(soft=10, hard=20)},
        stop_timeout=3,
    )


def test_container_spec_round_trips() -> None:
    spec = _spec()
    assert R.spec_from_json(ContainerSpec, R.spec_to_json(spec)) == spec


def test_record_and_state_round_trip(tmp_path: Path) -> None:
    root = StateRoot(tmp_path).ensure()
    rec = R.ContainerRecord(
        id="c1",
        name="p-web-1",
        project="p",
        service="web",
        created_at=1.5,
        spec=R.spec_to_json(_spec()),
        launch={"args": ["sleep", "1"]},
        restart="on-failure:2",
        healthcheck=R.HealthcheckRecord(test=("CMD-SHELL", "true"), retries=2),
        stop_signal="SIGINT",
        pre_stop=(R.HookRecord(command=("echo", "bye")),),
        networks=(R.NetworkJoin(network="p_default", names=("web", "w")),),
        ports=(R.PortPublish(container_port=80, host_port=8080),),
    )
    R.write_record(root, rec)
    assert R.read_record(root, "c1") == rec
    assert R.read_record(root, "c1").container_spec() == _spec()
    assert R.read_state(root, "c1") == R.ContainerRunState()
    st = R.ContainerRunState(
        status="running",
        pid=5,
        pid_start_time=7,
        exit_code=None,
        health=R.HealthState(log=(R.ProbeResult(start=1, end=2, exit_code=0, output="ok"),)),
        ports=(R.BoundPort(container_port=80, host_port=8080),),
    )
    R.write_state(root, "c1", st)
    assert R.read_state(root, "c1") == st
    assert R.project_container_ids(root, "p") == ["c1"]
    assert R.project_container_ids(root, "other") == []


def test_unknown_keys_are_ignored_and_missing_take_defaults(tmp_path: Path) -> None:
    st = R.from_json(R.ContainerRunState, {"status": "exited", "exit_code": 3, "future": 1})
    assert st == R.ContainerRunState(status="exited", exit_code=3)


def test_pid_identity_follows_start_time() -> None:
    me = os.getpid()
    start = R.pid_start_time(me)
    assert start is not None
    assert R.same_process(me, start)
    assert not R.same_process(me, start + 1)
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert R.pid_start_time(proc.pid) is None
    running = R.ContainerRunState(status="running", pid=proc.pid, pid_start_time=1)
    assert R.live_status(running) == "exited"
    assert R.live_status(R.ContainerRunState(status="running", pid=me, pid_start_time=start)) == (
        "running"
    )


def test_zombie_is_not_the_same_process() -> None:
    proc = subprocess.Popen(["true"])
    start = None
    # wait for it to become a zombie without reaping it
    for _ in range(500):
        start = R.pid_start_time(proc.pid)
        if R.pid_is_zombie(proc.pid):
            break
        time.sleep(0.01)
    assert start is not None and R.pid_is_zombie(proc.pid)
    assert not R.same_process(proc.pid, start)
    proc.wait()
