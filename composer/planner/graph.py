"""The service dependency graph.

Every ordering decision of the planner (creation and start follow
dependencies, removal goes the other way, ``restart: true`` reaches
dependents) reads one graph built here. Edges point from a dependency to its
dependent, so a topological order is a valid start order. Implicit
dependencies (``links``, ``network_mode|ipc|pid|uts|cgroup: service:X``,
``volumes_from``) become edges too, with the short-form defaults
(``service_started``, required, no restart), as compose-go infers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from composer.errors import DependencyCycleError, PlanError
from composer.planner.digraph import (
    DiGraph,
    ancestors,
    descendants,
    find_cycle,
    lexicographic_order,
)
from composer.schema.model import Condition, Project, Service

NAMESPACE_KEYS = ("network_mode", "ipc", "pid", "uts", "cgroup")
"""Service attributes that may read ``service:X`` to share X's namespace."""


@dataclass(frozen=True, slots=True)
class Dependency:
    """The edge data between a dependent and one of its dependencies.

    ``kinds`` says where the edge came from (``depends_on``, ``links``,
    ``volumes_from`` or a namespace key) — a namespace or ``volumes_from``
    parent being recreated forces the dependent to be recreated too.
    """

    condition: Condition = "service_started"
    required: bool = True
    restart: bool = False
    kinds: frozenset[str] = frozenset({"depends_on"})

    @property
    def shares_resources(self) -> bool:
        """Whether the dependent points at the dependency's container itself."""
        return bool(self.kinds & {"volumes_from", *NAMESPACE_KEYS})


def namespace_parent(value: str | None) -> str | None:
    """The service named by ``service:X`` in a namespace attribute, else None."""
    if value and value.startswith("service:"):
        return value.removeprefix("service:")
    return None


def volumes_from_parent(entry: str) -> str | None:
    """The service of a ``volumes_from`` entry (``svc[:ro]``); None for ``container:x``."""
    head = entry.split(":", 1)[0]
    if head == "container":
        return None
    return head


def service_dependencies(
    service: Service, shared: dict[tuple[str, bool, bool], Dependency] | None = None
) -> dict[str, Dependency]:
    """Every dependency of one service, explicit and implicit, by service name.

    ``shared`` lets a caller that reads many services reuse equal
    ``Dependency`` values of ``depends_on`` edges (they are immutable).
    """
    found: dict[str, Dependency] = {}
    memo: dict[tuple[str, bool, bool], Dependency] = {} if shared is None else shared
    for name, dep in service.depends_on.items():
        edge_key = (dep.condition, dep.required, dep.restart)
        value = memo.get(edge_key)
        if value is None:
            value = memo[edge_key] = Dependency(dep.condition, dep.required, dep.restart)
        found[name] = value
    values = service.__dict__
    if not (service.links or service.volumes_from or any(values[k] for k in NAMESPACE_KEYS)):
        return found  # no implicit dependencies: the usual case

    def add_implicit(name: str, kind: str) -> None:
        current = found.get(name)
        if current is None:
            found[name] = Dependency(kinds=frozenset({kind}))
        else:
            found[name] = Dependency(
                current.condition, current.required, current.restart, current.kinds | {kind}
            )

    for link in service.links:
        add_implicit(link.split(":", 1)[0], "links")
    for key in NAMESPACE_KEYS:
        parent = namespace_parent(values[key])
        if parent is not None:
            add_implicit(parent, key)
    for entry in service.volumes_from:
        parent = volumes_from_parent(entry)
        if parent is not None:
            add_implicit(parent, "volumes_from")
    return found


def build_graph(services: Mapping[str, Service]) -> DiGraph:
    """A DiGraph with an edge ``dependency -> dependent`` carrying a ``Dependency``.

    References to services outside ``services`` (disabled by a profile,
    optional) are left out: the loader already rejected broken required ones.
    Raises DependencyCycleError for a cycle.
    """
    graph = DiGraph()
    names = sorted(services)
    graph.add_nodes_from(names)
    shared: dict[tuple[str, bool, bool], Dependency] = {}
    for name in names:
        dependencies = service_dependencies(services[name], shared)
        for dep_name in sorted(dependencies):
            if dep_name in services and dep_name != name:
                graph.add_edge(dep_name, name, dep=dependencies[dep_name])
            elif dep_name == name:
                raise DependencyCycleError(f"dependency cycle: {name} -> {name}")
    check_acyclic(graph)
    return graph


def service_graph(project: Project) -> DiGraph:
    """The dependency graph of the project's enabled services."""
    return build_graph(project.services)


def check_acyclic(graph: DiGraph) -> None:
    """Raise DependencyCycleError naming the cycle as ``a -> b -> a`` (a depends on b)."""
    cycle = find_cycle(graph)
    if cycle is None:
        return
    # Edges run dependency -> dependent; print dependent -> dependency, starting
    # from the smallest name so the message is stable.
    nodes = list(reversed(cycle))
    start = nodes.index(min(nodes))
    ordered = nodes[start:] + nodes[:start]
    text = " -> ".join([*ordered, ordered[0]])
    raise DependencyCycleError(
        f"dependency cycle: {text}", hint="remove one of the dependencies in the cycle"
    )


def topological_order(graph: DiGraph) -> list[str]:
    """Dependencies first; ties broken by name so that plans are stable."""
    order = lexicographic_order(graph)
    if order is None:
        check_acyclic(graph)
        raise PlanError("internal error: no order for a graph without a cycle")
    return order


def select(graph: DiGraph, services: Iterable[str], *, with_deps: bool = True) -> set[str]:
    """The services named on the command line, plus their dependencies unless ``with_deps`` is off.

    An empty selection means every service. Unknown names are a PlanError.
    """
    names = list(services)
    if not names:
        return set(graph.nodes)
    unknown = sorted(n for n in names if n not in graph)
    if unknown:
        raise PlanError(
            f"no such service: {', '.join(unknown)}",
            hint="the services are: " + ", ".join(sorted(graph.nodes)),
        )
    chosen = set(names)
    if with_deps:
        for name in names:
            chosen |= ancestors(graph, name)
    return chosen


def subgraph(project: Project, services: Iterable[str], *, with_deps: bool = True) -> DiGraph:
    """The dependency graph restricted to the selected services (see ``select``)."""
    graph = service_graph(project)
    return graph.subgraph(select(graph, services, with_deps=with_deps))


def dependents(graph: DiGraph, name: str) -> set[str]:
    """Every service that depends on ``name``, directly or not."""
    return descendants(graph, name)


def edge(graph: DiGraph, dependency: str, dependent: str) -> Dependency:
    """The Dependency data of one edge."""
    data: Dependency = graph.pred[dependent][dependency]["dep"]
    return data
