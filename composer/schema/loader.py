"""The loader: from command-line options to a frozen ``Project``.

This module only sequences the stages, each of which lives in its own
module: discovery → per file (parse → interpolate → transform → extends) →
merge → include → project name → profiles → normalise → semantic checks →
bind. The process environment, the working directory and standard input are
parameters, so the whole loader runs on literals in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import ConfigError, Location
from composer.gcpause import paused_gc
from composer.schema.bind import bind_project
from composer.schema.checks import check_project
from composer.schema.discovery import (
    ComposeFiles,
    env_files_for,
    find_compose_files,
    project_name,
)
from composer.schema.dotenv import parse_dotenv
from composer.schema.extends import rebase_service_paths, resolve_extends
from composer.schema.include import IncludeEntry, apply_includes
from composer.schema.interpolate import VariableUse, interpolate_tree, variables_in_tree
from composer.schema.merge import merge_trees
from composer.schema.model import Project
from composer.schema.normalize import normalize
from composer.schema.profiles import apply_profiles
from composer.schema.transform import transform_file
from composer.schema.tree import YMap
from composer.schema.yamlread import parse_yaml

Warn = Callable[[str], None]

STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class LoadOptions:
    """Everything the loader needs from the invocation, as plain values."""

    working_dir: Path
    environ: Mapping[str, str]
    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    interpolate: bool = True
    normalize: bool = True
    resolve_paths: bool = True
    read_stdin: Callable[[], str] | None = None


@dataclass
class _Session:
    """State shared by the files of one load: caches and warnings already given."""

    options: LoadOptions
    warn: Warn
    warned: set[str] = field(default_factory=set)
    stdin_text: str | None = None

    def on_unset(self, name: str, _location: Location | None) -> None:
        if name not in self.warned:
            self.warned.add(name)
            self.warn(f'The "{name}" variable is not set. Defaulting to a blank string.')

    def read(self, path: str) -> tuple[str, str]:
        """Text and display name of a compose file (``-`` is standard input)."""
        if path == STDIN:
            if self.stdin_text is None:
                reader = self.options.read_stdin
                if reader is None:
                    raise ConfigError("-f - needs standard input, and none is available")
                self.stdin_text = reader()
            return self.stdin_text, STDIN_NAME
        try:
            return Path(path).read_text(encoding="utf-8"), path
        except FileNotFoundError:
            raise ConfigError(f"compose file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read compose file {path}: {exc}") from None


def interpolation_environment(
    env_files: list[Path], environ: Mapping[str, str], on_unset: Any = None
) -> dict[str, str]:
    """The variables interpolation sees: the env files, with the process environment on top."""
    from_files: dict[str, str] = {}
    for path in env_files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read env file {path}: {exc}") from None

        def lookup(key: str) -> str | None:
            return environ.get(key, from_files.get(key))

        from_files.update(parse_dotenv(text, str(path), lookup, on_unset=on_unset))
    return {**from_files, **environ}


def _load_file(
    session: _Session, path: str, environment: Mapping[str, str], *, interpolate: bool
) -> YMap:
    """One file through parse → interpolate → transform (no extends yet)."""
    text, name = session.read(path)
    tree = parse_yaml(text, name)
    if not isinstance(tree, YMap):
        raise ConfigError(
            "a compose file must be a mapping at the top level",
            location=Location(name, 1, 1),
            hint="start the file with `services:`",
        )
    if interpolate:
        interpolate_tree(tree, environment.get, on_unset=session.on_unset)
    return transform_file(tree, filename=name, warn=session.warn)


def _load_merged(
    session: _Session,
    paths: tuple[str, ...],
    environment: Mapping[str, str],
    project_dir: Path,
    chain: tuple[str, ...] = (),
) -> YMap:
    """Load each file with its ``extends`` and ``include`` applied, then merge in order.

    Includes are applied per file, before merging, as Docker Compose does, so
    that an override file may change a service that an include brought in.
    """
    interpolate = session.options.interpolate
    cache: dict[str, YMap] = {}

    def load_other(other: str) -> YMap:
        if other not in cache:
            cache[other] = _load_file(session, other, environment, interpolate=interpolate)
        return cache[other]

    # Starting from an empty mapping drops the first file's own ``!reset``
    # keys and tags, as compose-go does.
    merged = YMap()
    for path in paths:
        tree = _load_file(session, path, environment, interpolate=interpolate)
        name = STDIN_NAME if path == STDIN else path
        tree = resolve_extends(tree, filename=name, load_file=load_other)
        tree = _with_includes(session, tree, project_dir, chain)
        merged = merge_trees(merged, tree, consume_base=True, consume_override=True)
    return merged


def _with_includes(
    session: _Session, tree: YMap, project_dir: Path, chain: tuple[str, ...]
) -> YMap:
    """Apply ``include:`` recursively, each entry loaded as its own project."""
    environ = session.options.environ

    def load_included(entry: IncludeEntry) -> YMap:
        environment = interpolation_environment(list(entry.env_files), environ, session.on_unset)
        paths = tuple(str(p) for p in entry.paths)
        sub = _load_merged(session, paths, environment, entry.project_dir, entry.chain)
        _rebase_paths(sub, str(entry.project_dir))
        return sub

    return apply_includes(tree, project_dir=project_dir, load_included=load_included, chain=chain)


def _rebase_paths(tree: YMap, directory: str) -> None:
    """Resolve an included project's relative paths against its own directory."""
    services = tree.get("services")
    if isinstance(services, dict):
        for service in services.values():
            if isinstance(service, YMap):
                rebase_service_paths(service, directory)
    for section in ("configs", "secrets"):
        items = tree.get(section)
        if not isinstance(items, dict):
            continue
        for item in items.values():
            if isinstance(item, dict) and isinstance(item.get("file"), str):
                item["file"] = str(Path(directory, item["file"]))


