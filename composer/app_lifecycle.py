"""Use cases of the verbs that change a stack: up, down, create, start, stop,
restart, rm, kill, pause and unpause.

Every verb is the same loop (see DESIGN.md): load the project, take one
snapshot of the engine (``observe``), let the planner decide (``reconcile``),
then carry the plan out (``execute``) while the events go to the renderer.
Under ``--dry-run`` the plan is shown and carried out against an in-memory
``FakeBackend`` seeded with the snapshot, on a virtual clock: the same code
path runs, the engine is never written to and nothing waits in real time.

Nothing here prints: events and messages leave through ``Runtime.renderer``,
warnings through ``Runtime.warn``, the plan of a dry run through
``Runtime.show_plan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from composer.app import Warn, load_options
from composer.errors import ExecutionError, PlanError
from composer.events import Event
from composer.options import GlobalOptions, Invocation

if TYPE_CHECKING:
    from composer.backends.base import Backend, ObservedState
    from composer.clock import Clock
    from composer.planner.executor import ExecutionResult
    from composer.planner.options import Options, UpOptions
    from composer.planner.plan import Plan
    from composer.progress import Renderer
    from composer.schema.model import Project

DRY_RUN_WAIT = 300.0
"""Virtual seconds a dry run waits on a dependency before calling it failed."""

POLL_INTERVAL = 0.1
"""Seconds between two looks at a container being waited on. Compose polls every
0.5 s; an inspect of a local engine costs about a millisecond, and polling
faster starts a dependent up to 0.4 s sooner after its dependency is healthy."""


class Interrupted(ExecutionError):
    """The user pressed Ctrl-C while a plan was carried out; exit code 130."""

    exit_code = 130


@dataclass(frozen=True)
class Runtime:
    """What a lifecycle use case needs from outside, built once by the CLI."""

    options: GlobalOptions
    invocation: Invocation
    renderer: Renderer
    warn: Warn
    show_plan: Callable[[Plan], None]
    clock: Clock

    @property
    def parallel(self) -> int | None:
        return self.options.parallel if self.options.parallel > 0 else None


@dataclass(frozen=True)
class Converged:
    """What one pass of the loop saw, decided and did."""

    project: Project
    observed: ObservedState
    plan: Plan
    result: ExecutionResult


@dataclass(frozen=True, slots=True)
class UpRequest:
    """``up`` as the user asked for it: the planner's options plus what happens after.

    ``attach``/``no_attach`` pick the services whose logs an attached ``up``
    shows; ``exit_code_from`` implies ``abort_on_exit``.
    """

    plan: UpOptions
    detach: bool = False
    wait: bool = False
    wait_timeout: float | None = None
    abort_on_exit: bool = False
    abort_on_failure: bool = False
    exit_code_from: str | None = None
    attach: tuple[str, ...] = ()
    no_attach: tuple[str, ...] = ()
    quiet_pull: bool = False
    wait_log_lines: int = 50
    logs_dir: str | None = None

    def __post_init__(self) -> None:
        aborting = self.abort_on_exit or self.abort_on_failure or self.exit_code_from
        if self.abort_on_exit and self.abort_on_failure:
            raise PlanError(
                "--abort-on-container-exit and --abort-on-container-failure are incompatible"
            )
        if self.detached and aborting:
            flag = "--wait" if self.wait and not self.detach else "--detach"
            raise PlanError(
                f"{flag} cannot be combined with --abort-on-container-exit, "
                "--abort-on-container-failure or --exit-code-from"
            )
        if self.plan.no_start and (self.wait or aborting or self.attach):
            raise PlanError("--no-start cannot be combined with --wait, --attach or --abort-*")
        if self.wait_timeout is not None and self.wait_timeout < 0:
            raise PlanError("--wait-timeout must not be negative")
        if self.wait_log_lines < 0:
            raise PlanError("--wait-log-lines must not be negative")

    @property
    def detached(self) -> bool:
        """``-d``, or implied by ``--wait`` (as in Docker Compose)."""
        return self.detach or self.wait

    @property
    def cascade(self) -> str | None:
        """``"exit"``/``"failure"``: when one container's exit stops them all."""
        if self.abort_on_exit or self.exit_code_from:
            return "exit"
        return "failure" if self.abort_on_failure else None


# --- the loop -------------------------------------------------------------


def load(rt: Runtime, services: Sequence[str] = ()) -> Project:
    """Load the project; naming services enables their profiles, as in Compose."""
    from composer.schema.loader import load_project

    return load_project(load_options(rt.options, rt.invocation, services=services), rt.warn)


def images_of(project: Project) -> list[str]:
    """The image reference of every service (what ``observe`` is asked to look up)."""
    from composer.planner.specs import image_ref

    return sorted({image_ref(project, name) for name in project.services})


def converge(rt: Runtime, backend: Backend, project: Project, options: Options) -> Converged:
    """Observe, reconcile, execute; raise for a failed or interrupted run."""
    from composer.planner.reconcile import reconcile

    observed = backend.observe(project.name, images_of(project))
    plan = reconcile(project, observed, options, now=rt.clock.now())
    for text in plan.warnings:
        rt.warn(text)
    result = carry_out(rt, backend, observed, plan)
    _check(result)
    return Converged(project, observed, plan, result)


