"""The Plan: a DAG of steps that ``reconcile`` decides and the executor carries out.

Each step says which resource it touches, what it does and why, which steps
must finish first, and carries everything the executor needs (specs, ids,
timeouts) so that the executor makes no decision of its own. ``str(plan)`` is
stable text, one step per line, in a dependency-respecting order with ties
broken by the order ``reconcile`` decided them — what ``--dry-run`` prints
and what the golden tests compare.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from composer.backends.base import BuildSpec, ContainerSpec, NetworkSpec, VolumeSpec
from composer.errors import PlanError
from composer.planner.ready_spec import ReadyProbe
from composer.schema.model import Condition

if TYPE_CHECKING:
    import networkx as nx

ResourceKind = Literal["network", "volume", "image", "container"]


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A container by name; ``id`` is None when an earlier step of the plan creates it."""

    name: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """Before starting a container, wait until ``containers`` of ``service`` meet ``condition``.

    ``required=False`` turns a failed or missing dependency into a warning.
    ``probe`` is the dependency's ``x-composer.ready`` probe: it stands in for
    the healthcheck of ``service_healthy`` when the service has none.
    """

    service: str
    condition: Condition
    required: bool
    containers: tuple[ContainerRef, ...]
    probe: ReadyProbe | None = None


# --- payloads: one per action ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateNetwork:
    spec: NetworkSpec


@dataclass(frozen=True, slots=True)
class RecreateNetwork:
    """Remove the diverged network, then create it from ``spec``."""

    spec: NetworkSpec


@dataclass(frozen=True, slots=True)
class RemoveNetwork:
    name: str


@dataclass(frozen=True, slots=True)
class CreateVolume:
    spec: VolumeSpec


@dataclass(frozen=True, slots=True)
class RemoveVolume:
    name: str


@dataclass(frozen=True, slots=True)
class PullImage:
    ref: str


@dataclass(frozen=True, slots=True)
class BuildImage:
    spec: BuildSpec


@dataclass(frozen=True, slots=True)
class RemoveImage:
    ref: str


@dataclass(frozen=True, slots=True)
class CreateContainer:
    """Create a container; ``image_step`` names the pull/build step whose image id
    goes into the container's image label (None: the spec already has it)."""

    spec: ContainerSpec
    image_step: str | None = None


@dataclass(frozen=True, slots=True)
class RecreateContainer:
    """Replace ``old``: create ``spec`` under ``temp_name`` (labelled with what it
    replaces), stop and remove ``old``, then rename the new one to ``spec.name``."""

    spec: ContainerSpec
    old: ContainerRef
    temp_name: str
    timeout: float
    image_step: str | None = None


@dataclass(frozen=True, slots=True)
class StartContainer:
    container: ContainerRef
    waits: tuple[Wait, ...] = ()


@dataclass(frozen=True, slots=True)
class StopContainer:
    container: ContainerRef
    timeout: float


@dataclass(frozen=True, slots=True)
class RestartContainer:
    container: ContainerRef
    timeout: float
    waits: tuple[Wait, ...] = ()


@dataclass(frozen=True, slots=True)
class KillContainer:
    container: ContainerRef
    signal: str


@dataclass(frozen=True, slots=True)
class RemoveContainer:
    """Stop (when ``stop_timeout`` is set) and remove; ``volumes`` removes its anonymous volumes."""

    container: ContainerRef
    stop_timeout: float | None
    volumes: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True)
class PauseContainer:
    container: ContainerRef


@dataclass(frozen=True, slots=True)
class UnpauseContainer:
    container: ContainerRef


@dataclass(frozen=True, slots=True)
class AwaitReady:
    """Wait until ``container`` is ready: running (healthy if it has a healthcheck),
    or exited 0 when ``completed`` (a ``service_completed_successfully`` target).
    ``probe`` (``x-composer.ready``) must pass too when the service declares one.
    ``one_shot``: the service has no restart policy, so an exit 0 means it is
    done (a seed or migration job nobody depends on), not that it failed."""

    container: ContainerRef
    completed: bool = False
    probe: ReadyProbe | None = None
    one_shot: bool = False


