"""Carry out a Plan through a Backend, concurrently, as a DAG.

Each step starts as soon as its own prerequisites are done — there is no
barrier per dependency level, so a slow branch never holds back an unrelated
one. At most ``parallel`` steps run at once. The coordinator (the calling
thread) only schedules; step bodies run on worker threads because the
backends are blocking APIs.

Failures stay local: a failed step cancels its dependents (except where the
dependency was declared ``required: false``: then the dependent goes on and
a warning is reported), independent branches run to the end, and the result
says what ran, what failed and what never started. Ctrl-C in the calling
thread stops scheduling, tells waiting steps to give up, lets running backend
calls finish, and returns what exists so that a following ``down`` can
remove it.

The executor decides nothing: every choice was made by ``reconcile`` and is
in the step payloads. Time comes from an injected ``Clock`` so that tests run
in virtual time (see ``composer.clock`` for how the fake clock and the
thread pool cooperate).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from composer.backends.base import Backend, ContainerStatus, ProgressUpdate
from composer.backends.labels import LABEL_IMAGE
from composer.clock import Clock
from composer.errors import ComposerError, ExecutionError
from composer.events import Event, EventKind, Reporter
from composer.planner.plan import (
    AwaitReady,
    BuildImage,
    ContainerRef,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    KillContainer,
    PauseContainer,
    Plan,
    PullImage,
    RecreateContainer,
    RecreateNetwork,
    RemoveContainer,
    RemoveImage,
    RemoveNetwork,
    RemoveVolume,
    RestartContainer,
    StartContainer,
    Step,
    StopContainer,
    UnpauseContainer,
    Wait,
)
from composer.planner.ready_spec import ReadyProbe

if TYPE_CHECKING:
    from composer.ready_probes import ProbeRunner

POLL_INTERVAL = 0.5
"""Seconds between two looks at a container while waiting on it (as Compose)."""

MAX_WORKERS = 128
"""Worker threads when no ``parallel`` limit is given."""

Status = Literal["done", "skipped", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened to one step; times are on the executor's clock."""

    step: Step
    status: Status
    text: str = ""
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What ran, what failed, what was left, and the containers that now exist.

    ``outcomes`` is in order of completion (cancelled steps last);
    ``containers`` maps the name of every container the run created to its id;
    ``probes`` the name of every container probed to its last probe results.
    """

    outcomes: tuple[StepOutcome, ...]
    warnings: tuple[str, ...] = ()
    interrupted: bool = False
    containers: Mapping[str, str] = field(default_factory=dict)
    probes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def _with(self, *statuses: Status) -> list[StepOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def done(self) -> list[Step]:
        """Steps that succeeded (or were skipped as already up to date)."""
        return [o.step for o in self._with("done", "skipped")]

    @property
    def failed(self) -> list[StepOutcome]:
        return self._with("failed")

    @property
    def cancelled(self) -> list[Step]:
        """Steps that never ran."""
        return [o.step for o in self._with("cancelled")]

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.failed and not self.cancelled

    def outcome(self, step_id: str) -> StepOutcome:
        for o in self.outcomes:
            if o.step.id == step_id:
                return o
        raise KeyError(step_id)

    def raise_for_failure(self) -> None:
        """Raise ExecutionError describing the failures, if there were any."""
        if self.ok:
            return
        lines = [f"{o.step.resource} {o.step.action} failed: {o.text}" for o in self.failed]
        if self.interrupted:
            lines.append("interrupted")
        left = [f"{s.resource} {s.action}" for s in self.cancelled]
        hint = "not started: " + ", ".join(left) if left else None
        raise ExecutionError("\n".join(lines) or "the run did not finish", hint=hint)


class _Cancelled(Exception):
    """A waiting step was told to give up (Ctrl-C)."""


class _Run:
    """The state of one execution, shared by the coordinator and the step bodies."""

    def __init__(
        self,
        backend: Backend,
        reporter: Reporter,
        clock: Clock,
        wait_timeout: float | None,
        poll_interval: float,
        run_probes: bool = True,
    ) -> None:
        self.backend = backend
        self.run_probes = run_probes
        self.probes: dict[str, ProbeRunner] = {}
        self.reporter = reporter
        self.clock = clock
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ids: dict[str, str] = {}
        self.created: dict[str, str] = {}
        self.results: dict[str, str] = {}
        self.warnings: list[str] = []

    # --- reporting ---------------------------------------------------------

    def emit(self, kind: EventKind, step: Step, text: str = "", **extra: int | None) -> None:
        self.reporter.emit(
            Event(kind, step.resource, step.action, self.clock.now(), text, step.id, **extra)
        )

    def warn(self, step: Step, text: str) -> None:
        with self.lock:
            self.warnings.append(text)
        self.emit("warning", step, text)

    def progress(self, step: Step) -> Callable[[ProgressUpdate], None]:
        def report(update: ProgressUpdate) -> None:
            text = f"{update.id}: {update.status}" if update.id else update.status
            self.emit("progress", step, text, current=update.current, total=update.total)

        return report

    # --- container ids -----------------------------------------------------

    def resolve(self, ref: ContainerRef) -> str:
        """The id of a container: observed, or created earlier in this run."""
        with self.lock:
            found = self.ids.get(ref.name)
        if found is not None:
            return found
        if ref.id is not None:
            return ref.id
        raise ExecutionError(f"container {ref.name} does not exist")

    def register(self, name: str, id: str) -> None:
        with self.lock:
            self.ids[name] = id
            self.created[name] = id

    def image_label(self, spec_step: str | None, labels: Mapping[str, str]) -> dict[str, str]:
        merged = dict(labels)
        if spec_step is not None:
            with self.lock:
                image_id = self.results.get(spec_step)
            if image_id:
                merged[LABEL_IMAGE] = image_id
        return merged

    # --- waiting on dependencies ------------------------------------------

    def wait_for(self, step: Step, waits: tuple[Wait, ...]) -> None:
        for w in waits:
            try:
                self._wait_one(w)
            except _Cancelled:
                raise
            except ComposerError as exc:
                if w.required:
                    raise
                self.warn(step, f"optional dependency {w.service!r}: {exc.message}")

    def _wait_one(self, w: Wait) -> None:
        if w.condition == "service_started":
            return
        if not w.containers:
            raise ExecutionError(f"missing dependency {w.service}")
        what = "healthy" if w.condition == "service_healthy" else "completed"
        self._poll(
            list(w.containers), lambda ref: self._satisfied(w, ref), f"{w.service} to be {what}"
        )

    def _poll(
        self, refs: list[ContainerRef], check: Callable[[ContainerRef], bool], what: str
    ) -> None:
        """Look at ``refs`` every poll interval until ``check`` holds for all of them."""
        deadline = None if self.wait_timeout is None else self.clock.now() + self.wait_timeout
        pending = refs
        while True:
            if self.stop.is_set():
                raise _Cancelled
            pending = [ref for ref in pending if not check(ref)]
            if not pending:
                return
            if deadline is not None and self.clock.now() >= deadline:
                raise ExecutionError(
                    f"timed out waiting for {what}" + self._probe_note(pending),
                    hint="raise the wait timeout or check the logs",
                )
            delay = self.poll_interval
            if deadline is not None:
                delay = min(delay, max(deadline - self.clock.now(), 0.0))
            self.clock.sleep(delay)

    def _probe_passes(self, ref: ContainerRef, probe: ReadyProbe) -> bool:
        """One look through the container's host-side readiness probe."""
        if not self.run_probes:
            return True
        from composer.ready_probes import ProbeRunner

        container_id = self.resolve(ref)
        with self.lock:
            runner = self.probes.get(ref.name)
            if runner is None:
                runner = ProbeRunner(probe, self.backend, container_id, ref.name, self.clock)
                self.probes[ref.name] = runner
        return runner.check()

    def _probe_note(self, refs: list[ContainerRef]) -> str:
        with self.lock:
            seen = [self.probes[r.name] for r in refs if r.name in self.probes]
        notes = [r.history[-1].text for r in seen if r.history]
        return f" (last probe: {notes[-1]})" if notes else ""

    def _ready(self, ref: ContainerRef, payload: AwaitReady) -> bool:
        """``up --wait``: running (healthy when checked, probe passed), or exited 0 when
        ``completed`` or a one-shot."""
        completed, probe = payload.completed, payload.probe
        status = self.backend.inspect_container(self.resolve(ref))
        if status.state in ("exited", "dead"):
            if (completed or payload.one_shot) and status.exit_code == 0:
                return True
            raise ExecutionError(f"container {ref.name} exited ({status.exit_code})")
        if status.state == "paused":
            raise ExecutionError(
                f"container {ref.name} is paused", hint="unpause it first: composer unpause"
            )
        if completed or status.state != "running":
            return False
        if status.health == "unhealthy":
            raise ExecutionError(f"container {ref.name} is unhealthy")
        if status.health not in (None, "healthy"):
            return False
        return probe is None or self._probe_passes(ref, probe)

    def _satisfied(self, w: Wait, ref: ContainerRef) -> bool:
        status: ContainerStatus = self.backend.inspect_container(self.resolve(ref))
        if status.state == "created":
            # Its own start step has settled already: it failed or was cancelled.
            raise ExecutionError(f"container {ref.name} was not started")
        if status.state == "paused":
            # A frozen container never changes state: waiting would never end.
            raise ExecutionError(
                f"container {ref.name} is paused",
                hint=f"unpause it first: composer unpause {w.service}",
            )
        if w.condition == "service_completed_successfully":
            if status.state in ("exited", "dead"):
                if status.exit_code == 0:
                    return True
                raise ExecutionError(
                    f"{w.service} did not complete successfully: exit {status.exit_code}"
                )
            return False
        if status.state in ("exited", "dead"):
            raise ExecutionError(f"container {ref.name} exited ({status.exit_code})")
        if status.health == "healthy":
            return True
        if status.health == "unhealthy":
            raise ExecutionError(f"container {ref.name} is unhealthy")
        if status.health is None and status.state == "running":
            if w.probe is not None:
                return self._probe_passes(ref, w.probe)
            raise ExecutionError(
                f"container {ref.name} has no healthcheck configured",
                hint="add a healthcheck, or a host-side probe: x-composer: {ready: {tcp: PORT}}",
            )
        return False

    # --- step bodies ------------------------------------------------------

    def run(self, step: Step) -> Status:
        """Carry out one step on a worker thread; returns done or skipped."""
        if step.guard is not None:
            with self.lock:
                produced = self.results.get(step.guard.step)
            if produced == step.guard.unchanged_id:
                return "skipped"
        result = self._dispatch(step)
        if result is not None:
            with self.lock:
                self.results[step.id] = result
        return "done"

    def _dispatch(self, step: Step) -> str | None:
        """Networks, volumes and images here; containers in ``_containers``."""
        b = self.backend
        match step.payload:
            case CreateNetwork(spec):
                b.create_network(spec)
            case RecreateNetwork(spec):
                b.remove_network(spec.name)
                b.create_network(spec)
            case RemoveNetwork(name):
                b.remove_network(name)
            case CreateVolume(spec):
                b.create_volume(spec)
            case RemoveVolume(name):
                b.remove_volume(name)
            case PullImage(ref):
                return b.pull_image(ref, self.progress(step))
            case BuildImage(spec):
                return b.build_image(spec, self.progress(step))
            case RemoveImage(ref):
                b.remove_image(ref)
            case CreateContainer(spec, image_step):
                labels = self.image_label(image_step, spec.labels)
                new_id = b.create_container(replace(spec, labels=labels))
                self.register(spec.name, new_id)
                return new_id
            case RecreateContainer(spec, old, temp_name, timeout, image_step):
                labels = self.image_label(image_step, spec.labels)
                new_id = b.create_container(replace(spec, name=temp_name, labels=labels))
                old_id = self.resolve(old)
                b.stop_container(old_id, timeout)
                b.remove_container(old_id)
                b.rename_container(new_id, spec.name)
                self.register(spec.name, new_id)
                return new_id
            case _:
                self._containers(step)
        return None

    def _containers(self, step: Step) -> None:
        """The verbs on existing containers."""
        b = self.backend
        match step.payload:
            case StartContainer(ref, waits):
                self.wait_for(step, waits)
                b.start_container(self.resolve(ref))
            case StopContainer(ref, timeout):
                b.stop_container(self.resolve(ref), timeout)
            case RestartContainer(ref, timeout, waits):
                cid = self.resolve(ref)
                b.stop_container(cid, timeout)
                self.wait_for(step, waits)
                b.start_container(cid)
            case KillContainer(ref, signal):
                b.kill_container(self.resolve(ref), signal)
            case RemoveContainer(ref, stop_timeout, volumes, force):
                cid = self.resolve(ref)
                if stop_timeout is not None:
                    b.stop_container(cid, stop_timeout)
                b.remove_container(cid, force=force, volumes=volumes)
                with self.lock:
                    self.ids.pop(ref.name, None)
                    self.created.pop(ref.name, None)
            case PauseContainer(ref):
                b.pause_container(self.resolve(ref))
            case UnpauseContainer(ref):
                b.unpause_container(self.resolve(ref))
            case AwaitReady(ref, completed) as payload:
                what = "completed" if completed else "ready"
                self._poll([ref], lambda r: self._ready(r, payload), f"{ref.name} to be {what}")
            case _:
                raise ExecutionError(f"cannot carry out {step.action} of {step.resource}")


