"""Reconcile stage two: the containers of ``up`` and ``create``.

Services are visited in dependency order, so that when a service is decided
everything it depends on already is: whether a namespace or ``volumes_from``
parent is being replaced (the dependent must be replaced too), whether a
dependency was recreated or restarted (``depends_on.restart: true`` restarts
the dependent), and which steps start a dependency's containers (the
dependent's start waits for them and for their condition).

A replaced container is recreated the way Docker Compose does it: the new
container is created under a temporary name, labelled with what it
replaces, the old one is stopped and removed, and the new one renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from composer.backends.base import DEFAULT_STOP_TIMEOUT, ContainerSpec, ObservedContainer
from composer.errors import PlanError
from composer.planner.graph import edge
from composer.planner.hashing import service_hash
from composer.planner.options import UpOptions
from composer.planner.plan import (
    ContainerRef,
    CreateContainer,
    ImageGuard,
    RecreateContainer,
    RemoveContainer,
    RestartContainer,
    StartContainer,
    Wait,
)
from composer.planner.ready_spec import service_probe
from composer.planner.reconcile_context import (
    Context,
    ref,
    service_network_keys,
    service_volume_keys,
)
from composer.planner.reconcile_resources import ImagePlan, Resources
from composer.planner.specs import container_spec, network_engine_name, volume_engine_name
from composer.schema.model import Service

Update = ImageGuard | bool
"""How a service changed: True (for sure), an ImageGuard (if its image changed), False."""

RUNNING = ("running", "paused", "restarting")


def stop_timeout(service: Service, override: float | None) -> float:
    """``--timeout``, else ``stop_grace_period``, else Docker's 10 seconds."""
    if override is not None:
        return override
    if service.stop_grace_period is not None:
        return float(service.stop_grace_period)
    return DEFAULT_STOP_TIMEOUT


@dataclass
class ServiceSteps:
    """What the later services need to know about one decided service."""

    final: list[ContainerRef] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    replaced: Update = False
    updated: Update = False


