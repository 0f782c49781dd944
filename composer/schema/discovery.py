"""Which Compose files make up the project, where it lives, and what it is called.

These are the first questions every verb asks, answered the way ``docker
compose`` answers them so that a folder behaves the same under both tools:

* files come from ``-f`` (repeatable, ``-`` for stdin), else ``COMPOSE_FILE``
  (split by ``COMPOSE_PATH_SEPARATOR``), else a search for ``compose.yaml`` and
  its siblings from the working directory upwards, with the override file
  beside the winner merged automatically;
* the project directory is ``--project-directory``, else the directory of the
  first file that is not stdin, else the working directory;
* the project name is ``-p`` > ``COMPOSE_PROJECT_NAME`` > top-level ``name:``
  > the basename of the project directory, normalised.

The environment and the working directory are parameters: nothing here reads
``os.environ`` or the process's current directory. Warnings (several candidate
files in one directory) go through a callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ConfigError

STDIN = "-"

DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
"""Candidate names, in Docker Compose's order of preference."""

DEFAULT_OVERRIDE_FILE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
"""Override names merged automatically after a discovered file, in preference order."""

_NAME_CHARS = re.compile(r"[a-z0-9_-]")
_TRUE_WORDS = frozenset({"1", "t", "true", "yes", "on"})

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ComposeFiles:
    """The outcome of discovery.

    ``files`` are absolute paths, or ``"-"`` for standard input, in merge order.
    ``project_dir`` is absolute; relative paths in every file resolve against
    it, and the default ``.env`` is looked for there.
    """

    files: tuple[str, ...]
    project_dir: Path

    @property
    def env_file_dir(self) -> Path:
        """Where the default ``.env`` lives: always the project directory."""
        return self.project_dir


def find_compose_files(
    working_dir: Path,
    environ: Mapping[str, str],
    files: Sequence[str],
    project_directory: str | None,
    *,
    warn: Warn = _ignore,
) -> ComposeFiles:
    """Decide the files and project directory for one invocation.

    ``files`` are the ``-f`` values as typed (relative to ``working_dir``);
    ``project_directory`` is ``--project-directory`` as typed.
    """
    working_dir = absolute(working_dir, Path("/"))
    explicit_dir = absolute(Path(project_directory), working_dir) if project_directory else None
    chosen = [f for f in files if f != ""]
    if chosen:
        resolved = tuple(_existing(f, working_dir, "-f") for f in chosen)
    elif environ.get("COMPOSE_FILE"):
        separator = environ.get("COMPOSE_PATH_SEPARATOR") or ":"
        parts = [p for p in environ["COMPOSE_FILE"].split(separator) if p]
        resolved = tuple(_existing(p, working_dir, "COMPOSE_FILE") for p in parts)
    else:
        resolved = _search_upwards(explicit_dir or working_dir, warn)
    if not resolved:
        raise _not_found(explicit_dir or working_dir)
    if explicit_dir is not None:
        project_dir = explicit_dir
    else:
        first = next((f for f in resolved if f != STDIN), None)
        project_dir = Path(first).parent if first is not None else working_dir
    return ComposeFiles(files=resolved, project_dir=project_dir)


def expand_user(path: str, environ: Mapping[str, str]) -> str:
    """Expand a leading ``~`` from ``HOME`` in ``environ`` (left alone when HOME is unset)."""
    if not path.startswith("~"):
        return path
    home = environ.get("HOME")
    if not home:
        return path
    rest = path[1:].lstrip("/")
    return str(Path(home) / rest) if rest else home


def absolute(path: Path, base: Path) -> Path:
    """``path`` made absolute against ``base`` and lexically cleaned (no symlink walk)."""
    joined = path if path.is_absolute() else base / path
    parts: list[str] = []
    for part in joined.parts[1:]:
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return Path(joined.anchor, *parts)


def _existing(name: str, working_dir: Path, source: str) -> str:
    if name == STDIN:
        return STDIN
    path = absolute(Path(name), working_dir)
    if not path.exists():
        raise ConfigError(
            f"open {path}: no such file or directory",
            hint=f"check the path given by {source}; relative paths start at {working_dir}",
        )
    if path.is_dir():
        raise ConfigError(
            f"{path} is a directory, not a Compose file",
            hint=f"name the file itself, for example {path / 'compose.yaml'}",
        )
    return str(path)


