"""What the fake engine stores, and how its scripts are written.

``Behaviour``/``ImageBehaviour``/``ExecScript`` are the public scripting
records; the underscore records are the engine's own state. ``status_text``
renders a container's state the way ``docker ps`` does, so that ``ps`` on a
dry run reads like the real thing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from composer.backends.base import (
    ContainerSpec,
    ContainerState,
    Health,
    LogStream,
    NetworkSpec,
    ObservedContainer,
    VolumeSpec,
)
from composer.errors import BackendError
from composer.humanize import human_duration

BASE_DIRECTORIES: frozenset[str] = frozenset({"/", "/bin", "/etc", "/root", "/tmp", "/var"})
"""Directories every fake container's filesystem starts with."""

EPHEMERAL_PORT = 32768
"""First host port the fake hands out for a port published without one."""


class Call(NamedTuple):
    """One recorded backend call."""

    verb: str
    args: tuple[Any, ...]
    time: float


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the containers of one service behave once started (times in seconds).

    A container has a health status when its spec has a healthcheck or when
    ``healthy_after``/``unhealthy_after`` is scripted. It is ``starting``
    until ``healthy_after`` (default: at once; ``math.inf``: never), and
    ``unhealthy`` from ``unhealthy_after`` on. With ``exit_after`` it exits
    with ``exit_code`` that long after starting. Stopping takes
    ``stop_delay`` (killed with 137 when that exceeds the timeout) and
    otherwise ends with ``stop_exit_code``. ``output`` is what the
    container prints each time it starts: ``(stream, line)`` pairs.
    """

    healthy_after: float | None = None
    unhealthy_after: float | None = None
    exit_after: float | None = None
    exit_code: int = 0
    stop_delay: float = 0.0
    stop_exit_code: int = 0
    fail_create: BackendError | None = None
    fail_start: BackendError | None = None
    output: tuple[tuple[LogStream, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ImageBehaviour:
    """How pulling or building one image reference behaves."""

    fail: BackendError | None = None
    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class ExecScript:
    """What a command run with ``exec_run`` prints and returns.

    With ``echo_stdin`` the command copies its stdin to stdout (like
    ``cat``) before printing ``stdout``.
    """

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    echo_stdin: bool = False
    duration: float = 0.0


@dataclass(slots=True)
class _Image:
    id: str
    created_at: float | None
    size: int = 0


@dataclass(slots=True)
class _Network:
    spec: NetworkSpec


@dataclass(slots=True)
class _Volume:
    spec: VolumeSpec


@dataclass(slots=True)
class _Container:
    id: str
    spec: ContainerSpec
    image_id: str
    created_at: float
    state: ContainerState = "created"
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    anonymous: list[tuple[str, str]] = field(default_factory=list)
    fixed_health: Health | None = None
    """Health as observed when seeded, until the container is started again."""
    listing: ObservedContainer | None = None
    """As observed when seeded: its command, status text and ports are reported
    until the container changes state."""
    output: list[tuple[float, LogStream, str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    directories: set[str] = field(default_factory=lambda: set(BASE_DIRECTORIES))
    host_ports: dict[tuple[int, str], int] = field(default_factory=dict)
    """Host ports handed out at start for ports published without one."""


@dataclass(slots=True)
class _Failure:
    error: BackendError
    times: float


def fake_id(kind: str, value: str) -> str:
    """A deterministic 64-hex id, ``sha256:``-prefixed for images."""
    hexed = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
    return f"sha256:{hexed}" if kind == "image" else hexed


def status_text(
    state: ContainerState,
    health: Health | None,
    exit_code: int | None,
    since: float | None,
    now: float,
) -> str:
    """``docker ps``'s STATUS column; ``since`` is the start (running) or finish time."""
    elapsed = human_duration(max(now - since, 0.0)) if since is not None else ""
    if state in ("running", "paused"):
        text = f"Up {elapsed}".rstrip()
        if state == "paused":
            return f"{text} (Paused)"
        if health == "starting":
            return f"{text} (health: starting)"
        return f"{text} ({health})" if health else text
    if state == "exited":
        return (
            f"Exited ({exit_code or 0}) {elapsed} ago" if elapsed else f"Exited ({exit_code or 0})"
        )
    if state == "restarting":
        return f"Restarting ({exit_code or 0}) {elapsed} ago"
    return "Created" if state == "created" else "Dead"
