"""The watch loop: batches in, one action per service out, until stopped.

Errors never end the loop: a failed sync, a command that exits non-zero, a
container that is gone or a compose file that no longer loads is reported
on its own line and the next batch is handled as usual. Only ``stop`` (or
Ctrl-C in the caller) ends it.

A change to a compose file or an env file reloads the model (Docker Compose
keeps the model it started with, docker/compose#11003): the rules are
rebuilt, the stack is reconciled with ``up`` as it would be by hand, and the
watched directories follow the new rules.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from composer.errors import ComposerError, ConfigError
from composer.watch.actions import Report, Runner, Stack
from composer.watch.rules import Rule, config_paths, early_syncs, plan_batch, rules_of
from composer.watch.watcher import DEFAULT_QUIET, Batcher, Change, FileWatcher, watch_plan

if TYPE_CHECKING:
    from composer.clock import Clock
    from composer.schema.model import Project


class ProjectStack(Stack, Protocol):
    """A ``Stack`` whose project can be swapped after a reload."""

    project: Project


@dataclass(frozen=True)
class WatchSettings:
    services: tuple[str, ...] = ()
    quiet: float = DEFAULT_QUIET
    json: bool = False


def format_report(report: Report, as_json: bool) -> str:
    """One line for one action: ``web: sync+restart 2 files in 14 ms: a.py, b.py``."""
    ms = round(report.seconds * 1000, 1)
    if as_json:
        record = {
            "action": report.action,
            "service": report.service,
            "files": list(report.files),
            "ms": ms,
            "error": report.error,
        }
        return json.dumps(record, separators=(",", ":"))
    count = len(report.files)
    noun = "file" if count == 1 else "files"
    shown = ", ".join(report.files[:5]) + (f" (+{count - 5} more)" if count > 5 else "")
    head = f"{report.service}: {report.action}"
    if report.error is not None:
        return f"{head} failed after {ms:g} ms: {report.error}"
    return f"{head} {count} {noun} in {ms:g} ms" + (f": {shown}" if shown else "")


def no_rules_error() -> ConfigError:
    return ConfigError(
        "none of the selected services is configured for watch",
        hint="add a develop.watch section to a service",
    )


class WatchSession:
    """Runs the loop for one project until ``stop`` is set."""

    def __init__(
        self,
        stack: ProjectStack,
        load: Callable[[], Project],
        settings: WatchSettings,
        emit: Callable[[str], None],
        clock: Clock,
        stop: threading.Event | None = None,
    ) -> None:
        self._stack = stack
        self._load = load
        self._settings = settings
        self._emit = emit
        self._clock = clock
        self.stop_event = stop or threading.Event()
        self._rules: list[Rule] = rules_of(stack.project, settings.services)
        if not self._rules:
            raise no_rules_error()
        self._runner = Runner(stack, Path(stack.project.working_dir))
        self._watcher: FileWatcher | None = None
        self._roots: tuple[list[Path], list[Path]] = ([], [])

    @property
    def rules(self) -> Sequence[Rule]:
        return self._rules

    def _watched(self) -> tuple[list[Path], list[Path]]:
        """The trees of the rules (recursive) and the directories of the config files (flat)."""
        return watch_plan((r.root for r in self._rules), config_paths(self._stack.project))

    def start(self) -> None:
        """Watch the trees and run the initial syncs; the loop starts with ``run``."""
        self._restart_watcher()
        for report in self._runner.initial_sync(self._rules):
            self._report(report)

    def _restart_watcher(self) -> None:
        roots = self._watched()
        if self._watcher is not None and roots == self._roots:
            return
        if self._watcher is not None:
            self._watcher.stop()
        batcher = Batcher(self._clock, quiet=self._settings.quiet)
        watcher = FileWatcher(roots[0], batcher, flat=roots[1])
        watcher.start()
        self._watcher, self._roots = watcher, roots

    def run(self) -> None:
        """Handle batches until stopped."""
        try:
            while not self.stop_event.is_set():
                assert self._watcher is not None
                got = self._watcher.next_batches(timeout=0.5)
                if got is None:
                    continue
                batch, closing = got
                if closing:
                    self.handle(batch)
                else:
                    self.handle_early(batch)
        finally:
            self.close()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def stop(self) -> None:
        self.stop_event.set()

    def handle_early(self, batch: list[Change]) -> None:
        """The first changes of a batch: copy files at once; everything else waits."""
        self._guarded(lambda: self._early(batch))

    def _early(self, batch: list[Change]) -> None:
        plan = plan_batch(self._rules, batch, config_paths(self._stack.project))
        if plan.reload:
            return  # the model may change: the closing batch does it all
        for action in early_syncs(plan):
            self._report(self._runner.run(action))

    def _guarded(self, work: Callable[[], None]) -> None:
        """Run ``work``; report any error as one line and go on (errors never end the loop)."""
        try:
            work()
        except ComposerError as error:
            self._line(f"watch: {error}" + (f" ({error.hint})" if error.hint else ""))
        except Exception as error:  # the loop outlives any one failure
            self._line(f"watch: unexpected error: {type(error).__name__}: {error}")

    def handle(self, batch: list[Change]) -> None:
        """One batch: reload if a config file changed, then one action per service."""
        self._guarded(lambda: self._closing(batch))

    def _closing(self, batch: list[Change]) -> None:
        plan = plan_batch(self._rules, batch, config_paths(self._stack.project))
        if plan.reload:
            self._reload()
            plan = plan_batch(self._rules, batch)
        for action in plan.actions:
            self._report(self._runner.run(action))

    def _reload(self) -> None:
        from composer.planner.options import UpOptions

        start = time.monotonic()
        try:
            project = self._load()
            rules = rules_of(project, self._settings.services)
            if not rules:
                raise no_rules_error()
        except ComposerError as error:
            hint = f" ({error.hint})" if error.hint else ""
            self._line(f"watch: the compose file was not reloaded: {error}{hint}")
            return
        self._stack.project = project
        self._rules = rules
        self._stack.forget()
        self._restart_watcher()
        error_text: str | None = None
        try:
            self._stack.converge(UpOptions(services=self._settings.services))
        except ComposerError as error:
            error_text = str(error)
        finally:
            self._stack.forget()
        files = tuple(Path(p).name for p in project.config_files)
        self._report(Report("reload", project.name, files, time.monotonic() - start, error_text))

    def _report(self, report: Report) -> None:
        self._emit(format_report(report, self._settings.json))

    def _line(self, text: str) -> None:
        if self._settings.json:
            text = json.dumps({"action": "error", "error": text}, separators=(",", ":"))
        self._emit(text)
