"""The fake engine's container lifecycle: create, start, stop, kill, remove, …

Docker's rules are kept where a planner bug would show (duplicate names
conflict, a running container is removed only with ``force``, networks must
exist first), and each verb emits the container events Docker emits, at
the virtual time they happen.
"""

from __future__ import annotations

import signal as signals
from dataclasses import replace

from composer.backends.base import ContainerSpec, ContainerStatus, VolumeSpec
from composer.backends.fake.records import EPHEMERAL_PORT, Behaviour, _Container, _Volume, fake_id
from composer.backends.fake.resources import ResourceVerbs
from composer.errors import BackendError, Conflict, NotFound


class ContainerVerbs(ResourceVerbs):
    """The container lifecycle verbs, in memory."""

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
            self._emit(record, "create")
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
            now = self.clock.now()
            c.state, c.started_at, c.exit_code, c.fixed_health = "running", now, None, None
            c.listing = None
            self._publish_ports(c)
            c.output.extend((now, stream, line) for stream, line in behaviour.output)
            self._emit(c, "start")

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
                self._emit(c, "kill")  # the stop signal, as Docker reports it
                self._exit(c, code)
                self._emit(c, "stop")

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
            self._emit(c, "kill")
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
            if self._status(c)[0] in ("running", "paused"):
                self._exit(c, 128 + int(signals.SIGKILL))
            del self._containers[c.id]
            self._emit(c, "destroy")
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
            self._emit(c, "rename")

    def pause_container(self, id: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("pause_container", c.spec.name)
            self._maybe_fail("pause_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] != "running":
                raise Conflict(f"container {c.spec.name} is not running")
            c.state = "paused"
            self._emit(c, "pause")

    def unpause_container(self, id: str) -> None:
        with self._lock:
            c = self._find(id)
            self._record("unpause_container", c.spec.name)
            self._maybe_fail("unpause_container", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] != "paused":
                raise Conflict(f"container {c.spec.name} is not paused")
            c.state = "running"
            self._emit(c, "unpause")

    def inspect_container(self, id: str) -> ContainerStatus:
        with self._lock:
            c = self._find(id)
            self._record("inspect_container", c.spec.name)
            self._maybe_fail("inspect_container", c.spec.name, c.spec.service, c.id)
            state, health, exit_code = self._status(c)
            return ContainerStatus(state, health, exit_code)

    def _publish_ports(self, c: _Container) -> None:
        """Bind each published port: its own host port, or the next ephemeral one."""
        c.host_ports.clear()
        for port in c.spec.ports:
            wanted = (port.published or "").split("-")[0]
            if wanted.isdigit() and int(wanted) > 0:
                c.host_ports[(port.target, port.protocol)] = int(wanted)
            else:
                self._counter += 1
                c.host_ports[(port.target, port.protocol)] = EPHEMERAL_PORT + self._counter
