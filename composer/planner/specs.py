"""From the Compose model to backend specs.

Backends never see the ``Project``: this module resolves everything a
backend needs into plain frozen specs — engine names of networks and volumes,
``service:x`` references turned into container names, configs and secrets
turned into file mounts (with ``uid``/``gid``/``mode``, which Docker Compose
ignores outside Swarm), limits merged from the service and
``deploy.resources``, and the full set of Compose labels. Pure and
deterministic: the same project gives equal specs.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import TypeVar

from composer.backends import base as b
from composer.backends import labels as lbl
from composer.errors import PlanError
from composer.planner.hashing import network_hash, service_hash, volume_hash
from composer.schema import model as m

_T = TypeVar("_T")

SECRETS_DIR = "/run/secrets"
DEFAULT_FILE_MODE = 0o444
"""Mode of config and secret files when none is given (as Docker Compose)."""


# --- names ------------------------------------------------------------------


def image_ref(project: m.Project, service: str) -> str:
    """The image a service runs: ``image:``, else ``<project>-<service>``."""
    return _service(project, service).image or lbl.default_image_name(project.name, service)


def container_name(project: m.Project, service: str, number: int = 1) -> str:
    """``container_name:`` if set, else ``<project>-<service>-<n>``."""
    svc = _service(project, service)
    return svc.container_name or lbl.container_name(project.name, service, number)


def network_engine_name(project: m.Project, key: str) -> str:
    """The engine name of network ``key`` (an external one keeps its own name)."""
    net = _element(project.networks, key, "network")
    if net.external:
        return net.name or key
    return lbl.network_name(project.name, key, net.name)


def volume_engine_name(project: m.Project, key: str) -> str:
    """The engine name of volume ``key`` (an external one keeps its own name)."""
    vol = _element(project.volumes, key, "volume")
    if vol.external:
        return vol.name or key
    return lbl.volume_name(project.name, key, vol.name)


# --- networks, volumes, builds ------------------------------------------------


def network_spec(project: m.Project, key: str) -> b.NetworkSpec:
    """The network to create for ``key``, labelled with its definition's hash."""
    net = _element(project.networks, key, "network")
    ipam = None
    if net.ipam is not None:
        ipam = b.IpamSpec(
            driver=net.ipam.driver,
            config=tuple(
                b.IpamPoolSpec(p.subnet, p.ip_range, p.gateway, dict(p.aux_addresses))
                for p in net.ipam.config
            ),
            options=dict(net.ipam.options),
        )
    return b.NetworkSpec(
        name=network_engine_name(project, key),
        key=key,
        driver=net.driver,
        driver_opts=dict(net.driver_opts),
        ipam=ipam,
        internal=bool(net.internal),
        enable_ipv4=net.enable_ipv4,
        enable_ipv6=net.enable_ipv6,
        attachable=bool(net.attachable),
        labels=lbl.merge_labels(
            net.labels, lbl.network_labels(project.name, key, network_hash(net))
        ),
        external=bool(net.external),
    )


def volume_spec(project: m.Project, key: str) -> b.VolumeSpec:
    """The volume to create for ``key``, labelled with its definition's hash."""
    vol = _element(project.volumes, key, "volume")
    return b.VolumeSpec(
        name=volume_engine_name(project, key),
        key=key,
        driver=vol.driver,
        driver_opts=dict(vol.driver_opts),
        labels=lbl.merge_labels(vol.labels, lbl.volume_labels(project.name, key, volume_hash(vol))),
        external=bool(vol.external),
    )


SERVICE_CONTEXT = "service:"


def build_context_services(project: m.Project, service: str) -> list[str]:
    """The services whose images ``service``'s build reads (``additional_contexts``
    entries ``service:NAME``): they are built first."""
    build = project.services[service].build
    if build is None:
        return []
    return [
        value.removeprefix(SERVICE_CONTEXT)
        for value in build.additional_contexts.values()
        if value.startswith(SERVICE_CONTEXT)
    ]


def _build_contexts(project: m.Project, contexts: Mapping[str, str]) -> dict[str, str]:
    """``service:NAME`` becomes ``docker-image://`` NAME's image, which the builder reads."""
    return {
        key: (
            "docker-image://" + image_ref(project, value.removeprefix(SERVICE_CONTEXT))
            if value.startswith(SERVICE_CONTEXT)
            else value
        )
        for key, value in contexts.items()
    }