def _search_upwards(start: Path, warn: Warn) -> tuple[str, ...]:
    directory = start
    while True:
        candidates = _present(directory, DEFAULT_FILE_NAMES)
        if candidates:
            winner = candidates[0]
            if len(candidates) > 1:
                warn(f"Found multiple config files with supported names: {', '.join(candidates)}")
                warn(f"Using {winner}")
            found = [winner]
            overrides = _present(directory, DEFAULT_OVERRIDE_FILE_NAMES)
            if overrides:
                if len(overrides) > 1:
                    warn(
                        "Found multiple override files with supported names: "
                        + ", ".join(overrides)
                    )
                    warn(f"Using {overrides[0]}")
                found.append(overrides[0])
            return tuple(found)
        if directory.parent == directory:
            return ()
        directory = directory.parent


def _present(directory: Path, names: Sequence[str]) -> list[str]:
    return [str(directory / n) for n in names if (directory / n).is_file()]


def _not_found(start: Path) -> ConfigError:
    return ConfigError(
        "no configuration file provided: not found",
        hint=(
            f"no compose.yaml (or compose.yml, docker-compose.yml, docker-compose.yaml) in {start} "
            "or any parent directory; create one, or name a file with -f or COMPOSE_FILE"
        ),
    )


# --- project name -----------------------------------------------------------


def normalize_project_name(name: str) -> str:
    """Docker Compose's rule: lower-case, keep ``[a-z0-9_-]``, strip leading ``_``/``-``."""
    return "".join(_NAME_CHARS.findall(name.lower())).lstrip("_-")


def _invalid_name(name: str, source: str) -> ConfigError:
    suggestion = normalize_project_name(name)
    hint = (
        f'use "{suggestion}" instead'
        if suggestion
        else "use lowercase letters, digits, '-' and '_', starting with a letter or digit"
    )
    return ConfigError(
        f"invalid project name {name!r} (from {source}): must consist only of lowercase "
        "alphanumeric characters, hyphens, and underscores as well as start with a letter "
        "or number",
        hint=hint,
    )


def project_name(
    explicit: str | None,
    environ: Mapping[str, str],
    top_level_name: str | None,
    project_dir: Path,
) -> str:
    """The project name by Docker Compose's precedence.

    ``-p`` and ``COMPOSE_PROJECT_NAME`` must already be normal (an error with
    the normalised suggestion otherwise). A top-level ``name:`` is normalised
    silently, as Docker Compose does, and so is the directory's basename; an
    empty ``name:`` falls through to the directory.
    """
    if explicit:
        if normalize_project_name(explicit) != explicit:
            raise _invalid_name(explicit, "-p/--project-name")
        return explicit
    from_env = environ.get("COMPOSE_PROJECT_NAME", "")
    if from_env:
        if normalize_project_name(from_env) != from_env:
            raise _invalid_name(from_env, "COMPOSE_PROJECT_NAME")
        return from_env
    if top_level_name:
        normal = normalize_project_name(top_level_name)
        if normal:
            return normal
    from_dir = normalize_project_name(project_dir.name)
    if not from_dir:
        raise ConfigError(
            "project name must not be empty",
            hint=(
                f"the directory name {project_dir.name!r} has no usable characters; "
                "set a name with -p, COMPOSE_PROJECT_NAME or a top-level name:"
            ),
        )
    return from_dir


# --- env files --------------------------------------------------------------


def env_files_for(
    project_dir: Path,
    environ: Mapping[str, str],
    env_files: Sequence[str],
    *,
    working_dir: Path | None = None,
) -> list[Path]:
    """The files that feed interpolation, in precedence order (later wins).

    ``--env-file`` values (relative to ``working_dir``, which defaults to the
    project directory) must exist; else ``COMPOSE_ENV_FILES`` (a comma list,
    same rule); else ``<project_dir>/.env`` when it exists, unless
    ``COMPOSE_DISABLE_ENV_FILE`` is true.
    """
    base = working_dir if working_dir is not None else project_dir
    given = [f for f in env_files if f]
    source = "--env-file"
    if not given:
        given = [f for f in environ.get("COMPOSE_ENV_FILES", "").split(",") if f.strip()]
        source = "COMPOSE_ENV_FILES"
    if given:
        out: list[Path] = []
        for name in given:
            path = absolute(Path(name.strip()), base)
            if not path.is_file():
                raise ConfigError(
                    f"couldn't find env file: {path}",
                    hint=f"check the path given by {source}; relative paths start at {base}",
                )
            out.append(path)
        return out
    if environ.get("COMPOSE_DISABLE_ENV_FILE", "").strip().lower() in _TRUE_WORDS:
        return []
    default = project_dir / ".env"
    return [default] if default.is_file() else []
