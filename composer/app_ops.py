"""Use cases of the verbs that look at a running project: ps, port, top, images, ls,
wait, events and logs.

Each function takes an opened ``Backend`` and a ``Target`` (the project's
name, and the loaded project when there are compose files) and returns data;
the CLI renders it. As in Docker Compose these verbs work from the engine's
labels, so most of them also run with ``-p NAME`` alone, without any compose
file. Nothing here prints or reads the process environment.

The verbs that run things (run, exec, cp) live in ``composer.app_ops_run``,
pull/push/build in ``composer.app_ops_images``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from composer.errors import ConfigError, NotFound, PlanError

if TYPE_CHECKING:
    from composer.backends.base import (
        Backend,
        EngineEvent,
        ImageInfo,
        LogLine,
        ObservedContainer,
    )
    from composer.options import GlobalOptions, Invocation
    from composer.schema.model import Project

Warn = Callable[[str], None]
OneOff = Literal["exclude", "include", "only"]

_NO_FILES = "no configuration file provided"
_RUNNING_STATES = frozenset({"running", "paused", "restarting"})


# --- the project a verb acts on ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The project a verb acts on: its name, and the model when files were found."""

    name: str
    project: Project | None = None


def resolve_target(
    options: GlobalOptions,
    invocation: Invocation,
    warn: Warn,
    *,
    require_project: bool = False,
) -> Target:
    """Load the project; without compose files, fall back to ``-p NAME`` as Compose does.

    Verbs that need the model (run, pull, push, build) pass ``require_project``.
    """
    from composer.app import load_options
    from composer.schema.loader import load_project

    try:
        project = load_project(load_options(options, invocation), warn)
    except ConfigError as error:
        name = options.project_name or invocation.environ.get("COMPOSE_PROJECT_NAME")
        if require_project or not name or not error.message.startswith(_NO_FILES):
            raise
        return Target(name.lower())
    return Target(project.name, project)


def check_services(target: Target, services: Iterable[str]) -> None:
    """Refuse service names the project does not define (when the project is known)."""
    if target.project is None:
        return
    from composer.app import _require_services

    _require_services(target.project, list(services))


def select_containers(
    backend: Backend,
    target: Target,
    services: Sequence[str] = (),
    *,
    oneoff: OneOff = "exclude",
    running_only: bool = False,
) -> list[ObservedContainer]:
    """The project's containers, by service and one-off status, sorted by name."""
    check_services(target, services)
    observed = backend.observe(target.name)
    wanted = set(services)
    out = []
    for c in observed.containers:
        if wanted and c.service not in wanted:
            continue
        if (oneoff == "exclude" and c.oneoff) or (oneoff == "only" and not c.oneoff):
            continue
        if running_only and c.state not in _RUNNING_STATES:
            continue
        out.append(c)
    return sorted(out, key=lambda c: c.name)


def pick_container(
    containers: Sequence[ObservedContainer], service: str, index: int | None
) -> ObservedContainer:
    """One container of ``service``: replica ``index``, else the lowest number.

    One-off containers come after the replicas, as in Docker Compose.
    """
    mine = [c for c in containers if c.service == service]
    if index:
        mine = [c for c in mine if c.number == index and not c.oneoff]
    if not mine:
        if index:
            raise NotFound(f'service "{service}" is not running container #{index}')
        raise NotFound(f'service "{service}" is not running')
    mine.sort(key=lambda c: (c.oneoff, c.number or 0, c.name))
    return mine[0]


def display_name(container: ObservedContainer, project: str) -> str:
    """The name logs and events show: ``web-1``, or a ``container_name`` as written."""
    prefix = f"{project}-"
    default = f"{prefix}{container.service}-{container.number}"
    if container.name == default or (container.oneoff and container.name.startswith(prefix)):
        return container.name[len(prefix) :]
    return container.name


