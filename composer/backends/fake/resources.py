"""The fake engine's resources: observe, networks, volumes and images.

``observe`` reports the project's containers (with the ``ps`` fields worded
as Docker words them), every network and volume (``external`` when not the
project's own) and the asked-for images. Pushing an image publishes it to
the fake registry, so a later pull of the reference gets the same id.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from composer.backends import labels as lbl
from composer.backends.base import (
    BuildSpec,
    ContainerState,
    Health,
    ImageInfo,
    ImageRef,
    NetworkSpec,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
    PortBinding,
    Progress,
    ProgressUpdate,
    VolumeSpec,
)
from composer.backends.fake.records import (
    ImageBehaviour,
    _Container,
    _Image,
    _Network,
    _Volume,
    fake_id,
    status_text,
)
from composer.backends.fake.setup import FakeSetup
from composer.errors import Conflict, NotFound, Unsupported


class ResourceVerbs(FakeSetup):
    """``observe`` and the network, volume and image verbs, in memory."""

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
        state, health, code = self._status(c)
        labels = c.spec.labels
        return ObservedContainer(
            id=c.id,
            name=c.spec.name,
            service=labels.get(lbl.LABEL_SERVICE, c.spec.service),
            number=lbl.parse_container_number(labels),
            oneoff=lbl.parse_oneoff(labels),
            state=state,
            health=health,
            exit_code=code,
            config_hash=labels.get(lbl.LABEL_CONFIG_HASH, ""),
            image_id=c.image_id,
            labels=dict(labels),
            networks=tuple(a.network for a in c.spec.networks),
            volumes=tuple(
                m.source for m in c.spec.mounts if m.type == "volume" and m.source is not None
            ),
            anonymous_volumes=tuple(c.anonymous),
            created_at=c.created_at,
            image=c.spec.image,
            command=c.listing.command if c.listing else self._command_text(c),
            status=c.listing.status if c.listing else self._status_text(c, state, health, code),
            ports=c.listing.ports if c.listing else tuple(self._bindings(c)),
        )

    @staticmethod
    def _command_text(c: _Container) -> str:
        return shlex.join((*(c.spec.entrypoint or ()), *(c.spec.command or ())))

    def _status_text(
        self, c: _Container, state: ContainerState, health: Health | None, code: int | None
    ) -> str:
        since = c.started_at if state in ("running", "paused") else c.finished_at
        return status_text(state, health, code, since, self.clock.now())

    def _bindings(self, c: _Container) -> list[PortBinding]:
        """Host bindings of a running container: as published, or handed out at start."""
        out = [
            PortBinding(p.target, p.protocol, p.host_ip or "0.0.0.0", port)
            for p in c.spec.ports
            if (port := c.host_ports.get((p.target, p.protocol))) is not None
        ]
        return sorted(out, key=lambda b: (b.target, b.protocol, b.host_ip, b.host_port or 0))

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

    def push_image(self, ref: ImageRef, progress: Progress | None = None) -> None:
        """Publish the local image to the fake registry: a later pull gets the same id."""
        with self._lock:
            self._record("push_image", ref)
            self._maybe_fail("push_image", ref)
            image = self._images.get(ref)
            if image is None:
                raise NotFound(f"push {ref}: an image does not exist locally with the tag")
            behaviour = self._image_behaviour.get(ref, ImageBehaviour())
        if progress is not None:
            progress(ProgressUpdate(ref, "Pushing", 0, 1))
        self.clock.sleep(behaviour.duration)
        with self._lock:
            self._registry[ref] = image.id
        if progress is not None:
            progress(ProgressUpdate(ref, "Pushed", 1, 1))

    def list_images(self, refs: Sequence[str]) -> list[ImageInfo]:
        with self._lock:
            self._record("list_images", tuple(refs))
            out: list[ImageInfo] = []
            for ref in refs:
                image = self._images.get(ref) or next(
                    (i for i in self._images.values() if i.id == ref), None
                )
                if image is None:
                    continue
                tags = tuple(sorted(t for t, i in self._images.items() if i.id == image.id))
                out.append(ImageInfo(ref, image.id, image.size, image.created_at or 0.0, tags))
            return out

    def image_id(self, ref: ImageRef) -> str | None:
        with self._lock:
            self._record("image_id", ref)
            image = self._images.get(ref)
            if image is not None:
                return image.id
            return ref if any(i.id == ref for i in self._images.values()) else None
