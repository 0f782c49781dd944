"""CLI verbs that inspect or operate on containers (ps, logs, run, exec, cp, port, top,
images, pull, push, build, events, wait, ls).

Registered through ``COMMANDS`` in composer.cli_commands. Each command parses
its flags into frozen options, calls one use case (``composer.app_ops``,
``composer.app_ops_run``, ``composer.app_ops_images``) and renders the result
with ``composer.render_ops``. A command returns its exit code when it is not 0
(``run``, ``exec`` and ``wait`` pass on the container's).

``run``, ``exec`` and ``cp -`` hand the process's binary standard streams to
the engine; that, and switching a terminal to raw mode for ``-t``, is the only
process state touched here.
"""

from __future__ import annotations

import codecs
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated, BinaryIO, TextIO, cast

import typer

from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.app_ops import Target, Warn
    from composer.app_ops_run import Streams
    from composer.backends.base import Backend
    from composer.cli_commands import Session
    from composer.options import GlobalOptions
    from composer.planner.options import PullOption
    from composer.progress import Renderer


# --- plumbing ---------------------------------------------------------------------


def _session(ctx: typer.Context) -> tuple[Session, GlobalOptions]:
    from composer.cli_commands import _options

    return _options(ctx)


def _warn(session: Session) -> Warn:
    from composer.render_output import make_warn

    return make_warn(session.stderr, colour=session.colour)


def _backend(session: Session, options: GlobalOptions) -> Backend:
    from composer.backends.factory import open_backend

    return open_backend(options.backend, session.invocation.environ)


def _target(session: Session, options: GlobalOptions, *, require_project: bool = False) -> Target:
    from composer.app_ops import resolve_target

    return resolve_target(
        options, session.invocation, _warn(session), require_project=require_project
    )


def _now() -> float:
    import time

    return time.time()


def _no_dry_run(options: GlobalOptions, verb: str) -> None:
    if options.dry_run:
        raise PlanError(f"--dry-run is not supported by {verb}", hint=f"run {verb} without it")


def _renderer(session: Session, options: GlobalOptions, quiet: bool) -> Renderer:
    from composer.progress import QuietRenderer, open_renderer, resolve_mode

    if quiet:
        return QuietRenderer()
    mode = resolve_mode(options.progress, options.ansi, session.stderr, session.invocation.environ)
    return open_renderer(mode, session.stderr, colour=session.colour)


def _format(value: str, allowed: tuple[str, ...]) -> str:
    fmt = value.lower() or allowed[0]
    if fmt not in allowed:
        raise PlanError(
            f"--format: invalid value {value!r}", hint=f"expected {' or '.join(allowed)}"
        )
    return fmt


def _exit(code: int) -> None:
    """Leave with ``code`` (the parser hands it back to ``composer.cli.run``)."""
    if code:
        raise typer.Exit(code)


def _index(value: int) -> int | None:
    if value < 0:
        raise PlanError("--index must be a positive number")
    return value or None


