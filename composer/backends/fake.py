"""An in-memory engine: the test double of the planner and the engine of ``--dry-run``.

``FakeBackend`` honours the ``Backend`` protocol without touching anything
real. It keeps containers, networks, volumes and images in memory, follows
Docker's rules where a planner bug would show (duplicate names are
``Conflict``, unknown ids ``NotFound``, a running container cannot be
removed without ``force``, a network must exist before a container joins
it), and plays scripted behaviour on an injected ``Clock``:

* per service (``script``): healthy N seconds after start, unhealthy after
  T, exit with code C after T, slow to stop, failing create or start;
* per image (``script_image``): pull/build failures and durations; the
  "registry" id a pull returns (``publish``);
* any verb (``fail``): raise a given error when called for a given target.

Health and exits are computed from the clock when asked (``inspect_container``
and ``observe``), so a test advances a ``FakeClock`` (or lets the executor's
sleeps advance it) and sees the transitions at exact virtual times.
Durations (pulls, slow stops) are spent in ``clock.sleep`` outside the lock,
so concurrent steps overlap in virtual time as they would in real time.

Every call is recorded in ``calls`` as ``Call(verb, args, time)``; container
verbs record the container's *name* (not its id) so that assertions read
naturally. ``seed`` loads an ``ObservedState`` (from a real engine) so that a
dry run can execute a plan against a copy of the real state.

Not simulated: restart policies, logs, exec, hooks.
"""

from __future__ import annotations

import hashlib
import math
import signal as signals
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from composer.backends import labels as lbl
from composer.backends.base import (
    BuildSpec,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    Health,
    ImageRef,
    MountSpec,
    NetworkAttachment,
    NetworkSpec,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
    Progress,
    ProgressUpdate,
    VolumeSpec,
)
from composer.clock import Clock
from composer.errors import BackendError, Conflict, NotFound, Unsupported


