"""translate(): ContainerSpec + image config → LaunchSpec, with Docker's rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from composer.backends.native.runtime.spec import INIT_TARGET, NamespaceSpec, RootfsSpec
from composer.backends.native.translate import (
    DEFAULT_PATH,
    ContainerFiles,
    HostDevice,
    translate,
)
from composer.backends.specs import (
    ContainerSpec,
    DeviceSpec,
    MountSpec,
    ResourcesSpec,
    UlimitSpec,
)
from composer.errors import ConfigError, NotFound, Unsupported

IMAGE: dict[str, Any] = {
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "A=image"],
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["serve", "--port", "80"],
        "User": "app",
        "WorkingDir": "/srv",
        "StopSignal": "SIGQUIT",
    }
}
ROOTFS = RootfsSpec("/c/rootfs", ("/l/2", "/l/1"), "/c/upper", "/c/work")
FILES = ContainerFiles("/c/hosts", "/c/hostname", "/c/resolv.conf")
CID = "0123456789abcdef0123"


def spec(**kw: Any) -> ContainerSpec:
    return ContainerSpec(name="p-web-1", service="web", image="img", labels={}, **kw)


def launch(s: ContainerSpec, image: dict[str, Any] | None = None, **kw: Any) -> Any:
    return translate(
        s, IMAGE if image is None else image, ROOTFS, FILES, container_id=CID, **kw
    ).launch


def test_environment_merges_image_then_service_in_place() -> None:
    env = launch(spec(environment={"A": "service", "B": "2"})).env
    assert env == (
        "PATH=/usr/bin:/bin",
        "HOSTNAME=0123456789ab",
        "LANG=C.UTF-8",
        "A=service",
        "B=2",
    )


def test_default_path_and_term_with_a_tty() -> None:
    env = launch(spec(tty=True), image={"config": {"Cmd": ["sh"]}}).env
    assert env == (f"PATH={DEFAULT_PATH}", "HOSTNAME=0123456789ab", "TERM=xterm")


@pytest.mark.parametrize(
    ("entrypoint", "command", "args"),
    [
        (None, None, ("/entry.sh", "serve", "--port", "80")),
        (None, ("other",), ("/entry.sh", "other")),
        (("/bin/sh", "-c"), None, ("/bin/sh", "-c")),  # a new entrypoint drops the image's Cmd
        (("/bin/sh", "-c"), ("echo hi",), ("/bin/sh", "-c", "echo hi")),
        ((), ("echo",), ("echo",)),  # entrypoint: [] clears the image's
    ],
)
def test_entrypoint_and_command(
    entrypoint: tuple[str, ...] | None, command: tuple[str, ...] | None, args: tuple[str, ...]
) -> None:
    assert launch(spec(entrypoint=entrypoint, command=command)).args == args


def test_no_command_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no command specified"):
        launch(spec(), image={"config": {}})


def test_user_and_working_dir_from_image_or_service() -> None:
    got = launch(spec())
    assert (got.user, got.cwd) == ("app", "/srv")
    got = launch(spec(user="0:0", working_dir="/tmp", group_add=("audio",)))
    assert (got.user, got.cwd, got.additional_groups) == ("0:0", "/tmp", ("audio",))
    with pytest.raises(ConfigError, match="is invalid"):
        launch(spec(working_dir="relative"))


def test_capabilities_and_security_options() -> None:
    got = launch(spec(cap_add=("NET_ADMIN",), cap_drop=("MKNOD",)))
    assert "CAP_NET_ADMIN" in got.capabilities and "CAP_MKNOD" not in got.capabilities
    assert got.seccomp == "default" and not got.no_new_privileges
    got = launch(spec(security_opt=("no-new-privileges:true", "seccomp=unconfined")))
    assert got.no_new_privileges and got.seccomp == "unconfined"
    assert launch(spec(security_opt=("no-new-privileges",))).no_new_privileges
    with pytest.raises(Unsupported):
        launch(spec(security_opt=("seccomp=/path/profile.json",)))
    with pytest.raises(ConfigError):
        launch(spec(cap_add=("NOT_A_CAP",)))


def test_privileged() -> None:
    got = launch(spec(privileged=True))
    assert got.privileged and got.seccomp == "unconfined"
    assert got.masked_paths == () and got.readonly_paths == ()
    assert "CAP_SYS_ADMIN" in got.capabilities
    assert got.cgroup.allow_all_devices


def test_ulimits_are_clamped_with_a_warning() -> None:
    s = spec(ulimits={"nofile": UlimitSpec(2_000_000, 2_000_000), "core": UlimitSpec(0, 0)})
    t = translate(
        s, IMAGE, ROOTFS, FILES, container_id=CID, host_rlimits={"nofile": (1024, 524288)}
    )
    limits = {r.name: (r.soft, r.hard) for r in t.launch.rlimits}
    assert limits == {"nofile": (524288, 524288), "core": (0, 0)}
    assert len(t.warnings) == 1 and "nofile" in t.warnings[0] and "524288" in t.warnings[0]
    with pytest.raises(ConfigError, match="soft limit"):
        launch(spec(ulimits={"nproc": UlimitSpec(10, 5)}))


def test_sysctls_dockers_defaults_and_namespaced_only() -> None:
    got = launch(spec(sysctls={"net.core.somaxconn": "1024", "kernel.shmmax": "1"}))
    assert dict(got.sysctls) == {
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
        "net.core.somaxconn": "1024",
        "kernel.shmmax": "1",
    }
    with pytest.raises(ConfigError, match="not namespaced"):
        launch(spec(sysctls={"vm.swappiness": "1"}))
    with pytest.raises(ConfigError, match="host's network"):
        launch(spec(network_mode="host", sysctls={"net.core.somaxconn": "1"}))
    assert launch(spec(network_mode="host")).sysctls == ()


def test_mounts_files_volumes_tmpfs_in_depth_order() -> None:
    s = spec(
        mounts=(
            MountSpec("bind", "/app/data", "/host/data", read_only=True),
            MountSpec("volume", "/app", "proj_vol"),
            MountSpec("tmpfs", "/cache", tmpfs_size=1 << 20, tmpfs_mode=0o1777),
            MountSpec("secret", "/run/secrets/pw", "/host/pw"),
        ),
        tmpfs={"/run": "size=64k"},
    )
    got = launch(s, volume_sources={"/app": "/vol/_data", "/run/secrets/pw": "/c/secrets/pw"})
    by_target = {m.target: m for m in got.mounts}
    assert by_target["/etc/hosts"].source == "/c/hosts"
    assert by_target["/app/data"].options == ("rbind", "rprivate", "ro")
    assert by_target["/app"].source == "/vol/_data"
    assert by_target["/cache"].type == "tmpfs" and "mode=1777" in by_target["/cache"].options
    assert "size=1048576" in by_target["/cache"].options
    assert by_target["/run"].options == ("nosuid", "nodev", "noexec", "size=64k")
    assert "ro" in by_target["/run/secrets/pw"].options
    targets = [m.target for m in got.mounts]
    assert targets.index("/app") < targets.index("/app/data")
    with pytest.raises(NotFound):
        launch(spec(mounts=(MountSpec("volume", "/x", "v"),)))
    with pytest.raises(Unsupported):
        launch(spec(mounts=(MountSpec("image", "/x", "img"),)))


def test_read_only_rootfs_makes_the_container_files_read_only() -> None:
    got = launch(spec(read_only=True))
    assert got.readonly_rootfs
    assert all("ro" in m.options for m in got.mounts if m.target.startswith("/etc/"))


def test_shm_init_hostname_stop_signal() -> None:
    got = launch(spec(shm_size=1 << 20, init=True, hostname="web", domainname="example.org"))
    assert got.shm_size == 1 << 20 and got.init and got.hostname == "web"
    assert got.domainname == "example.org" and got.stop_signal == "SIGQUIT"
    assert INIT_TARGET == "/sbin/docker-init"
    got = launch(spec())
    assert got.shm_size == 64 << 20 and not got.init and got.hostname == CID[:12]


def test_resources_become_cgroup_limits() -> None:
    r = ResourcesSpec(
        mem_limit=256 << 20,
        mem_reservation=128 << 20,
        cpus=1.5,
        cpu_shares=512,
        cpuset="0",
        pids_limit=100,
        oom_score_adj=-500,
    )
    got = launch(spec(resources=r))
    cg = got.cgroup
    assert cg.path == f"composer/{CID}"
    assert (cg.memory_limit, cg.memory_swap, cg.memory_reservation) == (
        256 << 20,
        512 << 20,  # Docker: as much swap as memory when memswap_limit is unset
        128 << 20,
    )
    assert (cg.cpu_quota, cg.cpu_period, cg.cpu_shares) == (150000, 100000, 512)
    assert (cg.cpuset_cpus, cg.pids_limit) == ("0", 100)
    assert got.oom_score_adj == -500
    explicit = launch(spec(resources=ResourcesSpec(mem_limit=1 << 20, memswap_limit=-1)))
    assert explicit.cgroup.memory_swap == -1
    parent = launch(spec(cgroup_parent="/custom/parent"))
    assert parent.cgroup.path == f"custom/parent/{CID}"


def test_devices_need_probed_numbers() -> None:
    s = spec(devices=(DeviceSpec("/dev/fuse", "/dev/fuse", "rw"),))
    got = launch(s, devices={"/dev/fuse": HostDevice("c", 10, 229, 0o666)})
    assert got.devices[0].major == 10 and got.devices[0].path == "/dev/fuse"
    assert got.cgroup.device_rules == ("c 10:229 rw",)
    with pytest.raises(NotFound):
        launch(s)


def test_network_pid_ipc_uts_modes() -> None:
    assert [n.type for n in launch(spec()).namespaces] == ["mnt", "uts", "ipc", "pid", "net"]
    host = launch(spec(network_mode="host", pid="host", ipc="host", uts="host"))
    assert [n.type for n in host.namespaces] == ["mnt"]
    assert host.hostname == "" and not any(e.startswith("HOSTNAME=") for e in host.env)
    joined = launch(
        spec(network_mode="container:db", ipc="container:db"),
        joined_namespaces={"net": "/proc/9/ns/net", "ipc": "/proc/9/ns/ipc"},
    )
    assert NamespaceSpec("net", "/proc/9/ns/net") in joined.namespaces
    assert NamespaceSpec("ipc", "/proc/9/ns/ipc") in joined.namespaces
    assert dict(joined.sysctls) == {}  # the other container's network already has them
    with pytest.raises(NotFound):
        launch(spec(network_mode="service:db"))
    assert launch(spec(network_mode="none")).namespace("net") == NamespaceSpec("net")
    assert launch(spec(cgroup="private")).namespace("cgroup") == NamespaceSpec("cgroup")


def test_translation_is_stored_and_read_back_unchanged() -> None:
    from composer.backends.native.runtime.spec import LaunchSpec

    got = launch(spec(resources=ResourcesSpec(mem_limit=1 << 20), tmpfs={"/run": ""}))
    assert LaunchSpec.from_json(got.to_json()) == got
    assert replace(got, id="other").id == "other"
