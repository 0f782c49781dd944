"""The model as ``docker compose config`` prints it.

``composer config`` must be diffable against ``docker compose config`` (v2),
so this module reproduces that output's *shape*: the key order of each
element (the field order of compose-go's types, which its YAML encoder
follows), map keys in the YAML encoder's natural order, empty values left
out the way Go's ``omitempty`` leaves them out, durations as Go strings,
byte sizes as decimal strings, ports with ``published`` as a string, and
``x-`` extensions after the fields of the element that holds them.

The result is plain data (dicts, lists, str, int, float, bool, None) in
insertion order; an emitter must keep that order (no key sorting).
``service_for_hash`` is the canonical dict a service's config hash is
computed from.
"""

from __future__ import annotations

import functools
import itertools
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, BeforeValidator

from composer.schema import model as m
from composer.schema.units import format_duration, parse_bytes, parse_duration

# --- key order ---------------------------------------------------------------


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _first_difference(a: str, b: str, limit: int) -> int:
    """Index of the first differing character (``a[:limit] != b[:limit]``).

    A binary search over prefix comparisons, which run in C.
    """
    lo, hi = 0, limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@functools.lru_cache(maxsize=16384)
def _string_key_less(a: str, b: str) -> bool:
    """Order of two string keys as the Go YAML encoder sorts a map.

    Cached: the same keys (environment, labels) recur in every service.

    At the first differing character: two letters compare by code point; a
    letter against a non-letter puts the non-letter first (the letter first
    right after a digit); otherwise the runs of digits starting there compare
    as numbers. A prefix sorts first.
    """
    limit = min(len(a), len(b))
    if a[:limit] == b[:limit]:
        return len(a) < len(b)
    i = _first_difference(a, b, limit)
    ca, cb = a[i], b[i]
    la, lb = ca.isalpha(), cb.isalpha()
    if la and lb:
        return ca < cb
    if la or lb:
        return la if i > 0 and _is_digit(a[i - 1]) else lb
    na = nb = 0
    if ca == "0" or cb == "0":
        j = i - 1
        while j >= 0 and _is_digit(a[j]):
            if a[j] != "0":
                na = nb = 1
                break
            j -= 1
    ea = i
    while ea < len(a) and _is_digit(a[ea]):
        na = na * 10 + ord(a[ea]) - 48
        ea += 1
    eb = i
    while eb < len(b) and _is_digit(b[eb]):
        nb = nb * 10 + ord(b[eb]) - 48
        eb += 1
    if na != nb:
        return na < nb
    if ea != eb:
        return ea < eb
    return ca < cb


def _key_cmp(a: Any, b: Any) -> int:
    if isinstance(a, str) and isinstance(b, str):
        if a == b:
            return 0
        return -1 if _string_key_less(a, b) else 1
    if isinstance(a, str) != isinstance(b, str):  # numbers before strings
        return 1 if isinstance(a, str) else -1
    result: int = (a > b) - (a < b)
    return result


go_key_order = functools.cmp_to_key(_key_cmp)
"""Sort key giving the Go YAML encoder's map-key order (``sorted(d, key=go_key_order)``)."""


def sorted_keys(mapping: Mapping[Any, Any]) -> list[Any]:
    """The keys of ``mapping`` in the order ``docker compose config`` prints them.

    Plain sorting agrees with the Go order for most keys; it is tried first
    and checked pair by pair, and the slower comparator sorts only when the
    check fails (digit runs of different lengths, letters against symbols).
    """
    keys = list(mapping)
    if len(keys) < 2:
        return keys
    try:
        keys.sort()
    except TypeError:
        return sorted(keys, key=go_key_order)
    for a, b in itertools.pairwise(keys):
        if _key_cmp(a, b) > 0:
            return sorted(keys, key=go_key_order)
    return keys


