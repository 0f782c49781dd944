"""Reconcile stage one: networks, volumes and images that the services need.

Networks are created when missing and recreated when their configuration
hash diverged (the containers attached to them are removed first and created
again afterwards — there is no reconnect verb). Volumes are created when
missing; a diverged volume is never recreated silently because that would
lose data. External resources are only checked to exist. Images are pulled
or built according to ``pull_policy``, ``--pull`` and ``--build``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from composer.errors import DependencyCycleError, PlanError
from composer.planner.hashing import network_hash, volume_hash
from composer.planner.options import UpOptions
from composer.planner.plan import (
    BuildImage,
    CreateNetwork,
    CreateVolume,
    PullImage,
    RecreateNetwork,
    RemoveContainer,
)
from composer.planner.reconcile_context import (
    Context,
    ref,
    service_network_keys,
    service_volume_keys,
)
from composer.planner.specs import (
    build_context_services,
    build_spec,
    image_ref,
    network_spec,
    volume_spec,
)
from composer.schema.model import Project
from composer.schema.units import parse_duration

DAY = 86400.0
_EVERY = re.compile(r"^every_(.+)$")


@dataclass
class Resources:
    """What the container stage needs to know about stage one's decisions."""

    network_steps: dict[str, str]
    """Compose key -> id of the step that creates or recreates the network."""
    volume_steps: dict[str, str]
    displaced: dict[str, str]
    """Container name -> id of the step that removed it for a network recreate."""
    recreated_networks: dict[str, str]
    """Engine name -> compose key of every network being recreated."""


def plan_resources(ctx: Context, services: list[str]) -> Resources:
    """Networks and volumes of ``services`` (in order: networks, then volumes)."""
    res = Resources({}, {}, {}, {})
    _plan_networks(ctx, services, res)
    _plan_volumes(ctx, services, res)
    return res


def _plan_networks(ctx: Context, services: list[str], res: Resources) -> None:
    keys = sorted({k for s in services for k in service_network_keys(ctx.project.services[s])})
    for key in keys:
        if key not in ctx.project.networks:
            raise PlanError(f"service refers to undefined network {key}")
        net = ctx.project.networks[key]
        spec = network_spec(ctx.project, key)
        found = ctx.observed.networks.get(spec.name)
        if net.external:
            if found is None:
                raise PlanError(
                    f"network {spec.name} declared as external, but could not be found",
                    hint=f"create it first (docker network create {spec.name})",
                )
            continue
        if found is None:
            res.network_steps[key] = ctx.add(
                "network", spec.name, "create", "missing", CreateNetwork(spec)
            )
        elif found.config_hash and found.config_hash != network_hash(net):
            attached = [c for c in ctx.observed.containers if spec.name in c.networks]
            removals = []
            for c in sorted(attached, key=lambda c: c.name):
                sid = res.displaced.get(c.name) or ctx.add(
                    "container",
                    c.name,
                    "remove",
                    f"network {key} recreated",
                    RemoveContainer(ref(c), _stop_timeout(c.state)),
                )
                res.displaced[c.name] = sid
                removals.append(sid)
            res.recreated_networks[spec.name] = key
            res.network_steps[key] = ctx.add(
                "network", spec.name, "recreate", "config changed", RecreateNetwork(spec), removals
            )


def _stop_timeout(state: str) -> float | None:
    return 10.0 if state in ("running", "paused", "restarting") else None


def _plan_volumes(ctx: Context, services: list[str], res: Resources) -> None:
    keys = sorted(
        {k for s in services for k in service_volume_keys(ctx.project, ctx.project.services[s])}
    )
    for key in keys:
        vol = ctx.project.volumes[key]
        spec = volume_spec(ctx.project, key)
        found = ctx.observed.volumes.get(spec.name)
        if vol.external:
            if found is None:
                raise PlanError(
                    f"volume {spec.name} declared as external, but could not be found",
                    hint=f"create it first (docker volume create {spec.name})",
                )
            continue
        if found is None:
            res.volume_steps[key] = ctx.add(
                "volume", spec.name, "create", "missing", CreateVolume(spec)
            )
            continue
        if not ctx.owned(found.labels):
            ctx.warn(
                f"volume {spec.name} already exists but was not created for project "
                f"{ctx.project.name}; use `external: true` to use an existing volume"
            )
        elif found.config_hash and found.config_hash != volume_hash(vol):
            raise PlanError(
                f"volume {spec.name} exists with a different configuration than volume {key}",
                hint=f"restore its previous configuration, or remove it (its data is lost) "
                f"with `composer down --volumes` or `docker volume rm {spec.name}`",
            )


