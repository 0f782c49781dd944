"""Container directories and records: create, find, rename and remove.

``create`` decides everything once and writes it down, so that the
supervisor (which starts the container, maybe much later and in another
process) derives nothing: the container gets a 64-hex id, a directory
``<root>/containers/<id>/`` with the overlay's ``upper``, ``work`` and
``rootfs`` (mount point), its mounts resolved (``mounts.json``: volumes
created or carried over, config and secret files written), the image's new
volumes filled from its layers, and ``record.json`` (the supervisor's
contract: ``ContainerSpec`` and ``LaunchSpec`` as JSON plus the resolved
restart policy, healthcheck, stop signal, hooks, networks and ports).

Names are unique across the state root, as on Docker; a read-decide-write
on names holds the ``containers`` lock (only around the check and the record's
write: everything else of a create happens under the new container's own
id). Removing never follows into a mount: whatever is still mounted under
the directory is detached first, and the directory is left alone if that
fails (a volume's data must never be deleted by removing a container).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.labels import LABEL_PROJECT, LABEL_REPLACE
from composer.backends.native import mounts as _mounts
from composer.backends.native.runtime.spec import LaunchSpec, MountEntry
from composer.backends.native.state import StateRoot, check_name
from composer.backends.native.supervisor.records import (
    ContainerRecord,
    HealthcheckRecord,
    HookRecord,
    NetworkJoin,
    PortPublish,
    read_record,
    spec_to_json,
    to_json,
    write_record,
)
from composer.backends.native.volumes import Volumes
from composer.backends.specs import ContainerSpec, HookSpec, NetworkAttachment, PortSpec
from composer.errors import BackendError, Conflict, NotFound

if TYPE_CHECKING:
    from composer.backends.native.images.store import StoredImage

BUILTIN_NETWORK_MODES = ("none", "host", "bridge", "default")
NS_PER_SECOND = 1_000_000_000
MNT_DETACH = 2


@dataclass(frozen=True, slots=True)
class ContainerDirs:
    """The host paths of one container."""

    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def rootfs(self) -> Path:
        return self.base / "rootfs"

    def make(self) -> None:
        self.base.mkdir(mode=0o700, parents=True)
        for sub in (self.upper, self.work, self.rootfs):
            sub.mkdir(mode=0o755)


LaunchBuilder = Callable[
    [ContainerSpec, "StoredImage", ContainerDirs, Sequence[MountEntry]], LaunchSpec
]
"""``translate``: the spec, the image and the directories → what the runtime starts."""


# --- what the record says beyond the spec -------------------------------------


def _seconds(ns: Any, default: float) -> float:
    return float(ns) / NS_PER_SECOND if isinstance(ns, int | float) and ns > 0 else default


def healthcheck_record(
    spec: ContainerSpec, image_config: Mapping[str, Any]
) -> HealthcheckRecord | None:
    """The service's healthcheck over the image's over Docker's defaults; ``None`` when
    there is none or it is disabled (``NONE``)."""
    image = (image_config.get("config") or {}).get("Healthcheck") or {}
    h = spec.healthcheck
    test: tuple[str, ...] | None = None
    if h is not None and h.test is not None:
        test = tuple(h.test)
    elif image.get("Test"):
        test = tuple(str(t) for t in image["Test"])
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL"):
        test = ("CMD-SHELL", " ".join(test))
    defaults = HealthcheckRecord(test=test)

    def pick(mine: float | None, key: str, fallback: float) -> float:
        return mine if mine is not None else _seconds(image.get(key), fallback)

    return HealthcheckRecord(
        test=test,
        interval=pick(h.interval if h else None, "Interval", defaults.interval),
        timeout=pick(h.timeout if h else None, "Timeout", defaults.timeout),
        retries=(
            h.retries
            if h is not None and h.retries is not None
            else int(image.get("Retries") or defaults.retries)
        ),
        start_period=pick(h.start_period if h else None, "StartPeriod", defaults.start_period),
        start_interval=pick(
            h.start_interval if h else None, "StartInterval", defaults.start_interval
        ),
    )


def _hook(h: HookSpec) -> HookRecord:
    return HookRecord(
        command=tuple(h.command),
        user=h.user,
        privileged=h.privileged,
        working_dir=h.working_dir,
        environment=dict(h.environment),
    )


def ordered_networks(spec: ContainerSpec) -> list[NetworkAttachment]:
    """Highest ``priority`` first; ties keep the spec's order (the first is the default route)."""
    if spec.network_mode:
        return []
    indexed = sorted(enumerate(spec.networks), key=lambda item: (-item[1].priority, item[0]))
    return [att for _, att in indexed]