def carry_out(
    rt: Runtime,
    backend: Backend,
    observed: ObservedState,
    plan: Plan,
    *,
    wait_timeout: float | None = None,
    reporter: Callable[[Event], None] | None = None,
) -> ExecutionResult:
    """Execute ``plan`` on the engine, or show it and run it on a seeded fake (dry run)."""
    from composer.planner.executor import execute

    emit = _Emit(reporter or rt.renderer.emit)
    if not rt.options.dry_run:
        return execute(
            plan,
            backend,
            emit,
            parallel=rt.parallel,
            clock=rt.clock,
            wait_timeout=wait_timeout,
            poll_interval=POLL_INTERVAL,
        )
    from composer.backends.fake import FakeBackend
    from composer.clock import FakeClock

    rt.show_plan(plan)
    clock = FakeClock(rt.clock.now())
    fake = FakeBackend(clock)
    fake.seed(observed)
    return execute(
        plan,
        fake,
        emit,
        parallel=rt.parallel,
        clock=clock,
        wait_timeout=DRY_RUN_WAIT if wait_timeout is None else wait_timeout,
        run_probes=False,
    )


@dataclass(frozen=True)
class _Emit:
    """Adapts a plain callable to the ``Reporter`` protocol."""

    function: Callable[[Event], None] = field(repr=False)

    def emit(self, event: Event) -> None:
        self.function(event)


def _check(result: ExecutionResult) -> None:
    if result.interrupted:
        left = ", ".join(o.step.resource for o in result.failed) or "nothing"
        raise Interrupted(
            "interrupted", hint=f"failed so far: {left}; `composer down` removes what was made"
        )
    result.raise_for_failure()


# --- up -------------------------------------------------------------------


def up(rt: Runtime, backend: Backend, project: Project, request: UpRequest) -> Converged:
    """Converge the project; with ``--wait``, then wait until it is ready.

    Containers that were already running and needed nothing are reported as
    ``Running``, as Compose does, so the display lists every container.
    """
    from composer.planner.options import ReadyOptions
    from composer.planner.reconcile import reconcile

    if request.exit_code_from is not None and request.exit_code_from not in project.services:
        raise PlanError(
            f"--exit-code-from: no such service: {request.exit_code_from}",
            hint="services are: " + ", ".join(sorted(project.services)),
        )
    observed = backend.observe(project.name, images_of(project))
    plan = reconcile(project, observed, request.plan, now=rt.clock.now())
    for text in plan.warnings:
        rt.warn(text)
    reporter = _quiet_pull(rt.renderer.emit) if request.quiet_pull else None
    result = carry_out(rt, backend, observed, plan, reporter=reporter)
    _check(result)
    _report_running(rt, project, observed, plan, request.plan)
    if request.wait and not request.plan.no_start and not rt.options.dry_run:
        fresh = backend.observe(project.name)
        ready = ReadyOptions(request.plan.services, request.plan.no_deps)
        wait_plan = reconcile(project, fresh, ready, now=rt.clock.now())
        outcome = carry_out(rt, backend, fresh, wait_plan, wait_timeout=request.wait_timeout)
        _check_wait(backend, outcome, fresh, request)
    return Converged(project, observed, plan, result)


def _quiet_pull(emit: Callable[[Event], None]) -> Callable[[Event], None]:
    """``--quiet-pull``: drop the per-layer progress of pulls."""

    def filtered(event: Event) -> None:
        if event.kind == "progress" and event.action == "pull":
            return
        emit(event)

    return filtered


def _report_running(
    rt: Runtime, project: Project, observed: ObservedState, plan: Plan, options: UpOptions
) -> None:
    from composer.planner.graph import select, service_graph

    if options.no_start:
        return
    touched = {s.name for s in plan.steps if s.kind == "container"}
    selected = select(service_graph(project), options.services, with_deps=not options.no_deps)
    for c in observed.containers:
        kept = c.service in selected and not c.oneoff and c.name not in touched
        if kept and c.state == "running":
            rt.renderer.emit(Event("done", f"container {c.name}", "running", rt.clock.now()))


def _check_wait(
    backend: Backend, result: ExecutionResult, observed: ObservedState, request: UpRequest
) -> None:
    """Raise for a failed ``--wait`` with what failed, why, its last healthcheck or
    probe results and its last log lines (``composer.wait_report``); with
    ``--logs-dir`` the full logs are saved first.

    Docker Compose reports only "unhealthy" (docker/compose#9122).
    """
    if result.ok:
        return
    if result.interrupted:
        _check(result)
    from composer import wait_report

    error = wait_report.report(backend, result, observed, request.wait_log_lines)
    if request.logs_dir is not None:
        from composer.logs_dir import save_logs

        save_logs(backend, observed.project, request.logs_dir)
    raise error


# --- the other verbs ------------------------------------------------------


def down(rt: Runtime, backend: Backend, project: Project, options: Options) -> Converged:
    """``down``: like every verb, but say so when there was nothing to remove."""
    done = converge(rt, backend, project, options)
    if done.plan.empty and not done.observed.containers:
        rt.warn(f'no resource found to remove for project "{project.name}"')
    return done


def removable(rt: Runtime, backend: Backend, project: Project, options: Options) -> Plan:
    """``rm``'s plan, so the CLI can ask before carrying it out."""
    from composer.planner.reconcile import reconcile

    observed = backend.observe(project.name, images_of(project))
    return reconcile(project, observed, options, now=rt.clock.now())


def names_removed(plan: Plan) -> list[str]:
    """The containers a plan removes, in plan order."""
    return [s.name for s in plan.steps if s.kind == "container" and s.action == "remove"]
