"""LaunchSpec and ExecSpec survive a JSON round trip (they are stored in container records)."""

from __future__ import annotations

import json

from composer.backends.native.runtime.spec import (
    CgroupSpec,
    DeviceEntry,
    ExecSpec,
    LaunchSpec,
    MountEntry,
    NamespaceSpec,
    Rlimit,
    RootfsSpec,
)


def test_launch_spec_round_trip_keeps_every_field() -> None:
    spec = LaunchSpec(
        id="abc",
        rootfs=RootfsSpec("/m", ("/l2", "/l1"), "/u", "/w"),
        args=("sh", "-c", "echo hi"),
        env=("A=1", "B=2"),
        cwd="/srv",
        user="app:app",
        additional_groups=("10",),
        readonly_rootfs=True,
        hostname="h",
        domainname="d",
        mounts=(MountEntry("/etc/hosts", "bind", "/x/hosts", ("rbind", "ro")),),
        namespaces=(NamespaceSpec("mnt"), NamespaceSpec("net", "/proc/1/ns/net")),
        capabilities=("CAP_CHOWN",),
        no_new_privileges=True,
        seccomp="unconfined",
        rlimits=(Rlimit("nofile", 10, 20),),
        sysctls=(("net.ipv4.ip_forward", "1"),),
        oom_score_adj=100,
        devices=(DeviceEntry("/dev/fuse", "c", 10, 229),),
        cgroup=CgroupSpec("composer/abc", memory_limit=1 << 20, device_rules=("c 10:229 rwm",)),
        shm_size=1 << 20,
        tty=True,
        init=True,
        stop_signal="SIGINT",
        stop_timeout=3.5,
    )
    text = spec.to_json()
    assert json.loads(text)["rootfs"]["lowerdirs"] == ["/l2", "/l1"]
    back = LaunchSpec.from_json(text)
    assert back == spec
    assert back.namespace("net") == NamespaceSpec("net", "/proc/1/ns/net")
    assert back.namespace("pid") is None


def test_exec_spec_round_trip() -> None:
    spec = ExecSpec(args=("true",), env=("A=1",), user="1000:1000", rlimits=(Rlimit("core", 0, 0),))
    assert ExecSpec.from_json(spec.to_json()) == spec


def test_defaults_are_dockers() -> None:
    spec = LaunchSpec(id="x", rootfs=RootfsSpec("/r"), args=("true",))
    assert [n.type for n in spec.namespaces] == ["mnt", "uts", "ipc", "pid", "net"]
    assert "/proc/kcore" in spec.masked_paths and "/proc/sys" in spec.readonly_paths
    assert spec.shm_size == 64 * 1024 * 1024
    assert not spec.rootfs.overlay