# --- ps -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsOptions:
    """``ps``: ``all`` adds stopped and one-off containers; ``status`` filters by state."""

    services: tuple[str, ...] = ()
    all: bool = False
    status: tuple[str, ...] = ()
    orphans: bool = True


def parse_ps_filter(value: str) -> tuple[str, ...]:
    """``--filter status=running`` → ``("running",)``; other keys are refused."""
    key, sep, val = value.partition("=")
    if not sep:
        raise PlanError("arguments to --filter should be in form KEY=VAL")
    if key != "status":
        raise PlanError(f"unknown filter {key}", hint="supported filters: status")
    return (val,)


def ps(backend: Backend, target: Target, options: PsOptions) -> list[ObservedContainer]:
    """The containers ``docker compose ps`` would list, sorted by name."""
    services = list(options.services)
    if not services and not options.orphans and target.project is not None:
        services = sorted(target.project.services)
    everything = options.all or bool(options.status)
    found = select_containers(
        backend,
        target,
        services,
        oneoff="include" if everything else "exclude",
        running_only=not everything,
    )
    if options.status:
        found = [c for c in found if c.state in options.status]
    return found


# --- port -----------------------------------------------------------------------


def port(
    backend: Backend,
    target: Target,
    service: str,
    private_port: int,
    *,
    protocol: str = "tcp",
    index: int | None = None,
) -> tuple[str, int]:
    """The host address and port that ``private_port/protocol`` of ``service`` is published on."""
    containers = select_containers(backend, target, [service], oneoff="include", running_only=True)
    chosen = pick_container(containers, service, index)
    bindings = backend.container_ports(chosen.id)
    for b in bindings:
        if b.target == private_port and b.protocol == protocol and b.host_port is not None:
            return b.host_ip or "0.0.0.0", b.host_port
    listed = ", ".join(f"{b.target}/{b.protocol}" for b in bindings)
    raise NotFound(f"no port {private_port}/{protocol} for container {chosen.name}: {listed}")


# --- top ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessTable:
    """The processes of one container, as ``ps`` inside it printed them."""

    container: str
    service: str
    replica: str
    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def top(backend: Backend, target: Target, services: Sequence[str] = ()) -> list[ProcessTable]:
    """The processes of every running container of the selected services."""
    out = []
    for c in select_containers(backend, target, services, running_only=True):
        titles, rows = backend.top(c.id)
        out.append(
            ProcessTable(
                container=c.name,
                service=c.service,
                replica=str(c.number) if c.number is not None else "",
                titles=tuple(titles),
                rows=tuple(tuple(r) for r in rows),
            )
        )
    return out


# --- images ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """The image one container runs; ``info`` is ``None`` when it is gone from the engine."""

    container: str
    image: str
    info: ImageInfo | None

    @property
    def repository_tag(self) -> tuple[str, str]:
        """``("bb", "latest")``: the tag the container was created with, else the image's first."""
        candidates = []
        if self.info is not None:
            candidates = [t for t in self.info.repo_tags if t == self.image] or list(
                self.info.repo_tags
            )
        if not candidates and not self.image.startswith("sha256:"):
            candidates = [self.image]
        if not candidates:
            return "", ""
        ref = candidates[0].split("@", 1)[0]
        name, sep, tag = ref.rpartition(":")
        if not sep or "/" in tag:
            return ref, "latest"
        return name, tag


def images(backend: Backend, target: Target, services: Sequence[str] = ()) -> list[ContainerImage]:
    """The image of every container of the project (stopped ones included), by container."""
    containers = select_containers(backend, target, services, oneoff="include")
    refs = list(dict.fromkeys(c.image_id or c.image for c in containers))
    found = {info.ref: info for info in backend.list_images(refs)} if refs else {}
    return [ContainerImage(c.name, c.image, found.get(c.image_id or c.image)) for c in containers]


# --- ls -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """One line of ``ls``: ``status`` like ``exited(1), running(2)``."""

    name: str
    status: str
    config_files: str