Payload = (
    CreateNetwork
    | RecreateNetwork
    | RemoveNetwork
    | CreateVolume
    | RemoveVolume
    | PullImage
    | BuildImage
    | RemoveImage
    | CreateContainer
    | RecreateContainer
    | StartContainer
    | StopContainer
    | RestartContainer
    | KillContainer
    | RemoveContainer
    | PauseContainer
    | UnpauseContainer
    | AwaitReady
)


@dataclass(frozen=True, slots=True)
class ImageGuard:
    """Skip the guarded step when the image step ``step`` yields ``unchanged_id``.

    A pull under ``pull_policy: always`` may or may not bring a new image;
    the container is replaced only if it did. The comparison is mechanical,
    so the executor still decides nothing.
    """

    step: str
    unchanged_id: str


@dataclass(frozen=True, slots=True)
class Step:
    """One action on one resource.

    ``deps`` must succeed before the step runs; a failure of one of the
    ``optional_deps`` (a subset of ``deps``, from ``required: false``) only
    warns instead of cancelling this step.
    """

    id: str
    kind: ResourceKind
    name: str
    action: str
    cause: str
    payload: Payload
    deps: frozenset[str] = frozenset()
    optional_deps: frozenset[str] = frozenset()
    guard: ImageGuard | None = None

    @property
    def resource(self) -> str:
        """``container demo-web-1``: how events and messages name the resource."""
        return f"{self.kind} {self.name}"

    def __str__(self) -> str:
        return f"{self.resource}  {self.action}  ({self.cause})"


def step_id(kind: ResourceKind, name: str, action: str) -> str:
    """The conventional id of a step: unique per resource and action."""
    return f"{kind}:{name}:{action}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps in a stable topological order, plus warnings for the user."""

    steps: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [str(step) for step in self.steps]
        lines += [f"warning: {text}" for text in self.warnings]
        return "\n".join(lines)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def empty(self) -> bool:
        """True when there is nothing to do (warnings do not count)."""
        return not self.steps

    def step(self, id: str) -> Step:
        """The step with this id; KeyError when absent."""
        for s in self.steps:
            if s.id == id:
                return s
        raise KeyError(id)

    def graph(self) -> nx.DiGraph:
        """The steps as a networkx DiGraph with edges from prerequisite to dependent.

        For analysis in tests; networkx is imported here, never on the
        planning path.
        """
        import networkx as nx

        g = nx.DiGraph()
        for s in self.steps:
            g.add_node(s.id)
            for d in s.deps:
                g.add_edge(d, s.id)
        return g


def make_plan(steps: Iterable[Step], warnings: Iterable[str] = ()) -> Plan:
    """Order ``steps`` topologically (ties kept in the given order) and check them.

    Raises PlanError for a duplicate id, a dependency on an unknown step or a
    cycle: each of those is a planner bug, caught here rather than by the
    executor halfway through a run.
    """
    items = list(steps)
    index: dict[str, int] = {}
    for i, s in enumerate(items):
        if s.id in index:
            raise PlanError(f"internal error: two plan steps have the id {s.id}")
        index[s.id] = i
    waiting = [len(s.deps) for s in items]
    dependents: list[list[int]] = [[] for _ in items]
    for i, s in enumerate(items):
        for d in s.deps:
            if d not in index:
                raise PlanError(f"internal error: step {s.id} depends on unknown step {d}")
            dependents[index[d]].append(i)
        if not s.optional_deps <= s.deps:
            raise PlanError(f"internal error: step {s.id} has optional deps outside its deps")
    # Kahn's algorithm, always taking the earliest-decided ready step.
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(items):
        raise PlanError("internal error: the plan has a cycle")
    return Plan(tuple(items[i] for i in order), tuple(dict.fromkeys(warnings)))
