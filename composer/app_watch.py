"""``composer watch`` and ``up --watch``: the use case around the watch loop.

Brings the stack up (unless ``--no-up``), wraps the engine in the ``Stack``
the watch actions use, and runs ``composer.watch.session`` until stopped.
``up -d --watch`` instead starts the same loop as a background process
(``composer.watch.detached``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.app_lifecycle import Runtime
    from composer.backends.base import Backend
    from composer.options import GlobalOptions
    from composer.planner.options import Options
    from composer.schema.model import Project
    from composer.watch.transport import Transport


@dataclass(frozen=True)
class WatchRequest:
    """``composer watch`` as asked: services, whether to bring the stack up first, output."""

    services: tuple[str, ...] = ()
    no_up: bool = False
    prune: bool = False
    quiet: bool = False
    json: bool = False
    quiet_period: float | None = None


class EngineStack:
    """The running project as the watch actions see it."""

    def __init__(self, rt: Runtime, backend: Backend, project: Project, *, prune: bool) -> None:
        from composer.watch.transport import transport_for

        self.rt = rt
        self.project = project
        self._backend = backend
        self._transport = transport_for(backend)
        self._prune = prune
        self._containers: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def transport(self) -> Transport:
        return self._transport

    def containers(self, service: str) -> list[str]:
        with self._lock:
            if self._containers is None:
                observed = self._backend.observe(self.project.name)
                found: dict[str, list[str]] = {}
                for c in observed.containers:
                    if not c.oneoff and c.state == "running":
                        found.setdefault(c.service, []).append(c.id)
                self._containers = found
            return list(self._containers.get(service, ()))

    def forget(self) -> None:
        with self._lock:
            self._containers = None

    def converge(self, options: Options) -> None:
        from composer import app_lifecycle
        from composer.planner.options import UpOptions
        from composer.planner.specs import image_ref

        before: dict[str, str | None] = {}
        if self._prune and isinstance(options, UpOptions) and options.build:
            before = {
                s: self._backend.image_id(image_ref(self.project, s)) for s in options.services
            }
        app_lifecycle.converge(self.rt, self._backend, self.project, options)
        for service, old in before.items():
            new = self._backend.image_id(image_ref(self.project, service))
            if old and new and old != new:
                with contextlib.suppress(BackendError):
                    self._backend.remove_image(old)


def watch(
    rt: Runtime,
    backend: Backend,
    project: Project,
    request: WatchRequest,
    emit: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Bring the stack up unless ``no_up``, then watch until ``stop`` is set."""
    from composer import app_lifecycle
    from composer.watch.rules import rules_of
    from composer.watch.session import WatchSession, WatchSettings, no_rules_error

    if not rules_of(project, request.services):
        raise no_rules_error()
    if not request.no_up:
        from composer.app_lifecycle import UpRequest
        from composer.planner.options import UpOptions

        app_lifecycle.up(
            rt, backend, project, UpRequest(plan=UpOptions(services=request.services), detach=True)
        )
    settings = WatchSettings(services=request.services, json=request.json)
    if request.quiet_period is not None:
        settings = WatchSettings(request.services, request.quiet_period, request.json)
    stack = EngineStack(rt, backend, project, prune=request.prune)
    session = WatchSession(
        stack,
        lambda: app_lifecycle.load(rt, request.services),
        settings,
        emit,
        rt.clock,
        stop,
    )
    session.start()
    emit(_enabled(project, session.rules, request.json))
    session.run()


def _enabled(project: Project, rules: Sequence[object], as_json: bool) -> str:
    services = sorted({getattr(r, "service", "") for r in rules})
    if as_json:
        import json

        return json.dumps({"action": "watching", "services": services}, separators=(",", ":"))
    return f"Watch enabled for {', '.join(services)} ({project.name})"


def detached_argv(options: GlobalOptions, request: WatchRequest) -> list[str]:
    """The command line of the background ``watch --no-up`` for the same project.

    Paths stay as typed: the process starts in the same working directory.
    """
    argv: list[str] = []
    for file in options.files:
        argv += ["-f", file]
    if options.project_name:
        argv += ["-p", options.project_name]
    for profile in options.profiles:
        argv += ["--profile", profile]
    for env_file in options.env_files:
        argv += ["--env-file", env_file]
    if options.project_directory:
        argv += ["--project-directory", options.project_directory]
    argv += ["--backend", options.backend, "--progress", "plain", "watch", "--no-up"]
    if request.prune:
        argv.append("--prune")
    if request.quiet:
        argv.append("--quiet")
    if request.json:
        argv += ["--format", "json"]
    if request.quiet_period is not None:
        argv += ["--quiet-period", f"{request.quiet_period * 1000:g}"]
    return [*argv, *request.services]


def start_detached(rt: Runtime, project: Project, request: WatchRequest, python: str) -> int:
    """Start the background watcher of the project; return its pid."""
    from composer.watch import detached
    from composer.watch.rules import rules_of
    from composer.watch.session import no_rules_error

    if not rules_of(project, request.services):
        raise no_rules_error()
    if "-" in rt.options.files:
        from composer.errors import PlanError

        raise PlanError(
            "a background watcher cannot read the compose file from standard input",
            hint="pass the file with -f PATH",
        )
    process = detached.start(
        project.name,
        [python, "-m", "composer", *detached_argv(rt.options, request)],
        cwd=rt.invocation.working_dir,
        environ=rt.invocation.environ,
    )
    return process.pid
