"""Frozen option objects built once by the CLI and passed down.

Flags and the ``COMPOSE_*`` / ``COMPOSER_*`` environment variables are merged
here, by pure functions that take the environment as a mapping, so that the
precedence rules (a flag beats its variable, the variable beats the default)
can be tested without touching ``os.environ``. Nothing here imports the loader:
the CLI must start fast, and ``composer --help`` never needs a model.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.errors import PlanError

PROGRESS_MODES = ("auto", "tty", "plain", "json", "quiet")
ANSI_MODES = ("never", "always", "auto")
BACKENDS = ("native", "docker")
DEFAULT_BACKEND = "native"
"""composer's own engine; ``--backend docker`` (or ``COMPOSER_BACKEND=docker``) picks dockerd."""
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    """Whether ``name`` is set to a true-ish word (``1``, ``true``, ``yes``, ``on``)."""
    return environ.get(name, "").strip().lower() in TRUE_WORDS


@dataclass(frozen=True, slots=True)
class Invocation:
    """What the process was started with: the only doors to the outside world.

    ``environ`` is a snapshot of the process environment, ``working_dir`` the
    directory composer was run from, ``read_stdin`` reads all of standard input
    (for ``-f -``). Use cases read these and nothing else.
    """

    working_dir: Path
    environ: Mapping[str, str]
    read_stdin: Callable[[], str]


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """The flags every verb shares, after merging in their environment variables."""

    files: tuple[str, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    project_directory: str | None = None
    parallel: int = -1
    progress: str = "auto"
    ansi: str = "auto"
    dry_run: bool = False
    debug: bool = False
    backend: str = DEFAULT_BACKEND


@dataclass(frozen=True, slots=True)
class GlobalFlags:
    """The global flags exactly as typed; ``None`` means "not given"."""

    files: tuple[str, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    project_directory: str | None = None
    parallel: int | None = None
    progress: str | None = None
    ansi: str | None = None
    dry_run: bool = False
    debug: bool = False
    backend: str | None = None


def _choice(value: str, allowed: tuple[str, ...], source: str) -> str:
    if value not in allowed:
        raise PlanError(
            f"{source}: invalid value {value!r}",
            hint=f"expected one of: {', '.join(allowed)}",
        )
    return value


def _parallel(flags: GlobalFlags, environ: Mapping[str, str]) -> int:
    if flags.parallel is not None:
        return flags.parallel
    raw = environ.get("COMPOSE_PARALLEL_LIMIT", "").strip()
    if not raw:
        return -1
    try:
        return int(raw)
    except ValueError:
        raise PlanError(
            f"COMPOSE_PARALLEL_LIMIT: invalid value {raw!r}",
            hint="expected an integer (-1 for unlimited)",
        ) from None


def build_global_options(flags: GlobalFlags, environ: Mapping[str, str]) -> GlobalOptions:
    """Merge the typed flags with their environment variables.

    ``-f``, ``-p``, ``--profile`` and ``--env-file`` keep their variables
    (``COMPOSE_FILE`` and friends) for the loader, which owns those rules; the
    variables merged here are the ones that only steer the CLI itself.
    """
    progress = flags.progress or environ.get("COMPOSE_PROGRESS") or "auto"
    ansi = flags.ansi or environ.get("COMPOSE_ANSI") or "auto"
    backend = flags.backend or environ.get("COMPOSER_BACKEND") or DEFAULT_BACKEND
    progress_source = "--progress" if flags.progress else "COMPOSE_PROGRESS"
    ansi_source = "--ansi" if flags.ansi else "COMPOSE_ANSI"
    backend_source = "--backend" if flags.backend else "COMPOSER_BACKEND"
    return GlobalOptions(
        files=flags.files,
        project_name=flags.project_name,
        profiles=flags.profiles,
        env_files=flags.env_files,
        project_directory=flags.project_directory,
        parallel=_parallel(flags, environ),
        progress=_choice(progress, PROGRESS_MODES, progress_source),
        ansi=_choice(ansi, ANSI_MODES, ansi_source),
        dry_run=flags.dry_run,
        debug=flags.debug or env_flag(environ, "COMPOSER_DEBUG"),
        backend=_choice(backend, BACKENDS, backend_source),
    )


class ConfigMode(enum.Enum):
    """What ``composer config`` prints; the first selected flag wins, as in Compose."""

    MODEL = "model"
    SERVICES = "services"
    VOLUMES = "volumes"
    NETWORKS = "networks"
    HASH = "hash"
    PROFILES = "profiles"
    IMAGES = "images"
    VARIABLES = "variables"
    ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class ConfigOptions:
    """The flags of ``composer config``.

    ``format`` is ``""`` when not given: YAML for the model, a table for
    ``--variables``.
    """

    mode: ConfigMode = ConfigMode.MODEL
    format: str = ""
    services: tuple[str, ...] = ()
    hash: str = ""
    quiet: bool = False
    interpolate: bool = True
    normalize: bool = True
    resolve_paths: bool = True
    output: str | None = None


def select_config_mode(
    *,
    services: bool = False,
    volumes: bool = False,
    networks: bool = False,
    hash: str = "",
    profiles: bool = False,
    images: bool = False,
    variables: bool = False,
    environment: bool = False,
) -> ConfigMode:
    """Pick the output mode by Docker Compose's precedence when several flags are given."""
    ordered = (
        (services, ConfigMode.SERVICES),
        (volumes, ConfigMode.VOLUMES),
        (networks, ConfigMode.NETWORKS),
        (bool(hash), ConfigMode.HASH),
        (profiles, ConfigMode.PROFILES),
        (images, ConfigMode.IMAGES),
        (variables, ConfigMode.VARIABLES),
        (environment, ConfigMode.ENVIRONMENT),
    )
    for selected, mode in ordered:
        if selected:
            return mode
    return ConfigMode.MODEL
