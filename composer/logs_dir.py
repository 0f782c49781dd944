"""``--logs-dir DIR``: each service's full log as ``DIR/<service>.log``, for CI artifacts.

Written at teardown, before the containers (and their logs) are gone: by
``down`` before it removes anything, by ``up`` when an attached session
ends or ``--wait`` fails, by ``wait`` when the containers have stopped, and
by the reaper before it removes an abandoned stack. A service with several
containers gets one file, each container's part under a ``==> name <==``
header (as ``tail`` prints several files). One-off ``run`` containers are
left out: they are not the stack.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import BackendError, PlanError

if TYPE_CHECKING:
    from composer.backends.base import Backend, ObservedContainer


def _write(backend: Backend, path: Path, containers: list[ObservedContainer]) -> None:
    with path.open("w", encoding="utf-8", errors="replace") as out:
        for c in containers:
            if len(containers) > 1:
                out.write(f"==> {c.name} <==\n")
            try:
                for line in backend.logs(c.id, timestamps=False):
                    text = line.text
                    out.write(text if text.endswith("\n") else text + "\n")
            except BackendError as exc:
                out.write(f"(logs of {c.name} unavailable: {exc.message})\n")


def save_logs(backend: Backend, project: str, directory: str | Path) -> list[Path]:
    """Write the project's service logs into ``directory``; the files written."""
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlanError(f"--logs-dir {directory}: {exc.strerror or exc}") from exc
    by_service: dict[str, list[ObservedContainer]] = defaultdict(list)
    for c in backend.observe(project).containers:
        if not c.oneoff:
            by_service[c.service].append(c)
    written: list[Path] = []
    for service, containers in sorted(by_service.items()):
        path = target / f"{service}.log"
        containers.sort(key=lambda c: (c.number or 0, c.name))
        _write(backend, path, containers)
        written.append(path)
    return written
