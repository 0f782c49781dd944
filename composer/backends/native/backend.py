"""NativeBackend: the Backend protocol on composer's own engine.

It runs in the CLI process and holds no state of its own: every verb reads
and writes the state root (``COMPOSER_ROOT``). Creating things (volumes,
networks, container records, images) happens here; anything that has to
outlive the CLI — a running container, its logs, restarts, healthchecks,
DNS and port proxies — belongs to the project's supervisor, reached through
``SupervisorClient``. ``observe`` asks no supervisor: records and state
files on disk answer it (``observe.py``).

Heavy parts (the network manager with pyroute2, the registry client on
httpx, the runtime) are imported on first use, so building a backend for
``--help`` or ``config`` costs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal as _signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from composer.backends.base import (
    BuildSpec,
    ContainerSpec,
    ContainerStatus,
    EngineEvent,
    ImageInfo,
    ImageRef,
    LogLine,
    NetworkSpec,
    ObservedImage,
    ObservedState,
    PathStat,
    PortBinding,
    Progress,
    ProjectSummary,
    VolumeSpec,
)
from composer.backends.labels import LABEL_CONFIG_FILES, LABEL_PROJECT, LABEL_SERVICE
from composer.backends.native import copy as _copy
from composer.backends.native import events as _events
from composer.backends.native import observe as _observe
from composer.backends.native.containers import ContainerDirs, Containers
from composer.backends.native.runtime.spec import LaunchSpec, MountEntry, RootfsSpec
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import ContainerRecord, read_state
from composer.backends.native.volumes import Volumes
from composer.errors import (
    BackendError,
    ComposerError,
    Conflict,
    NotFound,
    Unavailable,
    Unsupported,
)

if TYPE_CHECKING:
    from composer.backends.native.images.store import ImageStore, StoredImage
    from composer.backends.native.network.manager import NetworkManager
    from composer.backends.native.supervisor.client import SupervisorClient

SIGNALS = {s.name: s for s in _signal.Signals}


def signal_number(name: str) -> int:
    """``SIGTERM``, ``TERM``, ``15`` → 15 (``BackendError`` for an unknown signal)."""
    text = str(name).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    found = SIGNALS.get(text)
    if found is None:
        raise BackendError(f"invalid signal {name!r}", hint="use a name like SIGTERM or a number")
    return int(found)


def _host_rlimits(names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """This process's ``(soft, hard)`` limits for the ``ulimits`` asked for."""
    import resource

    out: dict[str, tuple[int, int]] = {}
    for name in names:
        number = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if isinstance(number, int):
            out[name] = resource.getrlimit(number)
    return out


def _epoch(created: str | None) -> float:
    if not created:
        return 0.0
    with contextlib.suppress(ValueError):
        from composer.backends.native.supervisor.logs import parse_timestamp

        return parse_timestamp(created)
    return 0.0


