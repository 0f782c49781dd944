"""The typer application: every verb and flag, and how results become text.

``composer.cli`` imports this module only when a command line has to be
parsed, and builds the application with only the verb being run fully
declared: typer inspects every parameter of every command it registers, and
that cost would otherwise grow with each verb added. The other verbs are
registered as cheap stand-ins that still show in ``--help``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from composer.cli_ci import COMMANDS as CI_COMMANDS
from composer.cli_image import GROUPS
from composer.cli_lifecycle import COMMANDS as LIFECYCLE_COMMANDS
from composer.cli_ops import COMMANDS as OPS_COMMANDS
from composer.cli_watch import COMMANDS as WATCH_COMMANDS
from composer.errors import PlanError
from composer.options import (
    ConfigOptions,
    GlobalFlags,
    GlobalOptions,
    Invocation,
    build_global_options,
    select_config_mode,
)

if TYPE_CHECKING:
    from composer.app import ConfigResult, VariablesResult

HELP_WIDTH = 80
HELP = """composer runs multi-container applications described by Compose files.

It reads compose.yaml (the Compose Specification) like Docker Compose does, and
runs it on its own daemonless engine or on the Docker Engine."""


@dataclass
class Session:
    """Per-run state shared by the callback and the command (the click ``obj``)."""

    invocation: Invocation
    stdout: TextIO
    stderr: TextIO
    options: GlobalOptions | None = None
    colour: bool = field(default=False)


def _session(ctx: typer.Context) -> Session:
    session = ctx.find_root().obj
    if not isinstance(session, Session):  # pragma: no cover - run() always sets it
        raise PlanError("composer was started without a session")
    return session


def _options(ctx: typer.Context) -> tuple[Session, GlobalOptions]:
    session = _session(ctx)
    return session, session.options or GlobalOptions()


def _print_version(ctx: typer.Context, value: bool) -> None:
    if value:
        from composer.help_text import version_text

        _session(ctx).stdout.write(version_text())
        raise typer.Exit(0)


def main_callback(
    ctx: typer.Context,
    file: Annotated[
        list[str] | None,
        typer.Option(
            "-f", "--file", metavar="FILE", help="Compose configuration files ('-' reads stdin)."
        ),
    ] = None,
    project_name: Annotated[
        str | None, typer.Option("-p", "--project-name", metavar="NAME", help="Project name.")
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", metavar="PROFILE", help="Specify a profile to enable."),
    ] = None,
    env_file: Annotated[
        list[str] | None,
        typer.Option("--env-file", metavar="PATH", help="Specify an alternate environment file."),
    ] = None,
    project_directory: Annotated[
        str | None,
        typer.Option(
            "--project-directory",
            metavar="DIR",
            help="Specify an alternate working directory (default: the first file's directory).",
        ),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            metavar="N",
            help="Control max parallelism, -1 for unlimited (COMPOSE_PARALLEL_LIMIT).",
        ),
    ] = None,
    progress: Annotated[
        str | None,
        typer.Option(
            "--progress",
            metavar="MODE",
            help="Progress output: auto, tty, plain, json, quiet (COMPOSE_PROGRESS).",
        ),
    ] = None,
    ansi: Annotated[
        str | None,
        typer.Option(
            "--ansi", metavar="WHEN", help="Control colours: never, always, auto (COMPOSE_ANSI)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be done, change nothing.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also COMPOSER_DEBUG=1).")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend", metavar="NAME", help="Engine: native or docker (COMPOSER_BACKEND)."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Parse the global flags once, for every verb."""
    session = _session(ctx)
    flags = GlobalFlags(
        files=tuple(file or ()),
        project_name=project_name,
        profiles=tuple(profile or ()),
        env_files=tuple(env_file or ()),
        project_directory=project_directory,
        parallel=parallel,
        progress=progress,
        ansi=ansi,
        dry_run=dry_run,
        debug=debug,
        backend=backend,
    )
    from composer.render_output import colour_enabled

    session.options = build_global_options(flags, session.invocation.environ)
    session.colour = colour_enabled(
        session.options.ansi, session.stderr, session.invocation.environ
    )


