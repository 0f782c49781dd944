"""Container records and state on disk → the planner's ``ObservedState``.

``observe`` is one scan of ``<root>/containers`` (each ``record.json`` read
once, its ``state.json`` and ``mounts.json`` next to it) plus one of
``<root>/volumes`` and ``<root>/networks``: no supervisor is asked, so a
project whose supervisor is gone is still observed correctly
(``live_status`` checks that a recorded PID is still the container's
process). The status text is worded as ``docker ps`` words it ("Up 3
seconds (healthy)", "Exited (0) 2 minutes ago") and ports are listed as the
Engine lists them: published ones with their host side while running,
exposed ones without.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.backends.labels import (
    LABEL_CONFIG_HASH,
    LABEL_IMAGE,
    LABEL_NETWORK,
    LABEL_PROJECT,
    LABEL_SERVICE,
    LABEL_VOLUME,
    parse_container_number,
    parse_oneoff,
)
from composer.backends.native import mounts as _mounts
from composer.backends.native.state import StateRoot, read_json
from composer.backends.native.supervisor.records import (
    RECORD_FILE,
    ContainerRecord,
    ContainerRunState,
    from_json,
    live_status,
    pid_is_zombie,
    read_state,
)
from composer.backends.native.volumes import VolumeMeta
from composer.backends.observed import (
    ContainerState,
    ContainerStatus,
    Health,
    ObservedContainer,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
)
from composer.humanize import human_duration


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One container as found on disk."""

    record: ContainerRecord
    state: ContainerRunState
    mounts: tuple[_mounts.ResolvedMount, ...]
    status: ContainerState

    @property
    def labels(self) -> Mapping[str, str]:
        labels = self.record.spec.get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


def snapshot(root: StateRoot, record: ContainerRecord) -> Snapshot:
    """The container as its files say, checked against ``/proc``.

    A recorded process that is gone while its supervisor lives is a
    container whose end the supervisor is recording right now: it is
    still reported as it was until ``state.json`` says how it ended. With
    no supervisor left, it is reported ``exited`` (code unknown).
    """
    state = read_state(root, record.id)
    mounts = _mounts.load(root.container(record.id))
    status = live_status(state)
    if status != state.status and supervisor_alive(root, record.project):
        status = state.status
    return Snapshot(record, state, mounts, status)


