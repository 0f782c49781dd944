"""Backend-neutral specs: what the planner asks an engine to create.

Specs are plain frozen records that already hold resolved names, labels and
values, never the ``Project``, so that each backend is a thin translation
and cannot make decisions of its own. Mappings are typed ``Mapping`` and are
never mutated after construction; sequences are tuples. Durations are
seconds, sizes bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ImageRef = str
"""An image reference as written (``nginx:1.27``, ``registry/app@sha256:…``)."""

MountType = Literal["bind", "volume", "tmpfs", "image", "npipe", "cluster", "config", "secret"]

DEFAULT_STOP_TIMEOUT = 10.0
"""Seconds between the stop signal and SIGKILL when ``stop_grace_period`` is unset."""

# --- container pieces -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One port: published to the host when ``published`` is set (may be a range)."""

    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class MountSpec:
    """Something mounted into the container's filesystem.

    ``type`` picks which fields matter:

    * ``bind``: ``source`` is an absolute host path.
    * ``volume``: ``source`` is the *engine* name of a named volume, or
      ``None`` for an anonymous volume (the backend creates one; the planner
      may set ``source`` to carry an old anonymous volume over on recreate).
    * ``tmpfs``: ``tmpfs_size``/``tmpfs_mode``.
    * ``image``: ``source`` is an image reference.
    * ``config``/``secret``: a file placed at ``target``; its bytes come from
      ``source`` (a host file) or from ``content`` (inline content or an
      environment value). ``uid``/``gid``/``mode`` are honoured, unlike
      Docker Compose outside Swarm.
    """

    type: MountType
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind_propagation: str | None = None
    bind_create_host_path: bool = True
    bind_recursive: str | None = None
    bind_selinux: str | None = None
    volume_nocopy: bool = False
    volume_subpath: str | None = None
    volume_labels: Mapping[str, str] = field(default_factory=dict)
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    image_subpath: str | None = None
    content: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """How the container joins one network (``network`` is the engine name)."""

    network: str
    key: str | None = None
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    mac_address: str | None = None
    interface_name: str | None = None
    priority: int = 0
    gw_priority: int = 0
    driver_opts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthcheckSpec:
    """A healthcheck; ``None`` durations/retries mean "the engine default".

    ``test`` is ``("CMD", …)``, ``("CMD-SHELL", "…")`` or ``("NONE",)``;
    ``None`` keeps the image's test. ``disable`` is already folded into
    ``test == ("NONE",)``.
    """

    test: tuple[str, ...] | None = None
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None

    @property
    def disabled(self) -> bool:
        return self.test == ("NONE",)


@dataclass(frozen=True, slots=True)
class LoggingSpec:
    driver: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UlimitSpec:
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A host device mapped into the container."""

    source: str
    target: str
    permissions: str = "rwm"


@dataclass(frozen=True, slots=True)
class DeviceRequestSpec:
    """A device reservation (GPUs): ``count == -1`` means all."""

    driver: str | None = None
    count: int | None = None
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlkioSpec:
    """Block IO weights and throttles; throttles are ``(device path, rate)``."""

    weight: int | None = None
    weight_device: tuple[tuple[str, int], ...] = ()
    device_read_bps: tuple[tuple[str, int], ...] = ()
    device_read_iops: tuple[tuple[str, int], ...] = ()
    device_write_bps: tuple[tuple[str, int], ...] = ()
    device_write_iops: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ResourcesSpec:
    """cgroup limits, merged from the service and ``deploy.resources``."""

    mem_limit: int | None = None
    mem_reservation: int | None = None
    memswap_limit: int | None = None
    mem_swappiness: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_count: int | None = None
    cpu_percent: int | None = None
    cpuset: str | None = None
    pids_limit: int | None = None
    oom_kill_disable: bool | None = None
    oom_score_adj: int | None = None
    blkio: BlkioSpec | None = None
    device_requests: tuple[DeviceRequestSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class HookSpec:
    """A ``post_start``/``pre_stop`` command run inside the container."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


# --- resource specs ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything a backend needs to create one container.

    ``labels`` already holds every ``com.docker.compose.*`` label, including
    the config hash. ``number`` is ``None`` for one-off (``run``) containers.
    References to other services (``network_mode: service:x``, ``links``,
    ``volumes_from``) are resolved to container names.
    """

    name: str
    service: str
    image: ImageRef
    labels: Mapping[str, str]
    number: int | None = 1
    oneoff: bool = False
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    mac_address: str | None = None
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    volumes_from: tuple[str, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()
    network_mode: str | None = None
    links: tuple[str, ...] = ()
    external_links: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    restart: str | None = None
    init: bool | None = None
    stop_signal: str | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    healthcheck: HealthcheckSpec | None = None
    logging: LoggingSpec | None = None
    ulimits: Mapping[str, UlimitSpec] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    security_opt: tuple[str, ...] = ()
    read_only: bool = False
    shm_size: int | None = None
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    devices: tuple[DeviceSpec, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    ipc: str | None = None
    pid: str | None = None
    uts: str | None = None
    cgroup: str | None = None
    cgroup_parent: str | None = None
    userns_mode: str | None = None
    group_add: tuple[str, ...] = ()
    tty: bool = False
    stdin_open: bool = False
    platform: str | None = None
    runtime: str | None = None
    isolation: str | None = None
    storage_opt: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    use_api_socket: bool = False
    post_start: tuple[HookSpec, ...] = ()
    pre_stop: tuple[HookSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class IpamPoolSpec:
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IpamSpec:
    driver: str | None = None
    config: tuple[IpamPoolSpec, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A network to create; ``name`` is the engine name, ``key`` the compose key.

    ``labels`` includes the compose labels (project, network key, config hash).
    An ``external`` network is never created, only expected to exist.
    """

    name: str
    key: str
    driver: str | None = None
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    ipam: IpamSpec | None = None
    internal: bool = False
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    attachable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    external: bool = False


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A named volume to create; ``labels`` includes the compose labels."""

    name: str
    key: str
    driver: str | None = None
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    external: bool = False


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """An image build; ``tag`` is the service's image name, ``tags`` extra tags."""

    tag: ImageRef
    context: str
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    network: str | None = None
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int | None = None
    additional_contexts: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    secrets: tuple[MountSpec, ...] = ()
    ulimits: Mapping[str, UlimitSpec] = field(default_factory=dict)
    privileged: bool = False
    isolation: str | None = None
    entitlements: tuple[str, ...] = ()
