"""Use cases of ``run``, ``exec`` and ``cp``: running commands in, and copying files to
and from, the project's containers.

``run`` reuses the planner for everything around the one-off container:
the service's networks, volumes and image and its dependencies are brought
up by an ``up`` plan over a stand-in copy of the service scaled to zero
(so the service's own containers are left alone), executed like ``up``.
Only the one-off container itself — named ``<project>-<service>-run-<slug>``
and labelled ``oneoff=True`` — is created here, from ``container_spec`` with
the flags of ``run`` applied.
"""

from __future__ import annotations

import io
import os
import secrets
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from composer.app_ops import OneOff, Target, pick_container, select_containers
from composer.errors import ExecutionError, NotFound, PlanError

if TYPE_CHECKING:
    from composer.backends.base import Backend, ContainerSpec, MountSpec, PortSpec
    from composer.clock import Clock
    from composer.events import Reporter
    from composer.planner.options import PullOption
    from composer.schema.model import Project

STAND_IN_SUFFIX = ".run"
"""Appended to the service's name for the stand-in the dependency plan is made over."""

POLL_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class Streams:
    """Binary standard streams handed to the engine (``None``: not attached)."""

    stdin: BinaryIO | None = None
    stdout: BinaryIO | None = None
    stderr: BinaryIO | None = None


# --- run ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``run SERVICE [COMMAND...]`` and its flags, as typed."""

    service: str
    command: tuple[str, ...] = ()
    detach: bool = False
    rm: bool = False
    name: str | None = None
    no_deps: bool = False
    tty: bool = False
    interactive: bool = True
    publish: tuple[str, ...] = ()
    service_ports: bool = False
    entrypoint: str | None = None
    user: str | None = None
    workdir: str | None = None
    volumes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    use_aliases: bool = False
    build: bool = False
    pull: PullOption | None = None
    remove_orphans: bool = False
    rm_deps: bool = False
    """With ``rm``: also remove the dependency containers this run created."""