class Call(NamedTuple):
    """One recorded backend call."""

    verb: str
    args: tuple[Any, ...]
    time: float


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the containers of one service behave once started (times in seconds).

    A container has a health status when its spec has a healthcheck or when
    ``healthy_after``/``unhealthy_after`` is scripted. It is ``starting``
    until ``healthy_after`` (default: at once; ``math.inf``: never), and
    ``unhealthy`` from ``unhealthy_after`` on. With ``exit_after`` it exits
    with ``exit_code`` that long after starting. Stopping takes
    ``stop_delay`` (killed with 137 when that exceeds the timeout) and
    otherwise ends with ``stop_exit_code``.
    """

    healthy_after: float | None = None
    unhealthy_after: float | None = None
    exit_after: float | None = None
    exit_code: int = 0
    stop_delay: float = 0.0
    stop_exit_code: int = 0
    fail_create: BackendError | None = None
    fail_start: BackendError | None = None


@dataclass(frozen=True, slots=True)
class ImageBehaviour:
    """How pulling or building one image reference behaves."""

    fail: BackendError | None = None
    duration: float = 0.0


@dataclass(slots=True)
class _Image:
    id: str
    created_at: float | None


@dataclass(slots=True)
class _Network:
    spec: NetworkSpec


@dataclass(slots=True)
class _Volume:
    spec: VolumeSpec


@dataclass(slots=True)
class _Container:
    id: str
    spec: ContainerSpec
    image_id: str
    created_at: float
    state: ContainerState = "created"
    started_at: float | None = None
    exit_code: int | None = None
    anonymous: list[tuple[str, str]] = field(default_factory=list)
    fixed_health: Health | None = None
    """Health as observed when seeded, until the container is started again."""


@dataclass(slots=True)
class _Failure:
    error: BackendError
    times: float


def fake_id(kind: str, value: str) -> str:
    """A deterministic 64-hex id, ``sha256:``-prefixed for images."""
    hexed = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
    return f"sha256:{hexed}" if kind == "image" else hexed


class FakeBackend:
    """The ``Backend`` protocol in memory; thread-safe. See the module notes."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._containers: dict[str, _Container] = {}
        self._networks: dict[str, _Network] = {}
        self._volumes: dict[str, _Volume] = {}
        self._images: dict[str, _Image] = {}
        self._registry: dict[str, str] = {}
        self._builds: dict[str, int] = {}
        self._behaviour: dict[str, Behaviour] = {}
        self._image_behaviour: dict[str, ImageBehaviour] = {}
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._calls: list[Call] = []
        self._counter = 0

    # --- scripting ----------------------------------------------------------

    def script(self, service: str, behaviour: Behaviour | None = None, **fields: Any) -> None:
        """Set how the containers of ``service`` behave (``Behaviour`` fields)."""
        with self._lock:
            self._behaviour[service] = behaviour or Behaviour(**fields)

    def script_image(
        self, ref: ImageRef, *, fail: BackendError | None = None, duration: float = 0.0
    ) -> None:
        """Make pulling/building ``ref`` fail, or take ``duration`` seconds."""
        with self._lock:
            self._image_behaviour[ref] = ImageBehaviour(fail, duration)

    def publish(self, ref: ImageRef, image_id: str | None = None) -> str:
        """Set the id the registry serves for ``ref`` (a new version when omitted)."""
        with self._lock:
            self._counter += 1
            new_id = image_id or fake_id("image", f"{ref}#{self._counter}")
            self._registry[ref] = new_id
            return new_id

    def touch_build(self, tag: ImageRef) -> None:
        """Make the next build of ``tag`` produce a new image id (sources changed)."""
        with self._lock:
            self._builds[tag] = self._builds.get(tag, 0) + 1

    def fail(
        self, verb: str, target: str, error: BackendError | None = None, *, times: int | None = None
    ) -> None:
        """Make ``verb`` raise ``error`` when called for ``target``.

        ``target`` is a container name, id or service; a network or volume
        name; an image reference or build tag. ``times`` limits how often
        (default: always).
        """
        err = error or BackendError(f"{verb} {target}: injected failure")
        with self._lock:
            self._failures[(verb, target)] = _Failure(err, math.inf if times is None else times)

    # --- state set-up ---------------------------------------------------------

    def add_image(
        self, ref: ImageRef, image_id: str | None = None, created_at: float | None = None
    ) -> str:
        """Make ``ref`` present locally, as if pulled."""
        with self._lock:
            found = image_id or self._registry.get(ref) or fake_id("image", ref)
            self._images[ref] = _Image(
                found, self.clock.now() if created_at is None else created_at
            )
            return found

    def add_network(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A network that exists already (e.g. an ``external`` one)."""
        with self._lock:
            self._networks[name] = _Network(NetworkSpec(name, name, labels=dict(labels or {})))

    def add_volume(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A volume that exists already (e.g. an ``external`` one)."""
        with self._lock:
            self._volumes[name] = _Volume(VolumeSpec(name, name, labels=dict(labels or {})))

    def seed(self, state: ObservedState) -> None:
        """Load an observed snapshot, ids included, so a plan made from it can run here."""
        with self._lock:
            for ref, image in state.images.items():
                self._images[ref] = _Image(image.id, image.created_at)
            for name, net in state.networks.items():
                self._networks[name] = _Network(
                    NetworkSpec(name, net.key or name, labels=dict(net.labels))
                )
            for name, vol in state.volumes.items():
                self._volumes[name] = _Volume(
                    VolumeSpec(
                        name,
                        vol.key or name,
                        driver=vol.driver,
                        driver_opts=dict(vol.driver_opts),
                        labels=dict(vol.labels),
                    )
                )
            for c in state.containers:
                spec = ContainerSpec(
                    name=c.name,
                    service=c.service,
                    image=c.labels.get(lbl.LABEL_IMAGE, c.image_id),
                    labels=dict(c.labels),
                    number=c.number,
                    oneoff=c.oneoff,
                )
                record = _Container(c.id, spec, c.image_id, c.created_at, c.state)
                record.exit_code = c.exit_code
                record.anonymous = list(c.anonymous_volumes)
                record.fixed_health = c.health
                record.started_at = c.created_at if c.state in ("running", "paused") else None
                self._seed_attachments(record, c)
                self._containers[c.id] = record

    def _seed_attachments(self, record: _Container, c: ObservedContainer) -> None:
        mounts = tuple(MountSpec("volume", f"/{v}", v) for v in c.volumes)
        nets = tuple(NetworkAttachment(n) for n in c.networks)
        record.spec = replace(record.spec, mounts=mounts, networks=nets)

    # --- inspection for tests ------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def verbs(self) -> list[str]:
        """The verbs called so far, in order."""
        return [c.verb for c in self.calls]

    def calls_of(self, verb: str) -> list[Call]:
        return [c for c in self.calls if c.verb == verb]

    def container(self, name_or_id: str) -> ContainerSpec:
        """The spec a container was created with."""
        with self._lock:
            return self._find(name_or_id).spec

    # --- observe ---------------------------------------------------------------

    def observe(self, project: str, images: Sequence[ImageRef] = ()) -> ObservedState:
        """The project's containers; every network and volume (``external`` when
        not the project's own); the asked-for images that are present."""
        with self._lock:
            self._record("observe", project, tuple(images))
            containers = tuple(
                self._observed(c)
                for c in sorted(self._containers.values(), key=lambda c: c.spec.name)
                if c.spec.labels.get(lbl.LABEL_PROJECT) == project
            )
            networks = {
                name: ObservedNetwork(
                    name=name,
                    key=n.spec.labels.get(lbl.LABEL_NETWORK),
                    labels=dict(n.spec.labels),
                    config_hash=n.spec.labels.get(lbl.LABEL_CONFIG_HASH, ""),
                    external=n.spec.labels.get(lbl.LABEL_PROJECT) != project,
                )
                for name, n in sorted(self._networks.items())
            }
            volumes = {
                name: ObservedVolume(
                    name=name,
                    key=v.spec.labels.get(lbl.LABEL_VOLUME),
                    labels=dict(v.spec.labels),
                    driver=v.spec.driver,
                    driver_opts=dict(v.spec.driver_opts),
                    config_hash=v.spec.labels.get(lbl.LABEL_CONFIG_HASH, ""),
                    external=v.spec.labels.get(lbl.LABEL_PROJECT) != project,
                )
                for name, v in sorted(self._volumes.items())
            }
            found = {
                ref: ObservedImage(ref, self._images[ref].id, self._images[ref].created_at)
                for ref in images
                if ref in self._images
            }
            return ObservedState(project, containers, networks, volumes, found)

    def _observed(self, c: _Container) -> ObservedContainer:
        state, health, exit_code = self._status(c)
        labels = c.spec.labels
        return ObservedContainer(
            id=c.id,
            name=c.spec.name,
            service=labels.get(lbl.LABEL_SERVICE, c.spec.service),
            number=lbl.parse_container_number(labels),
            oneoff=lbl.parse_oneoff(labels),
            state=state,
            health=health,
            exit_code=exit_code,
            config_hash=labels.get(lbl.LABEL_CONFIG_HASH, ""),
            image_id=c.image_id,
            labels=dict(labels),
            networks=tuple(a.network for a in c.spec.networks),
            volumes=tuple(
                m.source for m in c.spec.mounts if m.type == "volume" and m.source is not None
            ),
            anonymous_volumes=tuple(c.anonymous),
            created_at=c.created_at,
        )

    # --- networks and volumes --------------------------------------------------

    def create_network(self, spec: NetworkSpec) -> None:
        with self._lock:
            self._record("create_network", spec.name)
            self._maybe_fail("create_network", spec.name)
            if spec.external:
                raise Unsupported(f"network {spec.name} is external and is not created")
            if spec.name in self._networks:
                raise Conflict(f"network with name {spec.name} already exists")
            self._networks[spec.name] = _Network(spec)

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._record("remove_network", name)
            self._maybe_fail("remove_network", name)
            if name not in self._networks:
                raise NotFound(f"network {name} not found")
            users = [
                c.spec.name
                for c in self._containers.values()
                if self._status(c)[0] in ("running", "paused")
                and any(a.network == name for a in c.spec.networks)
            ]
            if users:
                raise Conflict(f"network {name} has active endpoints ({', '.join(sorted(users))})")
            del self._networks[name]

    def create_volume(self, spec: VolumeSpec) -> None:
        with self._lock:
            self._record("create_volume", spec.name)
            self._maybe_fail("create_volume", spec.name)
            if spec.external:
                raise Unsupported(f"volume {spec.name} is external and is not created")
            if spec.name in self._volumes:
                raise Conflict(f"volume {spec.name} already exists")
            self._volumes[spec.name] = _Volume(spec)

    def remove_volume(self, name: str) -> None:
        with self._lock:
            self._record("remove_volume", name)
            self._maybe_fail("remove_volume", name)
            if name not in self._volumes:
                raise NotFound(f"no such volume: {name}")
            users = [
                c.spec.name for c in self._containers.values() if name in self._volume_names(c)
            ]
            if users:
                raise Conflict(f"volume {name} is in use by {', '.join(sorted(users))}")
            del self._volumes[name]

    # --- images ------------------------------------------------------------------

    def pull_image(self, ref: ImageRef, progress: Progress | None = None) -> str:
        with self._lock:
            self._record("pull_image", ref)
            behaviour = self._image_behaviour.get(ref, ImageBehaviour())
            self._maybe_fail("pull_image", ref)
        if progress is not None:
            progress(ProgressUpdate(ref, "Pulling", 0, 1))
        self.clock.sleep(behaviour.duration)
        if behaviour.fail is not None:
            raise behaviour.fail
        with self._lock:
            image_id = self._registry.get(ref) or fake_id("image", ref)
            self._images[ref] = _Image(image_id, self.clock.now())
        if progress is not None:
            progress(ProgressUpdate(ref, "Pull complete", 1, 1))
        return image_id

    def build_image(self, spec: BuildSpec, progress: Progress | None = None) -> str:
        with self._lock:
            self._record("build_image", spec.tag)
            behaviour = self._image_behaviour.get(spec.tag, ImageBehaviour())
            self._maybe_fail("build_image", spec.tag)
            revision = self._builds.get(spec.tag, 0)
        if progress is not None:
            progress(ProgressUpdate("", f"building {spec.tag}"))
        self.clock.sleep(behaviour.duration)
        if behaviour.fail is not None:
            raise behaviour.fail
        with self._lock:
            image_id = fake_id("image", f"build:{spec!r}#{revision}")
            for tag in (spec.tag, *spec.tags):
                self._images[tag] = _Image(image_id, self.clock.now())
        if progress is not None:
            progress(ProgressUpdate("", f"built {spec.tag}"))
        return image_id

    def remove_image(self, ref: ImageRef) -> None:
        with self._lock:
            self._record("remove_image", ref)
            self._maybe_fail("remove_image", ref)
            image = self._images.get(ref)
            if image is None:
                raise NotFound(f"no such image: {ref}")
            users = [c.spec.name for c in self._containers.values() if c.image_id == image.id]
            if users:
                raise Conflict(f"image {ref} is being used by {', '.join(sorted(users))}")
            del self._images[ref]

    def image_id(self, ref: ImageRef) -> str | None:
        with self._lock:
            self._record("image_id", ref)
            image = self._images.get(ref)
            if image is not None:
                return image.id
            return ref if any(i.id == ref for i in self._images.values()) else None

    # --- containers ---------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        with self._lock:
            self._record("create_container", spec.name)
            self._maybe_fail("create_container", spec.name, spec.service)
            behaviour = self._behaviour.get(spec.service, Behaviour())
            if behaviour.fail_create is not None:
                raise behaviour.fail_create
            if any(c.spec.name == spec.name for c in self._containers.values()):
                raise Conflict(f'the container name "/{spec.name}" is already in use')
            image_id = self._local_image(spec.image)
            for attachment in spec.networks:
                if attachment.network not in self._networks:
                    raise NotFound(f"network {attachment.network} not found")
            self._counter += 1
            cid = fake_id("container", f"{spec.name}#{self._counter}")
            record = _Container(cid, spec, image_id, self.clock.now())
            for mount in spec.mounts:
                if mount.type != "volume":
                    continue
                if mount.source is None:
                    anon = fake_id("volume", f"{cid}:{mount.target}")
                    self._volumes[anon] = _Volume(VolumeSpec(anon, anon))
                    record.anonymous.append((mount.target, anon))
                elif mount.source not in self._volumes:
                    # Docker creates a missing named volume on the fly, unlabelled.
                    self._volumes[mount.source] = _Volume(VolumeSpec(mount.source, mount.source))
            self._containers[cid] = record
            return cid

    def start_container(self, id: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("start_container", c.spec.name)
            self._maybe_fail("start_container", c.spec.name, c.spec.service, c.id)
            behaviour = self._behaviour.get(c.spec.service, Behaviour())
            if behaviour.fail_start is not None:
                raise behaviour.fail_start
            state = self._status(c)[0]
            if state == "running":
                return
            if state == "paused":
                raise Conflict(f"container {c.spec.name} is paused, unpause it instead")
            c.state, c.started_at, c.exit_code, c.fixed_health = (
                "running",
                self.clock.now(),
                None,
                None,
            )

    def stop_container(self, id: str, timeout: float) -> None:
        with self._lock:
            c = self._find(id)
            self._record("stop_container", c.spec.name, timeout)
            self._maybe_fail("stop_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] not in ("running", "paused"):
                return
            behaviour = self._behaviour.get(c.spec.service, Behaviour())
        delay = min(behaviour.stop_delay, max(timeout, 0.0))
        self.clock.sleep(delay)
        killed = behaviour.stop_delay > timeout
        with self._lock:
            if c.state in ("running", "paused"):
                code = 128 + int(signals.SIGKILL) if killed else behaviour.stop_exit_code
                self._exit(c, code)

    def kill_container(self, id: str, signal: str = "SIGKILL") -> None:
        with self._lock:
            c = self._find(id)
            self._record("kill_container", c.spec.name, signal)
            self._maybe_fail("kill_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] not in ("running", "paused"):
                raise Conflict(f"container {c.spec.name} is not running")
            name = signal if signal.startswith("SIG") else f"SIG{signal}"
            try:
                number = int(signals.Signals[name.upper()])
            except KeyError:
                raise BackendError(f"invalid signal: {signal}") from None
            self._exit(c, 128 + number)

    def remove_container(self, id: str, *, force: bool = False, volumes: bool = False) -> None:
        with self._lock:
            c = self._find(id)
            self._record("remove_container", c.spec.name, force, volumes)
            self._maybe_fail("remove_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] in ("running", "paused") and not force:
                raise Conflict(
                    f"cannot remove container {c.spec.name}: container is running",
                    hint="stop the container before removing it, or force the removal",
                )
            del self._containers[c.id]
            if volumes:
                for _target, anon in c.anonymous:
                    self._volumes.pop(anon, None)

    def rename_container(self, id: str, name: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("rename_container", c.spec.name, name)
            self._maybe_fail("rename_container", c.spec.name, c.spec.service, c.id)
            if any(o.spec.name == name and o is not c for o in self._containers.values()):
                raise Conflict(f'the container name "/{name}" is already in use')
            c.spec = replace(c.spec, name=name)

    def pause_container(self, id: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("pause_container", c.spec.name)
            self._maybe_fail("pause_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] != "running":
                raise Conflict(f"container {c.spec.name} is not running")
            c.state = "paused"

    def unpause_container(self, id: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("unpause_container", c.spec.name)
            self._maybe_fail("unpause_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] != "paused":
                raise Conflict(f"container {c.spec.name} is not paused")
            c.state = "running"

    def inspect_container(self, id: str) -> ContainerStatus:
        with self._lock:
            c = self._find(id)
            self._record("inspect_container", c.spec.name)
            self._maybe_fail("inspect_container", c.spec.name, c.spec.service, c.id)
            state, health, exit_code = self._status(c)
            return ContainerStatus(state, health, exit_code)

    # --- internals (called with the lock held) ----------------------------------

    def _record(self, verb: str, *args: Any) -> None:
        self._calls.append(Call(verb, args, self.clock.now()))

    def _maybe_fail(self, verb: str, *targets: str) -> None:
        for target in targets:
            failure = self._failures.get((verb, target))
            if failure is not None and failure.times > 0:
                failure.times -= 1
                raise failure.error

    def _find(self, name_or_id: str) -> _Container:
        found = self._containers.get(name_or_id)
        if found is not None:
            return found
        for c in self._containers.values():
            if c.spec.name == name_or_id or (len(name_or_id) >= 12 and c.id.startswith(name_or_id)):
                return c
        raise NotFound(f"no such container: {name_or_id}")

    def _local_image(self, ref: str) -> str:
        image = self._images.get(ref)
        if image is not None:
            return image.id
        if any(i.id == ref for i in self._images.values()):
            return ref
        raise NotFound(f"no such image: {ref}")

    def _volume_names(self, c: _Container) -> set[str]:
        named = {m.source for m in c.spec.mounts if m.type == "volume" and m.source}
        return named | {anon for _t, anon in c.anonymous}

    def _exit(self, c: _Container, code: int) -> None:
        c.state, c.exit_code, c.fixed_health = "exited", code, None

    def _status(self, c: _Container) -> tuple[ContainerState, Health | None, int | None]:
        """The container's state now, applying a scripted exit that has come due."""
        if c.state != "running" or c.started_at is None:
            health = c.fixed_health if c.state in ("running", "paused") else None
            return c.state, health, c.exit_code
        behaviour = self._behaviour.get(c.spec.service, Behaviour())
        elapsed = self.clock.now() - c.started_at
        if behaviour.exit_after is not None and elapsed >= behaviour.exit_after:
            self._exit(c, behaviour.exit_code)
            return c.state, None, c.exit_code
        return c.state, self._health(c, behaviour, elapsed), None

    def _health(self, c: _Container, behaviour: Behaviour, elapsed: float) -> Health | None:
        if c.fixed_health is not None:
            return c.fixed_health
        scripted = behaviour.healthy_after is not None or behaviour.unhealthy_after is not None
        check = c.spec.healthcheck
        if not scripted and (check is None or check.disabled):
            return None
        if behaviour.unhealthy_after is not None and elapsed >= behaviour.unhealthy_after:
            return "unhealthy"
        healthy_at = behaviour.healthy_after
        if healthy_at is None:
            healthy_at = 0.0 if behaviour.unhealthy_after is None else math.inf
        return "healthy" if elapsed >= healthy_at else "starting"
