"""Use cases of ``pull``, ``push`` and ``build``: images of the project's services.

Each image is one resource (``image <ref>``) whose progress is reported as
``composer.events.Event`` records, the same records the executor emits, so
that the CLI's progress renderers show these verbs like ``up``. Images are
handled concurrently, up to ``parallel`` at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from composer.errors import ComposerError, ExecutionError, PlanError
from composer.events import Event, EventKind, Reporter

if TYPE_CHECKING:
    from composer.app_ops import Target
    from composer.backends.base import Backend, ProgressUpdate
    from composer.clock import Clock
    from composer.schema.model import Project


@dataclass(frozen=True, slots=True)
class PullOptions:
    services: tuple[str, ...] = ()
    ignore_failures: bool = False
    ignore_buildable: bool = False
    include_deps: bool = False


@dataclass(frozen=True, slots=True)
class PushOptions:
    services: tuple[str, ...] = ()
    ignore_failures: bool = False
    include_deps: bool = False


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """``build``; ``build_args`` override the files' args (``None``: unset, read from nowhere)."""

    services: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    build_args: Mapping[str, str] = field(default_factory=dict)
    with_dependencies: bool = False


class _Report:
    """Emits events for one image on the given clock."""

    def __init__(self, reporter: Reporter, clock: Clock, resource: str, action: str) -> None:
        self._reporter = reporter
        self._clock = clock
        self.resource = resource
        self.action = action

    def emit(self, kind: EventKind, text: str = "", **extra: int | None) -> None:
        self._reporter.emit(
            Event(kind, self.resource, self.action, self._clock.now(), text, None, **extra)
        )

    def progress(self, update: ProgressUpdate) -> None:
        text = f"{update.id}: {update.status}" if update.id else update.status
        self.emit("progress", text, current=update.current, total=update.total)


def _services(project: Project, names: Sequence[str], with_deps: bool) -> list[str]:
    from composer.app import _require_services, dependency_order
    from composer.planner.graph import select, service_graph

    _require_services(project, list(names))
    order = dependency_order(project)
    if not names:
        return order
    chosen = select(service_graph(project), names, with_deps=with_deps)
    return [n for n in order if n in chosen]


def _run_all(
    jobs: Sequence[tuple[_Report, Callable[[_Report], None]]],
    parallel: int,
    ignore_failures: bool,
) -> list[str]:
    """Run each job once; failures become error events (or warnings when ignored)."""
    failures: list[str] = []
    lock = threading.Lock()

    def one(report: _Report, job: Callable[[_Report], None]) -> None:
        report.emit("start")
        try:
            job(report)
        except ComposerError as exc:
            report.emit("warning" if ignore_failures else "error", exc.message)
            if not ignore_failures:
                with lock:
                    failures.append(f"{report.resource} {report.action} failed: {exc.message}")
            return
        report.emit("done")

    workers = parallel if parallel > 0 else max(1, len(jobs))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs) or 1))) as pool:
        for future in [pool.submit(one, r, j) for r, j in jobs]:
            future.result()
    return failures


def pull(
    backend: Backend,
    target: Target,
    options: PullOptions,
    reporter: Reporter,
    clock: Clock,
    parallel: int = -1,
) -> None:
    """Pull the image of every selected service that names one.

    Services whose ``pull_policy`` is ``build`` or ``never`` are skipped; with
    ``ignore_buildable`` so are services that have a ``build`` section, and a
    failed pull of a buildable service is only a warning.
    """
    project = _need(target)
    refs: dict[str, bool] = {}
    for name in _services(project, options.services, options.include_deps):
        svc = project.services[name]
        if not svc.image or svc.pull_policy in ("build", "never"):
            continue
        if svc.build is not None and options.ignore_buildable:
            continue
        refs[svc.image] = refs.get(svc.image, False) or svc.build is not None
    jobs = []
    for ref, buildable in refs.items():

        def job(report: _Report, ref: str = ref, buildable: bool = buildable) -> None:
            try:
                backend.pull_image(ref, report.progress)
            except ComposerError as exc:
                if not buildable:
                    raise
                report.emit("warning", f"{exc.message} (the service can be built)")

        jobs.append((_Report(reporter, clock, f"image {ref}", "pull"), job))
    _raise(_run_all(jobs, parallel, options.ignore_failures))


def push(
    backend: Backend,
    target: Target,
    options: PushOptions,
    reporter: Reporter,
    clock: Clock,
    parallel: int = -1,
) -> None:
    """Push the image (and extra build tags) of every service that is built and named."""
    project = _need(target)
    refs: list[str] = []
    for name in _services(project, options.services, options.include_deps):
        svc = project.services[name]
        if svc.build is None or not svc.image:
            continue
        for ref in (svc.image, *svc.build.tags):
            if ref not in refs:
                refs.append(ref)
    jobs = [
        (
            _Report(reporter, clock, f"image {ref}", "push"),
            lambda report, ref=ref: backend.push_image(ref, report.progress),
        )
        for ref in refs
    ]
    _raise(_run_all(jobs, parallel, options.ignore_failures))


def build(
    backend: Backend,
    target: Target,
    options: BuildOptions,
    reporter: Reporter,
    clock: Clock,
    parallel: int = -1,
) -> list[str]:
    """Build every selected service that has a ``build`` section; the tags built.

    Builds run in parallel, except that one reading another service's image
    (a ``service:NAME`` build context) waits for that build: level by level.
    """
    from composer.planner.reconcile_resources import with_build_contexts
    from composer.planner.specs import build_context_services

    project = _need(target)
    names = [
        n
        for n in with_build_contexts(
            project, _services(project, options.services, options.with_dependencies)
        )
        if project.services[n].build is not None
    ]
    level: dict[str, int] = {}
    for name in names:  # providers come first
        providers = [p for p in build_context_services(project, name) if p in level]
        level[name] = 1 + max((level[p] for p in providers), default=-1)
    tags = []
    for depth in range(max(level.values(), default=-1) + 1):
        batch = [n for n in names if level[n] == depth]
        tags += _build_batch(backend, project, batch, options, reporter, clock, parallel)
    return tags


def _build_batch(
    backend: Backend,
    project: Project,
    names: list[str],
    options: BuildOptions,
    reporter: Reporter,
    clock: Clock,
    parallel: int,
) -> list[str]:
    from composer.planner.specs import build_spec

    jobs = []
    tags = []
    for name in names:
        spec = build_spec(project, name)
        args = dict(spec.args)
        for key, value in options.build_args.items():
            args[key] = value
        spec = replace(
            spec,
            args=args,
            no_cache=spec.no_cache or options.no_cache,
            pull=spec.pull or options.pull,
        )
        tags.append(spec.tag)
        jobs.append(
            (
                _Report(reporter, clock, f"image {spec.tag}", "build"),
                lambda report, spec=spec: _discard(backend.build_image(spec, report.progress)),
            )
        )
    _raise(_run_all(jobs, parallel, ignore_failures=False))
    return tags


def parse_build_args(values: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``--build-arg KEY=VALUE``, or ``KEY`` alone to take the value from the environment."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise PlanError(f"--build-arg: invalid value {value!r}", hint="expected KEY=VALUE")
        if sep:
            out[key] = val
        elif key in environ:
            out[key] = environ[key]
    return out


def _discard(_: object) -> None:
    return None


def _need(target: Target) -> Project:
    if target.project is None:
        raise PlanError(f"project {target.name}: this verb needs the compose files")
    return target.project


def _raise(failures: list[str]) -> None:
    if failures:
        raise ExecutionError("\n".join(failures))
