"""The native backend's verbs around a running project (the CLI's verbs).

Logs are read from the container's log file, ``exec`` runs from the CLI
process through the runtime (``exec_io.py``), attaching goes through the
supervisor, which holds the container's stdio; copies resolve paths inside
the container's root (``copy.py``); events come from the project's event
log merged with the exits recorded in ``state.json`` (``events.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO

from composer.backends.base import EngineEvent, LogLine, PathStat, PortBinding, ProjectSummary
from composer.backends.labels import LABEL_CONFIG_FILES, LABEL_SERVICE
from composer.backends.native import copy as _copy
from composer.backends.native import events as _events
from composer.backends.native import observe as _observe
from composer.backends.native.runtime.spec import LaunchSpec
from composer.backends.native.session import NativeSession
from composer.backends.native.supervisor.records import read_state
from composer.errors import Conflict, Unavailable


class RuntimeVerbs(NativeSession):
    """Logs, exec, attach, wait, top, copies, events and listings on the state root."""

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