def build_spec(project: m.Project, service: str) -> b.BuildSpec:
    """The image build of a service that has a ``build`` section."""
    svc = _service(project, service)
    build = svc.build
    if build is None:
        raise PlanError(f"service {service} has no build section")
    return b.BuildSpec(
        tag=image_ref(project, service),
        context=build.context,
        dockerfile=build.dockerfile,
        dockerfile_inline=build.dockerfile_inline,
        args=_defined(build.args),
        target=build.target,
        labels=dict(build.labels),
        tags=tuple(build.tags),
        no_cache=bool(build.no_cache),
        pull=bool(build.pull),
        network=build.network,
        extra_hosts=_host_pairs(build.extra_hosts),
        shm_size=build.shm_size,
        additional_contexts=_build_contexts(project, build.additional_contexts),
        platforms=tuple(build.platforms),
        cache_from=tuple(build.cache_from),
        cache_to=tuple(build.cache_to),
        ssh=tuple(build.ssh),
        secrets=tuple(_file_mount(project, ref, "secret") for ref in build.secrets),
        ulimits=_ulimits(build.ulimits),
        privileged=bool(build.privileged),
        isolation=build.isolation,
        entitlements=tuple(build.entitlements),
    )


# --- containers ---------------------------------------------------------------


def container_spec(
    project: m.Project,
    service_name: str,
    number: int | None,
    *,
    image_id: str,
    oneoff: bool = False,
    slug: str | None = None,
    name: str | None = None,
    replace: str | None = None,
    config_hash: str | None = None,
    containers: Mapping[str, str] | None = None,
    use_aliases: bool | None = None,
) -> b.ContainerSpec:
    """Everything a backend needs to create one container of ``service_name``.

    ``number`` is the replica number (``None`` for one-offs, which need
    ``slug``); ``name`` overrides the container name; ``replace`` names the
    container this one replaces; ``config_hash`` defaults to
    ``service_hash``. ``containers`` maps services to the container a
    ``service:x`` reference points at (default: the service's first
    container). ``use_aliases`` defaults to true except for one-offs, as in
    ``docker compose run``. Callers adapt one-offs (command, ports) with
    ``dataclasses.replace``.
    """
    svc = _service(project, service_name)
    refs: Mapping[str, str] = containers or {}
    if config_hash is None:
        config_hash = service_hash(project, service_name)
    aliases = (not oneoff) if use_aliases is None else use_aliases
    resolved_name = name or _container_name(project, service_name, svc, number, oneoff, slug)
    labels = lbl.container_labels(
        project=project.name,
        service=service_name,
        number=None if oneoff else number,
        config_hash=config_hash,
        image_id=image_id,
        working_dir=project.working_dir,
        config_files=project.config_files,
        environment_files=project.env_files,
        depends_on=[
            lbl.Dependency(dep, d.condition, d.restart) for dep, d in svc.depends_on.items()
        ],
        oneoff=oneoff,
        slug=slug,
        replace=replace,
        user=svc.labels,
    )
    network_mode = _resolve_ref(project, svc.network_mode, refs)
    # Most attributes of most services are empty: the ``x and ...`` guards
    # below skip building (and then dropping) empty containers, which counts
    # when a plan holds a thousand containers.
    return b.ContainerSpec(
        name=resolved_name,
        service=service_name,
        image=svc.image or lbl.default_image_name(project.name, service_name),
        labels=labels,
        number=None if oneoff else number,
        oneoff=oneoff,
        command=_opt_tuple(svc.command),
        entrypoint=_opt_tuple(svc.entrypoint),
        environment=_defined(svc.environment),
        user=svc.user,
        working_dir=svc.working_dir,
        hostname=svc.hostname,
        domainname=svc.domainname,
        mac_address=svc.mac_address,
        ports=tuple([_port(p) for p in svc.ports]) if svc.ports else (),
        expose=tuple(svc.expose),
        mounts=_mounts(project, svc),
        tmpfs=_tmpfs(svc.tmpfs),
        volumes_from=(
            tuple([_volumes_from(project, entry, refs) for entry in svc.volumes_from])
            if svc.volumes_from
            else ()
        ),
        networks=() if network_mode else _attachments(project, service_name, svc, aliases),
        network_mode=network_mode,
        links=tuple([_link(project, entry, refs) for entry in svc.links]) if svc.links else (),
        external_links=tuple(svc.external_links),
        dns=tuple(svc.dns),
        dns_search=tuple(svc.dns_search),
        dns_opt=tuple(svc.dns_opt),
        extra_hosts=_host_pairs(svc.extra_hosts),
        restart=svc.restart,
        init=svc.init,
        stop_signal=svc.stop_signal,
        stop_timeout=(
            svc.stop_grace_period if svc.stop_grace_period is not None else b.DEFAULT_STOP_TIMEOUT
        ),
        healthcheck=_healthcheck(svc.healthcheck),
        logging=_logging(svc.logging),
        ulimits=_ulimits(svc.ulimits),
        sysctls=dict(svc.sysctls),
        cap_add=tuple(svc.cap_add),
        cap_drop=tuple(svc.cap_drop),
        privileged=bool(svc.privileged),
        security_opt=tuple(svc.security_opt),
        read_only=bool(svc.read_only),
        shm_size=svc.shm_size,
        resources=_resources(svc),
        devices=(
            tuple(
                [
                    b.DeviceSpec(d.source, d.target or d.source, d.permissions or "rwm")
                    for d in svc.devices
                ]
            )
            if svc.devices
            else ()
        ),
        device_cgroup_rules=tuple(svc.device_cgroup_rules),
        ipc=_resolve_ref(project, svc.ipc, refs),
        pid=_resolve_ref(project, svc.pid, refs),
        uts=_resolve_ref(project, svc.uts, refs),
        cgroup=svc.cgroup,
        cgroup_parent=svc.cgroup_parent,
        userns_mode=svc.userns_mode,
        group_add=tuple(svc.group_add),
        tty=bool(svc.tty),
        stdin_open=bool(svc.stdin_open),
        platform=svc.platform,
        runtime=svc.runtime,
        isolation=svc.isolation,
        storage_opt=dict(svc.storage_opt),
        annotations=dict(svc.annotations),
        use_api_socket=bool(svc.use_api_socket),
        post_start=tuple([_hook(h) for h in svc.post_start]) if svc.post_start else (),
        pre_stop=tuple([_hook(h) for h in svc.pre_stop]) if svc.pre_stop else (),
    )


