"""Plans of the verbs that act on existing containers: down, start, stop,
restart, kill, rm, pause and unpause, and the readiness wait of ``up --wait``.

Removal and stopping go in reverse dependency order (a dependent goes
before what it depends on); starting goes in dependency order and waits on
the dependency conditions, like ``up``.
"""

from __future__ import annotations

from collections.abc import Callable

from composer.backends.base import ObservedContainer
from composer.planner.graph import edge, select
from composer.planner.options import (
    DownOptions,
    KillOptions,
    PauseOptions,
    ReadyOptions,
    RestartOptions,
    RmOptions,
    StartOptions,
    StopOptions,
    UnpauseOptions,
)
from composer.planner.plan import (
    AwaitReady,
    KillContainer,
    PauseContainer,
    RemoveContainer,
    RemoveImage,
    RemoveNetwork,
    RemoveVolume,
    RestartContainer,
    StartContainer,
    StopContainer,
    UnpauseContainer,
    Wait,
)
from composer.planner.ready_spec import service_probe
from composer.planner.reconcile_containers import RUNNING, stop_timeout
from composer.planner.reconcile_context import Context, ref
from composer.planner.specs import image_ref, volume_spec
from composer.schema.model import Service

StepMaker = Callable[[ObservedContainer, list[str]], str | None]


def _service_of(ctx: Context, name: str) -> Service:
    return ctx.project.services.get(name) or ctx.project.disabled_services.get(name) or Service()


def _reverse(ctx: Context, services: set[str], make: StepMaker) -> dict[str, list[str]]:
    """One step per container, dependents before their dependencies."""
    by_service: dict[str, list[str]] = {}
    for name in reversed(ctx.order):
        if name not in services:
            continue
        after = [
            sid for dep in ctx.graph.successors(name) if dep in services for sid in by_service[dep]
        ]
        made = [make(c, after) for c in ctx.containers(name)]
        by_service[name] = [sid for sid in made if sid is not None]
    return by_service


def _forward(ctx: Context, services: set[str], make: StepMaker) -> dict[str, list[str]]:
    """One step per container, dependencies before their dependents."""
    by_service: dict[str, list[str]] = {}
    for name in ctx.order:
        if name not in services:
            continue
        before = [
            sid
            for dep in ctx.graph.predecessors(name)
            if dep in services
            for sid in by_service[dep]
        ]
        made = [make(c, before) for c in ctx.containers(name)]
        by_service[name] = [sid for sid in made if sid is not None]
    return by_service


def _waits(ctx: Context, name: str, services: set[str]) -> tuple[Wait, ...]:
    out: list[Wait] = []
    for dep in sorted(ctx.graph.predecessors(name)):
        data = edge(ctx.graph, dep, name)
        containers = tuple(ref(c) for c in ctx.containers(dep))
        if dep in services and data.condition != "service_started" and containers:
            probe = service_probe(dep, ctx.project.services[dep])
            out.append(Wait(dep, data.condition, data.required, containers, probe))
    return tuple(out)


def plan_down(ctx: Context, options: DownOptions) -> None:
    """Containers (dependents first), then networks, volumes and images."""
    services = select(ctx.graph, options.services, with_deps=False)
    everything = not options.services
    removals: list[str] = []

    def remove(c: ObservedContainer, after: list[str], cause: str = "down") -> str:
        """Stop (if running), then remove; returns the step its dependencies wait for.

        A dependency waits for its dependents to *stop*, not to be removed:
        removing a dependent overlaps with stopping what it depends on.
        """
        first = after
        stopped: str | None = None
        if c.state in RUNNING:
            timeout = stop_timeout(_service_of(ctx, c.service), options.timeout)
            stopped = ctx.add(
                "container", c.name, "stop", cause, StopContainer(ref(c), timeout), after
            )
            first = [stopped]
        payload = RemoveContainer(ref(c), None, volumes=options.volumes)
        sid = ctx.add("container", c.name, "remove", cause, payload, first)
        removals.append(sid)
        return stopped or sid

    _reverse(ctx, services, remove)
    for c in ctx.oneoffs(services):
        remove(c, [], "one-off")
    orphans = ctx.orphans()
    if options.remove_orphans:
        for c in orphans:
            remove(c, [], "orphan")
    elif orphans and everything:
        _warn_orphans(ctx, orphans)
    if not everything:
        return
    gone = {s.name for s in ctx.steps if s.kind == "container"}
    staying = [c for c in ctx.observed.containers if c.name not in gone]
    for name, net in sorted(ctx.observed.networks.items()):
        if net.external or not ctx.owned(net.labels):
            continue
        users = sorted(c.name for c in staying if name in c.networks)
        if users:
            ctx.warn(f"network {name} is kept: in use by {', '.join(users)}")
            continue
        ctx.add("network", name, "remove", "down", RemoveNetwork(name), removals)
    if options.volumes:
        _remove_volumes(ctx, staying, removals)
    if options.rmi is not None:
        _remove_images(ctx, options, removals)


