"""Config and secret files: their bytes, owner and mode, for any backend.

Compose's ``configs`` and ``secrets`` reach a backend as ``MountSpec``s of
type ``config``/``secret`` whose bytes come from a host file (``source``) or
from inline content or an environment value (``content``). Both backends
place them with the ``uid``, ``gid`` and ``mode`` the file asks for (Docker
Compose ignores them outside Swarm, docker/compose#9648): the Docker backend
copies them into the container before it starts, the native backend writes
them under the container's directory and bind-mounts them. What the file
holds and who owns it is decided here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.backends.specs import ContainerSpec, MountSpec
from composer.errors import BackendError

FILE_MOUNTS = ("config", "secret")
DEFAULT_MODE = 0o444
"""Read-only for everyone, owned by root, as Docker creates them."""


@dataclass(frozen=True, slots=True)
class FileCopy:
    """A config/secret file to place in the container before it starts."""

    target: str
    data: bytes
    uid: int
    gid: int
    mode: int


def file_copy(spec: ContainerSpec, m: MountSpec) -> FileCopy:
    """The file ``m`` of ``spec``: its bytes, numeric owner and mode (default root, 0444)."""
    if m.content is not None:
        data = m.content.encode("utf-8")
    elif m.source is not None:
        try:
            data = Path(m.source).read_bytes()
        except OSError as exc:
            raise BackendError(
                f"{m.type} for {spec.name} at {m.target}: cannot read {m.source}: "
                f"{exc.strerror or exc}"
            ) from exc
    else:
        raise BackendError(f"{m.type} for {spec.name} at {m.target} has no source")
    try:
        uid = int(m.uid) if m.uid not in (None, "") else 0
        gid = int(m.gid) if m.gid not in (None, "") else 0
    except ValueError as exc:
        raise BackendError(
            f"{m.type} for {spec.name} at {m.target}: uid and gid must be numeric",
            hint='write uid: "1000" rather than a user name',
        ) from exc
    mode = m.mode if m.mode is not None else DEFAULT_MODE
    return FileCopy(m.target, data, uid, gid, mode)


def file_copies(spec: ContainerSpec) -> list[FileCopy]:
    """Every config and secret file of ``spec``, in mount order."""
    return [file_copy(spec, m) for m in spec.mounts if m.type in FILE_MOUNTS]
