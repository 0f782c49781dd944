"""Setting up the fake engine: scripts, existing resources, seeding, call records.

Tests script how containers, images and exec'd commands behave, add what
should already exist (external networks, pulled images) or load a whole
observed snapshot (``seed``, for dry runs), and read back the calls made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from composer.backends import labels as lbl
from composer.backends.base import (
    ContainerSpec,
    ImageRef,
    MountSpec,
    NetworkAttachment,
    NetworkSpec,
    ObservedContainer,
    ObservedState,
    VolumeSpec,
)
from composer.backends.fake.records import (
    Behaviour,
    Call,
    ExecScript,
    ImageBehaviour,
    _Container,
    _Failure,
    _Image,
    _Network,
    _Volume,
    fake_id,
)
from composer.backends.fake.state import FakeState
from composer.errors import BackendError


class FakeSetup(FakeState):
    """Scripting, set-up and inspection of the fake engine (not part of ``Backend``)."""

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

    def script_exec(
        self,
        target: str,
        command: Sequence[str] | None = None,
        script: ExecScript | None = None,
        **fields: Any,
    ) -> None:
        """Set what ``exec_run`` of ``command`` (any command when ``None``) does in
        the containers of ``target`` (a container name or a service)."""
        key = (target, None if command is None else tuple(command))
        with self._lock:
            self._exec_scripts[key] = script or ExecScript(**fields)

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
        self,
        ref: ImageRef,
        image_id: str | None = None,
        created_at: float | None = None,
        size: int = 0,
    ) -> str:
        """Make ``ref`` present locally, as if pulled."""
        with self._lock:
            found = image_id or self._registry.get(ref) or fake_id("image", ref)
            self._images[ref] = _Image(
                found, self.clock.now() if created_at is None else created_at, size
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
                    image=c.image or c.labels.get(lbl.LABEL_IMAGE, c.image_id),
                    labels=dict(c.labels),
                    number=c.number,
                    oneoff=c.oneoff,
                )
                record = _Container(c.id, spec, c.image_id, c.created_at, c.state)
                record.exit_code = c.exit_code
                record.anonymous = list(c.anonymous_volumes)
                record.fixed_health = c.health
                record.listing = c
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
