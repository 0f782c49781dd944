"""CLI of ``composer image ls|inspect|rm|prune|import|load|save``, named like docker's.

Registered as a typer group through ``GROUPS`` in composer.cli_commands. The
global ``--backend`` picks the engine: the native store under
``COMPOSER_ROOT`` or the Docker Engine. ``import -`` and ``load`` without
``-i`` read the process's binary standard input, and ``save`` without ``-o``
writes to its binary standard output when that is not a terminal; that is
the only process state touched here.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from composer.errors import BackendError, PlanError

if TYPE_CHECKING:
    from composer.app_image import ImageAdmin, Outcome
    from composer.cli_commands import Session

HELP = "Manage images (of the native store or the Docker Engine, as --backend picks)."

ImageRefs = Annotated[
    list[str], typer.Argument(metavar="IMAGE", help="Image names or ids.", show_default=False)
]


def _admin(ctx: typer.Context) -> tuple[Session, ImageAdmin]:
    from composer.app_image import open_image_admin
    from composer.cli_commands import _options

    session, options = _options(ctx)
    return session, open_image_admin(options.backend, session.invocation.environ)


def _path(session: Session, name: str) -> Path:
    return session.invocation.working_dir / name


def _finish(session: Session, outcome: Outcome) -> None:
    session.stdout.write(outcome.text)
    if len(outcome.errors) == 1:
        raise outcome.errors[0]
    if outcome.errors:
        raise BackendError("\n".join(str(e) for e in outcome.errors))


@contextlib.contextmanager
def _stdin_file() -> Iterator[Path]:
    """Standard input spooled to a file (archives are read with random access)."""
    with tempfile.TemporaryDirectory(prefix="composer-stdin-") as tmp:
        path = Path(tmp) / "stdin"
        with open(path, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        yield path


def ls_command(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show image IDs.")] = False,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="Format: table or json.")
    ] = "table",
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "-f",
            "--filter",
            metavar="FILTER",
            help="dangling=true|false, reference=PATTERN, label=KEY[=VALUE].",
        ),
    ] = None,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Show full image IDs.")] = False,
) -> None:
    """List images."""
    from composer import app_image

    if fmt not in ("table", "json"):
        raise PlanError(f"--format: invalid value {fmt!r}", hint="expected table or json")
    session, admin = _admin(ctx)
    summaries = app_image.filter_summaries(admin.summaries(), tuple(filters or ()))
    rows = app_image.image_rows(summaries)
    text = app_image.render_ls(rows, quiet=quiet, fmt=fmt, now=time.time(), no_trunc=no_trunc)
    session.stdout.write(text)


def inspect_command(
    ctx: typer.Context,
    refs: ImageRefs,
    fmt: Annotated[
        str,
        typer.Option(
            "-f", "--format", metavar="FORMAT", help="json, or a template such as '{{.Id}}'."
        ),
    ] = "json",
) -> None:
    """Display detailed information on one or more images."""
    from composer import app_image

    session, admin = _admin(ctx)
    _finish(session, app_image.inspect(admin, refs, fmt))


def rm_command(
    ctx: typer.Context,
    refs: ImageRefs,
    force: Annotated[bool, typer.Option("-f", "--force", help="Force removal.")] = False,
) -> None:
    """Remove one or more images."""
    from composer import app_image

    session, admin = _admin(ctx)
    _finish(session, app_image.remove(admin, refs, force))


def prune_command(
    ctx: typer.Context,
    all_images: Annotated[
        bool, typer.Option("-a", "--all", help="Remove all unused images, not just dangling ones.")
    ] = False,
    force: Annotated[bool, typer.Option("-f", "--force", help="Do not prompt.")] = False,
) -> None:
    """Remove unused images."""
    from composer import app_image

    session, admin = _admin(ctx)
    if not force:
        session.stdout.write(app_image.prune_warning(all_images) + "\n")
        session.stdout.write("Are you sure you want to continue? [y/N] ")
        session.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            session.stdout.write("\n")
            return
    session.stdout.write(app_image.prune(admin, all_images))


def import_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="Rootfs tarball ('-' reads stdin).")],
    ref: Annotated[
        str | None, typer.Argument(metavar="[REPOSITORY[:TAG]]", show_default=False)
    ] = None,
    change: Annotated[
        list[str] | None,
        typer.Option(
            "-c", "--change", metavar="INSTRUCTION", help="Apply a Dockerfile instruction."
        ),
    ] = None,
    message: Annotated[
        str, typer.Option("-m", "--message", metavar="TEXT", help="Commit message.")
    ] = "",
) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from composer import app_image

    session, admin = _admin(ctx)
    with contextlib.ExitStack() as stack:
        path = stack.enter_context(_stdin_file()) if file == "-" else _path(session, file)
        session.stdout.write(app_image.import_image(admin, path, ref, tuple(change or ()), message))


def load_command(
    ctx: typer.Context,
    input_file: Annotated[
        str | None,
        typer.Option("-i", "--input", metavar="FILE", help="Read from a tar archive file."),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress the load output.")] = False,
) -> None:
    """Load an image from a tar archive or an OCI layout directory."""
    from composer import app_image

    session, admin = _admin(ctx)
    with contextlib.ExitStack() as stack:
        if input_file is None:
            if sys.stdin.isatty():
                raise PlanError(
                    "requested load from stdin, but stdin is empty",
                    hint="give -i FILE or pipe an archive in",
                )
            path = stack.enter_context(_stdin_file())
        else:
            path = _path(session, input_file)
        text = app_image.load(admin, path)
    if not quiet:
        session.stdout.write(text)


def save_command(
    ctx: typer.Context,
    refs: ImageRefs,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write to a file, not stdout."),
    ] = None,
) -> None:
    """Save one or more images to a tar archive (docker load reads it)."""
    from composer import app_image

    session, admin = _admin(ctx)
    out: BinaryIO | None = None
    if output is None:
        stream = session.stdout
        if not stream.isatty():
            stream.flush()
            out = getattr(stream, "buffer", None)
    app_image.save_to(admin, refs, _path(session, output) if output else None, out)


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "ls": (ls_command, "List images."),
    "inspect": (inspect_command, "Display detailed information on one or more images."),
    "rm": (rm_command, "Remove one or more images."),
    "prune": (prune_command, "Remove unused images."),
    "import": (import_command, "Import a rootfs tarball as an image."),
    "load": (load_command, "Load an image from a tar archive or an OCI layout."),
    "save": (save_command, "Save one or more images to a tar archive."),
}


def image_app(context_settings: dict[str, object]) -> typer.Typer:
    """The ``image`` group, built only when the verb is ``image``."""
    group = typer.Typer(
        help=HELP,
        rich_markup_mode=None,
        add_completion=False,
        no_args_is_help=True,
        context_settings=context_settings,
    )
    for name, (function, short_help) in COMMANDS.items():
        group.command(name, help=function.__doc__, short_help=short_help)(function)
    return group


GROUPS = {"image": (image_app, "Manage images.")}