def _container_name(
    project: m.Project,
    service: str,
    svc: m.Service,
    number: int | None,
    oneoff: bool,
    slug: str | None,
) -> str:
    if oneoff:
        if not slug:
            raise PlanError(f"a one-off container of {service} needs a slug")
        return lbl.oneoff_name(project.name, service, slug)
    if number is None:
        raise PlanError(f"a container of {service} needs a replica number")
    return svc.container_name or lbl.container_name(project.name, service, number)


def _resolve_ref(project: m.Project, value: str | None, refs: Mapping[str, str]) -> str | None:
    """``service:x`` → ``container:<x's container>``; anything else unchanged."""
    if value is None or not value.startswith("service:"):
        return value
    target = value.removeprefix("service:")
    return f"container:{_target_container(project, target, refs)}"


def _target_container(project: m.Project, service: str, refs: Mapping[str, str]) -> str:
    if service in refs:
        return refs[service]
    if service not in project.services:
        raise PlanError(f"reference to unknown service {service}")
    return container_name(project, service, 1)


def _volumes_from(project: m.Project, entry: str, refs: Mapping[str, str]) -> str:
    if entry.startswith("container:"):
        return entry.removeprefix("container:")
    service, _, mode = entry.partition(":")
    target = _target_container(project, service, refs)
    return f"{target}:{mode}" if mode else target


def _link(project: m.Project, entry: str, refs: Mapping[str, str]) -> str:
    service, _, alias = entry.partition(":")
    return f"{_target_container(project, service, refs)}:{alias or service}"


def _attachments(
    project: m.Project, service: str, svc: m.Service, aliases: bool
) -> tuple[b.NetworkAttachment, ...]:
    networks: Mapping[str, m.ServiceNetwork | None] = svc.networks
    if not networks and "default" in project.networks:
        networks = {"default": None}
    out: list[b.NetworkAttachment] = []
    for key, conf in networks.items():
        network = network_engine_name(project, key)
        if conf is None:  # attached with no options: the service name is its alias
            out.append(b.NetworkAttachment(network, key, (service,) if aliases else ()))
            continue
        names = [service, *conf.aliases] if aliases else []
        out.append(
            b.NetworkAttachment(
                network=network,
                key=key,
                aliases=tuple(dict.fromkeys(names)),
                ipv4_address=conf.ipv4_address,
                ipv6_address=conf.ipv6_address,
                link_local_ips=tuple(conf.link_local_ips),
                mac_address=conf.mac_address,
                interface_name=conf.interface_name,
                priority=conf.priority or 0,
                gw_priority=conf.gw_priority or 0,
                driver_opts=dict(conf.driver_opts),
            )
        )
    if len(out) == 1:
        return (out[0],)
    # The first network is the primary one: highest priority, then by key.
    return tuple(sorted(out, key=_attachment_order))


