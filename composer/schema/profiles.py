"""Profiles: which services are switched on for this invocation.

Docker Compose's rules: a service without ``profiles`` is always enabled; one
with profiles is enabled when one of them is active, or when ``*`` is active.
Naming a service on the command line activates *its profiles* (so the other
services of those profiles come along, as in ``docker compose``); narrowing the
run to the named services and their dependencies is the planner's job.

A reference from an enabled service to a disabled one is an error rather than
an implicit enable, so that switching a profile off never silently starts
something else. The one exception is ``depends_on`` with ``required: false``.
``extends`` is not checked: it has been applied by now, and extending a base
service that sits in a never-enabled profile is a common, valid pattern.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from composer.errors import ConfigError, Location, Problem
from composer.schema.tree import YMap, locate, path_str

NAMESPACE_KEYS = ("network_mode", "ipc", "pid", "uts", "cgroup")
SERVICE_PREFIX = "service:"
CONTAINER_PREFIX = "container:"


def service_profiles(service: Any) -> list[str]:
    """The ``profiles`` a service declares (empty when it has none)."""
    if not isinstance(service, Mapping):
        return []
    raw = service.get("profiles") or []
    return [str(p) for p in raw] if isinstance(raw, list) else [str(raw)]


def is_enabled(service: Any, active: Sequence[str]) -> bool:
    """Whether ``service`` runs with the ``active`` profiles."""
    declared = service_profiles(service)
    if not declared or "*" in active:
        return True
    return any(p in active for p in declared)


def apply_profiles(
    tree: YMap, active: Sequence[str], named_services: Sequence[str]
) -> tuple[YMap, YMap]:
    """Split the services into (tree with the enabled ones, mapping of the disabled ones).

    ``active`` is the merged list of ``--profile`` and ``COMPOSE_PROFILES``;
    ``named_services`` the services named on the command line. The returned
    tree is a shallow copy with a new ``services`` mapping; positions are kept.
    """
    services = tree.get("services")
    if not isinstance(services, Mapping):
        services = YMap()
    _check_named(services, named_services)
    profiles = [p for p in active if p]
    for name in named_services:
        if not is_enabled(services[name], profiles):
            profiles.extend(service_profiles(services[name]))
    enabled = _submap(services, lambda s: is_enabled(s, profiles))
    disabled = _submap(services, lambda s: not is_enabled(s, profiles))
    problems = sorted(
        _references_to_disabled(tree, enabled, disabled),
        key=lambda p: _order(p.location),
    )
    if problems:
        raise ConfigError(problems[0].message, problems=problems)
    out = YMap(tree, tree.loc)
    out.key_locs, out.value_locs, out.tags = (
        dict(tree.key_locs),
        dict(tree.value_locs),
        dict(tree.tags),
    )
    if "services" in tree:
        out["services"] = enabled
    return out, disabled


def _check_named(services: Mapping[str, Any], named: Sequence[str]) -> None:
    for name in named:
        if name not in services:
            close = difflib.get_close_matches(name, list(services), n=1)
            raise ConfigError(
                f"no such service: {name}",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )


def _submap(services: Mapping[str, Any], keep: Any) -> YMap:
    out = YMap(loc=services.loc if isinstance(services, YMap) else None)
    for name, service in services.items():
        if keep(service):
            out[name] = service
            if isinstance(services, YMap):
                out.copy_locs_from(services, name)
    return out


def service_references(service: Any) -> Iterator[tuple[str, tuple[str | int, ...], bool]]:
    """Every service another service points at: ``(name, key path in the service, required)``.

    Covers ``depends_on`` (long form), ``links`` (``name[:alias]``),
    ``volumes_from`` (``name[:mode]``; ``container:`` entries are not services)
    ``service:x`` in ``network_mode``/``ipc``/``pid``/``uts``/``cgroup``, and
    ``service:x`` build contexts (``build.additional_contexts``: x's image).
    """
    if not isinstance(service, Mapping):
        return
    depends = service.get("depends_on")
    if isinstance(depends, Mapping):
        for dep, spec in depends.items():
            required = not (isinstance(spec, Mapping) and spec.get("required") is False)
            yield str(dep), ("depends_on", dep), required
    elif isinstance(depends, list):
        for index, dep in enumerate(depends):
            yield str(dep), ("depends_on", index), True
    for index, link in enumerate(_strings(service.get("links"))):
        yield link.split(":", 1)[0], ("links", index), True
    for index, source in enumerate(_strings(service.get("volumes_from"))):
        if not source.startswith(CONTAINER_PREFIX):
            yield source.split(":", 1)[0], ("volumes_from", index), True
    for key in NAMESPACE_KEYS:
        value = service.get(key)
        if isinstance(value, str) and value.startswith(SERVICE_PREFIX):
            yield value[len(SERVICE_PREFIX) :], (key,), True
    build = service.get("build")
    contexts = build.get("additional_contexts") if isinstance(build, Mapping) else None
    if isinstance(contexts, Mapping):
        for name, value in contexts.items():
            if isinstance(value, str) and value.startswith(SERVICE_PREFIX):
                yield value[len(SERVICE_PREFIX) :], ("build", "additional_contexts", name), True


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _references_to_disabled(
    tree: YMap, enabled: Mapping[str, Any], disabled: Mapping[str, Any]
) -> Iterator[Problem]:
    for name, service in enabled.items():
        for target, subpath, required in service_references(service):
            if target not in disabled or not required:
                continue
            path = ("services", name, *subpath)
            wanted = service_profiles(disabled[target])
            yield Problem(
                message=(
                    f"service {name!r} refers to service {target!r}, "
                    f"which is disabled by its profiles ({', '.join(wanted)})"
                ),
                location=locate(tree, path),
                path=path_str(path),
                hint=(
                    f"activate a profile of {target!r} (--profile {wanted[0]}), "
                    f"name {target!r} on the command line, or give {name!r} the same profiles"
                ),
            )


def _order(loc: Location | None) -> tuple[int, str, int, int]:
    if loc is None:
        return (1, "", 0, 0)
    return (0, loc.file, loc.line, loc.column)