def version_command(
    ctx: typer.Context,
    short: Annotated[bool, typer.Option("--short", help="Show only the version number.")] = False,
    fmt: Annotated[
        str, typer.Option("-f", "--format", metavar="FORMAT", help="Format: pretty or json.")
    ] = "pretty",
) -> None:
    """Show the composer version."""
    session = _session(ctx)
    from composer.help_text import version_text

    if fmt not in ("pretty", "json"):
        raise PlanError(f"--format: invalid value {fmt!r}", hint="expected pretty or json")
    session.stdout.write(version_text(fmt, short))


def config_command(
    ctx: typer.Context,
    services: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SERVICE",
            help="Only these services (and what they depend on).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT", help="Format the output: yaml or json."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only validate the configuration, print nothing.")
    ] = False,
    no_interpolate: Annotated[
        bool, typer.Option("--no-interpolate", help="Don't interpolate environment variables.")
    ] = False,
    no_normalize: Annotated[
        bool, typer.Option("--no-normalize", help="Don't normalize the compose model.")
    ] = False,
    no_path_resolution: Annotated[
        bool, typer.Option("--no-path-resolution", help="Don't resolve file paths.")
    ] = False,
    list_services: Annotated[
        bool, typer.Option("--services", help="Print the service names, one per line.")
    ] = False,
    list_volumes: Annotated[
        bool, typer.Option("--volumes", help="Print the volume names, one per line.")
    ] = False,
    list_networks: Annotated[
        bool, typer.Option("--networks", help="Print the network names, one per line.")
    ] = False,
    list_profiles: Annotated[
        bool, typer.Option("--profiles", help="Print the profile names, one per line.")
    ] = False,
    list_images: Annotated[
        bool, typer.Option("--images", help="Print the image names, one per line.")
    ] = False,
    hash_spec: Annotated[
        str,
        typer.Option(
            "--hash",
            metavar="SERVICES",
            help="Print the config hash of these services ('a,b' or '*'), one per line.",
        ),
    ] = "",
    variables: Annotated[
        bool, typer.Option("--variables", help="Print the model's variables and default values.")
    ] = False,
    environment: Annotated[
        bool, typer.Option("--environment", help="Print the environment used for interpolation.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="FILE", help="Save to file (default: stdout)."),
    ] = None,
) -> None:
    """Parse, resolve and render the compose file in canonical format."""
    from composer import app
    from composer.render_output import make_warn

    session, options = _options(ctx)
    if fmt is not None and fmt not in ("yaml", "json"):
        raise PlanError(f"--format: invalid value {fmt!r}", hint="expected yaml or json")
    config_options = ConfigOptions(
        mode=select_config_mode(
            services=list_services,
            volumes=list_volumes,
            networks=list_networks,
            hash=hash_spec,
            profiles=list_profiles,
            images=list_images,
            variables=variables,
            environment=environment,
        ),
        format=fmt or "",
        services=tuple(services or ()),
        hash=hash_spec,
        quiet=quiet,
        interpolate=not no_interpolate,
        normalize=not no_normalize,
        resolve_paths=not no_path_resolution,
        output=output,
    )
    from composer.gcpause import paused_gc

    warn = make_warn(session.stderr, colour=session.colour)
    with paused_gc():  # loading and rendering only build objects that live until the end
        result = app.config(options, session.invocation, config_options, warn)
        if quiet:
            return
        text = render_config(result, config_options.format)
    if output:
        target = session.invocation.working_dir / output
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PlanError(f"cannot write {output}: {exc.strerror or exc}") from exc
    else:
        session.stdout.write(text)


def render_config(result: ConfigResult, fmt: str) -> str:
    """Turn a ``config`` result into the text Docker Compose would print."""
    from composer.app import LinesResult, ModelResult
    from composer.render_output import dump_json, escape_dollars

    if isinstance(result, ModelResult):
        if fmt == "json":
            text = dump_json(result.model)
        else:
            from composer.yaml_out import dump_yaml

            text = dump_yaml(result.model)
        return escape_dollars(text) if result.interpolated else text
    if isinstance(result, LinesResult):
        return "".join(f"{line}\n" for line in result.lines)
    return render_variables(result, fmt)