def _attachment_order(attachment: b.NetworkAttachment) -> tuple[int, str]:
    return (-attachment.priority, attachment.key or "")


def _mounts(project: m.Project, svc: m.Service) -> tuple[b.MountSpec, ...]:
    if not (svc.volumes or svc.configs or svc.secrets):
        return ()
    mounts = [_volume_mount(project, v) for v in svc.volumes]
    mounts += [_file_mount(project, ref, "config") for ref in svc.configs]
    mounts += [_file_mount(project, ref, "secret") for ref in svc.secrets]
    return tuple(mounts)


def _volume_mount(project: m.Project, vol: m.ServiceVolume) -> b.MountSpec:
    source = vol.source
    if vol.type == "volume" and source and source in project.volumes:
        source = volume_engine_name(project, source)
    if vol.target is None:
        raise PlanError(f"volume {vol.source or ''} has no target")
    bind, volume, tmpfs = vol.bind, vol.volume, vol.tmpfs
    return b.MountSpec(
        type=vol.type,
        target=vol.target,
        source=source,
        read_only=bool(vol.read_only),
        consistency=vol.consistency,
        bind_propagation=bind.propagation if bind else None,
        bind_create_host_path=(
            bind.create_host_path if bind and bind.create_host_path is not None else True
        ),
        bind_recursive=bind.recursive if bind else None,
        bind_selinux=bind.selinux if bind else None,
        volume_nocopy=bool(volume.nocopy) if volume else False,
        volume_subpath=volume.subpath if volume else None,
        volume_labels=dict(volume.labels) if volume else {},
        tmpfs_size=tmpfs.size if tmpfs else None,
        tmpfs_mode=tmpfs.mode if tmpfs else None,
        image_subpath=vol.image.subpath if vol.image else None,
    )


def _file_mount(project: m.Project, ref: m.ServiceFileRef, kind: str) -> b.MountSpec:
    """A config or secret as a read-only file in the container."""
    definition: m.ConfigDef | m.SecretDef
    if kind == "config":
        definition = _element(project.configs, ref.source, "config")
        target = ref.target or f"/{ref.source}"
    else:
        definition = _element(project.secrets, ref.source, "secret")
        target = ref.target or ref.source
        if not target.startswith("/"):
            target = f"{SECRETS_DIR}/{target}"
    if definition.external:
        raise PlanError(
            f"unsupported external {kind} {definition.name or ref.source}",
            hint=f"external {kind}s need a swarm; use file, environment or content instead",
        )
    content: str | None = None
    if definition.file is None:
        if definition.environment is not None:
            content = project.environment.get(definition.environment, "")
        elif isinstance(definition, m.ConfigDef):
            content = definition.content or ""
        else:
            content = ""
    return b.MountSpec(
        type="config" if kind == "config" else "secret",
        target=target,
        source=definition.file,
        read_only=True,
        content=content,
        uid=ref.uid,
        gid=ref.gid,
        mode=ref.mode if ref.mode is not None else DEFAULT_FILE_MODE,
    )