class _TextSink(io.RawIOBase):
    """Bytes written here reach a text stream (an in-process run's ``StringIO``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._stream.write(self._decoder.decode(chunk))
        self._stream.flush()
        return len(chunk)


def _binary(stream: TextIO) -> BinaryIO:
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast(BinaryIO, buffer)
    return cast(BinaryIO, _TextSink(stream))


def _streams(session: Session, *, stdin: bool) -> Streams:
    from composer.app_ops_run import Streams

    return Streams(
        stdin=cast(BinaryIO, sys.stdin.buffer) if stdin and sys.stdin is not None else None,
        stdout=_binary(session.stdout),
        stderr=_binary(session.stderr),
    )


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """Put the terminal on standard input in raw mode while a ``-t`` session runs."""
    if not enabled or not _isatty(sys.stdin):
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


Services = Annotated[
    list[str] | None,
    typer.Argument(metavar="SERVICE", help="Only these services.", show_default=False),
]


# --- ps -------------------------------------------------------------------------------


def ps_command(
    ctx: typer.Context,
    services: Services = None,
    all_: Annotated[
        bool,
        typer.Option("-a", "--all", help="Show all stopped containers (including run containers)."),
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Format the output: table or json.")
    ] = "table",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only display IDs.")] = False,
    list_services: Annotated[bool, typer.Option("--services", help="Display services.")] = False,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", metavar="KEY=VALUE", help="Filter by a property (status=...)."),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Filter by status: paused, restarting, removing, running, dead, created, exited.",
        ),
    ] = None,
    orphans: Annotated[
        bool,
        typer.Option("--orphans/--no-orphans", help="Include containers of undeclared services."),
    ] = True,
) -> None:
    """List containers."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    output = _format(fmt, ("table", "json"))
    statuses = tuple(status or ())
    if filter_:
        statuses += app_ops.parse_ps_filter(filter_)
    target = _target(session, options)
    found = app_ops.ps(
        _backend(session, options),
        target,
        app_ops.PsOptions(tuple(services or ()), all_, statuses, orphans),
    )
    out = session.stdout
    if quiet:
        out.write("".join(f"{c.id}\n" for c in found))
    elif list_services:
        out.write("".join(f"{s}\n" for s in dict.fromkeys(c.service for c in found)))
    elif output == "json":
        out.write(render_ops.ps_json(found, target.name, _now()))
    else:
        out.write(render_ops.ps_table(found, _now()))


# --- logs -----------------------------------------------------------------------------


def logs_command(
    ctx: typer.Context,
    services: Services = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow log output.")] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME",
            help="Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m).",
        ),
    ] = None,
    tail: Annotated[
        str,
        typer.Option(
            "-n",
            "--tail",
            metavar="N",
            help="Number of lines from the end of each container's logs.",
        ),
    ] = "all",
    timestamps: Annotated[
        bool, typer.Option("-t", "--timestamps", help="Show timestamps.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="Produce monochrome output.")
    ] = False,
    no_log_prefix: Annotated[
        bool, typer.Option("--no-log-prefix", help="Don't print a prefix in logs.")
    ] = False,
    index: Annotated[
        int, typer.Option("--index", metavar="N", help="Index of the container if scaled.")
    ] = 0,
) -> None:
    """View output from containers."""
    from composer import app_ops, render_ops
    from composer.render_output import colour_enabled

    session, options = _session(ctx)
    now = _now()
    opts = app_ops.LogsOptions(
        services=tuple(services or ()),
        follow=follow,
        since=app_ops.parse_timestamp(since, now, "--since") if since else None,
        until=app_ops.parse_timestamp(until, now, "--until") if until else None,
        tail=app_ops.parse_tail(tail),
        timestamps=timestamps,
        index=_index(index),
    )
    colour = not no_color and colour_enabled(
        options.ansi, session.stdout, session.invocation.environ
    )
    formatter = render_ops.LogFormatter(
        colour=colour, prefix=not no_log_prefix, timestamps=timestamps
    )
    out = session.stdout

    def sink(name: str, line: object) -> None:
        from composer.backends.base import LogLine

        assert isinstance(line, LogLine)
        out.write(formatter.format(name, line))
        out.flush()

    app_ops.logs(
        _backend(session, options), _target(session, options), opts, sink, formatter.register
    )


# --- run, exec, cp -----------------------------------------------------------------------


def _command_words(words: list[str] | None) -> tuple[str, ...]:
    """The command after SERVICE; a leading ``--`` (``exec web -- sh``) is a separator."""
    out = tuple(words or ())
    return out[1:] if out[:1] == ("--",) else out


