"""cgroup limits take effect, pause/unpause by freezer, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import time

import pytest

from composer.backends.native.runtime.cgroups import (
    Cgroup,
    cpu_shares_to_weight,
    detect_layout,
)
from composer.backends.native.runtime.spec import CgroupSpec

from .conftest import Box


def test_shares_to_weight_formula() -> None:
    assert cpu_shares_to_weight(2) == 1
    assert cpu_shares_to_weight(1024) == 100
    assert cpu_shares_to_weight(262144) == 10000
    assert cpu_shares_to_weight(512) < 100 < cpu_shares_to_weight(2048)


def test_layout_of_this_host_is_read_from_mountinfo() -> None:
    layout = detect_layout()
    assert layout.mountpoints()
    assert layout.mode in ("v1", "v2", "hybrid")


def test_memory_cpu_pids_limits_are_visible_inside(box: Box) -> None:
    layout = detect_layout()
    if layout.v1_mount("memory") is None:
        pytest.skip("this host has no v1 memory controller (covered by the v2 branch)")
    spec = box.spec("true")
    assert spec.cgroup is not None
    cg = CgroupSpec(
        spec.cgroup.path,
        memory_limit=64 << 20,
        memory_swap=128 << 20,
        memory_reservation=32 << 20,
        cpu_quota=50000,
        cpu_period=100000,
        cpu_shares=512,
        pids_limit=20,
    )
    r = box.sh(
        "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes"
        " cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max",
        cgroup=cg,
    )
    assert r.out.split() == [str(64 << 20), str(32 << 20), "50000", "100000", "512", "20"]


def test_pids_limit_is_enforced(box: Box) -> None:
    spec = box.spec("true")
    assert spec.cgroup is not None
    cg = CgroupSpec(spec.cgroup.path, pids_limit=5)
    r = box.sh("for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; echo spawned", cgroup=cg)
    assert "can't fork" in r.err and "spawned" not in r.out


def test_memory_limit_is_enforced(box: Box) -> None:
    spec = box.spec("true")
    assert spec.cgroup is not None
    cg = CgroupSpec(spec.cgroup.path, memory_limit=16 << 20, memory_swap=16 << 20)
    # 64 MiB into a tmpfs is charged to the cgroup: the writer is OOM-killed.
    r = box.sh("dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; echo rc=$?", cgroup=cg)
    assert "rc=0" not in r.out


def test_device_cgroup_allows_mknod_but_not_open(box: Box) -> None:
    r = box.sh("mknod /tmp/sda b 8 0 && echo made; head -c1 /tmp/sda 2>&1; echo rc=$?")
    assert r.out.startswith("made\n")
    assert "Operation not permitted" in r.out


def test_pause_and_unpause_by_freezer(box: Box) -> None:
    started = box.start(box.spec("sh", "-c", "while true; do sleep 0.05; done"))
    assert started.cgroup_path is not None
    cg = Cgroup(started.cgroup_path)
    cg.freeze()
    assert cg.frozen()
    state = _proc_state(started.pid)
    assert state in ("D", "S", "T")  # frozen tasks sleep in the freezer
    cg.thaw()
    assert not cg.frozen()
    cg.kill_all()
    os.waitpid(started.pid, 0)
    box.pids.remove(started.pid)


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_pids_lists_every_process_and_kill_all_kills_them(box: Box) -> None:
    started = box.start(box.spec("sh", "-c", "sleep 30 & sleep 30 & wait"))
    assert started.cgroup_path is not None
    cg = Cgroup(started.cgroup_path)
    deadline = time.monotonic() + 5
    while len(cg.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.pid in cg.pids() and len(cg.pids()) == 3
    cg.kill_all(signal.SIGKILL)
    _, status = os.waitpid(started.pid, 0)
    box.pids.remove(started.pid)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL


def test_nothing_is_left_after_the_container_exits(box: Box) -> None:
    spec = box.spec("sh", "-c", "sleep 0.1")
    assert spec.cgroup is not None
    container_dir = os.path.dirname(spec.rootfs.mountpoint)
    running = box.start(box.spec("sleep", "30", rootfs=spec.rootfs))
    assert container_dir not in _mountinfo()  # not even while it runs
    os.kill(running.pid, signal.SIGKILL)
    os.waitpid(running.pid, 0)
    box.pids.remove(running.pid)
    r = box.run(spec)
    assert r.code == 0
    cg = Cgroup(spec.cgroup.path)
    assert cg.pids() == []
    cg.remove()
    assert not cg.exists()
    # The overlay and every other mount lived only in the container's mount
    # namespace: the host's table never shows the container's directories.
    assert container_dir not in _mountinfo()
    assert os.listdir(spec.rootfs.mountpoint) == []


def _mountinfo() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def test_remove_kills_leftovers_and_tolerates_missing(box: Box) -> None:
    started = box.start(box.spec("sleep", "30"))
    assert started.cgroup_path is not None
    cg = Cgroup(started.cgroup_path)
    cg.remove()
    assert not cg.exists()
    _, status = os.waitpid(started.pid, 0)
    box.pids.remove(started.pid)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    cg.remove()  # again: nothing to do


def _fake_v2(tmp_path: os.PathLike[str]) -> str:
    """A directory laid out like a cgroup v2 root (files the kernel would provide)."""
    root = os.path.join(tmp_path, "unified")
    os.makedirs(root)
    with open(os.path.join(root, "cgroup.controllers"), "w") as f:
        f.write("cpuset cpu io memory pids\n")
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("")
    return root


def test_v2_limits_are_written_with_v2_names(tmp_path: os.PathLike[str]) -> None:
    """Pure cgroup v2 (not this host's layout): the files and values written."""
    from composer.backends.native.runtime.cgroups import Layout

    root = _fake_v2(tmp_path)
    cg = Cgroup("composer/c1", Layout((), root))
    assert cg.layout.mode == "v2"
    cg.create()
    with open(os.path.join(root, "cgroup.subtree_control")) as f:
        assert f.read() == "+cpu +cpuset +memory +pids +io"
    d = os.path.join(root, "composer/c1")
    for name in ("memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight"):
        open(os.path.join(d, name), "w").close()
    for name in ("cpuset.cpus", "cpuset.mems", "pids.max"):
        open(os.path.join(d, name), "w").close()
    cg.apply(
        CgroupSpec(
            "composer/c1",
            memory_limit=64 << 20,
            memory_swap=96 << 20,
            memory_reservation=1 << 20,
            cpu_quota=50000,
            cpu_period=100000,
            cpu_shares=2048,
            cpuset_cpus="0",
            pids_limit=0,
        )
    )

    def read(name: str) -> str:
        with open(os.path.join(d, name)) as f:
            return f.read()

    assert read("memory.max") == str(64 << 20)
    assert read("memory.swap.max") == str(32 << 20)  # v2 counts swap alone
    assert read("memory.low") == str(1 << 20)
    assert read("cpu.max") == "50000 100000"
    assert read("cpu.weight") == str(cpu_shares_to_weight(2048))
    assert read("cpuset.cpus") == "0"
    assert read("pids.max") == "max"