class _Scheduler:
    """The coordinator's bookkeeping: which steps wait on what, which may start."""

    def __init__(self, plan: Plan) -> None:
        self.steps = {s.id: s for s in plan.steps}
        self.waiting_on = {s.id: len(s.deps) for s in plan.steps}
        self.dependents: dict[str, list[str]] = {s.id: [] for s in plan.steps}
        for s in plan.steps:
            for d in sorted(s.deps):
                self.dependents[d].append(s.id)
        self.ready: deque[str] = deque(s.id for s in plan.steps if not s.deps)
        self.settled: set[str] = set()

    def succeeded(self, step_id: str) -> None:
        self.settled.add(step_id)
        for nxt in self.dependents[step_id]:
            self._release(nxt)

    def _release(self, step_id: str) -> None:
        if step_id in self.settled:
            return
        self.waiting_on[step_id] -= 1
        if self.waiting_on[step_id] == 0:
            self.ready.append(step_id)

    def fell_through(self, step_id: str) -> tuple[list[str], list[tuple[str, str]]]:
        """Step ``step_id`` failed or was cancelled.

        Returns the steps cancelled as a consequence, and the (step, failed
        prerequisite) pairs that go on with a warning because the prerequisite
        was optional.
        """
        cancelled: list[str] = []
        tolerated: list[tuple[str, str]] = []
        queue = deque([step_id])
        self.settled.add(step_id)
        while queue:
            current = queue.popleft()
            for nxt in self.dependents[current]:
                if nxt in self.settled:
                    continue
                if current in self.steps[nxt].optional_deps:
                    tolerated.append((nxt, current))
                    self._release(nxt)
                    continue
                self.settled.add(nxt)
                cancelled.append(nxt)
                queue.append(nxt)
        return cancelled, tolerated

    def unsettled(self) -> list[str]:
        return [i for i in self.steps if i not in self.settled]


