"""ContainerSpec → Engine API ``POST /containers/create`` body.

Pure translation, no engine calls: the backend sends the body, connects the
remaining networks and copies config/secret files in. The body is built by
hand rather than through the SDK's helpers so that every field of the spec
has one visible mapping and fields newer than the negotiated API version can
be placed where that version expects them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from composer.backends.base import (
    ContainerSpec,
    HealthcheckSpec,
    NetworkAttachment,
    PortSpec,
    ResourcesSpec,
)
from composer.backends.docker.client import at_least
from composer.backends.docker.mounts import mounts
from composer.backends.file_mounts import FileCopy, file_copies
from composer.errors import BackendError, Unsupported

NS_PER_SECOND = 1_000_000_000
BUILTIN_NETWORKS = ("bridge", "host", "none", "default")


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * NS_PER_SECOND)


def _drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    """Leave engine defaults alone: omit unset (None) and empty values."""
    return {k: v for k, v in body.items() if v is not None and v != {} and v != []}


# --- ports ------------------------------------------------------------------


def _port_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    first = int(start)
    last = int(end) if end else first
    if last < first:
        raise BackendError(f"invalid port range {text!r}")
    return list(range(first, last + 1))


def exposed_ports(spec: ContainerSpec) -> dict[str, dict[str, Any]]:
    """``ExposedPorts`` from ``expose`` entries and every published port."""
    out: dict[str, dict[str, Any]] = {}
    for entry in spec.expose:
        number, _, proto = str(entry).partition("/")
        for port in _port_range(number):
            out[f"{port}/{proto or 'tcp'}"] = {}
    for p in spec.ports:
        out[f"{p.target}/{p.protocol or 'tcp'}"] = {}
    return out


def port_bindings(ports: Sequence[PortSpec]) -> dict[str, list[dict[str, str]]]:
    """``PortBindings``: an unset ``published`` asks the engine for a random host port."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports:
        key = f"{p.target}/{p.protocol or 'tcp'}"
        binding = {"HostIp": p.host_ip or "", "HostPort": p.published or ""}
        out.setdefault(key, []).append(binding)
    return out


# --- networks ---------------------------------------------------------------


def ordered_networks(spec: ContainerSpec) -> list[NetworkAttachment]:
    """Highest ``priority`` first; ties keep the spec's order."""
    indexed = list(enumerate(spec.networks))
    indexed.sort(key=lambda item: (-item[1].priority, item[0]))
    return [att for _, att in indexed]


def aliases_for(spec: ContainerSpec, att: NetworkAttachment) -> list[str]:
    """The service name (not for one-offs), the container name and the spec's aliases."""
    if att.network in BUILTIN_NETWORKS:
        return []
    names = [] if spec.oneoff else [spec.service]
    names.append(spec.name)
    for alias in att.aliases:
        if alias not in names:
            names.append(alias)
    return names


def endpoint_config(
    spec: ContainerSpec, att: NetworkAttachment, api_version: str, *, first: bool
) -> dict[str, Any]:
    """``EndpointSettings`` for one network."""
    ipam = _drop_empty(
        {
            "IPv4Address": att.ipv4_address,
            "IPv6Address": att.ipv6_address,
            "LinkLocalIPs": list(att.link_local_ips) or None,
        }
    )
    mac = att.mac_address or (spec.mac_address if first else None)
    body: dict[str, Any] = {
        "Aliases": aliases_for(spec, att) or None,
        "IPAMConfig": ipam or None,
        "Links": [*spec.links, *spec.external_links] or None,
        "DriverOpts": dict(att.driver_opts) or None,
    }
    if mac and at_least(api_version, "1.44"):
        body["MacAddress"] = mac
    if att.gw_priority and at_least(api_version, "1.48"):
        body["GwPriority"] = att.gw_priority
    return _drop_empty(body)


# --- the body ---------------------------------------------------------------


