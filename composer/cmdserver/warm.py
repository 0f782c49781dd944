"""What a server does ahead of time, so that its children start warm.

Importing every module of the package (and with them typer, pydantic, PyYAML,
the docker SDK, httpx, dnslib), building each verb's command-line parser,
and building pydantic's validators by validating one small project. Nothing
here reads the environment, the working directory or any project: a child
must find every cache empty that a command fills.

``code_stamp`` is how a server notices that the code under it changed (an
upgrade, or an editable checkout being edited): the size and mtime of every
module file of the package and of every directory on ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from composer.cmdserver.identity import package_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

# Entry points that act when imported, and the pytest plugin (pytest itself).
_SKIPPED_SUFFIXES = ("__main__", "pytest_plugin")
# Libraries composer's modules import inside the functions that need them
# (so that a process of its own loads only what its verb uses); a server
# loads them all once. networkx is only the planner's test oracle.
_LAZY_LIBRARIES = (
    "docker",
    "docker.auth",
    "docker.errors",
    "docker.tls",
    "docker.utils.build",
    "docker.utils.socket",
    "requests.exceptions",
    "urllib3.exceptions",
    "httpx",
    "dnslib",
    "dnslib.server",
    "pyseccomp",
    "zstandard",
    "watchfiles._rust_notify",
    "rich.console",
    "rich.live",
    "rich.text",
)


def _module_files(root: str) -> Iterator[str]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "__pycache__")))
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def code_stamp() -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of the package's modules and of the import path's directories."""
    stamp = []
    for path in [*_module_files(package_dir()), *(p for p in sys.path if p)]:
        try:
            info = os.stat(path)
        except OSError:
            continue
        stamp.append((path, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


def _module_names() -> Iterator[str]:
    root = package_dir()
    parent = os.path.dirname(root)
    for path in _module_files(root):
        relative = os.path.relpath(path, parent)[: -len(".py")]
        parts = relative.split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not name.endswith(_SKIPPED_SUFFIXES):
            yield name


def import_everything() -> None:
    """Import every module of the package and the libraries it loads lazily.

    One that fails to import is left to the child, which reports it as a
    process of its own would.
    """
    for name in [*_module_names(), *_LAZY_LIBRARIES]:
        try:
            importlib.import_module(name)
        except Exception:
            continue


def build_commands() -> dict[str | None, Any]:
    """Each verb's click command, as ``composer.cli.run`` would build it."""
    from typer.main import get_command

    from composer.cli_commands import COMMANDS, build_app
    from composer.cli_image import GROUPS

    commands: dict[str | None, Any] = {}
    for verb in [None, *COMMANDS, *GROUPS]:
        try:
            commands[verb] = get_command(build_app(verb))
        except Exception:
            continue
    return commands


def build_validators() -> None:
    """Validate one small project so that pydantic builds its schema now."""
    from composer.schema.model import Project

    try:
        Project.model_validate(
            {"name": "warm", "working_dir": "/", "services": {"app": {"image": "warm"}}}
        )
    except Exception:
        return


def warm() -> dict[str | None, Any]:
    import_everything()
    build_validators()
    return build_commands()