class NativeBackend:
    """The Backend protocol on namespaces, cgroups and overlayfs, without a daemon.

    ``environ`` supplies ``COMPOSER_ROOT`` (and ``HOME``/``DOCKER_CONFIG``
    for registry credentials); safe to share between threads.
    """

    def __init__(self, environ: Mapping[str, str], *, root: StateRoot | None = None) -> None:
        self.environ = dict(environ)
        self.root = root or StateRoot.from_environ(environ)
        self.root.ensure()
        self.volumes = Volumes(self.root)
        self.containers = Containers(self.root, self.volumes)
        self._images: ImageStore | None = None
        self._lock = threading.Lock()
        self._network_manager: NetworkManager | None = None
        self._clients: dict[str, SupervisorClient] = {}

    # --- helpers ----------------------------------------------------------------

    def _images_in_use(self) -> set[str]:
        return {r.image_id for r in self.containers.records() if r.image_id}

    @property
    def images(self) -> ImageStore:
        """The image store, built on first use (its extractor imports are not cheap)."""
        with self._lock:
            if self._images is None:
                from composer.backends.native.images.store import ImageStore

                self._images = ImageStore(self.root, in_use=self._images_in_use)
            return self._images

    @property
    def networks(self) -> NetworkManager:
        with self._lock:
            if self._network_manager is None:
                from composer.backends.native.network.manager import NetworkManager

                self._network_manager = NetworkManager(self.root)
            return self._network_manager

    def _client(self, project: str) -> SupervisorClient:
        with self._lock:
            found = self._clients.get(project)
            if found is None:
                from composer.backends.native.supervisor.client import SupervisorClient

                found = self._clients[project] = SupervisorClient(self.root, project)
            return found

    def _find(self, ref: str) -> ContainerRecord:
        return self.containers.find(ref)

    def _snapshot(self, ref: str) -> _observe.Snapshot:
        return _observe.snapshot(self.root, self._find(ref))

    def _event(
        self, record: ContainerRecord, action: str, *, when: float | None = None, **attributes: str
    ) -> None:
        labels = _observe.Snapshot(record, read_state(self.root, record.id), (), "created")
        attrs = {**labels.labels, "name": record.name, "image": str(record.spec.get("image"))}
        attrs.update(attributes)
        _events.record(
            self.root,
            record.project,
            "container",
            action,
            record.id,
            record.name,
            service=record.service,
            attributes=attrs,
            when=when,
        )

    def container_root(self, id: str) -> Path:
        """The running container's root file system as seen from the host (``/proc/<pid>/root``)."""
        snap = self._snapshot(id)
        if not snap.running or snap.state.pid <= 0:
            raise Conflict(f"container {snap.record.name} is not running")
        return Path(f"/proc/{snap.state.pid}/root")

    # --- observe ------------------------------------------------------------------

    def observe(self, project: str, images: Sequence[ImageRef] = ()) -> ObservedState:
        now = time.time()
        found = [
            _observe.observed_container(_observe.snapshot(self.root, r), now)
            for r in _observe.scan(self.root, project)
        ]
        found.sort(key=lambda c: (c.service, c.number or 0, c.name))
        volumes = {m.name: _observe.observed_volume(m, project) for m in self.volumes.list()}
        networks = {
            n.name: _observe.observed_network(n.name, n.labels, project)
            for n in self._network_records()
        }
        return ObservedState(
            project=project,
            containers=tuple(found),
            networks=networks,
            volumes=volumes,
            images=self._observed_images(images),
        )

    def _observed_images(self, refs: Sequence[ImageRef]) -> dict[str, ObservedImage]:
        out: dict[str, ObservedImage] = {}
        for ref in refs:
            image_id = self.image_id(ref)
            if image_id is None:
                continue
            created = None
            with contextlib.suppress(ComposerError):
                created = _epoch(self.images.image(image_id).created) or None
            out[ref] = ObservedImage(ref=ref, id=image_id, created_at=created)
        return out

    # --- networks and volumes -------------------------------------------------------

    def create_network(self, spec: NetworkSpec) -> None:
        if spec.external:
            raise Unsupported(f"network {spec.name} is external: composer does not create it")
        if self.networks.get(spec.name) is not None:
            raise Conflict(f"create network {spec.name}: network already exists")
        self.networks.create(spec)
        project = spec.labels.get(LABEL_PROJECT, "")
        _events.record(self.root, project, "network", "create", spec.name, spec.name,
                       attributes=dict(spec.labels))  # fmt: skip

    def remove_network(self, name: str) -> None:
        rec = self.networks.inspect(name)
        self.networks.remove(name)
        project = rec.labels.get(LABEL_PROJECT, "")
        _events.record(self.root, project, "network", "destroy", rec.id, name)
        self._tidy_project(project)

    def create_volume(self, spec: VolumeSpec) -> None:
        self.volumes.create(spec)
        project = spec.labels.get(LABEL_PROJECT, "")
        _events.record(self.root, project, "volume", "create", spec.name, spec.name)

    def remove_volume(self, name: str) -> None:
        meta = self.volumes.require(name)
        self.volumes.remove(name, users=self.containers.users_of_volume(name))
        project = meta.labels.get(LABEL_PROJECT, "")
        _events.record(self.root, project, "volume", "destroy", name, name)

    # --- images -------------------------------------------------------------------

    def pull_image(self, ref: ImageRef, progress: Progress | None = None) -> str:
        from composer.backends.native.images.pull import pull

        return pull(ref, self.images, progress, environ=self.environ)

    def build_image(self, spec: BuildSpec, progress: Progress | None = None) -> str:
        """The native builder: RUN steps in the runtime, layers committed into the store."""
        from composer.backends.base import ProgressUpdate
        from composer.backends.native.build.builder import Builder
        from composer.backends.native.build.run import RuntimeStepRunner

        def log(line: str) -> None:
            if progress is not None:
                progress(ProgressUpdate(id=spec.tag, status=line))

        def puller(ref: str) -> str:
            return self.image_id(ref) or self.pull_image(ref, progress)

        builder = Builder(
            self.images, runner=RuntimeStepRunner(self.root.tmp), pull=puller, log=log
        )
        return builder.build(spec)

    def remove_image(self, ref: ImageRef) -> None:
        self.images.remove(ref)

    def image_id(self, ref: ImageRef) -> str | None:
        try:
            return self.images.resolve(ref)
        except ComposerError:
            return None

    def list_images(self, refs: Sequence[str]) -> list[ImageInfo]:
        from composer.backends.native.images.reference import familiar_name

        out: list[ImageInfo] = []
        for ref in refs:
            image_id = self.image_id(ref)
            if image_id is None:
                continue
            try:
                image = self.images.image(image_id)
            except NotFound:
                continue
            out.append(
                ImageInfo(
                    ref=ref,
                    id=image.id,
                    size=image.size,
                    created=_epoch(image.created),
                    repo_tags=tuple(familiar_name(t) for t in image.tags),
                )
            )
        return out

    def push_image(self, ref: ImageRef, progress: Progress | None = None) -> None:
        if self.image_id(ref) is None:
            raise NotFound(f"push {ref}: no such image", hint="build, pull or tag it first")
        try:
            from composer.backends.native.images.push import push  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise Unsupported(
                f"push {ref}: pushing is not available on the native backend yet",
                hint="use --backend docker to push",
            ) from None
        push(ref, self.images, progress, environ=self.environ)

    # --- containers -----------------------------------------------------------------

    def _launch(
        self,
        spec: ContainerSpec,
        image: StoredImage,
        dirs: ContainerDirs,
        mounts: Sequence[MountEntry],
    ) -> LaunchSpec:
        """``translate`` for everything but the mounts, which ``mounts.py`` resolved (with
        volumes made, files written and ``volumes_from`` followed); the container's
        ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` are written here."""
        from composer.backends.native import translate as _translate

        files = self._etc_files(spec, dirs)
        bare = dataclasses.replace(spec, mounts=(), tmpfs={})
        translation = _translate.translate(
            bare,
            image.config,
            RootfsSpec(
                str(dirs.rootfs),
                tuple(str(d) for d in image.layer_dirs),
                str(dirs.upper),
                str(dirs.work),
            ),
            files,
            container_id=dirs.base.name,
            joined_namespaces=self._joined_namespaces(spec),
            host_rlimits=_host_rlimits(spec.ulimits),
            devices=_translate.probe_devices(d.source for d in spec.devices),
        )
        launch = translation.launch
        ordered = sorted(
            [*launch.mounts, *mounts], key=lambda m: len([p for p in m.target.split("/") if p])
        )
        return dataclasses.replace(launch, mounts=tuple(ordered))

    def _etc_files(self, spec: ContainerSpec, dirs: ContainerDirs) -> Any:
        from composer.backends.native.containers import ordered_networks
        from composer.backends.native.network.etc_files import hosts_file, resolv_conf
        from composer.backends.native.state import atomic_write
        from composer.backends.native.translate import ContainerFiles

        hostname = spec.hostname or dirs.base.name[:12]
        hostname_text = f"{hostname}\n"
        networks = [a.network for a in ordered_networks(spec)]
        nameserver = self.networks.nameserver(networks) if networks else None
        paths = {n: dirs.base / n for n in ("hosts", "hostname", "resolv.conf")}
        atomic_write(paths["hostname"], hostname_text.encode())
        atomic_write(
            paths["resolv.conf"],
            resolv_conf(
                nameserver, dns=spec.dns, dns_search=spec.dns_search, dns_opt=spec.dns_opt
            ).encode(),
        )
        atomic_write(
            paths["hosts"],
            hosts_file([], extra_hosts=spec.extra_hosts, host_gateway=nameserver).encode(),
        )
        if spec.network_mode == "host":
            return ContainerFiles()
        return ContainerFiles(
            hosts=str(paths["hosts"]),
            hostname=str(paths["hostname"]),
            resolv_conf=str(paths["resolv.conf"]),
        )

    def _joined_namespaces(self, spec: ContainerSpec) -> dict[str, str]:
        """``/proc/<pid>/ns/<kind>`` of the containers named by ``container:``/``service:``
        modes; they must be running (as Docker requires when the container starts)."""
        out: dict[str, str] = {}
        for kind, mode in (
            ("net", spec.network_mode),
            ("ipc", spec.ipc),
            ("pid", spec.pid),
            ("uts", spec.uts),
        ):
            if not mode or not mode.startswith(("container:", "service:")):
                continue
            other = self._snapshot(mode.split(":", 1)[1])
            if not other.running or other.state.pid <= 0:
                raise Conflict(
                    f"{spec.name}: {kind} namespace of {other.record.name} is not available: "
                    "it is not running",
                    hint=f"start {other.record.name} first",
                )
            out[kind] = f"/proc/{other.state.pid}/ns/{kind}"
        return out

    def create_container(self, spec: ContainerSpec) -> str:
        image = self.images.get(spec.image)
        for att in spec.networks:
            if att.network not in ("none", "host") and self.networks.get(att.network) is None:
                raise NotFound(f"network {att.network} not found", hint="create it first")
        record = self.containers.create(spec, image, self._launch)
        self._event(record, "create")
        return record.id

    def start_container(self, id: str) -> None:
        snap = self._snapshot(id)
        if snap.status in ("running", "paused", "restarting"):
            return
        self._client(snap.record.project).start(snap.record.id)
        self._event(snap.record, "start")
        self._write_own_hosts(snap.record)

    def _write_own_hosts(self, record: ContainerRecord) -> None:
        """Add the container's own addresses to its ``/etc/hosts`` once its networks are
        joined (as Docker lists ``<ip> <hostname>``). Written in place: the file is
        bind-mounted, so a new inode would not be seen inside."""
        from composer.backends.native.network.etc_files import hosts_file

        if not record.networks:
            return
        spec = record.container_spec()
        hostname = spec.hostname or record.id[:12]
        own: list[tuple[str, Sequence[str]]] = []
        gateway = None
        for join in record.networks:
            with contextlib.suppress(ComposerError, OSError, ValueError):
                endpoint = self.networks.endpoint(join.network, record.id)
                if endpoint is not None and endpoint.ip:
                    names = [hostname] if not own else []
                    own.append((endpoint.ip, names + [n for n in join.names if n != hostname]))
                    gateway = gateway or endpoint.gateway
        if not own:
            return
        text = hosts_file(own, extra_hosts=spec.extra_hosts, host_gateway=gateway).encode()
        path = self.root.container(record.id) / "hosts"
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, text, 0)
            finally:
                os.close(fd)

    def stop_container(self, id: str, timeout: float) -> None:
        snap = self._snapshot(id)
        if not snap.running:
            return
        self._client(snap.record.project).stop(snap.record.id, timeout)
        after = self._snapshot(snap.record.id)
        code = _observe.exit_code_of(after)
        # At the finish time the supervisor recorded, so that it is the same event as
        # the one read back from state.json.
        self._event(
            snap.record,
            "die",
            when=after.state.finished_at or None,
            exitCode=str(code if code is not None else 0),
        )
        self._event(snap.record, "stop")

    def kill_container(self, id: str, signal: str = "SIGKILL") -> None:
        snap = self._snapshot(id)
        if not snap.running:
            raise Conflict(f"cannot kill container {snap.record.name}: it is not running")
        number = signal_number(signal)
        self._client(snap.record.project).kill(snap.record.id, _signal.Signals(number).name)
        self._event(snap.record, "kill", signal=str(number))

    def remove_container(self, id: str, *, force: bool = False, volumes: bool = False) -> None:
        snap = self._snapshot(id)
        record = snap.record
        if snap.running:
            if not force:
                raise Conflict(
                    f"cannot remove container {record.name}: it is {snap.status}",
                    hint="stop it first or force the removal",
                )
            self._client(record.project).forget(record.id, force=True)
        else:
            with contextlib.suppress(ComposerError):
                self._client(record.project).forget(record.id)
        for join in record.networks:
            with contextlib.suppress(ComposerError, OSError):
                self.networks.disconnect(join.network, record.id)
        self._remove_cgroup(record)
        self.containers.remove(record, volumes=volumes)
        self._event(record, "destroy")
        self._tidy_project(record.project)

    def _remove_cgroup(self, record: ContainerRecord) -> None:
        """The removed container's cgroup goes with it, whatever is left inside (the
        supervisor releases it when the container ends; this covers a supervisor that
        left, or was killed, before it could)."""
        cgroup = record.launch.get("cgroup") or {}
        path = cgroup.get("path") if isinstance(cgroup, dict) else None
        if not path:
            return
        from composer.backends.native.runtime.cgroups import Cgroup

        with contextlib.suppress(OSError, ValueError, TimeoutError):
            Cgroup(str(path)).remove()

    def _tidy_project(self, project: str) -> None:
        """When a project has no container left, its supervisor is told to leave now
        (rather than linger), and once its networks are gone too its event log goes."""
        if not project or any(True for _ in _observe.scan(self.root, project)):
            return
        with contextlib.suppress(ComposerError, OSError):
            self._client(project).shutdown()
        for net in self._network_records():
            if net.labels.get(LABEL_PROJECT) == project:
                return
        with contextlib.suppress(OSError, ValueError):
            _events.log_path(self.root, project).unlink(missing_ok=True)

    def _network_records(self) -> list[Any]:
        """Every network record, read from disk without the network manager (whose
        netlink and firewall imports ``observe`` does not need)."""
        from composer.backends.native.network.records import NetworkRecord
        from composer.backends.native.state import read_json

        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.scandir(self.root.path / "networks"), key=lambda e: e.name):
                with contextlib.suppress(
                    FileNotFoundError, NotADirectoryError, ValueError, KeyError
                ):
                    out.append(
                        NetworkRecord.from_json(read_json(Path(entry.path) / "network.json"))
                    )
        return out

    def rename_container(self, id: str, name: str) -> None:
        record = self._find(id)
        self.containers.rename(record.id, name)
        self._event(record, "rename", oldName=record.name, name=name)

    def pause_container(self, id: str) -> None:
        snap = self._snapshot(id)
        if snap.status != "running":
            raise Conflict(f"container {snap.record.name} is not running (it is {snap.status})")
        self._client(snap.record.project).pause(snap.record.id)
        self._event(snap.record, "pause")

    def unpause_container(self, id: str) -> None:
        snap = self._snapshot(id)
        if snap.status != "paused":
            raise Conflict(f"container {snap.record.name} is not paused")
        self._client(snap.record.project).unpause(snap.record.id)
        self._event(snap.record, "unpause")

    def inspect_container(self, id: str) -> ContainerStatus:
        return _observe.container_status(self._snapshot(id))

    # --- around a running project ------------------------------------------------------

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        since: float | None = None,
        until: float | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        from composer.backends.native.supervisor.logs import read_logs
        from composer.backends.native.supervisor.records import log_path

        record = self._find(container_id)

        def running() -> bool:
            return _observe.snapshot(self.root, record).running

        return read_logs(
            log_path(self.root, record.id),
            follow=running if follow else None,
            since=since,
            until=until,
            tail=tail,
            timestamps=timestamps,
        )

    def exec_run(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        stdin: BinaryIO | None = None,
        privileged: bool = False,
        detach: bool = False,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> int:
        from composer.backends.native.exec_io import run_exec

        snap = self._snapshot(container_id)
        if snap.status != "running":
            raise Conflict(f"container {snap.record.name} is not running")
        return run_exec(
            snap,
            command,
            user=user,
            workdir=workdir,
            env=env,
            tty=tty,
            stdin=stdin,
            privileged=privileged,
            detach=detach,
            stdout=stdout,
            stderr=stderr,
        )

    def attach_run(
        self,
        container_id: str,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> int:
        """Pipes to the supervisor (which attaches before it starts the container), pumped
        into the caller's streams; the exit code when the container ends."""
        from composer.backends.native.exec_io import attached

        snap = self._snapshot(container_id)
        client = self._client(snap.record.project)

        def call(fds: tuple[int | None, int, int]) -> int:
            return client.attach(snap.record.id, stdin=fds[0], stdout=fds[1], stderr=fds[2])

        if not snap.running:
            self._event(snap.record, "start")
        return attached(call, stdin=stdin, stdout=stdout, stderr=stderr)

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        record = self._find(container_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            snap = _observe.snapshot(self.root, record)
            if snap.status in ("exited", "dead", "created"):
                return _observe.exit_code_of(snap) or 0
            if deadline is not None and time.monotonic() >= deadline:
                raise Unavailable(f"waiting for container {record.name} timed out")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def top(
        self, container_id: str, ps_args: str | None = None
    ) -> tuple[list[str], list[list[str]]]:
        from composer.backends.native.procs import top

        snap = self._snapshot(container_id)
        if snap.status not in ("running", "paused") or snap.state.pid <= 0:
            raise Conflict(f"container {snap.record.name} is not running")
        return top(snap.state.pid, ps_args)

    @contextlib.contextmanager
    def _root_fd(self, container_id: str) -> Iterator[int]:
        """The container's root: its mount namespace's ``/`` while it runs, else the overlay
        mounted just for the copy."""
        snap = self._snapshot(container_id)
        if snap.running and snap.state.pid > 0:
            with _copy.root_dir(f"/proc/{snap.state.pid}/root") as fd:
                yield fd
            return
        from composer.backends.native.copy_mount import overlay_mounted

        launch = LaunchSpec.from_json(json.dumps(snap.record.launch))
        with overlay_mounted(launch.rootfs, self.root.tmp) as path, _copy.root_dir(path) as fd:
            yield fd

    def stat_path(self, container_id: str, path: str) -> PathStat:
        with self._root_fd(container_id) as fd:
            return _copy.stat_path(fd, path)

    def copy_to(self, container_id: str, dest_path: str, tar_stream: bytes) -> None:
        with self._root_fd(container_id) as fd:
            _copy.copy_to(fd, dest_path, tar_stream)

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        with self._root_fd(container_id) as fd:
            return _copy.copy_from(fd, path)

    def events(
        self, project: str, *, since: float | None = None, until: float | None = None
    ) -> Iterator[EngineEvent]:
        def snapshots() -> Iterator[list[EngineEvent]]:
            while True:
                yield _events.merged(_events.read(self.root, project), self._dies(project))
                if until is not None and time.time() > until:
                    return
                time.sleep(_events.POLL)

        return _events.window(snapshots(), since, until)

    def _dies(self, project: str) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        for record in _observe.scan(self.root, project):
            state = read_state(self.root, record.id)
            if state.finished_at and state.status in ("exited", "dead", "restarting"):
                labels = {str(k): str(v) for k, v in (record.spec.get("labels") or {}).items()}
                out.append(
                    EngineEvent(
                        time=state.finished_at,
                        type="container",
                        action="die",
                        id=record.id,
                        name=record.name,
                        service=labels.get(LABEL_SERVICE, record.service),
                        attributes={**labels, "exitCode": str(state.exit_code or 0)},
                    )
                )
        return out

    def list_projects(self) -> list[ProjectSummary]:
        counts: dict[str, dict[str, int]] = {}
        files: dict[str, str] = {}
        for record in _observe.scan(self.root):
            if not record.project:
                continue
            snap = _observe.snapshot(self.root, record)
            per = counts.setdefault(record.project, {})
            per[snap.status] = per.get(snap.status, 0) + 1
            files.setdefault(record.project, snap.labels.get(LABEL_CONFIG_FILES, ""))
        return [
            ProjectSummary(name=name, status_counts=counts[name], config_files=files[name])
            for name in sorted(counts)
        ]

    def container_ports(self, container_id: str) -> list[PortBinding]:
        snap = self._snapshot(container_id)
        if not snap.running:
            return []
        return [
            PortBinding(p.container_port, p.protocol, p.host_ip, p.host_port)
            for p in snap.state.ports
        ]

    def shutdown(self) -> None:
        """Ask the supervisors this backend talked to to leave (tests; containers stay)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(ComposerError, OSError):
                client.shutdown()