# --- per-element field order and omission rules -----------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ORDER: Mapping[type[BaseModel], tuple[str, ...]] = MappingProxyType(
    {
        m.Service: _names(
            "profiles annotations attach build develop blkio_config cap_add cap_drop "
            "cgroup_parent cgroup cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period "
            "cpu_rt_runtime cpus cpuset cpu_shares command configs container_name credential_spec "
            "depends_on deploy device_cgroup_rules devices dns dns_opt dns_search domainname "
            "entrypoint provider environment env_file expose extends external_links extra_hosts "
            "group_add gpus hostname healthcheck image init ipc isolation labels label_file links "
            "logging mem_limit mem_reservation memswap_limit mem_swappiness mac_address models "
            "network_mode networks oom_kill_disable oom_score_adj pid pids_limit platform ports "
            "privileged pull_policy pull_refresh_after read_only restart runtime scale secrets "
            "security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls "
            "tmpfs tty ulimits use_api_socket user userns_mode uts volumes volumes_from "
            "working_dir post_start pre_stop"
        ),
        m.Build: _names(
            "context dockerfile dockerfile_inline entitlements args provenance sbom ssh labels "
            "cache_from cache_to no_cache additional_contexts pull extra_hosts isolation network "
            "target secrets shm_size tags ulimits platforms privileged"
        ),
        m.Healthcheck: _names("test timeout interval retries start_period start_interval disable"),
        m.ServicePort: _names("name mode host_ip target published protocol app_protocol"),
        m.ServiceVolume: _names("type source target read_only consistency bind volume tmpfs image"),
        m.BindOptions: _names("selinux propagation create_host_path recursive"),
        m.VolumeOptions: _names("labels nocopy subpath"),
        m.TmpfsOptions: _names("size mode"),
        m.ImageMountOptions: _names("subpath"),
        m.ServiceNetwork: _names(
            "aliases driver_opts gw_priority interface_name ipv4_address ipv6_address "
            "link_local_ips mac_address priority"
        ),
        m.DependsOn: _names("condition restart required"),
        m.ServiceFileRef: _names("source target uid gid mode"),
        m.EnvFile: _names("path required format"),
        m.Logging: _names("driver options"),
        m.DeviceMapping: _names("source target permissions"),
        m.BlkioConfig: _names(
            "weight weight_device device_read_bps device_read_iops device_write_bps "
            "device_write_iops"
        ),
        m.BlkioLimit: _names("path rate"),
        m.BlkioWeight: _names("path weight"),
        m.CredentialSpec: _names("config file registry"),
        m.ServiceHook: _names("command user privileged working_dir environment"),
        m.WatchRule: _names("path action target exec include ignore initial_sync"),
        m.Develop: _names("watch"),
        m.DeviceRequest: _names("capabilities driver count device_ids options"),
        m.DiscreteResource: _names("kind value"),
        m.GenericResource: _names("discrete_resource_spec"),
        m.ResourceLimits: _names("cpus memory pids"),
        m.ResourceReservations: _names("cpus memory devices generic_resources"),
        m.Resources: _names("limits reservations"),
        m.UpdateConfig: _names("parallelism delay failure_action monitor max_failure_ratio order"),
        m.RestartPolicy: _names("condition delay max_attempts window"),
        m.PlacementPreference: _names("spread"),
        m.Placement: _names("constraints preferences max_replicas_per_node"),
        m.Deploy: _names(
            "mode replicas labels update_config rollback_config resources restart_policy "
            "placement endpoint_mode"
        ),
        m.Extends: _names("file service"),
        m.Provider: _names("type options"),
        m.ServiceModelRef: _names("endpoint_var model_var"),
        m.IpamPool: _names("subnet gateway ip_range aux_addresses"),
        m.Ipam: _names("driver config options"),
        m.Network: _names(
            "name driver driver_opts ipam external internal attachable labels enable_ipv4 "
            "enable_ipv6"
        ),
        m.Volume: _names("name driver driver_opts external labels"),
        m.ConfigDef: _names("name file environment content external labels template_driver"),
        m.SecretDef: _names(
            "name file environment external labels driver driver_opts template_driver"
        ),
        m.ModelDef: _names("name model context_size runtime_flags"),
    }
)
"""Field order of each element, as compose-go declares (and so prints) it."""

