"""NativeBackend: the Backend protocol on composer's own engine.

It runs in the CLI process and holds no state of its own: every verb reads
and writes the state root (``COMPOSER_ROOT``). Creating things (volumes,
networks, container records, images) happens here; anything that has to
outlive the CLI — a running container, its logs, restarts, healthchecks,
DNS and port proxies — belongs to the project's supervisor, reached through
``SupervisorClient``. ``observe`` asks no supervisor: records and state
files on disk answer it (``observe.py``).

Heavy parts (the network manager, the registry client on httpx, the
runtime) are imported on first use, so building a backend for
``--help`` or ``config`` costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from collections.abc import Sequence
from typing import BinaryIO

from composer.backends.base import (
    BuildSpec,
    ContainerSpec,
    ContainerStatus,
    ImageInfo,
    ImageRef,
    NetworkSpec,
    ObservedImage,
    ObservedState,
    Progress,
    VolumeSpec,
)
from composer.backends.labels import LABEL_PROJECT
from composer.backends.native import events as _events
from composer.backends.native import observe as _observe
from composer.backends.native import oneoff as _oneoff
from composer.backends.native import oneoff_owner as _owner
from composer.backends.native.launching import LaunchSetup
from composer.backends.native.supervisor.records import ContainerRecord
from composer.backends.native.verbs import RuntimeVerbs
from composer.errors import BackendError, ComposerError, Conflict, NotFound, Unsupported

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


def _epoch(created: str | None) -> float:
    if not created:
        return 0.0
    with contextlib.suppress(ValueError):
        from composer.backends.native.supervisor.logs import parse_timestamp

        return parse_timestamp(created)
    return 0.0


class NativeBackend(LaunchSetup, RuntimeVerbs):
    """The Backend protocol on namespaces, cgroups and overlayfs, without a daemon.

    ``environ`` supplies ``COMPOSER_ROOT`` (and ``HOME``/``DOCKER_CONFIG``
    for registry credentials); safe to share between threads. The verbs
    around a running project are in ``verbs.py``, the launch setup in
    ``launching.py``, the shared handles in ``session.py``.
    """

    # --- observe ------------------------------------------------------------------

    def observe(self, project: str, images: Sequence[ImageRef] = ()) -> ObservedState:
        self._sweep_oneoffs()
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
        project = spec.labels.get(LABEL_PROJECT, "")
        if project:  # containers follow: the supervisor's start-up overlaps with the bridge's
            self._client(project).prestart()
        self.networks.create(spec)
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

        def puller(ref: str, *, fresh: bool = False) -> str:
            # build.pull (fresh): ask the registry even for an image the store has
            return (None if fresh else self.image_id(ref)) or self.pull_image(ref, progress)

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

    def create_container(self, spec: ContainerSpec) -> str:
        image = self.images.get(spec.image)
        for att in spec.networks:
            if att.network not in ("none", "host") and self.networks.get(att.network) is None:
                raise NotFound(f"network {att.network} not found", hint="create it first")
        record = self.containers.create(spec, image, self._launch)
        self._event(record, "create")
        # A start usually follows: let the project's supervisor come up meanwhile.
        self._client(record.project).prestart()
        return record.id

    def start_container(self, id: str) -> None:
        snap = self._snapshot(id)
        if snap.status in ("running", "paused", "restarting"):
            return
        self.resolve_joins(snap.record)
        self._client(snap.record.project).start(snap.record.id)
        self._event(snap.record, "start")
        self._write_own_hosts(snap.record)

    def stop_container(self, id: str, timeout: float) -> None:
        snap = self._snapshot(id)
        if not snap.running:
            return
        if not _owner.end(self, snap, timeout):  # a one-off its CLI runs is ended there
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
        if not _owner.signal_one_off(self, snap, number):
            self._client(snap.record.project).kill(snap.record.id, _signal.Signals(number).name)
        self._event(snap.record, "kill", signal=str(number))

    def remove_container(self, id: str, *, force: bool = False, volumes: bool = False) -> None:
        snap = self._snapshot(id)
        record = snap.record
        if snap.running and force and _owner.end(self, snap, 0):
            snap = self._snapshot(id)  # ended by this call, which removes it (not its CLI)
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
        _owner.release(self.root, record.id)
        self._tidy_project(record.project)

    def run_removed(
        self,
        spec: ContainerSpec,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> tuple[str, int]:
        """``run --rm`` attached: created, run by this process and removed (``oneoff.py``)."""
        return _oneoff.run_removed(self, spec, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)

    def _sweep_oneoffs(self) -> None:
        """One-offs whose CLI was killed are removed by the next command (``oneoff.py``)."""
        if os.path.isdir(self.root.path / _owner.OWNERS):
            _owner.sweep(self)

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
