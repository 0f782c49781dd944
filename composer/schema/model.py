"""The Compose model: frozen pydantic classes for the fully loaded project.

Everything downstream of the loader (planner, backends, ``config`` output)
works on these classes and never on raw dicts. They hold the *canonical long
forms* that ``docker compose config`` prints: ports, volumes, depends_on,
networks, secrets and configs are always mappings; environment, labels and
similar are always dicts; durations are seconds and sizes are bytes.
Short syntax is turned into these forms by the loader before merging, so the
models never see it.

Every model allows extra keys only so that ``x-`` extensions survive into
``config`` output; the binding step rejects any other unknown key (with a
"did you mean" suggestion) before validation.

Start-up cost matters here: ``composer config`` builds these classes in
every process. So annotations are real objects rather than strings (no
``from __future__ import annotations``: pydantic would compile and evaluate
each of the ~300 annotation strings), empty defaults come from plain Python
factories, and schemas are built on first use (``defer_build``).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from composer.schema.units import format_duration, parse_bytes, parse_duration

Duration = Annotated[
    float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
"""Seconds; parsed from Go duration strings, printed back the same way."""

ByteSize = Annotated[int, BeforeValidator(parse_bytes)]
"""Bytes; parsed from Docker size strings such as ``512m``."""


def _octal_mode(value: object) -> object:
    """A file mode written as a string is octal (``"0440"``), as Compose reads it."""
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            raise ValueError(
                f"invalid file mode {value!r}: use an octal number such as 0440"
            ) from None
    return value


FileMode = Annotated[int, BeforeValidator(_octal_mode)]
"""Permission bits; strings are read as octal, numbers as written."""


def _number_as_text(value: object) -> object:
    """Numbers where the schema allows ``string | number`` are kept as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_number_as_text)]
"""A string that may be written as a number (``mtu: 1500``, ``group_add: [100]``)."""


def _new_dict() -> dict[Any, Any]:
    """Default factory for an empty mapping.

    Not the builtin ``dict``: pydantic inspects the signature of every
    default factory, and for a builtin that means parsing its text signature,
    about 0.3 ms each, over 90 fields.
    """
    return {}


def _new_list() -> list[Any]:
    """Default factory for an empty list (see ``_new_dict``)."""
    return []


Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]


class Spec(BaseModel):
    """Base of every model: immutable, ``x-`` extensions kept as extras."""

    # ``defer_build``: the schema of a class is built when it is first used,
    # not when it is defined. Validating a ``Project`` builds one schema that
    # covers every nested class, instead of one per class (46 of them) at
    # import; a class used on its own (``Service()``) is built then.
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True, defer_build=True)

    @property
    def extensions(self) -> dict[str, Any]:
        """The ``x-*`` keys written on this element."""
        return dict(self.model_extra or {})


# --- service sub-elements ---------------------------------------------------


class ServicePort(Spec):
    """One published or exposed port, long form (short syntax is expanded)."""

    name: str | None = None
    mode: str = "ingress"
    host_ip: str | None = None
    target: int
    published: str | None = None
    protocol: str = "tcp"
    app_protocol: str | None = None


class BindOptions(Spec):
    propagation: str | None = None
    create_host_path: bool | None = None
    recursive: Literal["enabled", "disabled", "writable", "readonly"] | None = None
    selinux: Literal["z", "Z"] | None = None


class VolumeOptions(Spec):
    labels: dict[str, str] = Field(default_factory=_new_dict)
    nocopy: bool | None = None
    subpath: str | None = None


class TmpfsOptions(Spec):
    size: ByteSize | None = None
    mode: int | None = None


class ImageMountOptions(Spec):
    subpath: str | None = None


class ServiceVolume(Spec):
    """A mount in long form: bind, named/anonymous volume, tmpfs or image."""

    type: Literal["bind", "volume", "tmpfs", "cluster", "npipe", "image"]
    source: str | None = None
    target: str | None = None
    read_only: bool | None = None
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None
    image: ImageMountOptions | None = None


class ServiceNetwork(Spec):
    """How a service attaches to one network."""

    aliases: list[str] = Field(default_factory=_new_list)
    interface_name: str | None = None
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: list[str] = Field(default_factory=_new_list)
    mac_address: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=_new_dict)
    priority: int | None = None
    gw_priority: int | None = None