_KEEP_ZERO = frozenset(
    _names(
        "Service.attach Service.init Service.scale Service.stop_grace_period "
        "Healthcheck.timeout Healthcheck.interval Healthcheck.retries Healthcheck.start_period "
        "Healthcheck.start_interval Deploy.replicas UpdateConfig.parallelism "
        "RestartPolicy.delay RestartPolicy.max_attempts RestartPolicy.window "
        "Network.enable_ipv4 Network.enable_ipv6 DependsOn.required DiscreteResource.kind "
        "DiscreteResource.value BlkioLimit.path BlkioLimit.rate BlkioWeight.path "
        "BlkioWeight.weight ServiceFileRef.mode WatchRule.path WatchRule.action"
    )
)
"""Fields printed even when false or zero (pointers or non-omitempty in Go)."""

_OPT_OUT = frozenset({"EnvFile.required", "BindOptions.create_host_path"})
"""Booleans that default to true and are printed only when false."""

_KEEP_EMPTY_LIST = frozenset({"Service.command", "Service.entrypoint", "ServiceHook.command"})
"""Commands: ``[]`` (clear the image's command) differs from unset."""

_OMIT_EMPTY_ELEMENT = frozenset(
    {"Deploy.resources", "Deploy.placement", "Network.ipam", "WatchRule.exec"}
)
"""Sub-elements that Go embeds by value, so an empty one is left out."""

_OMIT = object()

Formatter = Callable[[Any], Any]


# --- value formatting --------------------------------------------------------


def _plain(value: Any) -> Any:
    """Free-form data (extensions, options): maps in printing order.

    Exact-type checks come first: this runs for every value of every map.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if isinstance(value, BaseModel):
        return _render_element(value)
    if isinstance(value, Mapping):
        return {k: _plain(value[k]) for k in sorted_keys(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _duration(value: Any) -> Any:
    return format_duration(value)


def _bytes(value: Any) -> Any:
    return str(value)


def _octal(value: Any) -> Any:
    return f"0{value:o}"


def _extra_hosts(value: Any) -> Any:
    return sorted(f"{host}={ip}" for host, ips in value.items() for ip in ips)


def _validator_funcs(annotation: Any) -> set[Any]:
    """The ``BeforeValidator`` functions attached anywhere in a field's type."""
    found: set[Any] = set()
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, BeforeValidator):
                found.add(meta.func)
    for arg in typing.get_args(annotation):
        found |= _validator_funcs(arg)
    return found


def _field_formatter(cls: type[BaseModel], name: str) -> Formatter:
    qualified = f"{cls.__name__}.{name}"
    if qualified in ("Service.extra_hosts", "Build.extra_hosts"):
        return _extra_hosts
    if qualified == "ServiceFileRef.mode":
        return _octal
    if qualified == "Service.mem_swappiness":  # a size type in compose-go
        return _bytes
    info = cls.model_fields[name]
    funcs = _validator_funcs(info.annotation) | {
        meta.func for meta in info.metadata if isinstance(meta, BeforeValidator)
    }
    if parse_duration in funcs:
        return _duration
    if parse_bytes in funcs:
        return _bytes
    return _plain


@functools.cache
def _plan(cls: type[BaseModel]) -> tuple[tuple[str, str, Formatter], ...]:
    """For each field in printing order: its name, its rule and its formatter."""
    order = _ORDER.get(cls, ())
    names = [n for n in order if n in cls.model_fields]
    names += [n for n in cls.model_fields if n not in names]
    plan: list[tuple[str, str, Formatter]] = []
    for name in names:
        qualified = f"{cls.__name__}.{name}"
        if qualified in _OPT_OUT:
            rule = "opt_out"
        elif qualified in _KEEP_ZERO:
            rule = "keep_zero"
        elif qualified in _KEEP_EMPTY_LIST:
            rule = "keep_empty_list"
        elif qualified in _OMIT_EMPTY_ELEMENT:
            rule = "omit_empty_element"
        else:
            rule = "omitempty"
        plan.append((name, rule, _field_formatter(cls, name)))
    return tuple(plan)


def _field_value(value: Any, rule: str, fmt: Formatter) -> Any:
    if value is None:
        return _OMIT
    if rule == "opt_out":
        return False if value is False else _OMIT
    if rule == "keep_zero":
        return fmt(value)
    if rule == "keep_empty_list" and isinstance(value, list):
        return fmt(value)
    if isinstance(value, BaseModel):
        rendered = fmt(value)
        return _OMIT if rule == "omit_empty_element" and not rendered else rendered
    if value is False or value == 0 or value == "" or value == [] or value == {}:
        return _OMIT
    return fmt(value)