def run_command(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service to run.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="COMMAND", help="Command to run.", show_default=False),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("-d", "--detach", help="Run in the background and print the container ID."),
    ] = False,
    rm: Annotated[bool, typer.Option("--rm", help="Remove the container when it exits.")] = False,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Assign a name to the container.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("-e", "--env", metavar="KEY[=VAL]", help="Set environment variables."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("-l", "--label", metavar="KEY=VAL", help="Add or override a label."),
    ] = None,
    no_deps: Annotated[
        bool, typer.Option("--no-deps", help="Don't start linked services.")
    ] = False,
    no_tty: Annotated[
        bool | None,
        typer.Option("-T", "--no-tty", help="Disable pseudo-TTY allocation (default: auto)."),
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option("-i/--no-interactive", "--interactive", help="Keep STDIN open.", hidden=True),
    ] = True,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            "-p", "--publish", metavar="PORT", help="Publish a container port to the host."
        ),
    ] = None,
    service_ports: Annotated[
        bool,
        typer.Option("-P", "--service-ports", help="Publish the service's ports to the host."),
    ] = False,
    entrypoint: Annotated[
        str | None,
        typer.Option("--entrypoint", metavar="CMD", help="Override the image's entrypoint."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("-u", "--user", metavar="USER", help="Run as this user.")
    ] = None,
    workdir: Annotated[
        str | None, typer.Option("-w", "--workdir", metavar="DIR", help="Working directory.")
    ] = None,
    volume: Annotated[
        list[str] | None,
        typer.Option("-v", "--volume", metavar="SRC:DST[:MODE]", help="Bind mount a volume."),
    ] = None,
    use_aliases: Annotated[
        bool, typer.Option("--use-aliases", help="Use the service's network aliases.")
    ] = False,
    build: Annotated[
        bool, typer.Option("--build", help="Build the image before starting.")
    ] = False,
    pull: Annotated[
        str | None,
        typer.Option("--pull", metavar="POLICY", help="Pull the image: always, missing or never."),
    ] = None,
    remove_orphans: Annotated[
        bool, typer.Option("--remove-orphans", help="Remove containers of undeclared services.")
    ] = False,
    quiet_pull: Annotated[
        bool, typer.Option("--quiet-pull", help="Pull without printing progress.")
    ] = False,
    rm_deps: Annotated[
        bool,
        typer.Option("--rm-deps", help="With --rm: also remove the dependencies run started."),
    ] = False,
) -> None:
    """Run a one-off command on a service."""
    from composer import app_ops_run
    from composer.clock import RealClock

    session, options = _session(ctx)
    _no_dry_run(options, "run")
    if pull is not None and pull not in ("always", "missing", "never", "build"):
        raise PlanError(f"--pull: invalid value {pull!r}", hint="expected always, missing or never")
    tty = (not no_tty) if no_tty is not None else (_isatty(session.stdout) and _isatty(sys.stdin))
    opts = app_ops_run.RunOptions(
        service=service,
        command=_command_words(command),
        detach=detach,
        rm=rm,
        name=name,
        no_deps=no_deps,
        tty=tty and not detach,
        interactive=interactive and not detach,
        publish=tuple(publish or ()),
        service_ports=service_ports,
        entrypoint=entrypoint,
        user=user,
        workdir=workdir,
        volumes=tuple(volume or ()),
        labels=tuple(label or ()),
        env=tuple(env or ()),
        use_aliases=use_aliases,
        build=build,
        pull=cast("PullOption | None", pull),
        remove_orphans=remove_orphans,
        rm_deps=rm_deps,
    )
    if rm_deps and not rm:
        raise PlanError("--rm-deps needs --rm", hint="composer run --rm --rm-deps SERVICE ...")
    if rm and detach:
        _warn(session)("--rm with -d: the container is not removed when it exits")
    target = _target(session, options, require_project=True)
    renderer = _renderer(session, options, quiet_pull)
    streams = _streams(session, stdin=opts.interactive)
    terminal = ExitStack()

    def attaching() -> None:
        # The progress display ends before the one-off owns the terminal.
        renderer.close()
        terminal.enter_context(_raw_terminal(opts.tty))

    try:
        with terminal:
            result = app_ops_run.run(
                _backend(session, options),
                target,
                opts,
                reporter=renderer,
                clock=RealClock(),
                streams=streams,
                parallel=options.parallel,
                attaching=attaching,
            )
    finally:
        renderer.close()
    if result.exit_code is None:
        session.stdout.write(f"{result.container_id}\n")
        return
    _exit(result.exit_code)


