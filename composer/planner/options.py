"""Frozen options of the planning verbs.

The CLI turns flags (and their ``COMPOSE_*`` variables) into one of these and
hands it to ``reconcile``; the type of the options object says which plan is
wanted. Conflicting flags are rejected here, once, as a PlanError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from composer.errors import PlanError

PullOption = Literal["always", "missing", "never", "build"]
RmiOption = Literal["local", "all"]


def _exclusive(**flags: bool) -> None:
    chosen = [name for name, value in flags.items() if value]
    if len(chosen) > 1:
        text = " and ".join("--" + name.replace("_", "-") for name in chosen)
        raise PlanError(f"{text} are incompatible", hint="use only one of them")


@dataclass(frozen=True, slots=True)
class UpOptions:
    """``up`` (and ``create`` with ``no_start``): converge the project.

    ``services`` empty means all; ``scale`` overrides the replica count per
    service (``--scale web=3``); ``timeout`` is the stop timeout in seconds for
    containers that are replaced (None: each service's ``stop_grace_period``).
    """

    services: tuple[str, ...] = ()
    no_deps: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    always_recreate_deps: bool = False
    build: bool = False
    no_build: bool = False
    pull: PullOption | None = None
    scale: Mapping[str, int] = field(default_factory=dict)
    no_start: bool = False
    renew_anon_volumes: bool = False
    remove_orphans: bool = False
    ignore_orphans: bool = False
    timeout: float | None = None

    def __post_init__(self) -> None:
        _exclusive(force_recreate=self.force_recreate, no_recreate=self.no_recreate)
        _exclusive(build=self.build, no_build=self.no_build)
        _exclusive(remove_orphans=self.remove_orphans, ignore_orphans=self.ignore_orphans)
        for name, count in self.scale.items():
            if count < 0:
                raise PlanError(f"--scale {name}={count}: the count must not be negative")


@dataclass(frozen=True, slots=True)
class CreateOptions:
    """``create``: like ``up`` but nothing is started."""

    services: tuple[str, ...] = ()
    force_recreate: bool = False
    no_recreate: bool = False
    build: bool = False
    no_build: bool = False
    pull: PullOption | None = None
    scale: Mapping[str, int] = field(default_factory=dict)
    remove_orphans: bool = False

    def as_up(self) -> UpOptions:
        """The equivalent ``up --no-start`` options."""
        return UpOptions(
            services=self.services,
            force_recreate=self.force_recreate,
            no_recreate=self.no_recreate,
            build=self.build,
            no_build=self.no_build,
            pull=self.pull,
            scale=self.scale,
            no_start=True,
            remove_orphans=self.remove_orphans,
        )


@dataclass(frozen=True, slots=True)
class DownOptions:
    """``down``: remove containers, the project's networks, optionally volumes and images."""

    services: tuple[str, ...] = ()
    volumes: bool = False
    rmi: RmiOption | None = None
    remove_orphans: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class StartOptions:
    """``start``: start existing stopped containers in dependency order."""

    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StopOptions:
    """``stop``: stop running containers, dependents first."""

    services: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RestartOptions:
    """``restart``: stop then start, in dependency order; ``no_deps`` leaves dependencies alone."""

    services: tuple[str, ...] = ()
    no_deps: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class KillOptions:
    """``kill``: send a signal to running containers."""

    services: tuple[str, ...] = ()
    signal: str = "SIGKILL"
    remove_orphans: bool = False


@dataclass(frozen=True, slots=True)
class RmOptions:
    """``rm``: remove stopped containers (``stop`` first stops running ones)."""

    services: tuple[str, ...] = ()
    stop: bool = False
    volumes: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True)
class PauseOptions:
    """``pause``: freeze running containers."""

    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnpauseOptions:
    """``unpause``: thaw paused containers."""

    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadyOptions:
    """``up --wait``: wait until the services' containers are ready.

    Ready means running, or healthy when the container has a healthcheck; a
    service that another one waits on with ``service_completed_successfully``
    must have exited 0 instead. ``services`` empty means all; their
    dependencies are included unless ``no_deps``.
    """

    services: tuple[str, ...] = ()
    no_deps: bool = False


Options = (
    UpOptions
    | CreateOptions
    | DownOptions
    | StartOptions
    | StopOptions
    | RestartOptions
    | KillOptions
    | RmOptions
    | PauseOptions
    | UnpauseOptions
    | ReadyOptions
)
"""Every options type ``reconcile`` accepts; the type picks the plan."""