def _tmpfs(entries: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        path, _, options = entry.partition(":")
        out[path] = options
    return out


def _port(p: m.ServicePort) -> b.PortSpec:
    return b.PortSpec(
        target=p.target,
        published=p.published,
        host_ip=p.host_ip,
        protocol=p.protocol,
        mode=p.mode,
        name=p.name,
        app_protocol=p.app_protocol,
    )


def _healthcheck(h: m.Healthcheck | None) -> b.HealthcheckSpec | None:
    if h is None:
        return None
    test = ("NONE",) if h.disable else _opt_tuple(h.test)
    return b.HealthcheckSpec(
        test=test,
        interval=h.interval,
        timeout=h.timeout,
        retries=h.retries,
        start_period=h.start_period,
        start_interval=h.start_interval,
    )


def _logging(log: m.Logging | None) -> b.LoggingSpec | None:
    if log is None:
        return None
    return b.LoggingSpec(driver=log.driver, options=_defined(log.options))


def _ulimits(ulimits: Mapping[str, m.Ulimit]) -> dict[str, b.UlimitSpec]:
    out: dict[str, b.UlimitSpec] = {}
    for name in sorted(ulimits):
        u = ulimits[name]
        soft = u.single if u.single is not None else (u.soft or 0)
        hard = u.single if u.single is not None else (u.hard if u.hard is not None else soft)
        out[name] = b.UlimitSpec(soft, hard)
    return out


_RESOURCE_FIELDS = (
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "cpus",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_count",
    "cpu_percent",
    "cpuset",
    "pids_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "blkio_config",
    "gpus",
)
"""Service attributes that feed ``ResourcesSpec`` (besides ``deploy.resources``)."""

_NO_RESOURCES = b.ResourcesSpec()
"""The spec of a service without limits (frozen, so one value serves every container)."""

_is_none = functools.partial(operator.is_, None)


def _resources(svc: m.Service) -> b.ResourcesSpec:
    """Service-level limits, completed from ``deploy.resources`` where unset."""
    res = svc.deploy.resources if svc.deploy is not None else None
    if res is None and all(map(_is_none, map(svc.__dict__.__getitem__, _RESOURCE_FIELDS))):
        return _NO_RESOURCES  # the usual case, checked without a Python-level loop
    limits = res.limits if res is not None else None
    reserve = res.reservations if res is not None else None
    requests = [*(svc.gpus or ()), *(reserve.devices if reserve is not None else ())]
    return b.ResourcesSpec(
        mem_limit=_first(svc.mem_limit, limits.memory if limits is not None else None),
        mem_reservation=_first(
            svc.mem_reservation, reserve.memory if reserve is not None else None
        ),
        memswap_limit=svc.memswap_limit,
        mem_swappiness=svc.mem_swappiness,
        cpus=_first(svc.cpus, limits.cpus if limits is not None else None),
        cpu_shares=svc.cpu_shares,
        cpu_period=svc.cpu_period,
        cpu_quota=svc.cpu_quota,
        cpu_rt_period=svc.cpu_rt_period,
        cpu_rt_runtime=svc.cpu_rt_runtime,
        cpu_count=svc.cpu_count,
        cpu_percent=svc.cpu_percent,
        cpuset=svc.cpuset,
        pids_limit=_first(svc.pids_limit, limits.pids if limits is not None else None),
        oom_kill_disable=svc.oom_kill_disable,
        oom_score_adj=svc.oom_score_adj,
        blkio=_blkio(svc.blkio_config),
        device_requests=(
            tuple(
                [
                    b.DeviceRequestSpec(
                        driver=d.driver,
                        count=d.count,
                        device_ids=tuple(d.device_ids),
                        capabilities=tuple(d.capabilities),
                        options=dict(d.options),
                    )
                    for d in requests
                ]
            )
            if requests
            else ()
        ),
    )


def _first(value: _T | None, fallback: _T | None) -> _T | None:
    return value if value is not None else fallback


def _blkio(cfg: m.BlkioConfig | None) -> b.BlkioSpec | None:
    if cfg is None:
        return None

    def rates(items: list[m.BlkioLimit]) -> tuple[tuple[str, int], ...]:
        return tuple((i.path, i.rate) for i in items)

    return b.BlkioSpec(
        weight=cfg.weight,
        weight_device=tuple((w.path, w.weight) for w in cfg.weight_device),
        device_read_bps=rates(cfg.device_read_bps),
        device_read_iops=rates(cfg.device_read_iops),
        device_write_bps=rates(cfg.device_write_bps),
        device_write_iops=rates(cfg.device_write_iops),
    )


def _hook(h: m.ServiceHook) -> b.HookSpec:
    return b.HookSpec(
        command=tuple(h.command),
        user=h.user,
        privileged=bool(h.privileged),
        working_dir=h.working_dir,
        environment=_defined(h.environment),
    )


# --- small helpers --------------------------------------------------------------


def _defined(values: Mapping[str, str | None]) -> dict[str, str]:
    """Drop variables left without a value (``KEY`` unset everywhere)."""
    return {k: v for k, v in values.items() if v is not None}


def _opt_tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _host_pairs(hosts: Mapping[str, list[str]]) -> tuple[tuple[str, str], ...]:
    if not hosts:
        return ()
    return tuple([(host, ip) for host, ips in hosts.items() for ip in ips])


def _service(project: m.Project, name: str) -> m.Service:
    """An enabled service, or one disabled by profiles (``run`` may target it)."""
    svc = project.services.get(name) or project.disabled_services.get(name)
    if svc is None:
        raise PlanError(f"no such service: {name}")
    return svc


def _element(section: Mapping[str, _T], key: str, kind: str) -> _T:
    try:
        return section[key]
    except KeyError:
        raise PlanError(f"service refers to undefined {kind} {key}") from None