class DependsOn(Spec):
    """One dependency, long form (the short form means ``service_started``)."""

    condition: Condition = "service_started"
    required: bool = True
    restart: bool = False


class ServiceFileRef(Spec):
    """A service's use of a top-level config or secret, long form."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: FileMode | None = None


class EnvFile(Spec):
    """One ``env_file`` entry, long form; ``path`` is resolved."""

    path: str
    required: bool = True
    format: str | None = None


class Healthcheck(Spec):
    """``test`` is always a list starting with CMD, CMD-SHELL or NONE."""

    test: list[str] | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = None
    start_period: Duration | None = None
    start_interval: Duration | None = None
    disable: bool | None = None


class Logging(Spec):
    driver: str | None = None
    options: dict[str, str | None] = Field(default_factory=_new_dict)


class Ulimit(Spec):
    """Either ``single`` (soft = hard) or both ``soft`` and ``hard``."""

    single: int | None = None
    soft: int | None = None
    hard: int | None = None


class DeviceMapping(Spec):
    source: str
    target: str | None = None
    permissions: str | None = None


class BlkioLimit(Spec):
    path: str
    rate: ByteSize


class BlkioWeight(Spec):
    path: str
    weight: int


class BlkioConfig(Spec):
    device_read_bps: list[BlkioLimit] = Field(default_factory=_new_list)
    device_read_iops: list[BlkioLimit] = Field(default_factory=_new_list)
    device_write_bps: list[BlkioLimit] = Field(default_factory=_new_list)
    device_write_iops: list[BlkioLimit] = Field(default_factory=_new_list)
    weight: int | None = None
    weight_device: list[BlkioWeight] = Field(default_factory=_new_list)


class CredentialSpec(Spec):
    config: str | None = None
    file: str | None = None
    registry: str | None = None


class ServiceHook(Spec):
    """A ``post_start``/``pre_stop`` hook or a watch ``exec`` command."""

    command: list[str]
    user: str | None = None
    privileged: bool | None = None
    working_dir: str | None = None
    environment: dict[str, str | None] = Field(default_factory=_new_dict)


class WatchRule(Spec):
    path: str
    action: Literal["rebuild", "sync", "restart", "sync+restart", "sync+exec"]
    target: str | None = None
    ignore: list[str] = Field(default_factory=_new_list)
    include: list[str] = Field(default_factory=_new_list)
    exec: ServiceHook | None = None
    initial_sync: bool | None = None


class Develop(Spec):
    watch: list[WatchRule] = Field(default_factory=_new_list)


class DeviceRequest(Spec):
    """A GPU or other device reservation (``gpus``, ``deploy...devices``)."""

    capabilities: list[str] = Field(default_factory=_new_list)
    count: int | None = None
    device_ids: list[str] = Field(default_factory=_new_list)
    driver: str | None = None
    options: dict[str, str] = Field(default_factory=_new_dict)


class DiscreteResource(Spec):
    kind: str | None = None
    value: int | None = None


class GenericResource(Spec):
    discrete_resource_spec: DiscreteResource | None = None


class ResourceLimits(Spec):
    cpus: float | None = None
    memory: ByteSize | None = None
    pids: int | None = None


class ResourceReservations(Spec):
    cpus: float | None = None
    memory: ByteSize | None = None
    generic_resources: list[GenericResource] = Field(default_factory=_new_list)
    devices: list[DeviceRequest] = Field(default_factory=_new_list)


class Resources(Spec):
    limits: ResourceLimits | None = None
    reservations: ResourceReservations | None = None


class UpdateConfig(Spec):
    parallelism: int | None = None
    delay: Duration | None = None
    failure_action: str | None = None
    monitor: Duration | None = None
    max_failure_ratio: float | None = None
    order: Literal["start-first", "stop-first"] | None = None


class RestartPolicy(Spec):
    condition: str | None = None
    delay: Duration | None = None
    max_attempts: int | None = None
    window: Duration | None = None


class PlacementPreference(Spec):
    spread: str | None = None


class Placement(Spec):
    constraints: list[str] = Field(default_factory=_new_list)
    preferences: list[PlacementPreference] = Field(default_factory=_new_list)
    max_replicas_per_node: int | None = None


class Deploy(Spec):
    mode: str | None = None
    endpoint_mode: str | None = None
    replicas: int | None = None
    labels: dict[str, str] = Field(default_factory=_new_dict)
    rollback_config: UpdateConfig | None = None
    update_config: UpdateConfig | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None


class Build(Spec):
    """A ``build`` section, long form; ``context`` is resolved."""

    context: str = "."
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    entitlements: list[str] = Field(default_factory=_new_list)
    args: dict[str, str | None] = Field(default_factory=_new_dict)
    ssh: list[str] = Field(default_factory=_new_list)
    labels: dict[str, str] = Field(default_factory=_new_dict)
    cache_from: list[str] = Field(default_factory=_new_list)
    cache_to: list[str] = Field(default_factory=_new_list)
    no_cache: bool | None = None
    additional_contexts: dict[str, str] = Field(default_factory=_new_dict)
    network: str | None = None
    provenance: str | None = None
    sbom: str | None = None
    pull: bool | None = None
    target: str | None = None
    shm_size: ByteSize | None = None
    extra_hosts: dict[str, list[str]] = Field(default_factory=_new_dict)
    isolation: str | None = None
    privileged: bool | None = None
    secrets: list[ServiceFileRef] = Field(default_factory=_new_list)
    tags: list[str] = Field(default_factory=_new_list)
    ulimits: dict[str, Ulimit] = Field(default_factory=_new_dict)
    platforms: list[str] = Field(default_factory=_new_list)


class Extends(Spec):
    service: str
    file: str | None = None


class Provider(Spec):
    type: str
    options: dict[str, Any] = Field(default_factory=_new_dict)


class ServiceModelRef(Spec):
    endpoint_var: str | None = None
    model_var: str | None = None


class Service(Spec):
    """One service with all 92 attributes of the Compose Specification."""

    annotations: dict[str, str] = Field(default_factory=_new_dict)
    attach: bool | None = None
    blkio_config: BlkioConfig | None = None
    build: Build | None = None
    cap_add: list[str] = Field(default_factory=_new_list)
    cap_drop: list[str] = Field(default_factory=_new_list)
    cgroup: Literal["host", "private"] | None = None
    cgroup_parent: str | None = None
    command: list[str] | None = None
    configs: list[ServiceFileRef] = Field(default_factory=_new_list)
    container_name: str | None = None
    cpu_count: int | None = None
    cpu_percent: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_shares: int | None = None
    cpus: float | None = None
    cpuset: str | None = None
    credential_spec: CredentialSpec | None = None
    depends_on: dict[str, DependsOn] = Field(default_factory=_new_dict)
    deploy: Deploy | None = None
    develop: Develop | None = None
    device_cgroup_rules: list[str] = Field(default_factory=_new_list)
    devices: list[DeviceMapping] = Field(default_factory=_new_list)
    dns: list[str] = Field(default_factory=_new_list)
    dns_opt: list[str] = Field(default_factory=_new_list)
    dns_search: list[str] = Field(default_factory=_new_list)
    domainname: str | None = None
    entrypoint: list[str] | None = None
    env_file: list[EnvFile] = Field(default_factory=_new_list)
    environment: dict[str, str | None] = Field(default_factory=_new_dict)
    expose: list[str] = Field(default_factory=_new_list)
    extends: Extends | None = None
    external_links: list[str] = Field(default_factory=_new_list)
    extra_hosts: dict[str, list[str]] = Field(default_factory=_new_dict)
    gpus: list[DeviceRequest] | None = None
    group_add: list[Text] = Field(default_factory=_new_list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    image: str | None = None
    init: bool | None = None
    ipc: str | None = None
    isolation: str | None = None
    label_file: list[str] = Field(default_factory=_new_list)
    labels: dict[str, str] = Field(default_factory=_new_dict)
    links: list[str] = Field(default_factory=_new_list)
    logging: Logging | None = None
    mac_address: str | None = None
    mem_limit: ByteSize | None = None
    mem_reservation: ByteSize | None = None
    mem_swappiness: int | None = None
    memswap_limit: ByteSize | None = None
    models: dict[str, ServiceModelRef | None] = Field(default_factory=_new_dict)
    network_mode: str | None = None
    networks: dict[str, ServiceNetwork | None] = Field(default_factory=_new_dict)
    oom_kill_disable: bool | None = None
    oom_score_adj: int | None = None
    pid: str | None = None
    pids_limit: int | None = None
    platform: str | None = None
    ports: list[ServicePort] = Field(default_factory=_new_list)
    post_start: list[ServiceHook] = Field(default_factory=_new_list)
    pre_stop: list[ServiceHook] = Field(default_factory=_new_list)
    privileged: bool | None = None
    profiles: list[str] = Field(default_factory=_new_list)
    provider: Provider | None = None
    pull_policy: str | None = None
    pull_refresh_after: str | None = None
    read_only: bool | None = None
    restart: str | None = None
    runtime: str | None = None
    scale: int | None = None
    secrets: list[ServiceFileRef] = Field(default_factory=_new_list)
    security_opt: list[str] = Field(default_factory=_new_list)
    shm_size: ByteSize | None = None
    stdin_open: bool | None = None
    stop_grace_period: Duration | None = None
    stop_signal: str | None = None
    storage_opt: dict[str, str] = Field(default_factory=_new_dict)
    sysctls: dict[str, str] = Field(default_factory=_new_dict)
    tmpfs: list[str] = Field(default_factory=_new_list)
    tty: bool | None = None
    ulimits: dict[str, Ulimit] = Field(default_factory=_new_dict)
    use_api_socket: bool | None = None
    user: str | None = None
    userns_mode: str | None = None
    uts: str | None = None
    volumes: list[ServiceVolume] = Field(default_factory=_new_list)
    volumes_from: list[str] = Field(default_factory=_new_list)
    working_dir: str | None = None

    @property
    def replicas(self) -> int:
        """How many containers the service wants: ``scale``, else ``deploy.replicas``, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1