@runtime_checkable
class RunsRemoved(Protocol):
    """A backend that runs an attached ``--rm`` one-off in the calling process: created,
    run with the streams attached and removed in one call (the native backend)."""

    def run_removed(
        self,
        spec: ContainerSpec,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> tuple[str, int]:
        """The one-off's id and exit code, once it ended and was removed."""
        ...


@dataclass(frozen=True, slots=True)
class RunResult:
    """The one-off container; ``exit_code`` is ``None`` when it was left running (``-d``)."""

    container_id: str
    name: str
    exit_code: int | None


def run(
    backend: Backend,
    target: Target,
    options: RunOptions,
    *,
    reporter: Reporter,
    clock: Clock,
    streams: Streams,
    parallel: int = -1,
    slug: str | None = None,
    attaching: Callable[[], None] | None = None,
) -> RunResult:
    """Bring up what the service needs, then create and run its one-off container.

    ``attaching`` is called once what the one-off needs is in place, just
    before its streams are attached (the CLI ends its progress display there
    and puts the terminal in raw mode for ``-t``).
    """
    project = _project(target)
    if options.service not in project.services:
        from composer.app import _require_services

        _require_services(project, [options.service])
    started = _prepare(backend, project, options, reporter, clock, parallel)
    in_process = options.rm and not options.detach and isinstance(backend, RunsRemoved)
    try:
        spec = one_off_spec(backend, project, options, slug or secrets.token_hex(32))
        if attaching is not None and not options.detach:
            attaching()
        if isinstance(backend, RunsRemoved) and in_process:
            container_id, code = backend.run_removed(
                spec,
                stdin=streams.stdin if options.interactive else None,
                stdout=streams.stdout,
                stderr=streams.stderr,
                tty=options.tty,
            )
        else:
            container_id = backend.create_container(spec)
    except BaseException:
        _remove_started(backend, options, started)
        raise
    if in_process:
        _remove_started(backend, options, started)
        return RunResult(container_id, spec.name, code)
    if options.detach:
        backend.start_container(container_id)
        return RunResult(container_id, spec.name, None)
    try:
        code = backend.attach_run(
            container_id,
            stdin=streams.stdin if options.interactive else None,
            stdout=streams.stdout,
            stderr=streams.stderr,
            tty=options.tty,
        )
    finally:
        if options.rm:
            backend.remove_container(container_id, force=True, volumes=True)
        _remove_started(backend, options, started)
    return RunResult(container_id, spec.name, code)


def _remove_started(backend: Backend, options: RunOptions, started: Mapping[str, str]) -> None:
    """``--rm --rm-deps``: remove the dependency containers this run created, dependents
    first (the reverse of the order they were created in)."""
    if not (options.rm and options.rm_deps):
        return
    for container_id in reversed(list(started.values())):
        backend.remove_container(container_id, force=True, volumes=True)


def _prepare(
    backend: Backend,
    project: Project,
    options: RunOptions,
    reporter: Reporter,
    clock: Clock,
    parallel: int,
) -> dict[str, str]:
    """Networks, volumes, the image and (unless ``no_deps``) the dependencies, as ``up`` would.

    Returns the containers the plan created (name to id), in creation order.
    """
    from composer.planner.options import UpOptions
    from composer.planner.reconcile import reconcile
    from composer.planner.specs import image_ref

    service = project.services[options.service]
    stand_in_name = options.service + STAND_IN_SUFFIX
    stand_in = service.model_copy(
        update={"image": image_ref(project, options.service), "container_name": None}
    )
    planned = project.model_copy(update={"services": {**project.services, stand_in_name: stand_in}})
    refs = sorted({image_ref(planned, name) for name in planned.services})
    observed = backend.observe(project.name, refs)
    plan = reconcile(
        planned,
        observed,
        UpOptions(
            services=(stand_in_name,),
            no_deps=options.no_deps,
            build=options.build,
            pull=options.pull,
            scale={stand_in_name: 0},
            remove_orphans=options.remove_orphans,
        ),
        now=clock.now(),
    )
    created: dict[str, str] = {}
    if plan.steps:  # the executor's imports are paid only when there is something to do
        from composer.planner.executor import execute

        result = execute(plan, backend, reporter, parallel=parallel, clock=clock)
        created = dict(result.containers)
        try:
            result.raise_for_failure()
        except ExecutionError:
            _remove_started(backend, options, created)
            raise
    if not options.no_deps:
        try:
            wait_for_dependencies(backend, project, options.service, clock)
        except BaseException:
            _remove_started(backend, options, created)
            raise
    return created


def wait_for_dependencies(backend: Backend, project: Project, service: str, clock: Clock) -> None:
    """Block until the service's dependencies meet their ``depends_on`` conditions."""
    depends_on = project.services[service].depends_on
    waiting = {d: c for d, c in depends_on.items() if c.condition != "service_started"}
    if not waiting:
        return
    containers = select_containers(backend, Target(project.name, project), ())
    for dep, rule in waiting.items():
        for c in (c for c in containers if c.service == dep):
            while True:
                status = backend.inspect_container(c.id)
                if rule.condition == "service_healthy":
                    if status.health == "healthy":
                        break
                    if status.health == "unhealthy" or status.state in ("exited", "dead"):
                        if not rule.required:
                            break
                        raise ExecutionError(
                            f"dependency failed to start: container {c.name} is unhealthy"
                        )
                elif status.state in ("exited", "dead"):
                    if status.exit_code == 0 or not rule.required:
                        break
                    raise ExecutionError(
                        f"service {dep} didn't complete successfully: exit {status.exit_code}"
                    )
                clock.sleep(POLL_INTERVAL)


def one_off_spec(
    backend: Backend, project: Project, options: RunOptions, slug: str
) -> ContainerSpec:
    """The one-off container's spec: the service's, with the flags of ``run`` applied."""
    from composer.backends import labels as lbl
    from composer.planner.specs import container_spec, image_ref

    ref = image_ref(project, options.service)
    image_id = backend.image_id(ref)
    if image_id is None:
        raise NotFound(f"image {ref} is not present", hint="pull or build it first")
    spec = container_spec(
        project,
        options.service,
        None,
        image_id=image_id,
        oneoff=True,
        slug=slug,
        name=options.name,
        use_aliases=options.use_aliases,
    )
    command = spec.command
    entrypoint = spec.entrypoint
    if options.entrypoint is not None:
        entrypoint = tuple(shlex.split(options.entrypoint))
        command = ()
    if options.command:
        command = options.command
    ports: tuple[PortSpec, ...] = spec.ports if options.service_ports else ()
    labels = dict(spec.labels)
    user_labels = parse_labels(options.labels)
    return replace(
        spec,
        command=command,
        entrypoint=entrypoint,
        environment=apply_env(spec.environment, options.env, project.environment),
        user=options.user or spec.user,
        working_dir=options.workdir or spec.working_dir,
        ports=ports + tuple(p for value in options.publish for p in parse_publish(value)),
        mounts=spec.mounts + tuple(parse_mount(project, v) for v in options.volumes),
        labels=lbl.merge_labels({**lbl.user_labels(labels), **user_labels}, _compose(labels)),
        restart=None,
        tty=options.tty,
        stdin_open=options.interactive,
    )


def _compose(labels: Mapping[str, str]) -> dict[str, str]:
    from composer.backends import labels as lbl

    return {k: v for k, v in labels.items() if lbl.is_compose_label(k)}


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """``-l KEY=VALUE`` flags."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise PlanError("label must be set as KEY=VALUE")
        out[key] = val
    return out


def apply_env(
    base: Mapping[str, str], values: Sequence[str], lookup: Mapping[str, str]
) -> dict[str, str]:
    """``-e KEY=VALUE`` over the service's environment; ``-e KEY`` takes the value from
    ``lookup`` (the project's interpolation environment) and is dropped when unset."""
    env = dict(base)
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise PlanError(f"-e: invalid value {value!r}", hint="expected KEY=VALUE or KEY")
        if sep:
            env[key] = val
        elif key in lookup:
            env[key] = lookup[key]
    return env


def parse_publish(value: str) -> list[PortSpec]:
    """``-p [IP:][HOST:]CONTAINER[/PROTO]`` as ports of the spec."""
    from composer.backends.base import PortSpec
    from composer.schema.transform import parse_port

    try:
        entries = parse_port(value)
    except ValueError as exc:
        raise PlanError(f"-p {value}: {exc}") from None
    return [
        PortSpec(
            target=int(e["target"]),
            published=str(e["published"]) if e.get("published") not in (None, "") else None,
            host_ip=e.get("host_ip") or None,
            protocol=e.get("protocol", "tcp"),
        )
        for e in entries
    ]


def parse_mount(project: Project, value: str) -> MountSpec:
    """``-v [SOURCE:]TARGET[:MODE]``: a bind mount for a path, else a volume."""
    from composer.backends.base import MountSpec
    from composer.planner.specs import volume_engine_name
    from composer.schema.transform import parse_volume

    try:
        entry = parse_volume(value)
    except ValueError as exc:
        raise PlanError(f"-v {value}: {exc}") from None
    source = entry.get("source") or None
    if entry["type"] == "bind" and source is not None:
        source = str((Path(project.working_dir) / os.path.expanduser(source)).resolve())
    elif entry["type"] == "volume" and source in project.volumes:
        source = volume_engine_name(project, source)
    return MountSpec(
        type=entry["type"],
        target=entry["target"],
        source=source,
        read_only=bool(entry.get("read_only")),
    )


# --- exec -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecOptions:
    """``exec SERVICE COMMAND...`` and its flags."""

    service: str
    command: tuple[str, ...]
    detach: bool = False
    env: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = True
    user: str | None = None
    workdir: str | None = None
    index: int | None = None
    privileged: bool = False


def exec_(
    backend: Backend,
    target: Target,
    options: ExecOptions,
    streams: Streams,
    environ: Mapping[str, str],
) -> int:
    """Run a command in a running container of the service; its exit code."""
    if not options.command:
        raise PlanError("exec needs a command", hint="composer exec SERVICE COMMAND [ARGS...]")
    containers = select_containers(
        backend, target, [options.service], oneoff="include", running_only=True
    )
    chosen = pick_container(containers, options.service, options.index)
    lookup = target.project.environment if target.project is not None else environ
    return backend.exec_run(
        chosen.id,
        list(options.command),
        user=options.user,
        workdir=options.workdir,
        env=apply_env({}, options.env, lookup),
        tty=options.tty,
        stdin=streams.stdin if options.interactive and not options.detach else None,
        privileged=options.privileged,
        detach=options.detach,
        stdout=streams.stdout,
        stderr=streams.stderr,
    )


# --- cp -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CopyOptions:
    """``cp SRC DEST`` where one side is ``SERVICE:PATH``; ``-`` streams a tar archive."""

    source: str
    dest: str
    index: int | None = None
    all: bool = False


def split_copy_arg(arg: str) -> tuple[str | None, str]:
    """``web:/etc/hosts`` → ``("web", "/etc/hosts")``; a local path → ``(None, path)``."""
    if arg == "-" or arg.startswith(("/", ".", "~")):
        return None, arg
    service, sep, path = arg.partition(":")
    if not sep or not service or os.sep in service:
        return None, arg
    return service, path


def cp(
    backend: Backend,
    target: Target,
    options: CopyOptions,
    working_dir: Path,
    streams: Streams,
) -> list[str]:
    """Copy between the host and the service's containers; the containers touched."""
    src_service, src_path = split_copy_arg(options.source)
    dst_service, dst_path = split_copy_arg(options.dest)
    if (src_service is None) == (dst_service is None):
        raise PlanError(
            "copying between services is not supported"
            if src_service
            else "one of the paths must be SERVICE:PATH",
            hint="composer cp SERVICE:SRC_PATH DEST_PATH, or SRC_PATH SERVICE:DEST_PATH",
        )
    oneoff: OneOff = "include" if options.all else "exclude"
    if src_service is not None:
        containers = select_containers(backend, target, [src_service], oneoff=oneoff)
        chosen = pick_container(containers, src_service, options.index)
        data = b"".join(backend.copy_from(chosen.id, src_path))
        if dst_path == "-":
            if streams.stdout is not None:
                streams.stdout.write(data)
                streams.stdout.flush()
        else:
            extract_to_host(data, working_dir / dst_path)
        return [chosen.name]
    assert dst_service is not None
    containers = select_containers(backend, target, [dst_service], oneoff=oneoff)
    if options.index:
        containers = [pick_container(containers, dst_service, options.index)]
    if not containers:
        raise NotFound(f'service "{dst_service}" is not running')
    for c in containers:
        _copy_in(backend, c.id, src_path, dst_path, working_dir, streams)
    return [c.name for c in containers]


def _copy_in(
    backend: Backend,
    container_id: str,
    src_path: str,
    dst_path: str,
    working_dir: Path,
    streams: Streams,
) -> None:
    if src_path == "-":
        if streams.stdin is None:
            raise PlanError("cp: no standard input to read the archive from")
        backend.copy_to(container_id, dst_path, streams.stdin.read())
        return
    source = working_dir / src_path
    if not source.exists():
        raise NotFound(f"no such file or directory: {src_path}")
    try:
        is_dir = backend.stat_path(container_id, dst_path).is_dir
    except NotFound:
        is_dir = False
    dest = PurePosixPath(dst_path)
    if is_dir or dst_path.endswith("/"):
        backend.copy_to(container_id, str(dest), archive_path(source, source.name))
    else:
        backend.copy_to(container_id, str(dest.parent), archive_path(source, dest.name))


def archive_path(source: Path, name: str) -> bytes:
    """A tar archive holding ``source`` (a file or a tree) under the name ``name``."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(source), arcname=name)
    return buffer.getvalue()


def extract_to_host(data: bytes, dest: Path) -> None:
    """Unpack a container's archive of one path to ``dest``, as ``docker cp`` does.

    An existing directory receives the path under its own name; anything else
    is (re)placed by the path itself. Members that would leave the target are
    refused by tarfile's ``data`` filter.
    """
    import shutil
    import tarfile
    import tempfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        members = archive.getmembers()
        if not members:
            raise NotFound("the container sent an empty archive")
        root = members[0].name.split("/", 1)[0]
        if dest.is_dir():
            archive.extractall(dest, filter="data")
            return
        if not dest.parent.is_dir():
            raise NotFound(f"no such directory: {dest.parent}")
        with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
            archive.extractall(scratch, filter="data")
            if dest.exists() or dest.is_symlink():
                if dest.is_dir():
                    shutil.rmtree(dest)
                else:
                    dest.unlink()
            os.replace(Path(scratch) / root, dest)


def _project(target: Target) -> Project:
    if target.project is None:
        raise PlanError(f"project {target.name}: run needs the compose files")
    return target.project
