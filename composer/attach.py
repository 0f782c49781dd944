"""Attached ``up``: the services' logs, multiplexed, until the stack stops.

After ``up`` has converged the project, an attached session

* prints ``Attaching to api-1, db-1`` and then every line of the attached
  services, prefixed with the container's short name (``db-1  | ...``) in a
  colour per service, from one follower thread per container;
* follows containers that appear later (a scale-up from another terminal, a
  replacement) or start again (restart policies), found by looking at the
  project every ``POLL`` seconds;
* reports ``db-1 exited with code 0`` when a container stops, and ends when
  every monitored container has stopped;
* on the first Ctrl-C stops the stack gracefully (in the background, so the
  logs keep flowing), on the second kills it;
* with ``--abort-on-container-exit`` (or ``--exit-code-from``, or
  ``--abort-on-container-failure`` for a non-zero exit) stops the stack
  when the first container exits.

The exit code is Docker Compose's: 130 after Ctrl-C; the exit code of the
``--exit-code-from`` service's container (its real code, also when it was
stopped because another container exited, unlike docker/compose#11712); the
exit code of the container that caused an abort; else 0.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from composer.errors import BackendError, ComposerError

if TYPE_CHECKING:
    from composer.app_lifecycle import Runtime, UpRequest
    from composer.backends.base import Backend, ObservedContainer
    from composer.schema.model import Project

POLL = 1.0
"""Seconds between two looks for containers that appeared or started again."""

# Docker Compose's rotation of service colours (normal, then bright).
PALETTE = tuple(f"\x1b[{code}m" for code in (36, 33, 32, 35, 34, 96, 93, 92, 95, 94))
RESET = "\x1b[0m"


@dataclass(frozen=True, slots=True)
class LogFormat:
    """``--no-log-prefix``, ``--no-color``/``--ansi``, ``--timestamps``."""

    prefix: bool = True
    colour: bool = False
    timestamps: bool = False


def short_name(project: str, container: str) -> str:
    """``demo-web-1`` -> ``web-1``; a ``container_name`` stays as it is."""
    head = f"{project}-"
    return container[len(head) :] if container.startswith(head) else container


def format_time(value: float) -> str:
    """RFC 3339 in UTC with microseconds, as ``--timestamps`` shows it."""
    seconds, micros = divmod(round(value * 1_000_000), 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{micros:06d}Z"


class LogPrinter:
    """Writes whole prefixed lines to one stream from many threads."""

    def __init__(self, stream: TextIO, fmt: LogFormat) -> None:
        self._stream = stream
        self._fmt = fmt
        self._lock = threading.Lock()
        self._colours: dict[str, str] = {}
        self._width = 0

    def register(self, names: Iterable[tuple[str, str]]) -> None:
        """Announce ``(service, short name)`` pairs: fixes colours and the prefix width."""
        with self._lock:
            for service, name in names:
                if service not in self._colours:
                    self._colours[service] = PALETTE[len(self._colours) % len(PALETTE)]
                self._width = max(self._width, len(name))

    def line(self, service: str, name: str, text: str, when: float | None = None) -> None:
        self.register([(service, name)])
        if self._fmt.timestamps and when is not None:
            text = f"{format_time(when)} {text}"
        with self._lock:
            if self._fmt.prefix:
                prefix = f"{name.ljust(self._width)}  | "
                if self._fmt.colour:
                    prefix = f"{self._colours[service]}{prefix}{RESET}"
                text = prefix + text
            self._stream.write(text + "\n")
            self._stream.flush()

    def note(self, text: str) -> None:
        """A line of the session itself (``Attaching to ...``, ``... exited with code 0``)."""
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


@dataclass(frozen=True, slots=True)
class _Exit:
    service: str
    name: str
    id: str
    code: int | None


@dataclass
class _Tracked:
    service: str
    name: str
    live: bool = True
    ended_at: float | None = None


@dataclass
class Session:
    """One attached ``up``; ``run`` returns the exit code."""

    rt: Runtime
    backend: Backend
    project: Project
    request: UpRequest
    printer: LogPrinter
    fmt: LogFormat
    since: float
    poll: float = POLL
    _events: queue.Queue[_Exit] = field(default_factory=queue.Queue)
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _errors: list[ComposerError] = field(default_factory=list)
    _workers: list[threading.Thread] = field(default_factory=list)

    # --- who is watched -----------------------------------------------------

    @property
    def monitored(self) -> set[str]:
        """Services whose exits count: the named ones, else all."""
        return set(self.request.plan.services or self.project.services)

    @property
    def attached(self) -> set[str]:
        """Services whose logs are shown.

        ``--attach`` wins; otherwise the monitored services minus
        ``--no-attach`` and minus those with ``attach: false`` that were not
        named on the command line.
        """
        if self.request.attach:
            return set(self.request.attach)
        named = set(self.request.plan.services)
        quiet = {
            name
            for name, service in self.project.services.items()
            if service.attach is False and name not in named
        }
        return self.monitored - set(self.request.no_attach) - quiet

    # --- the session ----------------------------------------------------------

    def run(self) -> int:
        first = self._scan(initial=True)
        shown = [
            (c.service, short_name(self.project.name, c.name))
            for c, _since in first
            if c.service in self.attached
        ]
        self.printer.register(shown)
        self.printer.note(f"Attaching to {', '.join(sorted(name for _s, name in shown))}")
        for c, since in first:
            self._follow(c, since)
        watcher = threading.Thread(target=self._watch, name="composer-attach-watch", daemon=True)
        watcher.start()
        code = self._loop()
        self._closing.set()
        for worker in self._workers:
            worker.join(timeout=5)
        if self._errors:
            raise self._errors[0]
        return code

    def _loop(self) -> int:
        interrupts = 0
        cascade_code: int | None = None
        target_code: int | None = None
        stopping = False
        while True:
            try:
                try:
                    event = self._events.get(timeout=0.2)
                except queue.Empty:
                    if self._all_stopped():
                        break
                    continue
                if event.code is not None:
                    self.printer.note(f"{event.name} exited with code {event.code}")
                if event.service == self.request.exit_code_from and target_code is None:
                    target_code = event.code
                if not stopping and self._cascades(event):
                    stopping = True
                    cascade_code = event.code
                    self.rt.renderer.message("Aborting on container exit...")
                    self._background(self._stop)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    stopping = True
                    self.rt.renderer.message("Gracefully stopping... (press Ctrl+C again to force)")
                    self._background(self._stop)
                else:
                    self._background(self._kill)
        if interrupts:
            return 130
        if self.request.exit_code_from is not None:
            return target_code or 0
        return cascade_code or 0

    def _cascades(self, event: _Exit) -> bool:
        cascade = self.request.cascade
        if cascade == "exit":
            return True
        return cascade == "failure" and event.code not in (0, None)

    def _all_stopped(self) -> bool:
        with self._lock:
            if any(t.live for t in self._tracked.values()):
                return False
        if not self._events.empty():
            return False
        # One last look: a container in a restart loop is not done.
        return not any(c.state in ("running", "restarting", "paused") for c in self._containers())

    # --- stopping -------------------------------------------------------------

    def _background(self, action: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                action()
            except ComposerError as exc:
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=guarded, name="composer-attach-stop", daemon=True)
        thread.start()
        self._workers.append(thread)

    def _stop(self) -> None:
        from composer.app_lifecycle import converge
        from composer.planner.options import StopOptions

        options = StopOptions(self.request.plan.services, timeout=self.request.plan.timeout)
        converge(self.rt, self.backend, self.project, options)

    def _kill(self) -> None:
        from composer.app_lifecycle import converge
        from composer.planner.options import KillOptions

        converge(self.rt, self.backend, self.project, KillOptions(self.request.plan.services))

    # --- finding containers -------------------------------------------------

    def _containers(self) -> list[ObservedContainer]:
        try:
            observed = self.backend.observe(self.project.name)
        except BackendError:
            return []
        return [c for c in observed.containers if not c.oneoff and c.service in self.monitored]

    def _scan(self, *, initial: bool = False) -> list[tuple[ObservedContainer, float | None]]:
        """The containers to follow now: new ones, and known ones running again.

        A known container is followed again only when ``inspect`` confirms
        it runs: the engine's list can still say ``running`` for a moment
        after the container's exit was reported.
        """
        out: list[tuple[ObservedContainer, float | None]] = []
        for c in self._containers():
            with self._lock:
                known = self._tracked.get(c.id)
                if known is None:
                    if c.state == "created":
                        continue
                    self._tracked[c.id] = _Tracked(c.service, c.name)
                    out.append((c, self.since if initial else None))
                    continue
                again = not known.live and c.state in ("running", "restarting")
                since = known.ended_at
            if again and self._running(c.id):
                with self._lock:
                    known.live = True
                out.append((c, since))
        return out

    def _running(self, cid: str) -> bool:
        try:
            return self.backend.inspect_container(cid).state in ("running", "restarting")
        except BackendError:
            return False

    def _watch(self) -> None:
        while not self._closing.wait(self.poll):
            for c, since in self._scan():
                self._follow(c, since)

    def _follow(self, c: ObservedContainer, since: float | None) -> None:
        thread = threading.Thread(
            target=self._follower,
            args=(c.id, c.service, c.name, since),
            name=f"composer-attach-{c.name}",
            daemon=True,
        )
        thread.start()

    def _follower(self, cid: str, service: str, name: str, since: float | None) -> None:
        short = short_name(self.project.name, name)
        code: int | None = None
        try:
            if service in self.attached:
                stream = self.backend.logs(
                    cid, follow=True, since=since, timestamps=self.fmt.timestamps
                )
                for line in stream:
                    self.printer.line(service, short, line.text, line.time)
            code = self.backend.wait_container(cid)
        except BackendError:
            code = None  # removed under us: nothing more to say about it
        with self._lock:
            tracked = self._tracked[cid]
            tracked.live = False
            tracked.ended_at = time.time()
        self._events.put(_Exit(service, short, cid, code))


def run_attached(
    rt: Runtime,
    backend: Backend,
    project: Project,
    request: UpRequest,
    stream: TextIO,
    fmt: LogFormat,
    since: float,
) -> int:
    """Attach to the converged project and return ``up``'s exit code."""
    session = Session(rt, backend, project, request, LogPrinter(stream, fmt), fmt, since)
    return session.run()