def network_joins(spec: ContainerSpec) -> tuple[NetworkJoin, ...]:
    """The networks to join at start, with the DNS names this container answers to there."""
    out: list[NetworkJoin] = []
    for att in ordered_networks(spec):
        if att.network in BUILTIN_NETWORK_MODES:
            continue
        names = [spec.name]
        if not spec.oneoff:
            names.append(spec.service)
        if spec.hostname and spec.hostname not in names:
            names.append(spec.hostname)
        out.append(NetworkJoin(att.network, to_json(att), tuple(names)))
    return tuple(out)


def port_publishes(ports: Sequence[PortSpec]) -> tuple[PortPublish, ...]:
    """Published ports; an unset or ``0`` host port asks for a free one, and a host
    range (``8000-8010``) is kept whole for the supervisor to pick from (Docker's rule)."""
    out: list[PortPublish] = []
    for p in ports:
        host = str(p.published or "0")
        start, dash, end = host.partition("-")
        try:
            first = int(start or 0)
            if dash:
                int(end)
        except ValueError as exc:
            raise BackendError(
                f"invalid published port {p.published!r} for container port {p.target}",
                hint="use a port number or a range like 8000-8010",
            ) from exc
        out.append(
            PortPublish(
                p.target, first, p.host_ip or "", p.protocol or "tcp", host if dash else None
            )
        )
    return tuple(out)


def carried_image_volumes(
    spec: ContainerSpec, records: Sequence[ContainerRecord], root: StateRoot
) -> dict[str, str]:
    """The anonymous volumes (target → name) of the container this one replaces.

    On recreate the planner carries the service's own anonymous volumes in
    the spec; those that come from the image's ``VOLUME`` are found here, on
    the old container (renamed ``<id12>_<name>`` by then), named by the
    ``com.docker.compose.replace`` label.
    """
    old_name = spec.labels.get(LABEL_REPLACE)
    if not old_name:
        return {}
    project = spec.labels.get(LABEL_PROJECT)
    for record in records:
        if record.project != project:
            continue
        if record.name == old_name or record.name == f"{record.id[:12]}_{old_name}":
            found = _mounts.load(root.container(record.id))
            old = {m.target: m.volume for m in found if m.anonymous and m.volume}
            renewed = any(
                m.type == "volume" and m.source is None and m.target in old for m in spec.mounts
            )
            # The planner leaves a service's anonymous volume unset only under -V
            # (--renew-anon-volumes): then the image's are renewed too.
            return {} if renewed else old
    return {}


# --- the store -----------------------------------------------------------------