def exec_command(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service.")],
    command: Annotated[list[str], typer.Argument(metavar="COMMAND", help="Command to run.")],
    detach: Annotated[
        bool, typer.Option("-d", "--detach", help="Run the command in the background.")
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option("-e", "--env", metavar="KEY[=VAL]", help="Set environment variables."),
    ] = None,
    no_tty: Annotated[
        bool | None,
        typer.Option("-T", "--no-tty", help="Disable pseudo-TTY allocation (default: auto)."),
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option("-i/--no-interactive", "--interactive", help="Keep STDIN open.", hidden=True),
    ] = True,
    user: Annotated[
        str | None, typer.Option("-u", "--user", metavar="USER", help="Run as this user.")
    ] = None,
    workdir: Annotated[
        str | None, typer.Option("-w", "--workdir", metavar="DIR", help="Working directory.")
    ] = None,
    index: Annotated[
        int, typer.Option("--index", metavar="N", help="Index of the container if scaled.")
    ] = 0,
    privileged: Annotated[
        bool, typer.Option("--privileged", help="Give extended privileges to the process.")
    ] = False,
) -> None:
    """Execute a command in a running container."""
    from composer import app_ops_run

    session, options = _session(ctx)
    _no_dry_run(options, "exec")
    tty = (not no_tty) if no_tty is not None else (_isatty(session.stdout) and _isatty(sys.stdin))
    opts = app_ops_run.ExecOptions(
        service=service,
        command=_command_words(command),
        detach=detach,
        env=tuple(env or ()),
        tty=tty and not detach,
        interactive=interactive and not detach,
        user=user,
        workdir=workdir,
        index=_index(index),
        privileged=privileged,
    )
    streams = _streams(session, stdin=opts.interactive)
    with _raw_terminal(opts.tty):
        code = app_ops_run.exec_(
            _backend(session, options),
            _target(session, options),
            opts,
            streams,
            session.invocation.environ,
        )
    _exit(code)


def cp_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SRC", help="SERVICE:SRC_PATH, a path, or -.")],
    dest: Annotated[str, typer.Argument(metavar="DEST", help="SERVICE:DEST_PATH, a path, or -.")],
    index: Annotated[
        int, typer.Option("--index", metavar="N", help="Index of the container if scaled.")
    ] = 0,
    all_: Annotated[
        bool, typer.Option("--all", help="Include containers created by the run command.")
    ] = False,
    archive: Annotated[
        bool, typer.Option("-a", "--archive", help="Archive mode (copy uid/gid information).")
    ] = False,
    follow_link: Annotated[
        bool, typer.Option("-L", "--follow-link", help="Always follow symbolic links in SRC_PATH.")
    ] = False,
) -> None:
    """Copy files/folders between a service container and the local filesystem."""
    from composer import app_ops_run

    del archive, follow_link  # accepted for compatibility; archives keep what tar keeps
    session, options = _session(ctx)
    _no_dry_run(options, "cp")
    streams = _streams(session, stdin=source == "-")
    app_ops_run.cp(
        _backend(session, options),
        _target(session, options),
        app_ops_run.CopyOptions(source, dest, _index(index), all_),
        session.invocation.working_dir,
        streams,
    )


# --- port, top, images, ls, wait, events -------------------------------------------------


def port_command(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service.")],
    private_port: Annotated[int, typer.Argument(metavar="PRIVATE_PORT", help="Container port.")],
    protocol: Annotated[
        str, typer.Option("--protocol", metavar="PROTO", help="tcp or udp.")
    ] = "tcp",
    index: Annotated[
        int, typer.Option("--index", metavar="N", help="Index of the container if scaled.")
    ] = 0,
) -> None:
    """Print the public port for a port binding."""
    from composer import app_ops

    session, options = _session(ctx)
    if not 0 < private_port < 65536:
        raise PlanError(f"invalid port {private_port}")
    host, port = app_ops.port(
        _backend(session, options),
        _target(session, options),
        service,
        private_port,
        protocol=protocol.lower(),
        index=_index(index),
    )
    session.stdout.write(f"{host}:{port}\n")


