"""The command line entry point: read the process once, run, map errors to exit codes.

This is the only module that touches the process: it reads ``os.environ``, the
working directory and standard input, and it alone calls ``sys.exit``.
Everything it learns goes into an ``Invocation``; the typer application in
``composer.cli_commands`` parses flags into frozen options and calls the use
cases in ``composer.app``.

Start-up time matters (``composer --help`` runs in every shell completion and
CI log), so this module imports nothing heavy at the top: ``--version`` is
answered without loading typer at all, and the loader, pydantic and yaml are
imported only by the commands that need them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from composer.cli_commands import Session
    from composer.options import Invocation

# Global flags that take a value: the word after them is not the verb.
_VALUED_FLAGS = frozenset(
    {
        "-f",
        "--file",
        "-p",
        "--project-name",
        "--profile",
        "--env-file",
        "--project-directory",
        "--parallel",
        "--progress",
        "--ansi",
        "--backend",
    }
)


def find_verb(args: Sequence[str]) -> str | None:
    """The verb of a command line (``config`` in ``-f x.yaml config -q``), if any."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--":
            return None
        elif arg.startswith("-"):
            skip = arg in _VALUED_FLAGS
        else:
            return arg
    return None


def _debug_requested(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    from composer.options import env_flag

    verb = find_verb(args)
    before_verb = args[: args.index(verb)] if verb is not None else args
    return "--debug" in before_verb or env_flag(environ, "COMPOSER_DEBUG")


def run(
    args: Sequence[str],
    invocation: Invocation,
    stdout: TextIO,
    stderr: TextIO,
    commands: Mapping[str | None, Any] | None = None,
) -> int:
    """Run one command line and return its exit code; errors are rendered, not raised.

    ``commands`` holds click commands already built per verb (a warm
    command server's); any other verb's is built here.
    """
    import contextlib

    import typer
    from typer.main import get_command

    from composer.cli_commands import Session, build_app
    from composer.errors import ComposerError

    if not args:  # like ``docker compose``: help on stdout, success
        args = ["--help"]
    session = Session(invocation=invocation, stdout=stdout, stderr=stderr)
    verb = find_verb(args)
    command = commands.get(verb) if commands is not None else None
    if command is None:
        command = get_command(build_app(verb))
    try:
        # The parser prints help and usage errors to sys.stdout/sys.stderr itself.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            result = command.main(
                args=list(args), prog_name="composer", standalone_mode=False, obj=session
            )
    except ComposerError as error:
        return _report(error, session, args)
    except (typer.Abort, KeyboardInterrupt):
        stderr.write("Aborted.\n")
        return 130
    except BrokenPipeError:
        raise
    except Exception as error:
        show = getattr(error, "show", None)
        code = getattr(error, "exit_code", None)
        if callable(show) and isinstance(code, int):  # a usage error from the parser
            show(file=stderr)
            return code
        return _report(error, session, args)
    return result if isinstance(result, int) else 0


def _report(error: BaseException, session: Session, args: Sequence[str]) -> int:
    from composer.errors import ComposerError
    from composer.render_output import render_error, render_traceback, render_unexpected

    options = session.options
    debug = options.debug if options else _debug_requested(args, session.invocation.environ)
    if debug:
        session.stderr.write(render_traceback(error))
    if isinstance(error, ComposerError):
        session.stderr.write(render_error(error, colour=session.colour))
        return error.exit_code
    session.stderr.write(render_unexpected(error, colour=session.colour))
    return 1


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    # The two most frequent questions are answered before typer is even imported.
    if args in (["--version"], ["version"]):
        from composer.help_text import version_text

        sys.stdout.write(version_text())
        sys.exit(0)
    if args in ([], ["--help"], ["-h"]):
        from composer.help_text import TOP_LEVEL_HELP

        sys.stdout.write(TOP_LEVEL_HELP)
        sys.exit(0)
    verb = find_verb(args)
    from composer.cmdserver import client

    code = client.call(args, verb, os.environ)
    if code is None:
        code = run_process(args)
        client.start(verb, os.environ)
    _exit_now(code)


def run_process(args: Sequence[str], commands: Mapping[str | None, Any] | None = None) -> int:
    """Run ``args`` with this process's environment, directory and streams.

    Used by ``main`` and by a command server's child once it has become the
    caller (``composer.cmdserver.request``).
    """
    from pathlib import Path

    from composer.options import Invocation

    invocation = Invocation(
        working_dir=Path.cwd(), environ=dict(os.environ), read_stdin=sys.stdin.read
    )
    try:
        code = run(args, invocation, sys.stdout, sys.stderr, commands)
        sys.stdout.flush()
    except OSError as error:
        # Output that cannot be written: nothing more is flushed there. A reader
        # that went away (``composer config | head``) is not worth a word; a full
        # disk is.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        if not isinstance(error, BrokenPipeError):
            from composer.render_output import render_unexpected

            sys.stderr.write(render_unexpected(error))
        code = 1
    return code


def _exit_now(code: int) -> NoReturn:
    """Flush and leave without the interpreter's teardown.

    Tearing down the modules and objects a verb loaded (the docker SDK, the
    model classes, idle pool threads) costs 0.2 s or more on every command;
    nothing of composer's runs at exit, so skipping it loses nothing.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