class Containers:
    """Container records under one state root."""

    def __init__(self, root: StateRoot, volumes: Volumes) -> None:
        self.root = root
        self.volumes = volumes

    def dirs(self, container_id: str) -> ContainerDirs:
        return ContainerDirs(self.root.container(container_id))

    def records(self, project: str | None = None) -> list[ContainerRecord]:
        from composer.backends.native.observe import scan

        return list(scan(self.root, project))

    def find(self, ref: str) -> ContainerRecord:
        """By full id, name or unique id prefix (``NotFound``/``Conflict`` otherwise)."""
        if len(ref) == 64:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
                return read_record(self.root, ref)
        every = self.records()
        for record in every:
            if record.name == ref or record.name == ref.lstrip("/"):
                return record
        matches = [r for r in every if ref and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"container id prefix {ref!r} is ambiguous")
        raise NotFound(f"no such container: {ref}")

    def create(
        self, spec: ContainerSpec, image: StoredImage, build_launch: LaunchBuilder
    ) -> ContainerRecord:
        """Allocate, resolve mounts, fill new volumes, build the launch spec, write the record.

        The ``containers`` lock is held only to check the name and write the record:
        the rest (its own directory under a fresh id, volumes, the launch spec) needs
        no lock, so the creates of an ``up`` run side by side. The name is checked
        first without the lock too, so that a clash is reported before any work.
        """
        self._check_name(spec.name)
        # only a recreate looks at the other records (for the one it replaces)
        every = self.records() if spec.labels.get(LABEL_REPLACE) else []
        container_id = secrets.token_hex(32)
        dirs = self.dirs(container_id)
        dirs.make()
        created: Sequence[str] = ()
        try:
            resolution = _mounts.resolve(
                spec,
                container_dir=dirs.base,
                volumes=self.volumes,
                peers=self._peer_mounts,
                image_volumes=sorted((image.config.get("config") or {}).get("Volumes") or {}),
                carried=carried_image_volumes(spec, every, self.root),
                anonymous_labels={},
            )
            created = resolution.created_volumes
            layer_dirs = [str(d) for d in image.layer_dirs]
            for fill in resolution.fills:
                self.volumes.fill_from_layers(fill.meta, layer_dirs, fill.target)
            _mounts.save(dirs.base, resolution.mounts)
            launch = build_launch(spec, image, dirs, [m.entry() for m in resolution.mounts])
            record = ContainerRecord(
                id=container_id,
                name=spec.name,
                project=spec.labels.get(LABEL_PROJECT, ""),
                service=spec.service,
                created_at=time.time(),
                spec=spec_to_json(spec),
                launch=to_json(launch),
                image_id=image.id,
                restart=spec.restart or "no",
                healthcheck=healthcheck_record(spec, image.config),
                stop_signal=launch.stop_signal,
                stop_timeout=spec.stop_timeout,
                post_start=tuple(_hook(h) for h in spec.post_start),
                pre_stop=tuple(_hook(h) for h in spec.pre_stop),
                networks=network_joins(spec),
                ports=port_publishes(spec.ports),
                tty=spec.tty,
                stdin_open=spec.stdin_open,
                oneoff=spec.oneoff,
            )
            with self.root.locked("containers"):
                self._check_name(spec.name)
                write_record(self.root, record)
        except BaseException:
            for name in created:
                meta = self.volumes.get(name)
                if meta is not None and meta.anonymous:
                    with contextlib.suppress(BackendError):
                        self.volumes.remove(name)
            remove_tree(dirs.base)
            raise
        return record

    def _check_name(self, name: str) -> None:
        """``Conflict`` when a container is named ``name`` (records read as JSON)."""
        from composer.backends.native.observe import raw_records

        taken = next((r for r in raw_records(self.root) if r.get("name") == name), None)
        if taken is not None:
            raise Conflict(
                f'container name "{name}" is already in use by container "{taken.get("id")}"',
                hint="remove or rename that container first",
            )

    def _peer_mounts(self, ref: str) -> Sequence[_mounts.ResolvedMount]:
        record = self.find(ref)
        return _mounts.load(self.root.container(record.id))

    def rename(self, container_id: str, name: str) -> ContainerRecord:
        try:
            check_name("container", name)
        except ValueError as exc:
            raise BackendError(f"invalid container name {name!r}") from exc
        with self.root.locked("containers"):
            record = self.find(container_id)
            taken = next((r for r in self.records() if r.name == name), None)
            if taken is not None and taken.id != record.id:
                raise Conflict(
                    f'container name "{name}" is already in use by container "{taken.id}"'
                )
            spec = dict(record.spec)
            spec["name"] = name
            renamed = replace(record, name=name, spec=spec)
            write_record(self.root, renamed)
        return renamed

    def users_of_volume(self, name: str) -> list[str]:
        """Names of the containers that mount volume ``name``."""
        out = []
        for record in self.records():
            if any(m.volume == name for m in _mounts.load(self.root.container(record.id))):
                out.append(record.name)
        return out

    def remove(self, record: ContainerRecord, *, volumes: bool) -> None:
        """Delete the container's directory; with ``volumes`` its anonymous volumes too."""
        base = self.root.container(record.id)
        resolved = _mounts.load(base)
        with self.root.locked("containers"):
            remove_tree(base)
        if volumes:
            for m in resolved:
                if m.anonymous and m.volume and not self.users_of_volume(m.volume):
                    with contextlib.suppress(NotFound):
                        self.volumes.remove(m.volume)


# --- removing without following into mounts -----------------------------------------


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    prefix = os.path.realpath(path)
    found: list[str] = []
    with contextlib.suppress(FileNotFoundError), open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = _unescape(line.split()[4].decode())
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    found.sort(key=lambda p: p.count("/"), reverse=True)
    return found


def _unescape(text: str) -> str:
    return (
        text.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


_libc = ctypes.CDLL(None, use_errno=True)


def detach(point: str) -> None:
    if _libc.umount2(os.fsencode(point), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), point)


def remove_tree(path: Path) -> None:
    """Detach what is mounted below ``path``, then delete it; never delete through a mount."""
    for point in mounts_under(path):
        with contextlib.suppress(OSError):
            detach(point)
    left = mounts_under(path)
    if left:
        raise BackendError(
            f"cannot remove {path}: still mounted at {', '.join(left)}",
            hint="unmount those paths and remove the container again",
        )
    shutil.rmtree(path, ignore_errors=True)