def execute(
    plan: Plan,
    backend: Backend,
    reporter: Reporter,
    *,
    parallel: int | None,
    clock: Clock,
    wait_timeout: float | None = None,
    poll_interval: float = POLL_INTERVAL,
    run_probes: bool = True,
) -> ExecutionResult:
    """Carry out ``plan``; see the module notes. Never raises for a failed step.

    ``parallel`` bounds how many steps run at once (None or a value below 1:
    no bound). ``wait_timeout`` bounds each wait on a dependency condition.
    ``run_probes=False`` counts ``x-composer.ready`` probes as passed (a dry
    run has no real ports to probe).
    """
    limit = parallel if parallel is not None and parallel > 0 else MAX_WORKERS
    limit = max(1, min(limit, len(plan.steps) or 1))
    run = _Run(backend, reporter, clock, wait_timeout, poll_interval, run_probes)
    sched = _Scheduler(plan)
    outcomes: list[StepOutcome] = []
    started: dict[str, float] = {}
    running: dict[Future[Status], str] = {}
    interrupted = False

    def settle_failure(step_id: str) -> None:
        cancelled, tolerated = sched.fell_through(step_id)
        failed = sched.steps[step_id]
        for nxt, _prereq in tolerated:
            run.warn(
                sched.steps[nxt],
                f"optional dependency {failed.resource} {failed.action} did not succeed",
            )
        for nxt in cancelled:
            step = sched.steps[nxt]
            text = f"{failed.resource} {failed.action} did not succeed"
            run.emit("cancelled", step, text)
            outcomes.append(StepOutcome(step, "cancelled", text))

    def finish(future: Future[Status], step_id: str) -> None:
        step = sched.steps[step_id]
        now = clock.now()
        try:
            status = future.result()
        except _Cancelled:
            run.emit("cancelled", step, "interrupted")
            outcomes.append(StepOutcome(step, "cancelled", "interrupted", started[step_id], now))
            settle_failure(step_id)
            return
        except Exception as exc:  # every failure is reported, whatever raised it
            text = exc.message if isinstance(exc, ComposerError) else f"{type(exc).__name__}: {exc}"
            run.emit("error", step, text)
            outcomes.append(StepOutcome(step, "failed", text, started[step_id], now))
            settle_failure(step_id)
            return
        run.emit("done", step, "up to date" if status == "skipped" else "")
        outcomes.append(StepOutcome(step, status, "", started[step_id], now))
        sched.succeeded(step_id)

    def body(step: Step) -> Status:
        return run.run(step)

    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="composer-step") as pool:

        def launch() -> None:
            # Announce every new task to the clock before any of them can sleep.
            batch: list[str] = []
            while sched.ready and len(running) + len(batch) < limit and not interrupted:
                batch.append(sched.ready.popleft())
            for _ in batch:
                clock.begin_task()
            for step_id in batch:
                step = sched.steps[step_id]
                started[step_id] = clock.now()
                run.emit("start", step)
                running[pool.submit(body, step)] = step_id

        launch()
        while running:
            try:
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupted = True
                run.stop.set()
                continue
            for future in finished:
                finish(future, running.pop(future))
            launch()
            for _ in finished:
                clock.end_task()

    for step_id in sched.unsettled():
        step = sched.steps[step_id]
        text = "interrupted" if interrupted else "not reached"
        run.emit("cancelled", step, text)
        outcomes.append(StepOutcome(step, "cancelled", text))
    probes = {name: tuple(runner.describe()) for name, runner in run.probes.items()}
    return ExecutionResult(
        tuple(outcomes), tuple(dict.fromkeys(run.warnings)), interrupted, dict(run.created), probes
    )