def supervisor_alive(root: StateRoot, project: str) -> bool:
    """Whether the process named in the project's ``supervisor.pid`` still exists."""
    try:
        pid = int((root.project(project) / "supervisor.pid").read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not pid_is_zombie(pid)


def scan(root: StateRoot, project: str | None = None) -> Iterator[ContainerRecord]:
    """Every container record (of ``project`` when given), one directory scan."""
    for data in raw_records(root, project):
        yield from_json(ContainerRecord, data)


def raw_records(root: StateRoot, project: str | None = None) -> Iterator[dict[str, Any]]:
    """``scan`` without decoding: each ``record.json`` as parsed JSON.

    For questions about a field or two (a name taken, a project with containers),
    which must not pay for rebuilding every record's dataclasses (milliseconds
    each, for every container of the state root).
    """
    base = root.path / "containers"
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(base):
            try:
                data = read_json(Path(entry.path) / RECORD_FILE)
            except (FileNotFoundError, NotADirectoryError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            if project is not None and data.get("project") != project:
                continue
            yield data


def status_text(snap: Snapshot, now: float) -> str:
    """``docker ps``'s STATUS column."""
    state, status = snap.state, snap.status
    if status in ("running", "paused"):
        text = f"Up {human_duration(max(now - state.started_at, 0.0))}"
        if status == "paused":
            return f"{text} (Paused)"
        health = health_of(snap)
        if health == "starting":
            return f"{text} (health: starting)"
        return f"{text} ({health})" if health else text
    code = exit_code_of(snap) or 0
    if status == "restarting":
        return f"Restarting ({code}) {human_duration(max(now - state.finished_at, 0.0))} ago"
    if status == "exited":
        if not state.finished_at:
            return f"Exited ({code})"
        return f"Exited ({code}) {human_duration(max(now - state.finished_at, 0.0))} ago"
    return "Created" if status == "created" else "Dead"


def health_of(snap: Snapshot) -> Health | None:
    if snap.status != "running" or snap.record.healthcheck is None:
        return None
    if snap.state.health is None:
        return "starting"
    return snap.state.health.status


def exit_code_of(snap: Snapshot) -> int | None:
    if snap.status not in ("exited", "dead"):
        return None
    if snap.state.exit_code is not None:
        return snap.state.exit_code
    return 255 if snap.state.status in ("running", "paused") else 0


def container_status(snap: Snapshot) -> ContainerStatus:
    return ContainerStatus(state=snap.status, health=health_of(snap), exit_code=exit_code_of(snap))


def port_bindings(snap: Snapshot) -> tuple[PortBinding, ...]:
    """Published ports with their host side while running; exposed ports without."""
    out: set[PortBinding] = set()
    if snap.running:
        for p in snap.state.ports:
            out.add(PortBinding(p.container_port, p.protocol, p.host_ip, p.host_port))
    published = {(b.target, b.protocol) for b in out}
    for asked in snap.record.ports:
        if (asked.container_port, asked.protocol) not in published:
            out.add(PortBinding(asked.container_port, asked.protocol))
    for entry in snap.record.spec.get("expose") or ():
        number, _, proto = str(entry).partition("/")
        start, _, end = number.partition("-")
        with contextlib.suppress(ValueError):
            for port in range(int(start), int(end or start) + 1):
                if (port, proto or "tcp") not in published:
                    out.add(PortBinding(port, proto or "tcp"))
    return tuple(sorted(out, key=lambda p: (p.target, p.protocol, p.host_ip, p.host_port or 0)))


def command_text(record: ContainerRecord) -> str:
    args = record.launch.get("args") or ()
    return " ".join(str(a) for a in args)


def observed_container(snap: Snapshot, now: float | None = None) -> ObservedContainer:
    record, labels = snap.record, snap.labels
    named = sorted({m.volume for m in snap.mounts if m.volume and not m.anonymous})
    anonymous = sorted((m.target, m.volume) for m in snap.mounts if m.volume and m.anonymous)
    return ObservedContainer(
        id=record.id,
        name=record.name,
        service=labels.get(LABEL_SERVICE, record.service),
        number=parse_container_number(labels),
        oneoff=parse_oneoff(labels),
        state=snap.status,
        health=health_of(snap),
        exit_code=exit_code_of(snap),
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        image_id=labels.get(LABEL_IMAGE) or record.image_id,
        labels=labels,
        networks=tuple(sorted({n.network for n in record.networks})),
        volumes=tuple(named),
        anonymous_volumes=tuple((t, v) for t, v in anonymous if v is not None),
        created_at=record.created_at,
        image=str(record.spec.get("image") or ""),
        command=command_text(record),
        status=status_text(snap, time.time() if now is None else now),
        ports=port_bindings(snap),
    )


def observed_volume(meta: VolumeMeta, project: str) -> ObservedVolume:
    labels = dict(meta.labels)
    return ObservedVolume(
        name=meta.name,
        key=labels.get(LABEL_VOLUME),
        labels=labels,
        driver=meta.driver,
        driver_opts=dict(meta.driver_opts),
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        external=labels.get(LABEL_PROJECT) != project,
    )


def observed_network(name: str, labels: Mapping[str, Any], project: str) -> ObservedNetwork:
    plain = {str(k): str(v) for k, v in labels.items()}
    return ObservedNetwork(
        name=name,
        key=plain.get(LABEL_NETWORK),
        labels=plain,
        config_hash=plain.get(LABEL_CONFIG_HASH, ""),
        external=plain.get(LABEL_PROJECT) != project,
    )