def _remove_volumes(ctx: Context, staying: list[ObservedContainer], removals: list[str]) -> None:
    declared = {
        volume_spec(ctx.project, key).name
        for key, vol in ctx.project.volumes.items()
        if not vol.external
    }
    for name, vol in sorted(ctx.observed.volumes.items()):
        if name not in declared and not (ctx.owned(vol.labels) and vol.key):
            continue
        users = sorted(c.name for c in staying if name in c.volumes)
        if users:
            ctx.warn(f"volume {name} is kept: in use by {', '.join(users)}")
            continue
        ctx.add("volume", name, "remove", "down --volumes", RemoveVolume(name), removals)


def _remove_images(ctx: Context, options: DownOptions, removals: list[str]) -> None:
    refs: set[str] = set()
    for name, service in sorted(ctx.project.services.items()):
        if options.rmi == "all" or service.image is None:
            refs.add(image_ref(ctx.project, name))
    for image in sorted(refs):
        if image in ctx.observed.images:
            cause = f"down --rmi {options.rmi}"
            ctx.add("image", image, "remove", cause, RemoveImage(image), removals)


def _warn_orphans(ctx: Context, orphans: list[ObservedContainer]) -> None:
    names = ", ".join(c.name for c in orphans)
    ctx.warn(
        f"found orphan containers ({names}) for this project; if you removed or renamed "
        "this service in your compose file, run this command with --remove-orphans to clean "
        "it up"
    )


def plan_orphans(ctx: Context, remove: bool, ignore: bool) -> None:
    """``up``: remove orphans with ``--remove-orphans``, else warn (unless ignored)."""
    orphans = [c for c in ctx.orphans() if not c.oneoff]
    if not orphans:
        return
    if remove:
        for c in orphans:
            stop = stop_timeout(Service(), None) if c.state in RUNNING else None
            ctx.add("container", c.name, "remove", "orphan", RemoveContainer(ref(c), stop))
    elif not ignore:
        _warn_orphans(ctx, orphans)


def plan_start(ctx: Context, options: StartOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)

    def start(c: ObservedContainer, before: list[str]) -> str | None:
        if c.state in RUNNING:
            return None
        payload = StartContainer(ref(c), _waits(ctx, c.service, services))
        return ctx.add("container", c.name, "start", "stopped", payload, before)

    _forward(ctx, services, start)


def plan_stop(ctx: Context, options: StopOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)

    def stop(c: ObservedContainer, after: list[str]) -> str | None:
        if c.state not in RUNNING:
            return None
        timeout = stop_timeout(_service_of(ctx, c.service), options.timeout)
        return ctx.add("container", c.name, "stop", "stop", StopContainer(ref(c), timeout), after)

    _reverse(ctx, services, stop)


def plan_restart(ctx: Context, options: RestartOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=not options.no_deps)

    def restart(c: ObservedContainer, before: list[str]) -> str:
        waits = _waits(ctx, c.service, services)
        if c.state in RUNNING:
            timeout = stop_timeout(_service_of(ctx, c.service), options.timeout)
            payload: RestartContainer | StartContainer = RestartContainer(ref(c), timeout, waits)
        else:
            payload = StartContainer(ref(c), waits)
        return ctx.add("container", c.name, "restart", "restart", payload, before)

    _forward(ctx, services, restart)


def plan_kill(ctx: Context, options: KillOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)
    targets = [c for name in sorted(services) for c in ctx.containers(name)]
    if options.remove_orphans:
        targets += ctx.orphans()
    for c in targets:
        if c.state in RUNNING:
            payload = KillContainer(ref(c), options.signal)
            ctx.add("container", c.name, "kill", options.signal, payload)


def plan_rm(ctx: Context, options: RmOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)

    def rm(c: ObservedContainer, after: list[str]) -> str | None:
        running = c.state in RUNNING
        if running and not options.stop:
            return None
        timeout = stop_timeout(_service_of(ctx, c.service), None) if running else None
        payload = RemoveContainer(ref(c), timeout, volumes=options.volumes, force=options.force)
        return ctx.add("container", c.name, "remove", "rm", payload, after)

    _reverse(ctx, services, rm)


def plan_pause(ctx: Context, options: PauseOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)
    for name in ctx.order:
        for c in ctx.containers(name) if name in services else []:
            if c.state == "running":
                ctx.add("container", c.name, "pause", "pause", PauseContainer(ref(c)))


def plan_unpause(ctx: Context, options: UnpauseOptions) -> None:
    services = select(ctx.graph, options.services, with_deps=False)
    for name in ctx.order:
        for c in ctx.containers(name) if name in services else []:
            if c.state == "paused":
                ctx.add("container", c.name, "unpause", "unpause", UnpauseContainer(ref(c)))


def plan_ready(ctx: Context, options: ReadyOptions) -> None:
    """One independent wait per container of the selected services (``up --wait``)."""
    services = select(ctx.graph, options.services, with_deps=not options.no_deps)
    for name in ctx.order:
        if name not in services:
            continue
        completed = any(
            edge(ctx.graph, name, dependent).condition == "service_completed_successfully"
            for dependent in ctx.graph.successors(name)
        )
        cause = "service_completed_successfully" if completed else "--wait"
        service = ctx.project.services[name]
        probe = None if completed else service_probe(name, service)
        one_shot = service.restart in (None, "no")
        for c in ctx.containers(name):
            payload = AwaitReady(ref(c), completed, probe, one_shot)
            ctx.add("container", c.name, "wait", cause, payload)