# --- top-level elements -----------------------------------------------------


class IpamPool(Spec):
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = Field(default_factory=_new_dict)


class Ipam(Spec):
    driver: str | None = None
    config: list[IpamPool] = Field(default_factory=_new_list)
    options: dict[str, Text] = Field(default_factory=_new_dict)


class Network(Spec):
    """A top-level network; ``name`` is the engine name (``<project>_<key>`` by default)."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=_new_dict)
    ipam: Ipam | None = None
    external: bool | None = None
    internal: bool | None = None
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    attachable: bool | None = None
    labels: dict[str, str] = Field(default_factory=_new_dict)


class Volume(Spec):
    """A top-level volume; ``name`` is the engine name (``<project>_<key>`` by default)."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=_new_dict)
    external: bool | None = None
    labels: dict[str, str] = Field(default_factory=_new_dict)


class ConfigDef(Spec):
    """A top-level config: from a file, the environment or inline content."""

    name: str | None = None
    content: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: dict[str, str] = Field(default_factory=_new_dict)
    template_driver: str | None = None


class SecretDef(Spec):
    """A top-level secret: from a file or the environment."""

    name: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: dict[str, str] = Field(default_factory=_new_dict)
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=_new_dict)
    template_driver: str | None = None


class ModelDef(Spec):
    name: str | None = None
    model: str
    context_size: int | None = None
    runtime_flags: list[str] = Field(default_factory=_new_list)


