"""CLI verbs that change the stack: up, down, create, start, stop, restart, rm,
kill, pause and unpause.

Each command parses its flags into frozen planner options, opens the
renderer and the backend, and hands over to ``composer.app_lifecycle``;
attached ``up`` then hands over to ``composer.attach``. Registered through
``COMMANDS`` in composer.cli_commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import typer

from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.app_lifecycle import Runtime, UpRequest
    from composer.app_watch import WatchRequest
    from composer.backends.base import Backend
    from composer.cli_commands import Session
    from composer.planner.options import Options, PullOption, RmiOption
    from composer.planner.plan import Plan
    from composer.schema.model import Project

Services = Annotated[
    list[str] | None,
    typer.Argument(metavar="SERVICE", help="Only these services.", show_default=False),
]
Timeout = Annotated[
    int | None,
    typer.Option(
        "-t", "--timeout", metavar="SECONDS", help="Shutdown timeout (default: stop_grace_period)."
    ),
]
PULL_CHOICES = ("always", "missing", "never", "build")


@dataclass
class _Stack:
    session: Session
    rt: Runtime
    backend: Backend
    watch: WatchRequest | None = None


@contextlib.contextmanager
def _stack(ctx: typer.Context) -> Iterator[_Stack]:
    """The renderer and backend of one lifecycle verb, closed when it ends."""
    from composer.app_lifecycle import Runtime
    from composer.backends.factory import open_backend
    from composer.cli_commands import _options
    from composer.clock import RealClock
    from composer.progress import open_renderer, resolve_mode
    from composer.render_output import make_warn

    session, options = _options(ctx)
    environ = session.invocation.environ
    mode = resolve_mode(options.progress, options.ansi, session.stderr, environ)
    renderer = open_renderer(mode, session.stderr, colour=session.colour, dry_run=options.dry_run)

    def show_plan(plan: Plan) -> None:
        if not plan.empty:
            session.stdout.write(str(plan) + "\n")
            session.stdout.flush()

    rt = Runtime(
        options=options,
        invocation=session.invocation,
        renderer=renderer,
        warn=make_warn(session.stderr, colour=session.colour),
        show_plan=show_plan,
        clock=RealClock(),
    )
    backend = open_backend(options.backend, environ)
    try:
        yield _Stack(session, rt, backend)
    finally:
        renderer.close()
        close = getattr(backend, "close", None)
        if callable(close):
            close()


def _scale(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values or ():
        name, sep, count = value.partition("=")
        if not sep or not name or not count.strip().lstrip("-").isdigit():
            raise PlanError(f"--scale: invalid value {value!r}", hint="expected SERVICE=NUM")
        out[name] = int(count)
    return out


def _pull(value: str | None) -> PullOption | None:
    if value is None:
        return None
    if value not in PULL_CHOICES:
        raise PlanError(
            f"--pull: invalid value {value!r}", hint="expected always, missing or never"
        )
    return value  # type: ignore[return-value]


def _timeout(value: int | None) -> float | None:
    return None if value is None else float(value)


# --- up ---------------------------------------------------------------------


def up_command(
    ctx: typer.Context,
    services: Services = None,
    detach: Annotated[
        bool, typer.Option("-d", "--detach", help="Run containers in the background.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for services to be running|healthy. Implies detached."),
    ] = False,
    wait_timeout: Annotated[
        int | None,
        typer.Option("--wait-timeout", metavar="SECONDS", help="Maximum duration of --wait."),
    ] = None,
    build: Annotated[
        bool, typer.Option("--build", help="Build images before starting containers.")
    ] = False,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Don't build an image, even if it's missing.")
    ] = False,
    pull: Annotated[
        str | None,
        typer.Option("--pull", metavar="POLICY", help="Pull images: always, missing, never."),
    ] = None,
    force_recreate: Annotated[
        bool,
        typer.Option("--force-recreate", help="Recreate containers even if nothing changed."),
    ] = False,
    no_recreate: Annotated[
        bool, typer.Option("--no-recreate", help="Don't recreate existing containers.")
    ] = False,
    always_recreate_deps: Annotated[
        bool, typer.Option("--always-recreate-deps", help="Recreate dependent containers.")
    ] = False,
    no_deps: Annotated[
        bool, typer.Option("--no-deps", help="Don't start linked services.")
    ] = False,
    scale: Annotated[
        list[str] | None,
        typer.Option("--scale", metavar="SERVICE=NUM", help="Scale SERVICE to NUM instances."),
    ] = None,
    remove_orphans: Annotated[
        bool,
        typer.Option("--remove-orphans", help="Remove containers of services not in the file."),
    ] = False,
    abort_on_container_exit: Annotated[
        bool,
        typer.Option(
            "--abort-on-container-exit", help="Stops all containers if any container stops."
        ),
    ] = False,
    abort_on_container_failure: Annotated[
        bool,
        typer.Option(
            "--abort-on-container-failure",
            help="Stops all containers if any container exits with a failure.",
        ),
    ] = False,
    exit_code_from: Annotated[
        str | None,
        typer.Option(
            "--exit-code-from",
            metavar="SERVICE",
            help="Return the exit code of SERVICE's container (implies --abort-on-container-exit).",
        ),
    ] = None,
    attach: Annotated[
        list[str] | None,
        typer.Option("--attach", metavar="SERVICE", help="Show the logs of these services only."),
    ] = None,
    no_attach: Annotated[
        list[str] | None,
        typer.Option("--no-attach", metavar="SERVICE", help="Don't show these services' logs."),
    ] = None,
    no_start: Annotated[
        bool, typer.Option("--no-start", help="Don't start the services after creating them.")
    ] = False,
    timeout: Timeout = None,
    renew_anon_volumes: Annotated[
        bool,
        typer.Option(
            "-V",
            "--renew-anon-volumes",
            help="Recreate anonymous volumes instead of reusing the previous containers' data.",
        ),
    ] = False,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Show timestamps.")] = False,
    no_log_prefix: Annotated[
        bool, typer.Option("--no-log-prefix", help="Don't print a prefix in the logs.")
    ] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="Monochrome output.")] = False,
    quiet_pull: Annotated[
        bool, typer.Option("--quiet-pull", help="Pull without printing progress.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option("-w", "--watch", help="Watch source code and rebuild/refresh containers."),
    ] = False,
    wait_log_lines: Annotated[
        int,
        typer.Option(
            "--wait-log-lines",
            metavar="N",
            help="Log lines shown for each service that fails --wait.",
        ),
    ] = 50,
    logs_dir: Annotated[
        str | None,
        typer.Option(
            "--logs-dir", metavar="DIR", help="Write each service's log to DIR/<service>.log."
        ),
    ] = None,
    isolate: Annotated[
        bool,
        typer.Option(
            "--isolate",
            help="Unique project name, ephemeral host ports (COMPOSER_ISOLATE=1).",
        ),
    ] = False,
    reap_with_parent: Annotated[
        int | None,
        typer.Option(
            "--reap-with-parent",
            metavar="PID",
            help="Remove the stack, volumes included, when process PID dies.",
        ),
    ] = None,
) -> None:
    """Create and start containers.

    Without -d the logs of the services are shown until every container has
    stopped; Ctrl-C stops the containers (a second Ctrl-C kills them).
    """
    from composer import app_lifecycle, cli_ci
    from composer.app_lifecycle import UpRequest
    from composer.planner.options import UpOptions

    reap_pid = cli_ci.check_pid(reap_with_parent)
    request = UpRequest(
        plan=UpOptions(
            services=tuple(services or ()),
            no_deps=no_deps,
            force_recreate=force_recreate,
            no_recreate=no_recreate,
            always_recreate_deps=always_recreate_deps,
            build=build,
            no_build=no_build,
            pull=_pull(pull),
            scale=_scale(scale),
            no_start=no_start,
            renew_anon_volumes=renew_anon_volumes,
            remove_orphans=remove_orphans,
            timeout=_timeout(timeout),
        ),
        detach=detach,
        wait=wait,
        wait_timeout=_timeout(wait_timeout),
        abort_on_exit=abort_on_container_exit,
        abort_on_failure=abort_on_container_failure,
        exit_code_from=exit_code_from,
        attach=tuple(attach or ()),
        no_attach=tuple(no_attach or ()),
        quiet_pull=quiet_pull,
        wait_log_lines=wait_log_lines,
        logs_dir=logs_dir,
    )
    with _stack(ctx) as stack:
        rt = stack.rt
        project = app_lifecycle.load(rt, request.plan.services)
        rt, project = cli_ci.isolate_project(
            stack.session, rt, request.plan.services, project, isolate
        )
        stack.rt = rt
        cli_ci.arm_reaper(
            stack.session, rt.options, stack.backend, project.name, reap_pid, logs_dir
        )
        since = rt.clock.now()
        app_lifecycle.up(rt, stack.backend, project, request)
        if watch and not rt.options.dry_run:
            from composer import cli_watch

            stack.watch = cli_watch.up_watch_request(request.plan.services)
            if request.detached:
                cli_watch.watch_in_background(stack, project, stack.watch)
        if request.detached or request.plan.no_start:
            return
        if rt.options.dry_run:
            rt.renderer.message(
                "end of 'up' output, attaching to logs is not supported in dry-run mode"
            )
            return
        try:
            code = _attached(stack, project, request, since, no_color, timestamps, no_log_prefix)
        finally:
            cli_ci.save_logs(stack.backend, project.name, logs_dir, rt.options.dry_run)
    raise typer.Exit(code)


def _attached(
    stack: _Stack,
    project: Project,
    request: UpRequest,
    since: float,
    no_color: bool,
    timestamps: bool,
    no_log_prefix: bool,
) -> int:
    """Hand the terminal over to the logs; a live display would fight with them."""
    from composer.attach import LogFormat, run_attached
    from composer.progress.plain import PlainRenderer
    from composer.progress.tty import TtyRenderer
    from composer.render_output import colour_enabled

    session, rt = stack.session, stack.rt
    rt.renderer.close()
    if isinstance(rt.renderer, TtyRenderer):
        rt = replace(rt, renderer=PlainRenderer(session.stderr, colour=session.colour))
    colour = not no_color and colour_enabled(
        rt.options.ansi, session.stdout, session.invocation.environ
    )
    fmt = LogFormat(prefix=not no_log_prefix, colour=colour, timestamps=timestamps)
    with _sigterm_interrupts():
        if stack.watch is not None:  # up --watch: the watch loop runs beside the logs
            from composer.cli_watch import watch_while_attached

            return watch_while_attached(
                stack,
                project,
                stack.watch,
                lambda: run_attached(
                    rt, stack.backend, project, request, session.stdout, fmt, since
                ),
            )
        return run_attached(
            rt,
            stack.backend,
            project,
            request,
            session.stdout,
            fmt,
            since,
        )


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while attached (as Compose does), then restore it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the other verbs -----------------------------------------------------------


def _converge(ctx: typer.Context, services: list[str] | None, options: Options) -> None:
    from composer import app_lifecycle

    with _stack(ctx) as stack:
        project = app_lifecycle.load(stack.rt, tuple(services or ()))
        app_lifecycle.converge(stack.rt, stack.backend, project, options)


def down_command(
    ctx: typer.Context,
    services: Services = None,
    volumes: Annotated[
        bool,
        typer.Option(
            "-v", "--volumes", help="Remove named volumes and anonymous volumes of containers."
        ),
    ] = False,
    rmi: Annotated[
        str | None,
        typer.Option("--rmi", metavar="TYPE", help="Remove images used by services: local, all."),
    ] = None,
    remove_orphans: Annotated[
        bool,
        typer.Option("--remove-orphans", help="Remove containers of services not in the file."),
    ] = False,
    timeout: Timeout = None,
    logs_dir: Annotated[
        str | None,
        typer.Option(
            "--logs-dir",
            metavar="DIR",
            help="Write each service's log to DIR/<service>.log before removing.",
        ),
    ] = None,
) -> None:
    """Stop and remove containers and networks (and volumes with -v)."""
    from composer import app_lifecycle
    from composer.planner.options import DownOptions

    if rmi is not None and rmi not in ("local", "all"):
        raise PlanError(f"--rmi: invalid value {rmi!r}", hint="expected local or all")
    rmi_value: RmiOption | None = rmi  # type: ignore[assignment]
    options = DownOptions(
        services=tuple(services or ()),
        volumes=volumes,
        rmi=rmi_value,
        remove_orphans=remove_orphans,
        timeout=_timeout(timeout),
    )
    from composer import cli_ci

    with _stack(ctx) as stack:
        project = app_lifecycle.load(stack.rt, options.services)
        if not stack.rt.options.dry_run:  # a background watcher would fight the removal
            from composer.cli_watch import stop_background

            stop_background(stack, project, quiet=True)
        cli_ci.save_logs(stack.backend, project.name, logs_dir, stack.rt.options.dry_run)
        app_lifecycle.down(stack.rt, stack.backend, project, options)


def create_command(
    ctx: typer.Context,
    services: Services = None,
    build: Annotated[bool, typer.Option("--build", help="Build images first.")] = False,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Don't build an image, even if it's missing.")
    ] = False,
    pull: Annotated[
        str | None,
        typer.Option("--pull", metavar="POLICY", help="Pull images: always, missing, never."),
    ] = None,
    force_recreate: Annotated[
        bool,
        typer.Option("--force-recreate", help="Recreate containers even if nothing changed."),
    ] = False,
    no_recreate: Annotated[
        bool, typer.Option("--no-recreate", help="Don't recreate existing containers.")
    ] = False,
    remove_orphans: Annotated[
        bool,
        typer.Option("--remove-orphans", help="Remove containers of services not in the file."),
    ] = False,
    scale: Annotated[
        list[str] | None,
        typer.Option("--scale", metavar="SERVICE=NUM", help="Scale SERVICE to NUM instances."),
    ] = None,
) -> None:
    """Create containers for the services without starting them."""
    from composer.planner.options import CreateOptions

    options = CreateOptions(
        services=tuple(services or ()),
        force_recreate=force_recreate,
        no_recreate=no_recreate,
        build=build,
        no_build=no_build,
        pull=_pull(pull),
        scale=_scale(scale),
        remove_orphans=remove_orphans,
    )
    _converge(ctx, services, options)


def start_command(ctx: typer.Context, services: Services = None) -> None:
    """Start existing containers, dependencies first."""
    from composer.planner.options import StartOptions

    _converge(ctx, services, StartOptions(tuple(services or ())))


def stop_command(ctx: typer.Context, services: Services = None, timeout: Timeout = None) -> None:
    """Stop running containers without removing them, dependents first."""
    from composer.planner.options import StopOptions

    _converge(ctx, services, StopOptions(tuple(services or ()), _timeout(timeout)))


def restart_command(
    ctx: typer.Context,
    services: Services = None,
    timeout: Timeout = None,
    no_deps: Annotated[
        bool, typer.Option("--no-deps", help="Don't restart dependent services.")
    ] = False,
) -> None:
    """Restart containers (stop, then start in dependency order)."""
    from composer.planner.options import RestartOptions

    _converge(ctx, services, RestartOptions(tuple(services or ()), no_deps, _timeout(timeout)))


def rm_command(
    ctx: typer.Context,
    services: Services = None,
    force: Annotated[
        bool, typer.Option("-f", "--force", help="Don't ask to confirm removal.")
    ] = False,
    stop: Annotated[
        bool,
        typer.Option("-s", "--stop", help="Stop the containers, if required, before removing."),
    ] = False,
    volumes: Annotated[
        bool, typer.Option("-v", "--volumes", help="Remove anonymous volumes of the containers.")
    ] = False,
) -> None:
    """Remove stopped containers (asks first unless -f)."""
    from composer import app_lifecycle
    from composer.planner.options import RmOptions

    options = RmOptions(tuple(services or ()), stop=stop, volumes=volumes, force=force)
    with _stack(ctx) as stack:
        rt = stack.rt
        project = app_lifecycle.load(rt, options.services)
        names = app_lifecycle.names_removed(
            app_lifecycle.removable(rt, stack.backend, project, options)
        )
        if not names:
            stack.session.stderr.write("No stopped containers\n")
            return
        if not force and not rt.options.dry_run and not _confirm(stack.session, names):
            return
        app_lifecycle.converge(rt, stack.backend, project, options)


def _confirm(session: Session, names: list[str]) -> bool:
    """``Going to remove ...`` and a yes/no answer from the first line of standard input."""
    session.stderr.write(f"Going to remove {', '.join(names)}\n? Are you sure? (y/N) ")
    session.stderr.flush()
    answer = session.invocation.read_stdin().strip().splitlines()
    return bool(answer) and answer[0].strip().lower() in ("y", "yes")


def kill_command(
    ctx: typer.Context,
    services: Services = None,
    signal: Annotated[
        str, typer.Option("-s", "--signal", metavar="SIGNAL", help="Signal to send.")
    ] = "SIGKILL",
    remove_orphans: Annotated[
        bool,
        typer.Option("--remove-orphans", help="Kill containers of services not in the file."),
    ] = False,
) -> None:
    """Force stop service containers with a signal (SIGKILL by default)."""
    from composer.planner.options import KillOptions

    _converge(ctx, services, KillOptions(tuple(services or ()), signal, remove_orphans))


def pause_command(ctx: typer.Context, services: Services = None) -> None:
    """Pause running containers."""
    from composer.planner.options import PauseOptions

    _converge(ctx, services, PauseOptions(tuple(services or ())))


def unpause_command(ctx: typer.Context, services: Services = None) -> None:
    """Unpause paused containers."""
    from composer.planner.options import UnpauseOptions

    _converge(ctx, services, UnpauseOptions(tuple(services or ())))


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "up": (up_command, "Create and start containers."),
    "down": (down_command, "Stop and remove containers, networks."),
    "create": (create_command, "Creates containers for a service."),
    "start": (start_command, "Start services."),
    "stop": (stop_command, "Stop services."),
    "restart": (restart_command, "Restart service containers."),
    "rm": (rm_command, "Removes stopped service containers."),
    "kill": (kill_command, "Force stop service containers."),
    "pause": (pause_command, "Pause services."),
    "unpause": (unpause_command, "Unpause services."),
}