def _active_profiles(options: LoadOptions, environment: Mapping[str, str]) -> list[str]:
    if options.profiles:
        return [p for p in options.profiles if p]
    listed = environment.get("COMPOSE_PROFILES", "")
    return [p.strip() for p in listed.split(",") if p.strip()]


def _discover(options: LoadOptions, warn: Warn) -> tuple[ComposeFiles, list[Path]]:
    files = find_compose_files(
        options.working_dir,
        options.environ,
        options.files,
        options.project_directory,
        warn=warn,
    )
    env_paths = env_files_for(
        files.project_dir, options.environ, options.env_files, working_dir=options.working_dir
    )
    return files, env_paths


def load_project(options: LoadOptions, warn: Warn) -> Project:
    """Load, check and bind the project the options describe.

    Raises ``ConfigError`` (and only that family) for anything wrong with
    the files; ``warn`` receives each warning once. Loading only builds
    objects that stay alive until it ends, so the cycle collector waits
    (``composer.gcpause``): at 2000 services its passes cost a fifth of the
    load and freed nothing.
    """
    with paused_gc():
        return _load_project(options, warn)


def _load_project(options: LoadOptions, warn: Warn) -> Project:
    session = _Session(options, warn)
    files, env_paths = _discover(options, warn)
    environment = interpolation_environment(env_paths, options.environ, session.on_unset)
    tree = _load_merged(session, files.files, environment, files.project_dir)
    top_name = tree.get("name")
    name = project_name(
        options.project_name,
        environment,
        top_name if isinstance(top_name, str) else None,
        files.project_dir,
    )
    profiles = _active_profiles(options, environment)
    tree, disabled = apply_profiles(tree, profiles, options.services)
    digests: dict[str, str] = {}
    if options.normalize:
        tree, digests = normalize(
            tree,
            project_name=name,
            project_dir=files.project_dir,
            environ=environment,
            resolve_paths=options.resolve_paths,
            copy=False,
        )
        check_project(tree, disabled_services=list(disabled))
    else:
        tree["name"] = name
    return bind_project(
        tree,
        name=name,
        working_dir=str(files.project_dir),
        config_files=[STDIN if f == STDIN else f for f in files.files],
        env_files=[str(p) for p in env_paths],
        environment=environment,
        profiles=profiles,
        disabled=disabled,
        content_digests=digests,
        warn=warn,
    )


def load_variables(options: LoadOptions, warn: Warn) -> list[VariableUse]:
    """Every variable the project's files use, for ``config --variables``."""
    session = _Session(options, warn)
    files, _ = _discover(options, warn)
    uses: list[VariableUse] = []
    for path in files.files:
        text, name = session.read(path)
        uses.extend(variables_in_tree(parse_yaml(text, name)))
    return uses
