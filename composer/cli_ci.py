"""CLI pieces for CI stacks: the ``ports`` verb, and what ``up``/``down`` add for CI
(``--isolate``, ``--reap-with-parent``, ``--logs-dir``).

``ports`` is registered through ``COMMANDS`` in composer.cli_commands; the
helpers are called by composer.cli_lifecycle so that its commands stay
declarations of flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.app_lifecycle import Runtime
    from composer.backends.base import Backend, ObservedContainer
    from composer.cli_commands import Session
    from composer.options import GlobalOptions
    from composer.schema.model import Project


@dataclass(frozen=True, slots=True)
class PortRow:
    """One published port: which container of which service, and where on the host."""

    service: str
    container: str
    container_port: int
    protocol: str
    host_ip: str
    host_port: int

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.container,
            "container_port": self.container_port,
            "protocol": self.protocol,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
        }


def port_rows(containers: list[ObservedContainer]) -> list[PortRow]:
    """The published ports of ``containers``, by service, container and port."""
    rows = [
        PortRow(c.service, c.name, p.target, p.protocol, p.host_ip, p.host_port)
        for c in containers
        if not c.oneoff
        for p in c.ports
        if p.host_port
    ]
    return sorted(rows, key=lambda r: (r.service, r.container, r.container_port, r.host_ip))


def render_ports(rows: list[PortRow], fmt: str) -> str:
    """A JSON array (``--format json``), or a table."""
    from composer.render_output import dump_json, format_table

    if fmt == "json":
        return dump_json([r.as_json() for r in rows])
    return format_table(
        ("SERVICE", "CONTAINER", "PORT", "HOST"),
        [
            (
                r.service,
                r.container,
                f"{r.container_port}/{r.protocol}",
                f"{r.host_ip}:{r.host_port}",
            )
            for r in rows
        ],
    )


def ports_command(
    ctx: typer.Context,
    services: Annotated[
        list[str] | None,
        typer.Argument(metavar="SERVICE", help="Only these services.", show_default=False),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Format the output: table or json.")
    ] = "table",
) -> None:
    """List every published port of the project: service, container port, host address
    and host port (the map an --isolate run needs)."""
    from composer.app_ops import select_containers
    from composer.cli_ops import _backend, _format, _session, _target

    session, options = _session(ctx)
    output = _format(fmt, ("table", "json"))
    target = _target(session, options)
    found = select_containers(_backend(session, options), target, tuple(services or ()))
    session.stdout.write(render_ports(port_rows(found), output))


# --- helpers of up/down ---------------------------------------------------------


def isolate_project(
    session: Session, rt: Runtime, services: tuple[str, ...], project: Project, flag: bool
) -> tuple[Runtime, Project]:
    """``--isolate``/``COMPOSER_ISOLATE``: the isolated runtime and project.

    Without an explicit name the project is loaded again under a unique one
    (told on stderr), so that its networks and volumes are named after it.
    """
    from dataclasses import replace

    from composer import app_lifecycle, isolate

    environ = session.invocation.environ
    if not isolate.wanted(flag, environ):
        return rt, project
    if not isolate.name_given(rt.options.project_name, environ):
        name = isolate.unique_name(project.name)
        rt = replace(rt, options=replace(rt.options, project_name=name))
        project = app_lifecycle.load(rt, services)
        session.stderr.write(
            f"Isolated project {name}: give -p {name} to later commands "
            f"(composer -p {name} ports --format json)\n"
        )
        session.stderr.flush()
    return rt, isolate.isolate(project)


def arm_reaper(
    session: Session,
    options: GlobalOptions,
    backend: Backend,
    project: str,
    pid: int | None,
    logs_dir: str | None,
) -> None:
    """``--reap-with-parent PID``: the stack is removed once PID dies."""
    if pid is None:
        return
    if options.dry_run:
        return
    from composer import reaper

    reaper.arm(
        backend, options.backend, project, pid, session.invocation.environ, logs_dir=logs_dir
    )


def save_logs(backend: Backend, project: str, logs_dir: str | None, dry_run: bool) -> None:
    """``--logs-dir``: each service's log in DIR/<service>.log."""
    if logs_dir is None or dry_run:
        return
    from composer.logs_dir import save_logs as save

    save(backend, project, logs_dir)


def check_pid(pid: int | None) -> int | None:
    if pid is not None and pid <= 0:
        raise PlanError(f"--reap-with-parent: invalid PID {pid}")
    return pid


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "ports": (ports_command, "List the published ports of the project's services."),
}
