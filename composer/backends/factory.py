"""Choose and construct the backend named by ``--backend`` / ``COMPOSER_BACKEND``.

Construction is the only place a backend's heavy imports happen, so verbs
that never touch an engine (``config``, ``--help``) stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from composer.backends.base import Backend
from composer.errors import Unavailable, Unsupported


def open_backend(name: str, environ: Mapping[str, str]) -> Backend:
    """The backend called ``name`` (``docker`` or ``native``), ready for verbs.

    The native engine needs root (or user namespaces) and overlayfs; where
    it cannot run, the error says why and points at the Docker backend.
    """
    if name == "docker":
        from composer.backends.docker.backend import DockerBackend

        return DockerBackend(environ)
    if name == "native":
        reason = native_unavailable()
        if reason is not None:
            raise Unavailable(
                f"the native backend cannot run here: {reason}",
                hint="use the Docker Engine backend: --backend docker or COMPOSER_BACKEND=docker",
            )
        from composer.backends.native.backend import NativeBackend

        try:
            return NativeBackend(environ)
        except PermissionError as exc:
            raise Unavailable(
                f"the native backend cannot use its state root: {exc}",
                hint="set COMPOSER_ROOT to a writable directory, or use --backend docker",
            ) from exc
    raise Unsupported(f"unknown backend {name!r}", hint="choose native or docker")


def native_unavailable(
    *,
    euid: int | None = None,
    filesystems: str = "/proc/filesystems",
    userns_sysctl: str = "/proc/sys/kernel/unprivileged_userns_clone",
) -> str | None:
    """Why the native engine cannot run on this machine, or ``None`` when it can.

    It mounts overlayfs and creates namespaces: that takes root, or at
    least unprivileged user namespaces, and a kernel with overlayfs.
    """
    try:
        with open(filesystems) as f:
            if "overlay" not in f.read().split():
                return "this kernel has no overlayfs (modprobe overlay may help)"
    except OSError:
        return f"cannot read {filesystems}: is /proc mounted?"
    if (os.geteuid() if euid is None else euid) != 0:
        try:
            with open(userns_sysctl) as f:
                allowed = f.read().strip() != "0"
        except OSError:
            allowed = os.path.exists("/proc/self/ns/user")
        if not allowed:
            return "it needs root, and unprivileged user namespaces are disabled"
        return "it needs root (running without root is not supported yet)"
    return None