def _render_element(element: BaseModel) -> Any:
    if type(element) is m.Ulimit:
        return _render_ulimit(element)
    out: dict[str, Any] = {}
    values = element.__dict__  # the field values; faster than getattr per field
    for name, rule, fmt in _plan(type(element)):
        value = values[name]
        if value is None:
            continue
        if rule == "omitempty":
            if value:  # Go's omitempty: false, 0, "" and empty collections are left out
                out[name] = fmt(value)
            continue
        rendered = _field_value(value, rule, fmt)
        if rendered is not _OMIT:
            out[name] = rendered
    extras = element.model_extra
    if extras:
        for key in sorted_keys(extras):
            out[key] = _plain(extras[key])
    return out


def _render_ulimit(limit: m.Ulimit) -> Any:
    """A single limit prints as a number, a soft/hard pair as a mapping."""
    if limit.single:
        single: int = limit.single
        return single
    out: dict[str, Any] = {"soft": limit.soft or 0, "hard": limit.hard or 0}
    for key in sorted_keys(limit.model_extra or {}):
        out[key] = _plain((limit.model_extra or {})[key])
    return out


# --- public API --------------------------------------------------------------


def render_service(service: m.Service) -> dict[str, Any]:
    """One service as ``docker compose config`` prints it (without its name)."""
    rendered: dict[str, Any] = _render_element(service)
    return rendered


def _render_section(section: Mapping[str, BaseModel]) -> dict[str, Any]:
    return {key: _render_element(section[key]) for key in sorted_keys(section)}


def render_project(project: m.Project) -> dict[str, Any]:
    """The whole project as ``docker compose config`` prints it.

    Order: ``name``, ``services`` (always present), ``networks``, ``volumes``,
    ``secrets``, ``configs``, ``models`` (each only when not empty), then the
    top-level ``x-*`` extensions.
    """
    out: dict[str, Any] = {"name": project.name}
    out["services"] = {
        key: render_service(project.services[key]) for key in sorted_keys(project.services)
    }
    sections: tuple[tuple[str, Mapping[str, BaseModel]], ...] = (
        ("networks", project.networks),
        ("volumes", project.volumes),
        ("secrets", project.secrets),
        ("configs", project.configs),
        ("models", project.models),
    )
    for key, section in sections:
        if section:
            out[key] = _render_section(section)
    extras = project.model_extra or {}
    for key in sorted_keys(extras):
        out[key] = _plain(extras[key])
    return out


HASH_EXCLUDED = ("build", "pull_policy", "scale", "depends_on", "profiles")
"""Service attributes that never cause a recreate (as in Docker Compose)."""

OWN_LABEL_PREFIX = "com.docker.compose."


def service_for_hash(service: m.Service) -> dict[str, Any]:
    """The canonical dict a service's config hash is computed from.

    The rendered service without the attributes that must not trigger a
    recreate: ``build``, ``pull_policy``, ``scale``, ``depends_on``,
    ``profiles``, ``deploy.replicas`` (and ``deploy`` itself when nothing else
    is in it) and the orchestrator's own
    ``com.docker.compose.*`` labels. ``service:x`` references are left as
    written; resolving them to containers needs the observed state.
    """
    out = render_service(service)
    for key in HASH_EXCLUDED:
        out.pop(key, None)
    deploy = out.get("deploy")
    if isinstance(deploy, dict):
        # Scaling with ``deploy.replicas`` must not recreate anything; Docker
        # Compose keeps an emptied ``deploy: {}`` in its hash, composer drops it.
        kept_deploy = {k: v for k, v in deploy.items() if k != "replicas"}
        if kept_deploy:
            out["deploy"] = kept_deploy
        else:
            del out["deploy"]
    labels = out.get("labels")
    if isinstance(labels, dict):
        kept = {k: v for k, v in labels.items() if not str(k).startswith(OWN_LABEL_PREFIX)}
        if kept:
            out["labels"] = kept
        else:
            del out["labels"]
    return out
