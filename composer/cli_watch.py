"""CLI of ``composer watch``; ``up --watch`` hands over to ``run_watch`` here too.

Registered through ``COMMANDS`` in composer.cli_commands.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.app_watch import WatchRequest
    from composer.cli_lifecycle import _Stack
    from composer.schema.model import Project

Services = Annotated[
    list[str] | None,
    typer.Argument(metavar="SERVICE", help="Only these services.", show_default=False),
]


def quiet_period(value: float | None) -> float | None:
    """``--quiet-period`` in milliseconds, as seconds."""
    if value is None:
        return None
    if value < 0 or value > 60_000:
        raise PlanError(
            f"--quiet-period: invalid value {value:g}", hint="milliseconds from 0 to 60000"
        )
    return value / 1000


def output_format(value: str) -> bool:
    if value not in ("text", "json"):
        raise PlanError(f"--format: invalid value {value!r}", hint="expected text or json")
    return value == "json"


def watch_command(
    ctx: typer.Context,
    services: Services = None,
    no_up: Annotated[
        bool, typer.Option("--no-up", help="Don't build & start services before watching.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove the previous image after each rebuild.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Hide build and start progress; keep the watch lines.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the project's background watcher (up -d --watch).")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Output lines: text or json.")
    ] = "text",
    quiet_ms: Annotated[
        float | None,
        typer.Option(
            "--quiet-period",
            metavar="MS",
            help="Milliseconds without changes that close a batch (default 50).",
        ),
    ] = None,
) -> None:
    """Watch the build contexts and sync paths of services; act on each change.

    Follows the services' develop.watch rules: sync, rebuild, sync+restart,
    sync+exec and restart. A change to the compose file reloads the project.
    """
    from composer import app_lifecycle
    from composer.app_watch import WatchRequest
    from composer.cli_lifecycle import _stack

    request = WatchRequest(
        services=tuple(services or ()),
        no_up=no_up,
        prune=prune,
        quiet=quiet,
        json=output_format(fmt),
        quiet_period=quiet_period(quiet_ms),
    )
    with _stack(ctx) as stack:
        if stack.rt.options.dry_run:
            raise PlanError(
                "watch cannot run with --dry-run: it copies files into running containers",
                hint="`composer --dry-run up` shows what watch would start",
            )
        project = app_lifecycle.load(stack.rt, request.services)
        if stop:
            stop_background(stack, project)
            return
        run_watch(stack, project, request)


def stop_background(stack: _Stack, project: Project, *, quiet: bool = False) -> None:
    """End the project's background watcher (``watch --stop``, and ``down`` with ``quiet``)."""
    from composer.watch import detached

    stopped = detached.stop(project.name, stack.session.invocation.environ)
    if stopped is None:
        if not quiet:
            stack.session.stderr.write(f"No background watcher for project {project.name}\n")
        return
    stack.session.stderr.write(f"Stopped the background watcher (pid {stopped.pid})\n")


def up_watch_request(services: tuple[str, ...]) -> WatchRequest:
    """The watch of ``up --watch``: the stack is already up."""
    from composer.app_watch import WatchRequest

    return WatchRequest(services=services, no_up=True)


def run_watch(
    stack: _Stack,
    project: Project,
    request: WatchRequest,
    stop: threading.Event | None = None,
) -> None:
    """Watch in the foreground until Ctrl-C, SIGTERM or ``stop``."""
    from dataclasses import replace

    from composer import app_watch
    from composer.cli_lifecycle import _sigterm_interrupts
    from composer.progress import QuietRenderer

    session = stack.session
    rt = replace(stack.rt, renderer=QuietRenderer()) if request.quiet else stack.rt
    lock = threading.Lock()

    def emit(line: str) -> None:
        with lock:
            session.stdout.write(line + "\n")
            session.stdout.flush()

    with _sigterm_interrupts():
        try:
            app_watch.watch(rt, stack.backend, project, request, emit, stop)
        except KeyboardInterrupt:
            return


def watch_in_background(stack: _Stack, project: Project, request: WatchRequest) -> None:
    """``up -d --watch``: start the background watcher and say so."""
    from composer import app_watch

    pid = app_watch.start_detached(stack.rt, project, request, sys.executable)
    stack.session.stderr.write(
        f"Watching {project.name} in the background (pid {pid}); "
        "`composer watch --stop` or `composer down` ends it\n"
    )


def watch_while_attached(
    stack: _Stack, project: Project, request: WatchRequest, attached: Callable[[], int]
) -> int:
    """``up --watch``: the watch loop in a thread while the logs hold the terminal."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            run_watch(stack, project, request, stop)
        except BaseException as error:  # shown once the logs end
            failure.append(error)

    thread = threading.Thread(target=loop, name="composer-watch-loop", daemon=True)
    thread.start()
    try:
        return attached()
    finally:
        stop.set()
        thread.join(timeout=5)
        if failure:
            raise failure[0]


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "watch": (watch_command, "Watch the build context and sync, rebuild or restart on change."),
}