def healthcheck(h: HealthcheckSpec) -> dict[str, Any]:
    return _drop_empty(
        {
            "Test": list(h.test) if h.test is not None else None,
            "Interval": _ns(h.interval),
            "Timeout": _ns(h.timeout),
            "Retries": h.retries,
            "StartPeriod": _ns(h.start_period),
            "StartInterval": _ns(h.start_interval),
        }
    )


def restart_policy(restart: str | None) -> dict[str, Any] | None:
    if not restart:
        return None
    name, _, count = restart.partition(":")
    if name == "no":
        return {"Name": "no"}
    policy: dict[str, Any] = {"Name": name}
    if count:
        policy["MaximumRetryCount"] = int(count)
    return policy


def _resources(r: ResourcesSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Memory": r.mem_limit,
        "MemoryReservation": r.mem_reservation,
        "MemorySwap": r.memswap_limit,
        "MemorySwappiness": r.mem_swappiness,
        "NanoCpus": round(r.cpus * NS_PER_SECOND) if r.cpus else None,
        "CpuShares": r.cpu_shares,
        "CpuPeriod": r.cpu_period,
        "CpuQuota": r.cpu_quota,
        "CpuRealtimePeriod": r.cpu_rt_period,
        "CpuRealtimeRuntime": r.cpu_rt_runtime,
        "CpuCount": r.cpu_count,
        "CpuPercent": r.cpu_percent,
        "CpusetCpus": r.cpuset,
        "PidsLimit": r.pids_limit,
        "OomKillDisable": r.oom_kill_disable,
        "OomScoreAdj": r.oom_score_adj,
    }
    if r.blkio is not None:
        b = r.blkio
        body["BlkioWeight"] = b.weight
        body["BlkioWeightDevice"] = [{"Path": p, "Weight": w} for p, w in b.weight_device]
        body["BlkioDeviceReadBps"] = [{"Path": p, "Rate": v} for p, v in b.device_read_bps]
        body["BlkioDeviceReadIOps"] = [{"Path": p, "Rate": v} for p, v in b.device_read_iops]
        body["BlkioDeviceWriteBps"] = [{"Path": p, "Rate": v} for p, v in b.device_write_bps]
        body["BlkioDeviceWriteIOps"] = [{"Path": p, "Rate": v} for p, v in b.device_write_iops]
    if r.device_requests:
        body["DeviceRequests"] = [
            _drop_empty(
                {
                    "Driver": d.driver or "",
                    "Count": d.count,
                    "DeviceIDs": list(d.device_ids) or None,
                    "Capabilities": [list(d.capabilities)] if d.capabilities else None,
                    "Options": dict(d.options) or None,
                }
            )
            for d in r.device_requests
        ]
    return body


