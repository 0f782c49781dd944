"""What every stage of ``reconcile`` shares: the inputs, the graph, the steps so far.

A ``Context`` is built once per call and is the only mutable thing in the
planner; it never outlives the call, so ``reconcile`` stays a pure function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from composer.backends.base import ObservedContainer, ObservedState
from composer.backends.labels import LABEL_PROJECT
from composer.planner.digraph import DiGraph
from composer.planner.graph import service_graph, topological_order
from composer.planner.plan import ContainerRef, ImageGuard, Payload, ResourceKind, Step, step_id
from composer.schema.model import Network, Project, Service

DEFAULT_NETWORK = "default"


def service_network_keys(service: Service) -> list[str]:
    """The compose keys of the networks a service joins (``default`` when none is named)."""
    if service.network_mode is not None:
        return []
    return sorted(service.networks) or [DEFAULT_NETWORK]


def service_volume_keys(project: Project, service: Service) -> list[str]:
    """The compose keys of the named (top-level) volumes a service mounts."""
    keys = {
        v.source
        for v in service.volumes
        if v.type == "volume" and v.source is not None and v.source in project.volumes
    }
    return sorted(keys)


def with_default_network(project: Project) -> Project:
    """The project with an implicit ``default`` network when a service needs one."""
    if DEFAULT_NETWORK in project.networks:
        return project
    if not any(DEFAULT_NETWORK in service_network_keys(s) for s in project.services.values()):
        return project
    networks = {**project.networks, DEFAULT_NETWORK: Network()}
    return project.model_copy(update={"networks": networks})


def ref(container: ObservedContainer) -> ContainerRef:
    return ContainerRef(container.name, container.id)


def by_number(container: ObservedContainer) -> tuple[int, str]:
    return (container.number or 0, container.name)


@dataclass
class Context:
    """The inputs of one ``reconcile`` call, derived views, and the plan being built."""

    project: Project
    observed: ObservedState
    now: float
    graph: DiGraph = field(init=False)
    order: list[str] = field(init=False)
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    replicas: dict[str, list[ObservedContainer]] = field(init=False)

    def __post_init__(self) -> None:
        self.graph = service_graph(self.project)
        self.order = topological_order(self.graph)
        self.replicas = {}
        for c in self.observed.containers:
            if not c.oneoff:
                self.replicas.setdefault(c.service, []).append(c)
        for found in self.replicas.values():
            found.sort(key=by_number)

    # --- observed views -------------------------------------------------

    def containers(self, service: str) -> list[ObservedContainer]:
        """The service's replicas (never one-off containers), by number."""
        return list(self.replicas.get(service, ()))

    def oneoffs(self, services: Iterable[str]) -> list[ObservedContainer]:
        wanted = set(services)
        found = [c for c in self.observed.containers if c.oneoff and c.service in wanted]
        return sorted(found, key=lambda c: c.name)

    def orphans(self) -> list[ObservedContainer]:
        """Containers of services that are no longer in the model (profiles aside)."""
        known = set(self.project.services) | set(self.project.disabled_services)
        found = [c for c in self.observed.containers if c.service not in known]
        return sorted(found, key=lambda c: c.name)

    def owned(self, labels: Mapping[str, str]) -> bool:
        """Whether a resource with these labels belongs to this project."""
        return labels.get(LABEL_PROJECT) == self.project.name

    # --- building steps -------------------------------------------------

    def add(
        self,
        kind: ResourceKind,
        name: str,
        action: str,
        cause: str,
        payload: Payload,
        deps: Iterable[str] = (),
        optional: Iterable[str] = (),
        guard: ImageGuard | None = None,
    ) -> str:
        """Append a step and return its id."""
        sid = step_id(kind, name, action)
        dep_set = frozenset(deps)
        opt = frozenset(optional) & dep_set
        self.steps.append(Step(sid, kind, name, action, cause, payload, dep_set, opt, guard))
        self.ids.add(sid)
        return sid

    def has(self, kind: ResourceKind, name: str, action: str) -> str | None:
        sid = step_id(kind, name, action)
        return sid if sid in self.ids else None

    def warn(self, text: str) -> None:
        self.warnings.append(text)
