"""Optional verbs: what a backend may offer beyond the ``Backend`` protocol.

CI stacks need two things not every engine has in the same form, so they are
separate, ``runtime_checkable`` protocols; callers test for them with
``isinstance`` and fall back when a backend lacks one.

* ``HealthLog``: the last results of a container's healthcheck (Docker keeps
  five in ``State.Health.Log``), shown when ``up --wait`` fails.
* ``ParentReaper``: remove a project, volumes included, when a process dies.
  The native backend's per-project supervisor is the natural owner of that
  duty (it already outlives the CLI); when a backend does not implement it,
  ``composer.reaper`` starts a small detached watchdog process instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One healthcheck run: when it started (epoch seconds), its exit code, its output."""

    started: float
    exit_code: int
    output: str


@runtime_checkable
class HealthLog(Protocol):
    def health_log(self, container_id: str) -> list[HealthResult]:
        """The container's last healthcheck results, oldest first (empty: none)."""
        ...


@runtime_checkable
class ParentReaper(Protocol):
    def reap_with_parent(self, project: str, pid: int, *, logs_dir: str | None = None) -> None:
        """Remove ``project`` (containers, networks, volumes) once process ``pid`` has died.

        Must survive the CLI that asked, and a SIGKILL of ``pid``. With
        ``logs_dir`` each service's full log is written there first.
        """
        ...
