"""Carrying out one service's action of a batch: sync, exec, restart, rebuild.

The engine is reached through a ``Stack``: the backend and transport for
files and commands, and ``converge`` for what goes through the planner
(a restart is ``RestartOptions`` for the service, a rebuild is ``up
--build --no-deps`` for the service alone, so that no other service's image
is touched). Each call returns a ``Report`` with the files and the time it
took; failures are reported, never raised, so that the loop keeps going.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from composer.errors import ComposerError
from composer.watch.filters import container_path
from composer.watch.rules import Rule, ServiceAction
from composer.watch.transport import Delete, Operation, Put, Transport

if TYPE_CHECKING:
    from composer.backends.base import Backend
    from composer.planner.options import Options


@dataclass(frozen=True)
class Report:
    """One output line: what was done to which service, with which files, how fast."""

    action: str
    service: str
    files: tuple[str, ...]
    seconds: float
    error: str | None = None


class Stack(Protocol):
    """The running project as the actions see it."""

    @property
    def backend(self) -> Backend: ...

    @property
    def transport(self) -> Transport: ...

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers (cached until ``forget``)."""
        ...

    def forget(self) -> None:
        """Drop the cached container ids (after a converge or an engine error)."""
        ...

    def converge(self, options: Options) -> None: ...


def sync_operations(rule: Rule, changed: dict[str, bool]) -> list[Operation]:
    """The puts and deletes that bring the rule's target up to date for ``changed``.

    A path that no longer exists is deleted; a directory created in the batch
    is copied with everything in it; an existing file or symlink is copied.
    """
    assert rule.target is not None
    ops: list[Operation] = []
    for rel, created in changed.items():
        host = rule.root if rel == "." else rule.root / rel
        dest = container_path(rule.target, rel)
        if not os.path.lexists(host):
            ops.append(Delete(dest))
        elif host.is_dir() and not host.is_symlink():
            if created or rel == ".":
                ops.extend(_tree(rule, rel))
        else:
            ops.append(Put(host, dest))
    return ops


def _tree(rule: Rule, rel: str) -> list[Operation]:
    assert rule.target is not None
    out: list[Operation] = []
    for item in rule.filter.walk(rel):
        out.append(Put(rule.root / item, container_path(rule.target, item)))
    return out


def initial_operations(rule: Rule) -> list[Operation]:
    """Everything under the rule's path that its filters accept (``initial_sync``)."""
    assert rule.target is not None
    if rule.root.is_dir():
        return _tree(rule, ".")
    if rule.root.exists():
        return [Put(rule.root, rule.target)]
    return []


class Runner:
    """Carries out service actions against a ``Stack``."""

    def __init__(
        self, stack: Stack, base: Path, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._stack = stack
        self._base = base
        self._timer = timer

    def run(self, action: ServiceAction) -> Report:
        start = self._timer()
        files = tuple(_display(p, self._base) for p in action.paths)
        try:
            self._run(action)
        except ComposerError as error:
            self._stack.forget()
            return Report(action.kind, action.service, files, self._timer() - start, _text(error))
        return Report(action.kind, action.service, files, self._timer() - start)

    def _run(self, action: ServiceAction) -> None:
        from composer.planner.options import RestartOptions, UpOptions

        service = action.service
        if action.rebuild:
            self._stack.converge(UpOptions(services=(service,), build=True, no_deps=True))
            self._stack.forget()
            return
        ops: list[Operation] = []
        for rule, changed in action.syncs.values():
            ops.extend(sync_operations(rule, changed))
        if ops:
            self.apply(service, ops)
        for rule in action.execs:
            self._exec(service, rule)
        if action.restart:
            self._stack.converge(RestartOptions(services=(service,), no_deps=True))
            self._stack.forget()

    def apply(self, service: str, ops: Sequence[Operation]) -> None:
        """Apply operations to every running container of the service.

        A container that is gone (recreated by an ``up`` in another terminal)
        makes the service's containers be looked up again, once.
        """
        from composer.errors import Conflict, NotFound

        try:
            for container in self._containers(service):
                self._stack.transport.apply(container, ops)
        except (NotFound, Conflict):
            self._stack.forget()
            for container in self._containers(service):
                self._stack.transport.apply(container, ops)

    def initial_sync(self, rules: Sequence[Rule]) -> list[Report]:
        """Copy the trees of the rules with ``initial_sync`` into their services."""
        reports: list[Report] = []
        for rule in rules:
            if not (rule.initial_sync and rule.syncs):
                continue
            start = self._timer()
            try:
                ops = initial_operations(rule)
                self.apply(rule.service, ops)
            except ComposerError as error:
                self._stack.forget()
                reports.append(
                    Report("initial sync", rule.service, (), self._timer() - start, _text(error))
                )
                continue
            files = tuple(_display(op.source, self._base) for op in ops if isinstance(op, Put))
            reports.append(Report("initial sync", rule.service, files, self._timer() - start))
        return reports

    def _containers(self, service: str) -> list[str]:
        from composer.errors import Conflict

        ids = self._stack.containers(service)
        if not ids:
            raise Conflict(
                f"service {service} has no running container",
                hint="`composer up` starts it; watch keeps going and syncs the next change",
            )
        return ids

    def _exec(self, service: str, rule: Rule) -> None:
        from composer.errors import ExecutionError

        hook = rule.exec
        assert hook is not None
        env = {k: v for k, v in hook.environment.items() if v is not None}
        for container in self._containers(service):
            code = self._stack.backend.exec_run(
                container,
                hook.command,
                user=hook.user,
                workdir=hook.working_dir,
                env=env or None,
                privileged=bool(hook.privileged),
            )
            if code != 0:
                raise ExecutionError(
                    f"exec {' '.join(hook.command)} exited with code {code}",
                    hint=f"services.{service}.develop.watch[{rule.index}].exec.command",
                )


def _display(path: Path, base: Path) -> str:
    """A path as the user wrote it in the compose file: relative to the project."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _text(error: ComposerError) -> str:
    hint = getattr(error, "hint", None)
    return f"{error}" + (f" ({hint})" if hint else "")
