"""``reconcile``: desired state + observed state + options -> Plan. Pure.

The type of the options object picks the plan (``UpOptions`` for ``up``,
``DownOptions`` for ``down`` …). Nothing here does I/O or reads a clock:
the time that ``pull_policy: daily|weekly|every_<d>`` compares against is
the ``now`` parameter, so the same inputs always give the same plan. The
stages live in ``reconcile_resources`` (networks, volumes, images),
``reconcile_containers`` (``up``'s containers) and ``reconcile_verbs``
(everything else).
"""

from __future__ import annotations

from composer.backends.base import ObservedState
from composer.gcpause import paused_gc
from composer.planner.graph import select
from composer.planner.options import (
    CreateOptions,
    DownOptions,
    KillOptions,
    Options,
    PauseOptions,
    ReadyOptions,
    RestartOptions,
    RmOptions,
    StartOptions,
    StopOptions,
    UnpauseOptions,
    UpOptions,
)
from composer.planner.plan import Plan, make_plan
from composer.planner.reconcile_containers import ContainerStage
from composer.planner.reconcile_context import Context, with_default_network
from composer.planner.reconcile_resources import plan_images, plan_resources
from composer.planner.reconcile_verbs import (
    plan_down,
    plan_kill,
    plan_orphans,
    plan_pause,
    plan_ready,
    plan_restart,
    plan_rm,
    plan_start,
    plan_stop,
    plan_unpause,
)
from composer.schema.model import Project


def reconcile(project: Project, observed: ObservedState, options: Options, *, now: float) -> Plan:
    """The plan that takes ``observed`` to what ``project`` and ``options`` ask for."""
    # Planning only allocates (specs, labels, steps): see composer.gcpause.
    with paused_gc():
        return _reconcile(project, observed, options, now=now)


def _reconcile(project: Project, observed: ObservedState, options: Options, *, now: float) -> Plan:
    ctx = Context(with_default_network(project), observed, now)
    match options:
        case UpOptions():
            _plan_up(ctx, options)
        case CreateOptions():
            _plan_up(ctx, options.as_up())
        case DownOptions():
            plan_down(ctx, options)
        case StartOptions():
            plan_start(ctx, options)
        case StopOptions():
            plan_stop(ctx, options)
        case RestartOptions():
            plan_restart(ctx, options)
        case KillOptions():
            plan_kill(ctx, options)
        case RmOptions():
            plan_rm(ctx, options)
        case PauseOptions():
            plan_pause(ctx, options)
        case UnpauseOptions():
            plan_unpause(ctx, options)
        case ReadyOptions():
            plan_ready(ctx, options)
    return make_plan(ctx.steps, ctx.warnings)


def _plan_up(ctx: Context, options: UpOptions) -> None:
    selected = select(ctx.graph, options.services, with_deps=not options.no_deps)
    order = [name for name in ctx.order if name in selected]
    resources = plan_resources(ctx, order)
    displaced_services = {
        c.service
        for c in ctx.observed.containers
        if c.name in resources.displaced and c.service in ctx.project.services
    }
    # Containers removed for a network recreate come back even outside the selection.
    selected |= displaced_services
    order = [name for name in ctx.order if name in selected]
    images = plan_images(ctx, order, options)
    named = set(options.services) or set(ctx.project.services)
    ContainerStage(ctx, options, resources, images, selected, named).run(order)
    plan_orphans(ctx, options.remove_orphans, options.ignore_orphans)