# --- images -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """How a service gets its image: the step that pulls/builds it, or the present id."""

    ref: str
    step: str | None
    present_id: str | None


def plan_images(ctx: Context, services: list[str], options: UpOptions) -> dict[str, ImagePlan]:
    """One pull or build step per image reference that needs one.

    A build that reads another service's image (``service:NAME`` build
    contexts) comes after that image's own step, which is planned even when
    NAME itself is not being brought up.
    """
    out: dict[str, ImagePlan] = {}
    for name in with_build_contexts(ctx.project, services):
        image = image_ref(ctx.project, name)
        present = ctx.observed.images.get(image)
        present_id = present.id if present is not None else None
        decision = _image_decision(ctx, name, options, image)
        sid: str | None = None
        if decision is not None:
            action, cause = decision
            sid = ctx.has("image", image, action) or ctx.has(
                "image", image, "build" if action == "pull" else "pull"
            )
            if sid is None:
                deps: list[str] = []
                if action == "build":
                    payload: BuildImage | PullImage = BuildImage(build_spec(ctx.project, name))
                    providers = build_context_services(ctx.project, name)
                    deps = [s for p in providers if (s := out[p].step) is not None]
                else:
                    payload = PullImage(image)
                sid = ctx.add("image", image, action, cause, payload, deps=deps)
        out[name] = ImagePlan(image, sid, present_id)
    return out


def _image_decision(
    ctx: Context, name: str, options: UpOptions, image: str
) -> tuple[str, str] | None:
    """``(pull|build, cause)`` or None when the image is fine as it is."""
    service = ctx.project.services[name]
    can_build = service.build is not None and not options.no_build
    present = ctx.observed.images.get(image)
    if options.build and service.build is not None:
        return ("build", "--build")
    policy = options.pull or service.pull_policy or "missing"
    source = f"--pull {policy}" if options.pull else f"pull_policy {policy}"
    if policy == "if_not_present":
        policy = "missing"
    if policy == "build":
        if can_build:
            return ("build", source)
        policy = "missing"
    if policy == "always":
        if service.image is None and service.build is not None:
            return ("build", "missing") if present is None and can_build else None
        return ("pull", source)
    if present is None:
        if can_build:
            return ("build", "missing")
        if policy == "never":
            raise PlanError(
                f"image {image} of service {name} is missing and pull_policy is never",
                hint="pull or build it first, or change pull_policy",
            )
        if service.image is None:
            raise PlanError(
                f"service {name} has neither an image nor a build section to make it from"
                if service.build is None
                else f"image {image} of service {name} is missing and --no-build was given"
            )
        return ("pull", "missing")
    refresh = _refresh_interval(policy)
    if refresh is not None and (
        present.created_at is None or ctx.now - present.created_at >= refresh
    ):
        return ("pull", f"{source}: older than {_human(refresh)}")
    return None


def _refresh_interval(policy: str) -> float | None:
    if policy == "daily":
        return DAY
    if policy == "weekly":
        return 7 * DAY
    match = _EVERY.match(policy)
    if match is None:
        return None
    try:
        return float(parse_duration(match.group(1)))
    except (ValueError, TypeError) as exc:
        raise PlanError(f"invalid pull_policy {policy}") from exc


def _human(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def with_build_contexts(project: Project, services: Iterable[str]) -> list[str]:
    """``services`` with the services their builds read first (``service:NAME``)."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(name: str, trail: tuple[str, ...]) -> None:
        if name in placed:
            return
        if name in trail:
            cycle = " -> ".join((*trail[trail.index(name) :], name))
            raise DependencyCycleError(
                f"build contexts form a cycle: {cycle}",
                hint="a service:NAME build context needs NAME's image built first",
            )
        for provider in build_context_services(project, name):
            place(provider, (*trail, name))
        placed.add(name)
        ordered.append(name)

    for name in services:
        place(name, ())
    return ordered
