"""Semantic checks on the normalised project: what the schema alone cannot see.

Every problem of the project is collected and reported at once, in file
order, each at the user's text: references to services, networks, volumes,
configs, secrets and models that do not exist (with a "did you mean"),
dependency cycles (``a -> b -> a``, starting from the alphabetically first
service of the cycle so the message is stable), ``container_name`` on a
scaled service, a host port published twice, and values that only a parser
can judge: durations, sizes, port numbers, ``restart`` and ``pull_policy``.

A project whose only problems are cycles raises ``DependencyCycleError``;
any other mix raises ``ConfigError`` with every problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from composer.errors import ConfigError, DependencyCycleError, Location, Problem
from composer.schema.profiles import NAMESPACE_KEYS, SERVICE_PREFIX, service_references
from composer.schema.tree import Key, YMap, locate, path_str
from composer.schema.units import parse_bytes, parse_duration

Path = tuple[Key, ...]

_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:[0-9]+)?)$")
_PULL_POLICIES = frozenset(
    {"always", "never", "missing", "build", "if_not_present", "refresh", "daily", "weekly"}
)
_LONG_DURATION = re.compile(r"^(?:\d+(?:\.\d*)?(?:ns|us|µs|μs|ms|s|m|h|d|w))+$")

_DURATIONS: tuple[Path, ...] = (
    ("healthcheck", "interval"),
    ("healthcheck", "timeout"),
    ("healthcheck", "start_period"),
    ("healthcheck", "start_interval"),
    ("stop_grace_period",),
    ("deploy", "update_config", "delay"),
    ("deploy", "update_config", "monitor"),
    ("deploy", "rollback_config", "delay"),
    ("deploy", "rollback_config", "monitor"),
    ("deploy", "restart_policy", "delay"),
    ("deploy", "restart_policy", "window"),
)
_SIZES: tuple[Path, ...] = (
    ("mem_limit",),
    ("mem_reservation",),
    ("memswap_limit",),
    ("shm_size",),
    ("build", "shm_size"),
    ("deploy", "resources", "limits", "memory"),
    ("deploy", "resources", "reservations", "memory"),
)


class _Collector:
    """Problems found so far, each positioned in the tree."""

    def __init__(self, tree: YMap) -> None:
        self.tree = tree
        self.problems: list[Problem] = []
        self.cycles: list[Problem] = []

    def add(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(message, locate(self.tree, path), path_str(path), hint))


def check_project(tree: YMap, *, disabled_services: Collection[str] = ()) -> None:
    """Raise one ConfigError listing every semantic problem of ``tree``.

    ``disabled_services`` are the services switched off by profiles: a
    ``depends_on`` with ``required: false`` may point at one of them.
    """
    out = _Collector(tree)
    services = _section(tree, "services")
    for name, service in services.items():
        if isinstance(service, Mapping):
            _check_service(out, name, service, services, disabled_services)
    _check_ports_unique(out, services)
    _check_container_names(out, services)
    _check_cycles(out, services)
    _raise(out)


def _section(tree: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = tree.get(key)
    return value if isinstance(value, Mapping) else {}


def _raise(out: _Collector) -> None:
    problems = sorted([*out.problems, *out.cycles], key=_order)
    if not problems:
        return
    summary = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the project"
    if not out.problems:
        raise DependencyCycleError(summary, problems=problems)
    raise ConfigError(summary, problems=problems)


def _order(problem: Problem) -> tuple[int, str, int, int, str]:
    loc = problem.location
    if loc is None:
        return (1, "", 0, 0, problem.path)
    return (0, loc.file, loc.line, loc.column, problem.path)


def _did_you_mean(name: str, choices: Iterable[str], kind: str) -> str | None:
    known = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    if known:
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        return f"defined {kind}s: {shown}"
    return f"declare it under the top-level `{kind}s:` key"


# --- references ---------------------------------------------------------------


def _check_service(
    out: _Collector,
    name: str,
    service: Mapping[str, Any],
    services: Mapping[str, Any],
    disabled: Collection[str],
) -> None:
    base: Path = ("services", name)
    references = list(service_references(service))
    # links, volumes_from and service:x were also copied into depends_on by
    # normalisation; report each unknown target once, at what the user wrote.
    implied = {target for target, subpath, _ in references if subpath[0] != "depends_on"}
    for target, subpath, required in references:
        if target in services or (target in disabled and not required):
            continue
        if subpath[0] == "depends_on" and target in implied:
            continue
        message = _reference_message(name, target, subpath)
        out.add((*base, *subpath), message, _did_you_mean(target, services, "service"))
    extends = service.get("extends")
    if isinstance(extends, Mapping) and extends.get("file") is None:
        parent = extends.get("service")
        if isinstance(parent, str) and parent not in services and parent not in disabled:
            out.add(
                (*base, "extends", "service"),
                f"service {name!r} extends undefined service {parent!r}",
                _did_you_mean(parent, services, "service"),
            )
    _check_resources(out, base, service)
    _check_values(out, base, service)


def _reference_message(name: str, target: str, subpath: Path) -> str:
    kind = subpath[0]
    if kind == "depends_on":
        return f"service {name!r} depends on undefined service {target!r}"
    if kind in NAMESPACE_KEYS:
        return f"service {target!r} not found for {kind} '{SERVICE_PREFIX}{target}'"
    return f"service {name!r} refers to undefined service {target!r} in {kind}"


def _check_resources(out: _Collector, base: Path, service: Mapping[str, Any]) -> None:
    top = out.tree
    name = base[-1]
    networks = service.get("networks")
    if isinstance(networks, Mapping):
        if service.get("network_mode") is not None and networks:
            out.add(
                (*base, "network_mode"),
                f"service {name!r} declares mutually exclusive `network_mode` and `networks`",
                "keep one of them",
            )
        declared = _section(top, "networks")
        for network in networks:
            if network not in declared:
                out.add(
                    (*base, "networks", network),
                    f"service {name!r} refers to undefined network {network!r}",
                    _did_you_mean(str(network), declared, "network"),
                )
    for index, volume in _items(service.get("volumes")):
        source = volume.get("source")
        if volume.get("type") == "volume" and source:
            declared = _section(top, "volumes")
            if source not in declared:
                out.add(
                    (*base, "volumes", index, "source"),
                    f"service {name!r} refers to undefined volume {source!r}",
                    _did_you_mean(str(source), declared, "volume"),
                )
    build = service.get("build")
    build_secrets = build.get("secrets") if isinstance(build, Mapping) else None
    for kind, refs, path in (
        ("config", service.get("configs"), (*base, "configs")),
        ("secret", service.get("secrets"), (*base, "secrets")),
        ("secret", build_secrets, (*base, "build", "secrets")),
    ):
        declared = _section(top, f"{kind}s")
        for index, ref in _items(refs):
            source = ref.get("source")
            if isinstance(source, str) and source not in declared:
                out.add(
                    (*path, index, "source"),
                    f"service {name!r} refers to undefined {kind} {source!r}",
                    _did_you_mean(source, declared, kind),
                )
    models = service.get("models")
    if isinstance(models, Mapping):
        declared = _section(top, "models")
        for model in models:
            if model not in declared:
                out.add(
                    (*base, "models", model),
                    f"service {name!r} refers to undefined model {model!r}",
                    _did_you_mean(str(model), declared, "model"),
                )


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                yield index, item


# --- values -------------------------------------------------------------------


def _get(node: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _check_values(out: _Collector, base: Path, service: Mapping[str, Any]) -> None:
    for path in _DURATIONS:
        value = _get(service, path)
        if value is not None:
            try:
                parse_duration(value)
            except ValueError as exc:
                out.add((*base, *path), str(exc))
    for path in _SIZES:
        value = _get(service, path)
        if value is not None:
            try:
                parse_bytes(value)
            except ValueError as exc:
                out.add((*base, *path), str(exc))
    for index, volume in _items(service.get("volumes")):
        size = _get(volume, ("tmpfs", "size"))
        if size is not None:
            try:
                parse_bytes(size)
            except ValueError as exc:
                out.add((*base, "volumes", index, "tmpfs", "size"), str(exc))
    for index, port in _items(service.get("ports")):
        _check_port(out, (*base, "ports", index), port)
    restart = service.get("restart")
    if restart is not None and not (isinstance(restart, str) and _RESTART.match(restart)):
        out.add(
            (*base, "restart"),
            f"invalid restart policy {restart!r}",
            'use "no", "always", "on-failure", "on-failure:N" or "unless-stopped"',
        )
    policy = service.get("pull_policy")
    if policy is not None and not _valid_pull_policy(policy):
        out.add(
            (*base, "pull_policy"),
            f"invalid pull_policy {policy!r}",
            "use always, never, missing, build, refresh, daily, weekly or every_<duration>",
        )
    _check_scale(out, base, service)


def _valid_pull_policy(policy: Any) -> bool:
    if not isinstance(policy, str):
        return False
    if policy in _PULL_POLICIES:
        return True
    return policy.startswith("every_") and bool(_LONG_DURATION.match(policy[len("every_") :]))


def _check_port(out: _Collector, path: Path, port: Mapping[str, Any]) -> None:
    target = port.get("target")
    if isinstance(target, int) and not isinstance(target, bool) and not 1 <= target <= 65535:
        out.add((*path, "target"), f"invalid target port {target}: must be within 1-65535")
    published = port.get("published")
    if published is None or published == "":
        return
    if _published_range(published) is None:
        out.add(
            (*path, "published"),
            f"invalid published port {published!r}: use a port or a range within 1-65535",
        )


def _published_range(published: Any) -> tuple[int, int] | None:
    text = str(published)
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if match is None:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else start
    if start == 0 and end == 0:
        return (0, 0)  # the engine picks a free port
    if not 1 <= start <= end <= 65535:
        return None
    return (start, end)


def _check_scale(out: _Collector, base: Path, service: Mapping[str, Any]) -> None:
    scale = service.get("scale")
    replicas = _get(service, ("deploy", "replicas"))
    if isinstance(scale, int) and scale < 0:
        out.add((*base, "scale"), "scale must be greater than or equal to 0")
    if isinstance(replicas, int) and replicas < 0:
        out.add((*base, "deploy", "replicas"), "deploy.replicas must be greater than or equal to 0")
    if isinstance(scale, int) and isinstance(replicas, int) and scale != replicas:
        out.add(
            (*base, "scale"),
            "can't set distinct values on 'scale' and 'deploy.replicas'",
            "keep one of them",
        )
    count = scale if isinstance(scale, int) else replicas
    if isinstance(count, int) and count > 1 and service.get("container_name"):
        attr = "scale" if isinstance(scale, int) else "deploy.replicas"
        out.add(
            (*base, "container_name"),
            f"can't set container_name and {attr} as container name must be unique",
            f"remove container_name, or set {attr} to 1",
        )


# --- project-wide -------------------------------------------------------------


def _check_container_names(out: _Collector, services: Mapping[str, Any]) -> None:
    owners: dict[str, str] = {}
    for name, service in services.items():
        container = service.get("container_name") if isinstance(service, Mapping) else None
        if not isinstance(container, str):
            continue
        if container in owners:
            out.add(
                ("services", name, "container_name"),
                f"container name {container!r} is already in use by service {owners[container]!r}",
            )
        else:
            owners[container] = name


def _check_ports_unique(out: _Collector, services: Mapping[str, Any]) -> None:
    taken: dict[tuple[str, int, str], tuple[str, Location | None]] = {}
    for name, service in services.items():
        if not isinstance(service, Mapping):
            continue
        for index, port in _items(service.get("ports")):
            span = _published_range(port.get("published"))
            if span is None or span == (0, 0) or span[0] != span[1]:
                continue  # ranges let the engine pick a free port of the range
            host_ip = str(port.get("host_ip") or "0.0.0.0")
            key = (host_ip, span[0], str(port.get("protocol") or "tcp"))
            path: Path = ("services", name, "ports", index)
            if key in taken:
                first, loc = taken[key]
                where = f" (at {loc})" if loc is not None else ""
                out.add(
                    path,
                    f"host port {host_ip}:{span[0]}/{key[2]} is already published "
                    f"by service {first!r}{where}",
                    "publish another host port, or leave `published` out to get a free one",
                )
            else:
                taken[key] = (name, locate(out.tree, path))


def _check_cycles(out: _Collector, services: Mapping[str, Any]) -> None:
    graph: dict[str, list[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on") if isinstance(service, Mapping) else None
        deps = depends if isinstance(depends, Mapping) else {}
        graph[name] = sorted(d for d in deps if d in services)
    for component in _strongly_connected(graph):
        start = min(component)
        if len(component) == 1 and start not in graph[start]:
            continue
        cycle = _cycle_from(start, graph, set(component))
        path: Path = ("services", start, "depends_on", cycle[1])
        out.cycles.append(
            Problem(
                "dependency cycle detected: " + " -> ".join(cycle),
                locate(out.tree, path),
                path_str(path),
                "remove one of the depends_on entries (or links, volumes_from, service:) "
                "in the cycle",
            )
        )


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so that a long dependency chain cannot overflow."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if child < len(edges):
                work.append((node, child + 1))
                nxt = edges[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_from(start: str, graph: Mapping[str, list[str]], members: set[str]) -> list[str]:
    """The first cycle through ``start`` in sorted depth-first order, closed on ``start``."""
    path = [start]
    seen = {start}
    iters = [iter(graph[start])]
    while iters:
        for nxt in iters[-1]:
            if nxt == start:
                return [*path, start]
            if nxt in members and nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                iters.append(iter(graph[nxt]))
                break
        else:
            iters.pop()
            path.pop()
    return [start, start]
