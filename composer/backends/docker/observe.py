"""Engine list output → ObservedState.

``observe`` makes one label-filtered list call per resource type; these
functions turn the summaries into the planner's records. Health and exit
codes are read from the summary's ``Status`` text ("Up 3 seconds
(healthy)", "Exited (137) 2 seconds ago"), which is what the list endpoint
offers without inspecting each container; the same summary gives ``ps``
its image, command, status text and ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from composer.backends.base import (
    ContainerState,
    ContainerStatus,
    Health,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
)
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

_STATES: Mapping[str, ContainerState] = {
    "created": "created",
    "running": "running",
    "paused": "paused",
    "restarting": "restarting",
    "exited": "exited",
    "dead": "dead",
    "removing": "dead",
}
_EXIT = re.compile(r"^Exited \((-?\d+)\)")
_ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")


def health_from_status(status: str) -> Health | None:
    if "(health: starting)" in status:
        return "starting"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(healthy)" in status:
        return "healthy"
    return None


def state_of(raw: str) -> ContainerState:
    return _STATES.get(raw.lower(), "dead")


def project_filter(project: str) -> dict[str, list[str]]:
    return {"label": [f"{LABEL_PROJECT}={project}"]}


def container_from_summary(summary: Mapping[str, Any]) -> ObservedContainer:
    labels: dict[str, str] = dict(summary.get("Labels") or {})
    state = state_of(str(summary.get("State", "")))
    status = str(summary.get("Status", ""))
    exit_code: int | None = None
    match = _EXIT.match(status)
    if match and state in ("exited", "dead"):
        exit_code = int(match.group(1))
    names = summary.get("Names") or [""]
    networks = tuple(sorted((summary.get("NetworkSettings") or {}).get("Networks") or {}))
    named: list[str] = []
    anonymous: list[tuple[str, str]] = []
    for m in summary.get("Mounts") or ():
        if m.get("Type") != "volume" or not m.get("Name"):
            continue
        if _ANONYMOUS_VOLUME.match(m["Name"]):
            anonymous.append((str(m.get("Destination", "")), m["Name"]))
        else:
            named.append(m["Name"])
    return ObservedContainer(
        id=str(summary["Id"]),
        name=str(names[0]).lstrip("/"),
        service=labels.get(LABEL_SERVICE, ""),
        number=parse_container_number(labels),
        oneoff=parse_oneoff(labels),
        state=state,
        health=health_from_status(status) if state == "running" else None,
        exit_code=exit_code,
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        image_id=labels.get(LABEL_IMAGE) or str(summary.get("ImageID", "")),
        labels=labels,
        networks=networks,
        volumes=tuple(sorted(set(named))),
        anonymous_volumes=tuple(sorted(anonymous)),
        created_at=float(summary.get("Created") or 0),
        image=str(summary.get("Image") or ""),
        command=str(summary.get("Command") or ""),
        status=status,
        ports=ports_from_summary(summary.get("Ports") or ()),
    )


def ports_from_summary(ports: Iterable[Mapping[str, Any]]) -> tuple[PortBinding, ...]:
    """The list endpoint's ``Ports``: published ones with their host side, exposed ones without."""
    out = [
        PortBinding(
            target=int(p.get("PrivatePort") or 0),
            protocol=str(p.get("Type") or "tcp"),
            host_ip=str(p.get("IP") or ""),
            host_port=int(p["PublicPort"]) if p.get("PublicPort") else None,
        )
        for p in ports
    ]
    out.sort(key=lambda p: (p.target, p.protocol, p.host_ip, p.host_port or 0))
    return tuple(out)


def status_from_inspect(data: Mapping[str, Any]) -> ContainerStatus:
    state_data = data.get("State") or {}
    state = state_of(str(state_data.get("Status", "")))
    health_data = state_data.get("Health") or {}
    raw_health = health_data.get("Status")
    health = (
        cast(Health, raw_health) if raw_health in ("starting", "healthy", "unhealthy") else None
    )
    exit_code = int(state_data.get("ExitCode", 0)) if state in ("exited", "dead") else None
    return ContainerStatus(
        state=state, health=health if state == "running" else None, exit_code=exit_code
    )


def network_from_summary(summary: Mapping[str, Any], project: str) -> ObservedNetwork:
    """A network; ``external`` when it is not the project's own."""
    labels: dict[str, str] = dict(summary.get("Labels") or {})
    return ObservedNetwork(
        name=str(summary["Name"]),
        key=labels.get(LABEL_NETWORK),
        labels=labels,
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        external=labels.get(LABEL_PROJECT) != project,
    )


def volume_from_summary(summary: Mapping[str, Any], project: str) -> ObservedVolume:
    """A volume; ``external`` when it is not the project's own."""
    labels: dict[str, str] = dict(summary.get("Labels") or {})
    return ObservedVolume(
        name=str(summary["Name"]),
        key=labels.get(LABEL_VOLUME),
        labels=labels,
        driver=summary.get("Driver"),
        driver_opts=dict(summary.get("Options") or {}),
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        external=labels.get(LABEL_PROJECT) != project,
    )


def normalise_ref(ref: str) -> str:
    """The short form the engine lists in ``RepoTags`` (``nginx:latest``, ``host:5000/a:1``)."""
    name, digest = ref, ""
    if "@" in ref:
        name, _, digest = ref.partition("@")
    for prefix in (
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name = f"{name}:latest"
    return name


def images_from_summaries(
    summaries: Iterable[Mapping[str, Any]], refs: Sequence[str]
) -> dict[str, ObservedImage]:
    """Match image summaries to the references asked for (tags and digests)."""
    by_name: dict[str, Mapping[str, Any]] = {}
    for summary in summaries:
        for tag in summary.get("RepoTags") or ():
            by_name[tag] = summary
        for digest in summary.get("RepoDigests") or ():
            by_name[digest] = summary
    out: dict[str, ObservedImage] = {}
    for ref in refs:
        found = by_name.get(normalise_ref(ref))
        if found is None and "@" in ref:
            # RepoDigests hold "name@digest" without a tag.
            name, _, digest = normalise_ref(ref).partition("@")
            found = by_name.get(f"{name.rsplit(':', 1)[0]}@{digest}")
        if found is not None:
            created = found.get("Created")
            out[ref] = ObservedImage(
                ref=ref,
                id=str(found["Id"]),
                created_at=float(created) if created is not None else None,
            )
    return out


def images_from_inspections(
    inspections: Iterable[tuple[str, Mapping[str, Any]]],
) -> dict[str, ObservedImage]:
    """Records of the images found by inspecting each reference asked for."""
    return {
        ref: ObservedImage(ref=ref, id=str(data["Id"]), created_at=engine_time(data.get("Created")))
        for ref, data in inspections
    }


def engine_time(value: object) -> float | None:
    """Seconds since the epoch of the engine's RFC 3339 time (nanoseconds allowed)."""
    if not isinstance(value, str) or not value:
        return None
    import re
    from datetime import datetime

    text = re.sub(r"(\.\d{1,6})\d*", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
