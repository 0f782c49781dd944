"""The native backend's shared handles: the state root and what is built on it.

``NativeSession`` holds what every verb needs — the state root, the volume
and container stores, the image store and network manager (built on first
use: their imports are not free), one ``SupervisorClient`` per project —
and the helpers that find a container and log what happens to it. It holds
no state of its own: the state root is the truth.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.labels import LABEL_PROJECT
from composer.backends.native import events as _events
from composer.backends.native import observe as _observe
from composer.backends.native.containers import Containers
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import ContainerRecord, read_state
from composer.backends.native.volumes import Volumes
from composer.errors import ComposerError, Conflict

if TYPE_CHECKING:
    from composer.backends.native.images.store import ImageStore
    from composer.backends.native.network.manager import NetworkManager
    from composer.backends.native.supervisor.client import SupervisorClient
    from composer.backends.optional import HealthResult


class NativeSession:
    """The state root and the stores on it; safe to share between threads.

    ``environ`` supplies ``COMPOSER_ROOT`` (and ``HOME``/``DOCKER_CONFIG``
    for registry credentials).
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

    def health_log(self, container_id: str) -> list[HealthResult]:
        """The optional ``HealthLog`` verb: the last probe results the supervisor kept."""
        from composer.backends.optional import HealthResult

        health = self._snapshot(container_id).state.health
        if health is None:
            return []
        return [HealthResult(r.start, r.exit_code, r.output) for r in health.log]

    def reap_with_parent(self, project: str, pid: int, *, logs_dir: str | None = None) -> None:
        """``--reap-with-parent``: the project's supervisor removes the stack when ``pid`` dies.

        The supervisor already outlives the CLI and owns the containers, so it
        is the watchdog here (``composer.backends.optional.ParentReaper``); it
        stays up while the watch is armed, even before the first container.
        """
        from composer.reaper import start_time

        client = self._client(project)
        client.ensure_running()
        client.call("reap", parent=pid, parent_start=start_time(pid), logs_dir=logs_dir)

    def container_root(self, id: str) -> Path:
        """The running container's root file system as seen from the host (``/proc/<pid>/root``)."""
        snap = self._snapshot(id)
        if not snap.running or snap.state.pid <= 0:
            raise Conflict(f"container {snap.record.name} is not running")
        return Path(f"/proc/{snap.state.pid}/root")

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

    def _tidy_project(self, project: str) -> None:
        """When a project has no container left, its supervisor is told to leave now
        (rather than linger), and once its networks are gone too its event log goes."""
        if not project or any(True for _ in _observe.raw_records(self.root, project)):
            return
        with contextlib.suppress(ComposerError, OSError):
            self._client(project).shutdown()
        for net in self._network_records():
            if net.labels.get(LABEL_PROJECT) == project:
                return
        with contextlib.suppress(OSError, ValueError):
            _events.log_path(self.root, project).unlink(missing_ok=True)
        from composer.backends.native.supervisor.home import remove_home

        with contextlib.suppress(OSError, ValueError):
            remove_home(self.root, project)

    def shutdown(self) -> None:
        """Ask the supervisors this backend talked to to leave (tests; containers stay)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(ComposerError, OSError):
                client.shutdown()
