"""Observed state: what an engine reports about the project's resources.

``ObservedState`` is the planner's only read of the engine (the executor
never asks "does it exist?"); ``ContainerStatus`` is what the executor polls
while it waits on one container. The extra fields of ``ObservedContainer``
(image, command, status text, port bindings) come from the same list call
and serve ``ps`` without a second round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from composer.backends.specs import ImageRef

ContainerState = Literal["created", "running", "paused", "restarting", "exited", "dead"]
Health = Literal["starting", "healthy", "unhealthy"]


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A port actually published on the host (as opposed to the asked-for ``PortSpec``)."""

    target: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int | None = None
    """``None`` for an exposed port that is not published."""


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    """A container of the project as the engine reports it."""

    id: str
    name: str
    service: str
    number: int | None
    oneoff: bool
    state: ContainerState
    health: Health | None = None
    exit_code: int | None = None
    config_hash: str = ""
    image_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    anonymous_volumes: tuple[tuple[str, str], ...] = ()
    """``(target, engine volume name)`` of each anonymous volume."""
    created_at: float = 0.0
    image: str = ""
    """The image as the container was created with it (a reference, or an id)."""
    command: str = ""
    """Entrypoint and command joined by spaces, as the engine lists it."""
    status: str = ""
    """Human status as ``docker ps`` shows it ("Up 3 seconds (healthy)", "Exited (0) …")."""
    ports: tuple[PortBinding, ...] = ()
    """Published and exposed ports, as the engine lists them."""


@dataclass(frozen=True, slots=True)
class ObservedNetwork:
    """A network on the engine; ``external`` when it is not this project's own
    (no ``com.docker.compose.project`` label naming the project)."""

    name: str
    key: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    config_hash: str = ""
    external: bool = False


@dataclass(frozen=True, slots=True)
class ObservedVolume:
    """A volume on the engine; ``external`` as for ``ObservedNetwork``."""

    name: str
    key: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    driver: str | None = None
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    config_hash: str = ""
    external: bool = False


@dataclass(frozen=True, slots=True)
class ObservedImage:
    ref: ImageRef
    id: str
    created_at: float | None = None
    """When the image was pulled/built (for ``pull_policy: daily`` and the like)."""


@dataclass(frozen=True, slots=True)
class ObservedState:
    """One snapshot of everything the planner needs to know about the engine.

    ``networks``/``volumes`` hold every network and volume on the engine,
    keyed by engine name, the project's own ones and the others (flagged
    ``external``: candidates for ``external: true`` references, never
    orphans); ``images`` holds the references asked for in
    ``observe(images=...)`` that exist locally.
    """

    project: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: Mapping[str, ObservedNetwork] = field(default_factory=dict)
    volumes: Mapping[str, ObservedVolume] = field(default_factory=dict)
    images: Mapping[ImageRef, ObservedImage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """What ``inspect_container`` returns while the executor waits on a container."""

    state: ContainerState
    health: Health | None = None
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One step of a pull or build: ``id`` is a layer id or build step."""

    id: str
    status: str
    current: int | None = None
    total: int | None = None


Progress = Callable[[ProgressUpdate], None]
