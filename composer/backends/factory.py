"""Choose and construct the backend named by ``--backend`` / ``COMPOSER_BACKEND``.

Construction is the only place a backend's heavy imports happen, so verbs
that never touch an engine (``config``, ``--help``) stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping

from composer.backends.base import Backend
from composer.errors import Unsupported


def open_backend(name: str, environ: Mapping[str, str]) -> Backend:
    """The backend called ``name`` (``docker`` or ``native``), ready for verbs.

    The native engine is not part of this build yet; asking for it gives a
    clear error pointing at the Docker backend.
    """
    if name == "docker":
        from composer.backends.docker.backend import DockerBackend

        return DockerBackend(environ)
    if name == "native":
        raise Unsupported(
            "the native backend is not available in this build yet",
            hint="use the Docker Engine backend: --backend docker or COMPOSER_BACKEND=docker",
        )
    raise Unsupported(f"unknown backend {name!r}", hint="choose native or docker")
