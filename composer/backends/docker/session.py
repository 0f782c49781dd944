"""The connection to one Docker Engine, shared by the backend's verbs.

Connecting (and negotiating the API version) waits for the first verb;
registry credentials are read once, from the docker CLI configuration of
the endpoint. ``_engine(what)`` is the scope every Engine call runs in, so
that only composer errors leave.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from composer.backends.docker import images as _images
from composer.backends.docker.client import Endpoint, connect, resolve_endpoint
from composer.backends.docker.errors import engine_errors

if TYPE_CHECKING:
    from docker import APIClient
    from docker.auth import AuthConfig


class EngineSession:
    """A lazily connected SDK client with its endpoint and credentials; thread-safe."""

    def __init__(self, environ: Mapping[str, str], *, endpoint: Endpoint | None = None) -> None:
        import docker  # noqa: F401  (loaded here, with the backend, not at import)

        self._environ = dict(environ)
        self._endpoint = endpoint if endpoint is not None else resolve_endpoint(self._environ)
        self._lock = threading.Lock()
        self._api: APIClient | None = None
        self._auth: AuthConfig | None = None

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def api(self) -> APIClient:
        """The connected SDK client (connects and negotiates on first use)."""
        with self._lock:
            if self._api is None:
                self._api = connect(self._endpoint, self._environ)
            return self._api

    @property
    def api_version(self) -> str:
        return str(self.api.api_version)

    def _credentials(self) -> AuthConfig:
        with self._lock:
            if self._auth is None:
                cfg_dir = self._endpoint.config_dir
                self._auth = _images.load_auth(
                    cfg_dir / "config.json" if cfg_dir else None, self._environ
                )
            return self._auth

    @contextmanager
    def _engine(self, what: str) -> Iterator[APIClient]:
        with engine_errors(what, self._endpoint):
            yield self.api

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

    def _engine_socket(self) -> str | None:
        host = self._endpoint.host
        return host[len("unix://") :] if host.startswith("unix://") else None