@dataclass
class ContainerStage:
    ctx: Context
    options: UpOptions
    resources: Resources
    images: dict[str, ImagePlan]
    selected: set[str]
    named: set[str]
    done: dict[str, ServiceSteps] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    def run(self, order: list[str]) -> None:
        for name in order:
            self.done[name] = self._service(name)

    # --- one service ----------------------------------------------------

    def _service(self, name: str) -> ServiceSteps:
        ctx, options = self.ctx, self.options
        service = ctx.project.services[name]
        desired = options.scale.get(name, service.replicas)
        if service.container_name and desired > 1:
            raise PlanError(
                f"service {name} sets container_name {service.container_name} "
                f"and cannot have {desired} containers",
                hint="remove container_name to scale the service",
            )
        out = ServiceSteps()
        everyone = ctx.containers(name)
        displaced = [c for c in everyone if c.name in self.resources.displaced]
        existing = [c for c in everyone if c.name not in self.resources.displaced]
        reasons = {c.name: self._must_recreate(name, service, c) for c in existing}
        existing.sort(key=lambda c: (reasons[c.name] is not None, c.number or 0))
        kept, extra = existing[:desired], existing[desired:]
        timeout = stop_timeout(service, options.timeout)
        for c in sorted(extra, key=lambda c: -(c.number or 0)):
            stop = timeout if c.state in RUNNING else None
            ctx.add("container", c.name, "remove", "scale down", RemoveContainer(ref(c), stop))
        for c in sorted(kept, key=lambda c: c.number or 0):
            self._keep(name, service, c, reasons[c.name], out)
        numbers = [n for n in (c.number for c in displaced) if n is not None]
        missing = desired - len(kept)
        reuse = sorted(numbers)[:missing]
        top = max([c.number or 0 for c in everyone], default=0)
        fresh = list(range(top + 1, top + 1 + missing - len(reuse)))
        for number in reuse:
            self._create(name, number, "network recreated", out)
        for number in fresh:
            self._create(name, number, "missing" if not everyone else "scale up", out)
        return out

    def _must_recreate(
        self, name: str, service: Service, c: ObservedContainer
    ) -> tuple[str, ImageGuard | None] | None:
        """Why ``c`` must be replaced (and whether only if its image changes), or None."""
        force = (
            self.options.force_recreate if name in self.named else self.options.always_recreate_deps
        )
        if self.options.no_recreate:
            return None
        if force:
            flag = "--force-recreate" if name in self.named else "--always-recreate-deps"
            return (flag, None)
        if c.config_hash != self._hash(name):
            return ("config hash changed", None)
        image = self.images[name]
        if image.step is None and image.present_id and c.image_id != image.present_id:
            return ("image changed", None)
        project = self.ctx.project
        for key in service_network_keys(service):
            if network_engine_name(project, key) not in c.networks:
                return (f"network {key} missing", None)
        for key in service_volume_keys(project, service):
            if volume_engine_name(project, key) not in c.volumes:
                return (f"volume {key} missing", None)
        guard: ImageGuard | None = None
        for dep in sorted(self.ctx.graph.predecessors(name)):
            data = edge(self.ctx.graph, dep, name)
            parent = self.done.get(dep)
            if parent is None or not data.shares_resources or parent.replaced is False:
                continue
            if parent.replaced is True:
                return (f"{dep} recreated", None)
            guard = parent.replaced
        if image.step is not None:
            verb = "built" if image.step.endswith(":build") else "pulled"
            return (f"if the {verb} image changed", ImageGuard(image.step, c.image_id))
        if guard is not None:
            return ("if its parent is recreated", guard)
        return None

    def _deps_for_create(self, name: str, service: Service) -> list[str]:
        deps: list[str] = []
        image = self.images[name]
        if image.step is not None:
            deps.append(image.step)
        for key in service_network_keys(service):
            if key in self.resources.network_steps:
                deps.append(self.resources.network_steps[key])
        for key in service_volume_keys(self.ctx.project, service):
            if key in self.resources.volume_steps:
                deps.append(self.resources.volume_steps[key])
        for dep in self.ctx.graph.predecessors(name):
            data = edge(self.ctx.graph, dep, name)
            if dep in self.done and (data.shares_resources or "links" in data.kinds):
                deps.extend(self.done[dep].creates)
        return deps

    def _hash(self, name: str) -> str:
        """The service's config hash, computed once per service."""
        found = self.hashes.get(name)
        if found is None:
            found = self.hashes[name] = service_hash(self.ctx.project, name)
        return found

    def _spec(self, name: str, number: int, replaces: str | None = None) -> ContainerSpec:
        return container_spec(
            self.ctx.project,
            name,
            number,
            image_id=self.images[name].present_id or "",
            replace=replaces,
            config_hash=self._hash(name),
        )

    def _create(self, name: str, number: int, cause: str, out: ServiceSteps) -> None:
        service = self.ctx.project.services[name]
        spec = self._spec(name, number)
        payload = CreateContainer(spec, self.images[name].step)
        sid = self.ctx.add(
            "container", spec.name, "create", cause, payload, self._deps_for_create(name, service)
        )
        out.creates.append(sid)
        out.final.append(ContainerRef(spec.name))
        self._start(name, ContainerRef(spec.name), "created", [sid], None, out)

    def _keep(
        self,
        name: str,
        service: Service,
        c: ObservedContainer,
        reason: tuple[str, ImageGuard | None] | None,
        out: ServiceSteps,
    ) -> None:
        if reason is None:
            out.final.append(ref(c))
            if c.state not in RUNNING:
                self._start(
                    name, ref(c), "stopped" if c.state != "created" else "created", [], None, out
                )
            else:
                self._maybe_restart(name, service, c, out)
            return
        cause, guard = reason
        spec = self._spec(name, c.number or 1, replaces=c.name)
        if not self.options.renew_anon_volumes:
            spec = _carry_anonymous_volumes(spec, c)
        payload = RecreateContainer(
            spec,
            ref(c),
            f"{c.id[:12]}_{spec.name}",
            stop_timeout(service, self.options.timeout),
            self.images[name].step,
        )
        deps = self._deps_for_create(name, service)
        sid = self.ctx.add("container", c.name, "recreate", cause, payload, deps, guard=guard)
        out.creates.append(sid)
        out.final.append(ContainerRef(spec.name, c.id))
        out.replaced = _merge(out.replaced, guard if guard is not None else True)
        out.updated = _merge(out.updated, guard if guard is not None else True)
        start_guard = guard if c.state in RUNNING else None
        self._start(name, ContainerRef(spec.name, c.id), "recreated", [sid], start_guard, out)

    def _dependency_links(self, name: str) -> tuple[list[str], list[str], list[Wait]]:
        """Step deps, optional step deps and condition waits of a start of ``name``."""
        deps: list[str] = []
        optional: list[str] = []
        waits: list[Wait] = []
        for dep in sorted(self.ctx.graph.predecessors(name)):
            if dep not in self.selected or dep not in self.done:
                continue
            data = edge(self.ctx.graph, dep, name)
            steps = self.done[dep].starts
            deps.extend(steps)
            if not data.required:
                optional.extend(steps)
            final = self.done[dep].final
            if data.condition != "service_started" and final:
                probe = service_probe(dep, self.ctx.project.services[dep])
                waits.append(Wait(dep, data.condition, data.required, tuple(final), probe))
        return deps, optional, waits

    def _start(
        self,
        name: str,
        container: ContainerRef,
        cause: str,
        own: list[str],
        guard: ImageGuard | None,
        out: ServiceSteps,
    ) -> None:
        if self.options.no_start:
            return
        deps, optional, waits = self._dependency_links(name)
        sid = self.ctx.add(
            "container",
            container.name,
            "start",
            cause,
            StartContainer(container, tuple(waits)),
            [*own, *deps],
            optional,
            guard=guard,
        )
        out.starts.append(sid)

    def _maybe_restart(
        self, name: str, service: Service, c: ObservedContainer, out: ServiceSteps
    ) -> None:
        """``depends_on.restart: true``: restart a running container whose dependency changed."""
        if self.options.no_start:
            return
        why: Update = False
        causes: list[str] = []
        for dep in sorted(self.ctx.graph.predecessors(name)):
            data = edge(self.ctx.graph, dep, name)
            parent = self.done.get(dep)
            if parent is None or not data.restart or parent.updated is False:
                continue
            why = _merge(why, parent.updated)
            causes.append(dep)
        if why is False:
            return
        deps, optional, waits = self._dependency_links(name)
        guard = why if isinstance(why, ImageGuard) else None
        payload = RestartContainer(
            ref(c), stop_timeout(service, self.options.timeout), tuple(waits)
        )
        cause = f"dependency {', '.join(causes)} updated"
        sid = self.ctx.add("container", c.name, "restart", cause, payload, deps, optional, guard)
        out.starts.append(sid)
        out.updated = _merge(out.updated, why)


def _merge(current: Update, new: Update) -> Update:
    """Certain beats conditional; two different conditions count as certain."""
    if current is True or new is True:
        return True
    if current is False:
        return new
    if new is False or new == current:
        return current
    return True


def _carry_anonymous_volumes(spec: ContainerSpec, old: ObservedContainer) -> ContainerSpec:
    """Mount the old container's anonymous volumes into its replacement (unless ``-V``)."""
    previous = dict(old.anonymous_volumes)
    mounts = tuple(
        replace(m, source=previous[m.target])
        if m.type == "volume" and m.source is None and m.target in previous
        else m
        for m in spec.mounts
    )
    return replace(spec, mounts=mounts)