def _host_config(
    spec: ContainerSpec,
    api_version: str,
    network_mode: str | None,
    engine_socket: str | None,
) -> dict[str, Any]:
    binds, mount_objects = mounts(spec, api_version)
    if spec.use_api_socket:
        if engine_socket is None:
            raise Unsupported("use_api_socket needs an engine reached through a unix socket")
        binds.append(f"{engine_socket}:/var/run/docker.sock:rw")
    on_default_bridge = network_mode in (None, "bridge", "default") and not spec.networks
    host: dict[str, Any] = {
        "Binds": binds,
        "Mounts": mount_objects,
        "Tmpfs": dict(spec.tmpfs),
        "VolumesFrom": list(spec.volumes_from),
        "NetworkMode": network_mode,
        "PortBindings": port_bindings(spec.ports),
        "Links": [*spec.links, *spec.external_links] if on_default_bridge else None,
        "Dns": list(spec.dns),
        "DnsSearch": list(spec.dns_search),
        "DnsOptions": list(spec.dns_opt),
        "ExtraHosts": [f"{host}:{ip}" for host, ip in spec.extra_hosts],
        "RestartPolicy": restart_policy(spec.restart),
        "Init": spec.init,
        "LogConfig": (
            _drop_empty({"Type": spec.logging.driver, "Config": dict(spec.logging.options)})
            if spec.logging is not None
            else None
        ),
        "Ulimits": [
            {"Name": name, "Soft": u.soft, "Hard": u.hard} for name, u in spec.ulimits.items()
        ],
        "Sysctls": dict(spec.sysctls),
        "CapAdd": list(spec.cap_add),
        "CapDrop": list(spec.cap_drop),
        "Privileged": spec.privileged or None,
        "SecurityOpt": list(spec.security_opt),
        "ReadonlyRootfs": spec.read_only or None,
        "ShmSize": spec.shm_size,
        "Devices": [
            {
                "PathOnHost": d.source,
                "PathInContainer": d.target,
                "CgroupPermissions": d.permissions,
            }
            for d in spec.devices
        ],
        "DeviceCgroupRules": list(spec.device_cgroup_rules),
        "IpcMode": spec.ipc,
        "PidMode": spec.pid,
        "UTSMode": spec.uts,
        "CgroupnsMode": spec.cgroup,
        "CgroupParent": spec.cgroup_parent,
        "UsernsMode": spec.userns_mode,
        "GroupAdd": list(spec.group_add),
        "Runtime": spec.runtime,
        "Isolation": spec.isolation,
        "StorageOpt": dict(spec.storage_opt),
        "Annotations": dict(spec.annotations) if at_least(api_version, "1.43") else None,
        **_resources(spec.resources),
    }
    if spec.annotations and not at_least(api_version, "1.43"):
        raise Unsupported(f"annotations need Engine API 1.43 (have {api_version})")
    return _drop_empty(host)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """What ``create_container`` sends: the body, then networks to connect before start."""

    body: dict[str, Any]
    later_networks: tuple[NetworkAttachment, ...]
    files: tuple[FileCopy, ...]


def create_request(
    spec: ContainerSpec, api_version: str, engine_socket: str | None = None
) -> CreateRequest:
    """Translate ``spec`` for an engine speaking ``api_version``."""
    networks = ordered_networks(spec) if not spec.network_mode else []
    network_mode = spec.network_mode or (networks[0].network if networks else None)
    first_mac = None
    if networks and not at_least(api_version, "1.44"):
        first_mac = networks[0].mac_address or spec.mac_address
    elif not networks:
        first_mac = spec.mac_address
    env = [f"{key}={value}" for key, value in spec.environment.items()]
    body: dict[str, Any] = {
        "Image": spec.image,
        "Cmd": list(spec.command) if spec.command is not None else None,
        # An empty entrypoint means "clear the image's", which the API spells [""].
        "Entrypoint": ((list(spec.entrypoint) or [""]) if spec.entrypoint is not None else None),
        "Env": env,
        "User": spec.user,
        "WorkingDir": spec.working_dir,
        "Hostname": spec.hostname,
        "Domainname": spec.domainname,
        "MacAddress": first_mac,
        "ExposedPorts": exposed_ports(spec),
        "Labels": dict(spec.labels),
        "StopSignal": spec.stop_signal,
        "StopTimeout": math.ceil(spec.stop_timeout),
        "Healthcheck": healthcheck(spec.healthcheck) if spec.healthcheck is not None else None,
        "Tty": spec.tty or None,
        "OpenStdin": spec.stdin_open or None,
        # An interactive one-off (`run -i`) gets end-of-file on stdin when the
        # attached client closes it, as `docker run -i` does.
        "StdinOnce": (spec.oneoff and spec.stdin_open) or None,
        "AttachStdin": False,
        "HostConfig": _host_config(spec, api_version, network_mode, engine_socket),
    }
    if networks:
        first = networks[0]
        body["NetworkingConfig"] = {
            "EndpointsConfig": {
                first.network: endpoint_config(spec, first, api_version, first=True)
            }
        }
    body = _drop_empty(body)
    body["Labels"] = dict(spec.labels)
    return CreateRequest(body, tuple(networks[1:]), tuple(file_copies(spec)))
