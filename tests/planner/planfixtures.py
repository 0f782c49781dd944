"""Builders for planner tests: projects from plain dicts, observed state that
matches a project exactly, and small ways to make it diverge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from composer.backends.base import (
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
)
from composer.planner.hashing import network_hash, service_hash, volume_hash
from composer.planner.reconcile_context import (
    service_network_keys,
    service_volume_keys,
    with_default_network,
)
from composer.planner.specs import container_spec, image_ref, network_spec, volume_spec
from composer.schema.model import Project

IMAGE_ID = "sha256:" + "1" * 64


def project(services: dict[str, Any], **top: Any) -> Project:
    """A Project named ``demo`` from plain dicts (long syntax, as the loader leaves it)."""
    body = {"name": "demo", "working_dir": "/srv/demo", "services": services, **top}
    return with_default_network(Project.model_validate(body))


def image_id(ref: str) -> str:
    return "sha256:" + format(abs(hash(ref)) % (16**12), "012x") + "0" * 52


def converged(p: Project, *, state: str = "running", images: bool = True) -> ObservedState:
    """The observed state right after a successful ``up`` of ``p``."""
    containers: list[ObservedContainer] = []
    for name, service in sorted(p.services.items()):
        for number in range(1, service.replicas + 1):
            spec = container_spec(p, name, number, image_id=image_id(image_ref(p, name)))
            containers.append(
                ObservedContainer(
                    id=format(len(containers) + 1, "064x"),
                    name=spec.name,
                    service=name,
                    number=number,
                    oneoff=False,
                    state=state,  # type: ignore[arg-type]
                    config_hash=service_hash(p, name),
                    image_id=image_id(image_ref(p, name)),
                    labels=spec.labels,
                    networks=tuple(network_spec(p, k).name for k in service_network_keys(service)),
                    volumes=tuple(volume_spec(p, k).name for k in service_volume_keys(p, service)),
                    created_at=1000.0,
                )
            )
    networks = {
        network_spec(p, k).name: ObservedNetwork(
            network_spec(p, k).name,
            k,
            network_spec(p, k).labels,
            network_hash(n),
            bool(n.external),
        )
        for k, n in p.networks.items()
    }
    volumes = {
        volume_spec(p, k).name: ObservedVolume(
            volume_spec(p, k).name,
            k,
            volume_spec(p, k).labels,
            v.driver,
            v.driver_opts,
            volume_hash(v),
        )
        for k, v in p.volumes.items()
    }
    imgs = {}
    if images:
        imgs = {
            image_ref(p, s): ObservedImage(image_ref(p, s), image_id(image_ref(p, s)), 1000.0)
            for s in p.services
        }
    return ObservedState(p.name, tuple(containers), networks, volumes, imgs)


def change(observed: ObservedState, name: str, **fields: Any) -> ObservedState:
    """``observed`` with the container ``name`` changed."""
    containers = tuple(replace(c, **fields) if c.name == name else c for c in observed.containers)
    return replace(observed, containers=containers)


def without(observed: ObservedState, *names: str) -> ObservedState:
    """``observed`` without the named containers, networks, volumes or images."""
    return replace(
        observed,
        containers=tuple(c for c in observed.containers if c.name not in names),
        networks={k: v for k, v in observed.networks.items() if k not in names},
        volumes={k: v for k, v in observed.volumes.items() if k not in names},
        images={k: v for k, v in observed.images.items() if k not in names},
    )


def empty(p: Project) -> ObservedState:
    return ObservedState(p.name)