def list_projects(
    backend: Backend, *, all: bool = False, name_filters: Sequence[str] = ()
) -> list[ProjectRow]:
    """Projects with containers on the engine; without ``all`` only those with running ones.

    ``name_filters`` are ``name=...`` values; a project matches one exactly or
    as a regular expression, as in Docker Compose.
    """
    rows = []
    for summary in backend.list_projects():
        counts = {
            state: n
            for state, n in summary.status_counts.items()
            if n and (all or state in _RUNNING_STATES)
        }
        if not counts:
            continue
        if name_filters and not any(_name_matches(f, summary.name) for f in name_filters):
            continue
        status = ", ".join(f"{state}({counts[state]})" for state in sorted(counts))
        rows.append(ProjectRow(summary.name, status, summary.config_files))
    return sorted(rows, key=lambda r: r.name)


def parse_ls_filter(value: str) -> str:
    """``--filter name=demo`` → ``demo``; other keys are refused."""
    key, sep, val = value.partition("=")
    if not sep:
        raise PlanError("bad format of filter (expected name=value)")
    if key != "name":
        raise PlanError(f"invalid filter '{key}'", hint="supported filters: name")
    return val


def _name_matches(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


# --- wait -----------------------------------------------------------------------


def wait(
    backend: Backend,
    target: Target,
    services: Sequence[str],
    on_exit: Callable[[ObservedContainer, int], None],
) -> int:
    """Block until every running container of ``services`` stops; the last exit code.

    ``on_exit`` is told of each container as it stops (from a worker thread).
    """
    containers = select_containers(backend, target, services, oneoff="include", running_only=True)
    if not containers:
        raise NotFound(f'no containers for project "{target.name}"')
    lock = threading.Lock()
    codes: list[int] = []
    errors: list[BaseException] = []

    def one(c: ObservedContainer) -> None:
        try:
            code = backend.wait_container(c.id)
        except Exception as exc:  # handed to the caller below
            with lock:
                errors.append(exc)
            return
        with lock:
            codes.append(code)
            on_exit(c, code)

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in containers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return codes[-1] if codes else 0


# --- events ---------------------------------------------------------------------


def events(
    backend: Backend,
    target: Target,
    services: Sequence[str] = (),
    *,
    since: float | None = None,
    until: float | None = None,
) -> Iterator[EngineEvent]:
    """The project's container events (not of one-offs), with compose labels left out."""
    from dataclasses import replace

    check_services(target, services)
    wanted = set(services)
    for event in backend.events(target.name, since=since, until=until):
        if event.type != "container":
            continue
        if event.attributes.get("com.docker.compose.oneoff") == "True":
            continue
        if wanted and event.service not in wanted:
            continue
        attributes = {
            k: v for k, v in event.attributes.items() if not k.startswith("com.docker.compose.")
        }
        yield replace(event, attributes=attributes)


# --- logs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogsOptions:
    """``logs``; ``since``/``until`` are epoch seconds, ``tail`` ``None`` for all lines."""

    services: tuple[str, ...] = ()
    follow: bool = False
    since: float | None = None
    until: float | None = None
    tail: int | None = None
    timestamps: bool = False
    index: int | None = None


LogSink = Callable[[str, "LogLine"], None]
"""Receives ``(display name, line)``; called under a lock, one line at a time."""


def logs(
    backend: Backend,
    target: Target,
    options: LogsOptions,
    sink: LogSink,
    announce: Callable[[list[str]], None] | None = None,
) -> None:
    """Send the selected containers' output to ``sink``.

    Without ``follow`` each container's lines come in turn, containers by
    name. With ``follow`` every container streams at once, containers that
    start later (a restart, a scale-up) are picked up from the engine's
    events, and the call returns when every stream has ended. ``announce``
    learns the names of the containers before their first line, so that
    prefixes can be aligned from the start.
    """
    if options.index and len(options.services) != 1:
        raise PlanError("--index requires one service to be selected")
    services = list(options.services)
    if not services and target.project is not None:
        services = [n for n, s in target.project.services.items() if s.attach is not False]
    containers = select_containers(backend, target, services)
    if options.index:
        containers = [pick_container(containers, services[0], options.index)]
    if announce is not None:
        announce([display_name(c, target.name) for c in containers])
    lock = threading.Lock()

    def deliver(name: str, line: LogLine) -> None:
        with lock:
            sink(name, line)

    if not options.follow:
        for c in containers:
            for line in backend.logs(
                c.id,
                since=options.since,
                until=options.until,
                tail=options.tail,
                timestamps=options.timestamps,
            ):
                deliver(display_name(c, target.name), line)
        return
    _follow(backend, target, options, containers, deliver, services)


def _follow(
    backend: Backend,
    target: Target,
    options: LogsOptions,
    containers: Sequence[ObservedContainer],
    deliver: Callable[[str, LogLine], None],
    services: Sequence[str],
) -> None:
    count_lock = threading.Lock()
    running: dict[str, int] = {"n": 0}
    done = threading.Event()

    def stream(container_id: str, name: str, since: float | None, tail: int | None) -> None:
        try:
            for line in backend.logs(
                container_id,
                follow=True,
                since=since,
                until=options.until,
                tail=tail,
                timestamps=options.timestamps,
            ):
                deliver(name, line)
        except NotFound:
            pass
        finally:
            with count_lock:
                running["n"] -= 1
                if running["n"] == 0:
                    done.set()

    def launch(container_id: str, name: str, since: float | None, tail: int | None) -> None:
        with count_lock:
            running["n"] += 1
            done.clear()
        threading.Thread(target=stream, args=(container_id, name, since, tail), daemon=True).start()

    for c in containers:
        launch(c.id, display_name(c, target.name), options.since, options.tail)

    def watch() -> None:
        wanted = set(services)
        for event in backend.events(target.name):
            if event.type != "container" or event.action != "start":
                continue
            if event.attributes.get("com.docker.compose.oneoff") == "True":
                continue
            if wanted and event.service not in wanted:
                continue
            number = event.attributes.get("com.docker.compose.container-number", "")
            default = f"{target.name}-{event.service}-{number}"
            name = event.name[len(target.name) + 1 :] if event.name == default else event.name
            # Only what the (re)started container writes from now on.
            launch(event.id, name, event.time, None)

    if not options.index:
        threading.Thread(target=watch, daemon=True).start()
    if not containers:
        return
    while not done.wait(0.2):
        pass


# --- time values ------------------------------------------------------------------

_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(value: str) -> float | None:
    """Seconds of a Go duration (``1h30m``, ``42m``, ``1.5s``), or ``None`` if it is not one."""
    text = value.strip()
    if text in ("0", "") or not _GO_DURATION.match(text):
        return 0.0 if text == "0" else None
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * _GO_UNITS[unit]
    return total


def parse_timestamp(value: str, now: float, flag: str = "--since") -> float:
    """Epoch seconds of a ``--since``/``--until`` value, as the docker CLI reads them.

    Accepted: a Go duration counted back from ``now`` (``10m``), a Unix time
    (``1700000000.5``) or an RFC 3339 date or time (``2024-01-02``,
    ``2024-01-02T13:23:37Z``); a time without zone is local time.
    """
    text = value.strip()
    duration = parse_go_duration(text)
    if duration is not None:
        return now - duration
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PlanError(
            f"{flag}: invalid time {value!r}",
            hint="use a duration (10m, 1h30m), a Unix time or a date (2024-01-02T13:23:37Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def parse_tail(value: str) -> int | None:
    """``-n all`` (or a negative number) → ``None``; else the number of lines."""
    if value.strip().lower() == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise PlanError(
            f"--tail: invalid value {value!r}", hint="a number of lines, or all"
        ) from None
    return None if number < 0 else number
