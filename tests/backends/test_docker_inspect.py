"""Docker backend: every ContainerSpec attribute shows up in `docker inspect`.

One container carrying nearly every attribute is created once per module;
the table below names where each attribute lands in the inspect output.
Attributes that exclude each other (network_mode, read_only with copied
files, privileged) get their own small tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.base import (
    BlkioSpec,
    DeviceSpec,
    HealthcheckSpec,
    LoggingSpec,
    MountSpec,
    PortSpec,
    ResourcesSpec,
    UlimitSpec,
)
from composer.backends.docker.containers import create_request

from .conftest import Specs, remove_docker_project

SUBNET_B = random.randint(100, 250)
SUBNET_C = random.randint(0, 250)
STATIC_IP = f"10.{SUBNET_B}.{SUBNET_C}.42"


def everything(specs: Specs, host_dir: Path, secret_file: Path) -> Any:
    return specs.container(
        "web",
        command=("httpd", "-f", "-p", "8080", "-h", "/"),
        entrypoint=("/bin/env", "--"),
        environment={"A": "1", "B": "two words", "EMPTY": ""},
        user="1000:1000",
        working_dir="/tmp",
        hostname="webhost",
        domainname="example.test",
        ports=(
            PortSpec(target=8080, published="18081"),
            PortSpec(target=8080, published="18082", host_ip="127.0.0.1"),
            PortSpec(target=53, published="18053", protocol="udp"),
            PortSpec(target=9000),
            PortSpec(target=9001, published="18100-18110"),
        ),
        expose=("7000", "7100-7101", "7200/udp"),
        mounts=(
            MountSpec(type="bind", source=str(host_dir), target="/data", read_only=True),
            MountSpec(type="volume", source=specs.volume().name, target="/named"),
            MountSpec(type="volume", target="/anon"),
            MountSpec(type="tmpfs", target="/scratch", tmpfs_size=1 << 20, tmpfs_mode=0o1770),
            MountSpec(
                type="secret",
                target="/run/secrets/token",
                source=str(secret_file),
                uid="1000",
                gid="1000",
                mode=0o400,
            ),
            MountSpec(type="config", target="/etc/app/app.conf", content="k=v\n", mode=0o644),
        ),
        tmpfs={"/cache": "size=65536"},
        networks=(
            specs.attach("front", ipv4_address=STATIC_IP, aliases=("www",)),
            specs.attach("back", priority=100, aliases=("api",)),
        ),
        dns=("10.0.0.53",),
        dns_search=("example.test",),
        dns_opt=("ndots:2",),
        extra_hosts=(("db.local", "10.1.2.3"), ("v6.local", "::1")),
        restart="on-failure:3",
        init=True,
        stop_signal="SIGUSR1",
        stop_timeout=1,
        healthcheck=HealthcheckSpec(
            test=("CMD", "wget", "-q", "--spider", "http://127.0.0.1:8080/bin/busybox"),
            interval=1.5,
            timeout=2,
            retries=4,
            start_period=0.5,
        ),
        logging=LoggingSpec(driver="json-file", options={"max-size": "1m"}),
        ulimits={"nofile": UlimitSpec(soft=1024, hard=2048)},
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        security_opt=("no-new-privileges:true",),
        shm_size=32 << 20,
        resources=ResourcesSpec(
            mem_limit=64 << 20,
            mem_reservation=32 << 20,
            memswap_limit=128 << 20,
            cpus=0.5,
            cpu_shares=512,
            cpuset="0",
            pids_limit=100,
            oom_score_adj=100,
        ),
        devices=(DeviceSpec(source="/dev/null", target="/dev/mynull", permissions="rw"),),
        ipc="private",
        pid="",
        uts="",
        group_add=("65534",),
        tty=True,
        stdin_open=True,
        platform="linux/amd64",
        extra_labels={"user.label": "yes"},
    )


@pytest.fixture(scope="module")
def created(
    docker_backend: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, Any]]]:
    project = f"ctinsp{random.randint(0, 1 << 30):x}"
    specs = Specs(project)
    root = tmp_path_factory.mktemp("inspect")
    host_dir = root / "data"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("hello")
    secret_file = root / "token.txt"
    secret_file.write_text("s3cret")
    from composer.backends.base import IpamPoolSpec, IpamSpec

    docker_backend.create_network(
        specs.network(
            "front",
            ipam=IpamSpec(config=(IpamPoolSpec(subnet=f"10.{SUBNET_B}.{SUBNET_C}.0/24"),)),
        )
    )
    docker_backend.create_network(specs.network("back"))
    docker_backend.create_volume(specs.volume())
    spec = everything(specs, host_dir, secret_file)
    cid = docker_backend.create_container(spec)
    try:
        yield spec, docker_backend.api.inspect_container(cid)
    finally:
        remove_docker_project(docker_backend, project)


def dig(data: Any, path: str) -> Any:
    for part in path.split("|"):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


NS = 1_000_000_000
CASES: list[tuple[str, Any]] = [
    ("Config|Cmd", ["httpd", "-f", "-p", "8080", "-h", "/"]),
    ("Config|Entrypoint", ["/bin/env", "--"]),
    ("Config|User", "1000:1000"),
    ("Config|WorkingDir", "/tmp"),
    ("Config|Hostname", "webhost"),
    ("Config|Domainname", "example.test"),
    ("Config|StopSignal", "SIGUSR1"),
    ("Config|StopTimeout", 1),
    ("Config|Tty", True),
    ("Config|OpenStdin", True),
    ("Config|Labels|user.label", "yes"),
    ("Config|Labels|com.docker.compose.service", "web"),
    ("Config|Labels|com.docker.compose.container-number", "1"),
    ("Config|Labels|com.docker.compose.oneoff", "False"),
    (
        "Config|Healthcheck|Test",
        ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:8080/bin/busybox"],
    ),
    ("Config|Healthcheck|Interval", int(1.5 * NS)),
    ("Config|Healthcheck|Timeout", 2 * NS),
    ("Config|Healthcheck|Retries", 4),
    ("Config|Healthcheck|StartPeriod", NS // 2),
    (
        "HostConfig|PortBindings|8080/tcp",
        [{"HostIp": "", "HostPort": "18081"}, {"HostIp": "127.0.0.1", "HostPort": "18082"}],
    ),
    ("HostConfig|PortBindings|53/udp", [{"HostIp": "", "HostPort": "18053"}]),
    ("HostConfig|PortBindings|9000/tcp", [{"HostIp": "", "HostPort": ""}]),
    ("HostConfig|PortBindings|9001/tcp", [{"HostIp": "", "HostPort": "18100-18110"}]),
    ("HostConfig|Tmpfs", {"/cache": "size=65536"}),
    ("HostConfig|Dns", ["10.0.0.53"]),
    ("HostConfig|DnsSearch", ["example.test"]),
    ("HostConfig|DnsOptions", ["ndots:2"]),
    ("HostConfig|ExtraHosts", ["db.local:10.1.2.3", "v6.local:::1"]),
    ("HostConfig|RestartPolicy", {"Name": "on-failure", "MaximumRetryCount": 3}),
    ("HostConfig|Init", True),
    ("HostConfig|LogConfig", {"Type": "json-file", "Config": {"max-size": "1m"}}),
    ("HostConfig|Ulimits", [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
    ("HostConfig|Sysctls", {"net.ipv4.ip_unprivileged_port_start": "0"}),
    ("HostConfig|CapAdd", ["NET_ADMIN"]),
    ("HostConfig|CapDrop", ["MKNOD"]),
    ("HostConfig|SecurityOpt", ["no-new-privileges:true"]),
    ("HostConfig|ShmSize", 32 << 20),
    ("HostConfig|Memory", 64 << 20),
    ("HostConfig|MemoryReservation", 32 << 20),
    ("HostConfig|MemorySwap", 128 << 20),
    ("HostConfig|NanoCpus", NS // 2),
    ("HostConfig|CpuShares", 512),
    ("HostConfig|CpusetCpus", "0"),
    ("HostConfig|PidsLimit", 100),
    ("HostConfig|OomScoreAdj", 100),
    (
        "HostConfig|Devices",
        [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}],
    ),
    ("HostConfig|IpcMode", "private"),
    ("HostConfig|GroupAdd", ["65534"]),
    ("HostConfig|NetworkMode", None),  # filled in by the test: the highest-priority network
    ("Platform", "linux"),
]


@pytest.mark.parametrize(("path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_attribute_in_inspect(
    created: tuple[Any, dict[str, Any]], path: str, expected: Any
) -> None:
    spec, data = created
    if path == "HostConfig|NetworkMode":
        expected = spec.networks[1].network
    assert dig(data, path) == expected


def test_environment(created: tuple[Any, dict[str, Any]]) -> None:
    _, data = created
    env = data["Config"]["Env"]
    assert {"A=1", "B=two words", "EMPTY="} <= set(env)


def test_exposed_ports_include_expose_ranges_and_published(
    created: tuple[Any, dict[str, Any]],
) -> None:
    _, data = created
    assert set(data["Config"]["ExposedPorts"]) == {
        "7000/tcp",
        "7100/tcp",
        "7101/tcp",
        "7200/udp",
        "8080/tcp",
        "53/udp",
        "9000/tcp",
        "9001/tcp",
    }


def test_mounts(created: tuple[Any, dict[str, Any]]) -> None:
    spec, data = created
    by_target = {m["Destination"]: m for m in data["Mounts"]}
    assert by_target["/data"]["Type"] == "bind" and by_target["/data"]["RW"] is False
    assert by_target["/named"]["Type"] == "volume"
    assert by_target["/named"]["Name"] == spec.mounts[1].source
    assert by_target["/anon"]["Type"] == "volume" and len(by_target["/anon"]["Name"]) == 64
    tmpfs = [m for m in data["HostConfig"]["Mounts"] if m["Type"] == "tmpfs"]
    assert [(m["Target"], m["TmpfsOptions"]) for m in tmpfs] == [
        ("/scratch", {"SizeBytes": 1 << 20, "Mode": 0o1770})
    ]
    # Config and secret files are copied, not mounted.
    assert "/run/secrets/token" not in by_target


def test_networks_aliases_and_static_address(created: tuple[Any, dict[str, Any]]) -> None:
    spec, data = created
    nets = data["NetworkSettings"]["Networks"]
    front, back = spec.networks[0].network, spec.networks[1].network
    assert set(nets) == {front, back}
    assert nets[front]["IPAMConfig"]["IPv4Address"] == STATIC_IP
    for net, alias in ((front, "www"), (back, "api")):
        assert {"web", spec.name, alias} <= set(nets[net]["Aliases"])


def run_in(backend: Any, cid: str, *cmd: str, user: str = "") -> str:
    api = backend.api
    exec_id = api.exec_create(cid, list(cmd), user=user)["Id"]
    out = api.exec_start(exec_id).decode()
    assert api.exec_inspect(exec_id)["ExitCode"] == 0, out
    return str(out)


def test_everything_container_runs_and_gets_healthy(
    docker_backend: Any, created: tuple[Any, dict[str, Any]]
) -> None:
    _spec, data = created
    cid = data["Id"]
    docker_backend.start_container(cid)
    assert run_in(docker_backend, cid, "id", "-u").strip() == "1000"
    assert "db.local" in run_in(docker_backend, cid, "cat", "/etc/hosts")
    resolv = run_in(docker_backend, cid, "cat", "/etc/resolv.conf")
    assert "ndots:2" in resolv and "example.test" in resolv
    assert run_in(docker_backend, cid, "cat", "/data/hello.txt") == "hello"
    assert run_in(docker_backend, cid, "hostname").strip() == "webhost"
    deadline = time.monotonic() + 20
    while docker_backend.inspect_container(cid).health != "healthy":
        assert time.monotonic() < deadline, "never became healthy"
        time.sleep(0.2)


def test_config_and_secret_files_have_owner_and_mode(
    docker_backend: Any, created: tuple[Any, dict[str, Any]]
) -> None:
    _, data = created
    cid = data["Id"]
    docker_backend.start_container(cid)
    listing = run_in(
        docker_backend,
        cid,
        "stat",
        "-c",
        "%a %u %g %n",
        "/run/secrets/token",
        "/etc/app/app.conf",
        "/run/secrets",
        "/etc/app",
    )
    assert listing.splitlines() == [
        "400 1000 1000 /run/secrets/token",
        "644 0 0 /etc/app/app.conf",
        "755 0 0 /run/secrets",
        "755 0 0 /etc/app",
    ]
    assert run_in(docker_backend, cid, "cat", "/run/secrets/token") == "s3cret"
    assert run_in(docker_backend, cid, "cat", "/etc/app/app.conf") == "k=v\n"


def test_existing_directory_keeps_its_mode(docker_backend: Any, docker_project: str) -> None:
    specs = Specs(docker_project)
    spec = specs.container(mounts=(MountSpec(type="config", target="/tmp/c.txt", content="x"),))
    cid = docker_backend.create_container(spec)
    docker_backend.start_container(cid)
    assert run_in(docker_backend, cid, "stat", "-c", "%a", "/tmp", "/tmp/c.txt").split() == [
        "1777",
        "444",
    ]


def test_network_mode_container_and_privileged(docker_backend: Any, docker_project: str) -> None:
    specs = Specs(docker_project)
    docker_backend.create_network(specs.network())
    first = docker_backend.create_container(
        specs.container("a", networks=(specs.attach(),), read_only=True)
    )
    # Created only: a privileged start needs more than a sandboxed CI engine may grant.
    privileged = docker_backend.create_container(specs.container("c", privileged=True))
    docker_backend.start_container(first)
    second = docker_backend.create_container(
        specs.container("b", network_mode=f"container:{first}", pid=f"container:{first}")
    )
    docker_backend.start_container(second)
    a = docker_backend.api.inspect_container(first)
    b = docker_backend.api.inspect_container(second)
    assert a["HostConfig"]["ReadonlyRootfs"] is True
    assert docker_backend.api.inspect_container(privileged)["HostConfig"]["Privileged"] is True
    assert b["HostConfig"]["NetworkMode"] == f"container:{first}"
    assert b["HostConfig"]["PidMode"] == f"container:{first}"
    assert b["NetworkSettings"]["Networks"] == {}


def test_one_off_containers_get_no_service_alias(docker_backend: Any, docker_project: str) -> None:
    specs = Specs(docker_project)
    docker_backend.create_network(specs.network())
    spec = specs.container(networks=(specs.attach(),), oneoff=True)
    cid = docker_backend.create_container(spec)
    aliases = docker_backend.api.inspect_container(cid)["NetworkSettings"]["Networks"][
        specs.attach().network
    ]["Aliases"]
    assert "app" not in aliases and spec.name in aliases


@pytest.mark.parametrize(
    ("api_version", "config_mac", "endpoint_mac"),
    [("1.41", "02:42:ac:11:00:99", None), ("1.44", None, "02:42:ac:11:00:99")],
)
def test_mac_address_goes_where_the_api_version_expects_it(
    specs: Specs, api_version: str, config_mac: str | None, endpoint_mac: str | None
) -> None:
    spec = specs.container(mac_address="02:42:ac:11:00:99", networks=(specs.attach(),))
    body = create_request(spec, api_version).body
    assert body.get("MacAddress") == config_mac
    endpoint = body["NetworkingConfig"]["EndpointsConfig"][specs.attach().network]
    assert endpoint.get("MacAddress") == endpoint_mac


def test_networks_beyond_the_first_are_connected_later_by_priority(specs: Specs) -> None:
    spec = specs.container(
        networks=(specs.attach("a"), specs.attach("b", priority=5), specs.attach("c", priority=5))
    )
    request = create_request(spec, "1.41")
    assert list(request.body["NetworkingConfig"]["EndpointsConfig"]) == [specs.attach("b").network]
    assert [a.network for a in request.later_networks] == [
        specs.attach("c").network,
        specs.attach("a").network,
    ]


def test_empty_entrypoint_clears_the_image_one(specs: Specs) -> None:
    assert create_request(specs.container(entrypoint=()), "1.41").body["Entrypoint"] == [""]


def test_blkio_goes_into_the_host_config(specs: Specs) -> None:
    # Not checked on the engine: kernels without the blkio weight cgroup drop it.
    spec = specs.container(
        resources=ResourcesSpec(blkio=BlkioSpec(weight=300, device_read_bps=(("/dev/sda", 1024),)))
    )
    host = create_request(spec, "1.41").body["HostConfig"]
    assert host["BlkioWeight"] == 300
    assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/sda", "Rate": 1024}]