class Project(Spec):
    """A fully loaded project: what ``load_project`` returns.

    ``environment`` is the environment interpolation used (process
    environment over the env files), kept so that later stages (``run -e
    KEY``, env_file lookups) see the same values. ``disabled_services`` holds
    services switched off by profiles: they are neither started nor orphans.
    """

    name: str
    working_dir: str
    config_files: list[str] = Field(default_factory=_new_list)
    env_files: list[str] = Field(default_factory=_new_list)
    environment: dict[str, str] = Field(default_factory=_new_dict)
    profiles: list[str] = Field(default_factory=_new_list)
    services: dict[str, Service] = Field(default_factory=_new_dict)
    networks: dict[str, Network] = Field(default_factory=_new_dict)
    volumes: dict[str, Volume] = Field(default_factory=_new_dict)
    configs: dict[str, ConfigDef] = Field(default_factory=_new_dict)
    secrets: dict[str, SecretDef] = Field(default_factory=_new_dict)
    models: dict[str, ModelDef] = Field(default_factory=_new_dict)
    disabled_services: dict[str, Service] = Field(default_factory=_new_dict)
    content_digests: dict[str, str] = Field(default_factory=_new_dict, exclude=True)
    """SHA-256 of every config, secret and env file the project reads, by
    absolute path (``"missing"`` for an absent optional file), recorded at
    load time so that config hashing stays pure."""
