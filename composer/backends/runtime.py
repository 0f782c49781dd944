"""Records of the verbs that serve the CLI around a running project.

Logs, exec, events, listings and file copies are not part of planning: the
planner never sees these records. They are shaped for the CLI's renderers
(``logs``, ``events --json``, ``ls``, ``images``, ``cp``), in the same
backend-neutral style as the specs: frozen, times as epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from composer.backends.specs import ImageRef

LogStream = Literal["stdout", "stderr"]
EventType = Literal["container", "network", "volume", "image"]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a container's output, without its line ending.

    ``time`` is set when the logs were asked for with ``timestamps=True``
    (the engine's own timestamp of the line); a last line without a newline
    is still delivered as a line.
    """

    stream: LogStream
    text: str
    time: float | None = None


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One engine event about a resource of the project.

    ``name`` is the container/network/volume name (or the image reference);
    ``service`` is the compose service of a container, else ``None``;
    ``attributes`` holds the engine's attributes (labels included).
    """

    time: float
    type: EventType
    action: str
    id: str
    name: str
    service: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """One project found on the engine by its containers' labels (``ls``).

    ``status_counts`` counts containers per state (``{"running": 2,
    "exited": 1}``); ``config_files`` is the comma-separated list of the
    compose files the containers were created from.
    """

    name: str
    status_counts: Mapping[str, int] = field(default_factory=dict)
    config_files: str = ""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A local image, looked up by the reference (or id) it was asked for."""

    ref: ImageRef
    id: str
    size: int
    created: float
    """When the image was built (epoch seconds)."""
    repo_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathStat:
    """A path inside a container, for ``cp`` to decide file versus directory."""

    name: str
    size: int
    mode: int
    """Go ``os.FileMode`` bits as the engine reports them (directory bit 1<<31)."""
    mtime: str = ""
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & (1 << 31))