def top_command(ctx: typer.Context, services: Services = None) -> None:
    """Display the running processes."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    tables = app_ops.top(_backend(session, options), _target(session, options), services or ())
    session.stdout.write(render_ops.top_table(tables))


def images_command(
    ctx: typer.Context,
    services: Services = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Format the output: table or json.")
    ] = "table",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only display IDs.")] = False,
) -> None:
    """List images used by the created containers."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    output = _format(fmt, ("table", "json"))
    rows = app_ops.images(_backend(session, options), _target(session, options), services or ())
    if quiet:
        session.stdout.write(render_ops.image_ids(rows))
    elif output == "json":
        session.stdout.write(render_ops.images_json(rows))
    else:
        session.stdout.write(render_ops.images_table(rows, _now()))


def ls_command(
    ctx: typer.Context,
    all_: Annotated[
        bool, typer.Option("-a", "--all", help="Show all stopped Compose projects.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Format the output: table or json.")
    ] = "table",
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only display project names.")
    ] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", metavar="name=NAME", help="Filter by project name (a regex)."),
    ] = None,
) -> None:
    """List running compose projects."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    output = _format(fmt, ("table", "json"))
    names = [app_ops.parse_ls_filter(f) for f in filter_ or ()]
    rows = app_ops.list_projects(_backend(session, options), all=all_, name_filters=names)
    if quiet:
        session.stdout.write("".join(f"{r.name}\n" for r in rows))
    elif output == "json":
        session.stdout.write(render_ops.ls_json(rows))
    else:
        session.stdout.write(render_ops.ls_table(rows))


def wait_command(
    ctx: typer.Context,
    services: Annotated[list[str], typer.Argument(metavar="SERVICE", help="Services to wait for.")],
    down_project: Annotated[
        bool,
        typer.Option("--down-project", help="Drop the project when the first container stops."),
    ] = False,
    logs_dir: Annotated[
        str | None,
        typer.Option(
            "--logs-dir", metavar="DIR", help="Write each service's log to DIR/<service>.log."
        ),
    ] = None,
) -> None:
    """Block until containers of the given services stop; exit with the last exit code."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    if down_project:
        raise PlanError("--down-project is not supported yet", hint="run composer down afterwards")
    out = session.stdout

    def told(container: object, code: int) -> None:
        out.write(render_ops.wait_line(getattr(container, "id", ""), code))
        out.flush()

    backend = _backend(session, options)
    target = _target(session, options)
    code = app_ops.wait(backend, target, services, told)
    if logs_dir is not None:
        from composer.logs_dir import save_logs

        save_logs(backend, target.name, logs_dir)
    _exit(code)


def events_command(
    ctx: typer.Context,
    services: Services = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Output events as a stream of json objects.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Show events created since this time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="TIME", help="Stream events until this time.")
    ] = None,
) -> None:
    """Receive real time events from containers."""
    from composer import app_ops, render_ops

    session, options = _session(ctx)
    now = _now()
    stream = app_ops.events(
        _backend(session, options),
        _target(session, options),
        services or (),
        since=app_ops.parse_timestamp(since, now, "--since") if since else None,
        until=app_ops.parse_timestamp(until, now, "--until") if until else None,
    )
    render = render_ops.event_json if json_ else render_ops.event_text
    for event in stream:
        session.stdout.write(render(event))
        session.stdout.flush()


# --- pull, push, build ------------------------------------------------------------------


