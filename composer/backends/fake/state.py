"""The fake engine's state and the rules every verb shares.

``FakeState`` holds the containers, networks, volumes, images and events
behind one re-entrant lock, records each call, plays injected failures and
computes a container's state *now* from its script and the clock (a
scripted exit or health change happens when it is looked at, at the exact
virtual time it was due). The verbs are layered on top, one stage per
module: set-up, resources, containers, the runtime verbs.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from composer.backends import labels as lbl
from composer.backends.base import ContainerState, EngineEvent, Health
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
)
from composer.clock import Clock
from composer.errors import NotFound


class FakeState:
    """The in-memory engine's state; every method here expects the lock held."""

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
        self._exec_scripts: dict[tuple[str, tuple[str, ...] | None], ExecScript] = {}
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._calls: list[Call] = []
        self._events: list[EngineEvent] = []
        self._counter = 0

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

    def _emit(self, c: _Container, action: str, when: float | None = None) -> None:
        """Record a container event as the engine would report it (labels as attributes)."""
        attributes = dict(c.spec.labels)
        attributes.update(name=c.spec.name, image=c.spec.image)
        self._events.append(
            EngineEvent(
                time=self.clock.now() if when is None else when,
                type="container",
                action=action,
                id=c.id,
                name=c.spec.name,
                service=c.spec.labels.get(lbl.LABEL_SERVICE, c.spec.service),
                attributes=attributes,
            )
        )
        self._events.sort(key=lambda e: e.time)

    def _exit(self, c: _Container, code: int, when: float | None = None) -> None:
        at = self.clock.now() if when is None else when
        c.state, c.exit_code, c.fixed_health, c.finished_at = "exited", code, None, at
        c.listing = None
        c.host_ports.clear()
        self._emit(c, "die", at)

    def _status(self, c: _Container) -> tuple[ContainerState, Health | None, int | None]:
        """The container's state now, applying a scripted exit that has come due."""
        if c.state != "running" or c.started_at is None:
            health = c.fixed_health if c.state in ("running", "paused") else None
            return c.state, health, c.exit_code
        behaviour = self._behaviour.get(c.spec.service, Behaviour())
        elapsed = self.clock.now() - c.started_at
        if behaviour.exit_after is not None and elapsed >= behaviour.exit_after:
            self._exit(c, behaviour.exit_code, c.started_at + behaviour.exit_after)
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
