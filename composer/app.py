"""Use cases: what each verb does, as functions from options to data.

The CLI parses flags into frozen options, calls one function here and renders
what it returns. Nothing here prints, exits or reads the process environment:
the ``Invocation`` carries the environment, working directory and standard
input, and warnings leave through the ``warn`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from composer.errors import PlanError
from composer.options import ConfigMode, ConfigOptions, GlobalOptions, Invocation

if TYPE_CHECKING:
    from composer.schema.interpolate import VariableUse
    from composer.schema.loader import LoadOptions
    from composer.schema.model import Project

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The resolved model in ``docker compose config`` shape.

    ``interpolated`` says whether values went through interpolation; if so a
    ``$`` left in them is literal and must be written back as ``$$``.
    """

    model: dict[str, Any]
    interpolated: bool


@dataclass(frozen=True, slots=True)
class LinesResult:
    """Output that is one item per line (names, hashes, ``KEY=VALUE``)."""

    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    """One variable the model uses, as ``config --variables`` lists it."""

    name: str
    required: bool
    default: str
    alternate: str


@dataclass(frozen=True, slots=True)
class VariablesResult:
    """Every variable used by the files, sorted by name."""

    variables: tuple[Variable, ...]


ConfigResult = ModelResult | LinesResult | VariablesResult


def load_options(
    options: GlobalOptions,
    invocation: Invocation,
    *,
    services: Iterable[str] = (),
    interpolate: bool = True,
    normalize: bool = True,
    resolve_paths: bool = True,
) -> LoadOptions:
    """Translate the global options into the loader's options."""
    from composer.schema.loader import LoadOptions

    return LoadOptions(
        working_dir=invocation.working_dir,
        environ=invocation.environ,
        files=options.files,
        project_name=options.project_name,
        project_directory=options.project_directory,
        profiles=options.profiles,
        env_files=options.env_files,
        services=tuple(services),
        interpolate=interpolate,
        normalize=normalize,
        resolve_paths=resolve_paths,
        read_stdin=invocation.read_stdin,
    )


def config(
    options: GlobalOptions, invocation: Invocation, config_options: ConfigOptions, warn: Warn
) -> ConfigResult:
    """``composer config``: load the project and return what the chosen mode shows."""
    from composer.schema.loader import load_project, load_variables

    mode = config_options.mode
    if mode is ConfigMode.VARIABLES:
        uses = load_variables(
            load_options(options, invocation, services=config_options.services, interpolate=False),
            warn,
        )
        return VariablesResult(_variables(uses))
    # Only the full model honours --no-interpolate/--no-normalize/--no-path-resolution;
    # the listing modes describe the project as it would run, as Compose does.
    full = mode is ConfigMode.MODEL
    selected = () if mode is ConfigMode.HASH else config_options.services
    project = load_project(
        load_options(
            options,
            invocation,
            services=selected,
            interpolate=config_options.interpolate or not full,
            normalize=config_options.normalize or not full,
            resolve_paths=config_options.resolve_paths or not full,
        ),
        warn,
    )
    if selected and mode in (ConfigMode.MODEL, ConfigMode.IMAGES):
        project = select_services(project, selected)
    if mode is ConfigMode.MODEL:
        from composer.schema.render import render_project

        return ModelResult(render_project(project), interpolated=config_options.interpolate)
    return LinesResult(tuple(_listing(project, mode, config_options.hash)))


def _listing(project: Project, mode: ConfigMode, hash_spec: str) -> list[str]:
    if mode is ConfigMode.SERVICES:
        return dependency_order(project)
    if mode is ConfigMode.VOLUMES:
        return sorted(project.volumes)
    if mode is ConfigMode.NETWORKS:
        return sorted(project.networks)
    if mode is ConfigMode.PROFILES:
        return all_profiles(project)
    if mode is ConfigMode.IMAGES:
        return [image_name(project, name) for name in sorted(project.services)]
    if mode is ConfigMode.ENVIRONMENT:
        return environment_lines(project.environment)
    return config_hashes(project, hash_spec)


def config_hashes(project: Project, spec: str) -> list[str]:
    """``name hash`` lines for ``--hash a,b`` or ``--hash '*'``, sorted by name."""
    from composer.planner.hashing import service_hash

    if spec == "*":
        names = sorted(project.services)
    else:
        names = sorted({n.strip() for n in spec.split(",") if n.strip()})
    _require_services(project, names)
    return [f"{name} {service_hash(project, name)}" for name in names]


def image_name(project: Project, service: str) -> str:
    """The service's image, or ``<project>-<service>`` for one that is only built."""
    return project.services[service].image or f"{project.name}-{service}"


def all_profiles(project: Project) -> list[str]:
    """Every profile named by any service, enabled or not, sorted."""
    found: set[str] = set()
    for group in (project.services, project.disabled_services):
        for service in group.values():
            found.update(service.profiles or ())
    return sorted(found)


def dependency_order(project: Project) -> list[str]:
    """Service names with dependencies first; ties broken by name so output is stable."""
    from composer.planner.graph import service_graph, topological_order

    return topological_order(service_graph(project))


def select_services(project: Project, names: Iterable[str]) -> Project:
    """Keep the named services and everything they depend on (``config SERVICE...``)."""
    from composer.planner.graph import select, service_graph

    wanted = list(dict.fromkeys(names))
    _require_services(project, wanted)
    keep = select(service_graph(project), wanted)
    services = {n: s for n, s in project.services.items() if n in keep}
    return project.model_copy(update={"services": services})


def _require_services(project: Project, names: Iterable[str]) -> None:
    missing = [n for n in names if n not in project.services]
    if missing:
        disabled = [n for n in missing if n in project.disabled_services]
        hint = (
            f"{', '.join(disabled)} is disabled by its profiles; enable it with --profile"
            if disabled
            else f"services are: {', '.join(sorted(project.services)) or '(none)'}"
        )
        raise PlanError(f"no such service: {', '.join(missing)}", hint=hint)


def _variables(uses: Iterable[VariableUse]) -> tuple[Variable, ...]:
    """Fold every use of a variable into one row, as ``docker compose config --variables``."""
    rows: dict[str, Variable] = {}
    for use in uses:
        row = Variable(
            name=use.name,
            required=bool(use.required),
            default=use.default or "",
            alternate=use.alternative or "",
        )
        previous = rows.get(row.name)
        if previous is not None:
            row = Variable(
                name=row.name,
                required=previous.required or row.required,
                default=previous.default or row.default,
                alternate=previous.alternate or row.alternate,
            )
        rows[row.name] = row
    return tuple(rows[name] for name in sorted(rows))


def environment_lines(environment: Mapping[str, str]) -> list[str]:
    """``KEY=VALUE`` lines, sorted by key."""
    return [f"{key}={value}" for key, value in sorted(environment.items())]