def pull_command(
    ctx: typer.Context,
    services: Services = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Pull without printing progress information.")
    ] = False,
    ignore_pull_failures: Annotated[
        bool, typer.Option("--ignore-pull-failures", help="Pull what it can, ignore failures.")
    ] = False,
    ignore_buildable: Annotated[
        bool, typer.Option("--ignore-buildable", help="Ignore images that can be built.")
    ] = False,
    include_deps: Annotated[
        bool, typer.Option("--include-deps", help="Also pull services declared as dependencies.")
    ] = False,
) -> None:
    """Pull service images."""
    from composer import app_ops_images
    from composer.clock import RealClock

    session, options = _session(ctx)
    _no_dry_run(options, "pull")
    target = _target(session, options, require_project=True)
    _with_renderer(
        session,
        options,
        quiet,
        lambda reporter: app_ops_images.pull(
            _backend(session, options),
            target,
            app_ops_images.PullOptions(
                tuple(services or ()), ignore_pull_failures, ignore_buildable, include_deps
            ),
            reporter,
            RealClock(),
            options.parallel,
        ),
    )


def push_command(
    ctx: typer.Context,
    services: Services = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Push without printing progress information.")
    ] = False,
    ignore_push_failures: Annotated[
        bool, typer.Option("--ignore-push-failures", help="Push what it can, ignore failures.")
    ] = False,
    include_deps: Annotated[
        bool, typer.Option("--include-deps", help="Also push images of dependencies.")
    ] = False,
) -> None:
    """Push service images."""
    from composer import app_ops_images
    from composer.clock import RealClock

    session, options = _session(ctx)
    _no_dry_run(options, "push")
    target = _target(session, options, require_project=True)
    _with_renderer(
        session,
        options,
        quiet,
        lambda reporter: app_ops_images.push(
            _backend(session, options),
            target,
            app_ops_images.PushOptions(tuple(services or ()), ignore_push_failures, include_deps),
            reporter,
            RealClock(),
            options.parallel,
        ),
    )


def build_command(
    ctx: typer.Context,
    services: Services = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not use cache when building the image.")
    ] = False,
    pull: Annotated[
        bool, typer.Option("--pull", help="Always attempt to pull a newer version of the image.")
    ] = False,
    build_arg: Annotated[
        list[str] | None,
        typer.Option("--build-arg", metavar="KEY[=VAL]", help="Set build-time variables."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Suppress the build output.")
    ] = False,
    with_dependencies: Annotated[
        bool, typer.Option("--with-dependencies", help="Also build dependencies (transitively).")
    ] = False,
) -> None:
    """Build or rebuild services."""
    from composer import app_ops_images
    from composer.clock import RealClock

    session, options = _session(ctx)
    _no_dry_run(options, "build")
    target = _target(session, options, require_project=True)
    args = app_ops_images.parse_build_args(build_arg or (), session.invocation.environ)
    _with_renderer(
        session,
        options,
        quiet,
        lambda reporter: app_ops_images.build(
            _backend(session, options),
            target,
            app_ops_images.BuildOptions(
                tuple(services or ()), no_cache, pull, args, with_dependencies
            ),
            reporter,
            RealClock(),
            options.parallel,
        ),
    )


def _with_renderer(
    session: Session, options: GlobalOptions, quiet: bool, job: Callable[[Renderer], object]
) -> None:
    renderer = _renderer(session, options, quiet)
    try:
        job(renderer)
    finally:
        renderer.close()


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "ps": (ps_command, "List containers."),
    "logs": (logs_command, "View output from containers."),
    "run": (run_command, "Run a one-off command on a service."),
    "exec": (exec_command, "Execute a command in a running container."),
    "cp": (cp_command, "Copy files/folders between a service container and the local filesystem."),
    "port": (port_command, "Print the public port for a port binding."),
    "top": (top_command, "Display the running processes."),
    "images": (images_command, "List images used by the created containers."),
    "pull": (pull_command, "Pull service images."),
    "push": (push_command, "Push service images."),
    "build": (build_command, "Build or rebuild services."),
    "events": (events_command, "Receive real time events from containers."),
    "wait": (wait_command, "Block until containers of the given services stop."),
    "ls": (ls_command, "List running compose projects."),
}
