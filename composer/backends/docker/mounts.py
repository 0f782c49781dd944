"""Mounts of a ContainerSpec: ``Binds``/``Mounts`` for the create body, files to copy in.

Config and secret files are not mounted: their bytes are copied into the
created container (``put_archive``) so that ``uid``, ``gid`` and ``mode`` are
honoured, which bind mounts of host files cannot do.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import PurePosixPath
from typing import Any

from composer.backends.base import ContainerSpec, MountSpec
from composer.backends.docker.client import at_least
from composer.backends.file_mounts import FILE_MOUNTS, FileCopy
from composer.errors import Unsupported


def _drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None and v != {} and v != []}


def _bind_string(m: MountSpec) -> str:
    options = ["ro" if m.read_only else "rw"]
    if m.bind_selinux:
        options.append(m.bind_selinux)
    if m.bind_propagation:
        options.append(m.bind_propagation)
    return f"{m.source}:{m.target}:{','.join(options)}"


def _mount_object(m: MountSpec, api_version: str) -> dict[str, Any]:
    body: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
    if m.consistency:
        body["Consistency"] = m.consistency
    if m.type == "bind":
        body["Source"] = m.source
        bind = _drop_empty(
            {
                "Propagation": m.bind_propagation,
                "CreateMountpoint": True if m.bind_create_host_path else None,
            }
        )
        if m.bind_recursive:
            if not at_least(api_version, "1.44"):
                raise Unsupported(f"bind.recursive needs Engine API 1.44 (have {api_version})")
            mapping = {
                "disabled": {"NonRecursive": True},
                "writable": {"ReadOnlyNonRecursive": True},
                "readonly": {"ReadOnlyForceRecursive": True},
            }
            bind.update(mapping.get(m.bind_recursive, {}))
        if bind:
            body["BindOptions"] = bind
    elif m.type == "volume":
        if m.source:
            body["Source"] = m.source
        volume = _drop_empty(
            {
                "NoCopy": True if m.volume_nocopy else None,
                "Labels": dict(m.volume_labels) or None,
                "Subpath": m.volume_subpath,
            }
        )
        if m.volume_subpath and not at_least(api_version, "1.45"):
            raise Unsupported(f"volume.subpath needs Engine API 1.45 (have {api_version})")
        if volume:
            body["VolumeOptions"] = volume
    elif m.type == "tmpfs":
        tmpfs = _drop_empty({"SizeBytes": m.tmpfs_size, "Mode": m.tmpfs_mode})
        if tmpfs:
            body["TmpfsOptions"] = tmpfs
    elif m.type == "image":
        if not at_least(api_version, "1.48"):
            raise Unsupported(f"image mounts need Engine API 1.48 (have {api_version})")
        body["Source"] = m.source
        if m.image_subpath:
            body["ImageOptions"] = {"Subpath": m.image_subpath}
    else:
        raise Unsupported(f"mount type {m.type!r} is not supported by the Docker backend")
    return body


def mounts(spec: ContainerSpec, api_version: str) -> tuple[list[str], list[dict[str, Any]]]:
    """``(Binds, Mounts)``.

    Plain binds that may create their host path go through ``Binds`` (the
    engine creates a missing source directory there, as ``docker compose``
    relies on); everything else through the ``Mounts`` API. Config and
    secret files are not mounts: they are copied in after create.
    """
    binds: list[str] = []
    objects: list[dict[str, Any]] = []
    for m in spec.mounts:
        if m.type in FILE_MOUNTS:
            continue
        simple_bind = (
            m.type == "bind"
            and m.bind_create_host_path
            and not m.bind_recursive
            and not m.consistency
        )
        if simple_bind:
            binds.append(_bind_string(m))
        else:
            objects.append(_mount_object(m, api_version))
    return binds, objects


def file_archive(copy: FileCopy, base: PurePosixPath) -> bytes:
    """A tar holding ``copy`` relative to ``base``, with directories above it (0755 root)."""
    target = PurePosixPath(copy.target)
    rel = target.relative_to(base)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for parent in reversed(rel.parents[:-1] if len(rel.parents) > 1 else ()):
            info = tarfile.TarInfo(str(parent))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        info = tarfile.TarInfo(str(rel))
        info.size = len(copy.data)
        info.mode = copy.mode
        info.uid = copy.uid
        info.gid = copy.gid
        tar.addfile(info, io.BytesIO(copy.data))
    return buf.getvalue()