def render_variables(result: VariablesResult, fmt: str) -> str:
    """A NAME/REQUIRED/DEFAULT VALUE/ALTERNATE VALUE table, or JSON/YAML keyed by name."""
    from composer.render_output import dump_json, format_table

    if fmt == "json":
        return dump_json(
            {
                v.name: {
                    "Name": v.name,
                    "DefaultValue": v.default,
                    "PresenceValue": v.alternate,
                    "Required": v.required,
                }
                for v in result.variables
            }
        )
    if fmt == "yaml":
        from composer.yaml_out import dump_yaml

        data = {
            v.name: {
                "name": v.name,
                "defaultvalue": v.default,
                "presencevalue": v.alternate,
                "required": v.required,
            }
            for v in result.variables
        }
        return dump_yaml(data) if data else "{}\n"
    rows = [
        (v.name, "true" if v.required else "false", v.default, v.alternate)
        for v in result.variables
    ]
    return format_table(("NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"), rows)


# verb -> (command function, one-line help); the order is the order of --help.
# Verbs live in modules by family (composer/cli_lifecycle.py: up, down, start ...;
# composer/cli_ops.py: ps, logs, exec ...); each exports a COMMANDS table.
COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "config": (config_command, "Parse, resolve and render the compose file in canonical format."),
    **LIFECYCLE_COMMANDS,
    **OPS_COMMANDS,
    **WATCH_COMMANDS,
    **CI_COMMANDS,
    "version": (version_command, "Show the composer version."),
}


def _stand_in() -> None:  # pragma: no cover - only registered for verbs not being run
    raise PlanError("internal error: a verb was dispatched to its --help stand-in")


# Verbs that take a command after the service: flags after SERVICE belong to
# that command (``composer exec web sh -c 'echo hi'``), as in docker compose.
_VERB_SETTINGS: dict[str, dict[str, bool]] = {
    "run": {"allow_interspersed_args": False},
    "exec": {"allow_interspersed_args": False},
}


def build_app(verb: str | None = None) -> typer.Typer:
    """The typer application, with ``verb`` (when known) fully declared.

    Built per run so that no state lives at module level.
    """
    application = typer.Typer(
        help=HELP,
        rich_markup_mode=None,
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # A fixed width keeps help text identical everywhere, so that the
        # top-level help can be served without typer (see composer.help_text).
        context_settings={
            "help_option_names": ["-h", "--help"],
            "max_content_width": HELP_WIDTH,
            "terminal_width": HELP_WIDTH,
        },
    )
    application.callback()(main_callback)
    for name, (function, short_help) in COMMANDS.items():
        if name == verb:
            application.command(
                name,
                help=function.__doc__,
                short_help=short_help,
                context_settings=_VERB_SETTINGS.get(name),
            )(function)
        else:
            application.command(
                name,
                help=short_help,
                short_help=short_help,
                add_help_option=False,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )(_stand_in)
    # Command groups (``composer image ls``): built only when their verb runs.
    for name, (factory, short_help) in GROUPS.items():
        if name == verb:
            settings: dict[str, object] = {
                "help_option_names": ["-h", "--help"],
                "max_content_width": HELP_WIDTH,
                "terminal_width": HELP_WIDTH,
            }
            application.add_typer(factory(settings), name=name, short_help=short_help)
        else:
            application.command(
                name,
                help=short_help,
                short_help=short_help,
                add_help_option=False,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )(_stand_in)
    return application


def typer_help(args: list[str]) -> str:
    """The help typer renders for ``args`` (used to check ``composer.help_text``)."""
    import contextlib
    import io

    from typer.main import get_command

    from composer.cli import find_verb

    out = io.StringIO()
    command = get_command(build_app(find_verb(args)))
    with contextlib.redirect_stdout(out):
        command.main(args=[*args, "--help"], prog_name="composer", standalone_mode=False)
    return out.getvalue()
