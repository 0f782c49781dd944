"""The one place where docker SDK and HTTP errors become composer errors.

Every verb of the Docker backend runs its engine calls inside
``engine_errors(...)``; nothing from ``docker.errors``, ``requests`` or
``urllib3`` (read while streaming logs and events) leaves this package.
``error_table`` names every class of ``docker.errors`` explicitly (a test
fails when a new SDK release adds one), and the HTTP
status of an ``APIError`` refines the class: 404 → ``NotFound``, 409/403 →
``Conflict``, 501 → ``Unsupported``. A read timeout is ``Unavailable`` with
"timed out" (the daemon is there but did not answer in time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from composer.errors import BackendError, Conflict, NotFound, Unavailable, Unsupported

if TYPE_CHECKING:
    from composer.backends.docker.client import Endpoint

UNAVAILABLE_HINT = (
    "is dockerd running? start it with `sudo systemctl start docker` (or `sudo dockerd &`); "
    "otherwise check DOCKER_HOST and the current docker context (`docker context ls`)"
)

ErrorKind = type[BackendError]

# Some state errors come back as 500 from older engines ("is not paused").
_MISSING = re.compile(r"manifest unknown|not found|no such", re.IGNORECASE)
_STATE_CONFLICT = re.compile(r"is (not|already) (running|paused)|is paused|is restarting")


def error_table() -> tuple[tuple[type[BaseException], ErrorKind], ...]:
    """Every exception class the docker SDK defines, with the composer class it becomes.

    Order matters only for lookup by MRO (most specific first); the SDK is
    imported here, lazily, like everywhere else in this package.
    """
    import docker.errors as de
    import requests.exceptions as rex
    import urllib3.exceptions as u3

    return (
        (de.ImageNotFound, NotFound),
        (de.NotFound, NotFound),
        (de.APIError, BackendError),
        (de.ContextNotFound, NotFound),
        (de.ContextAlreadyExists, Conflict),
        (de.MissingContextParameter, BackendError),
        (de.ContextException, BackendError),
        (de.InvalidVersion, Unsupported),
        (de.DeprecatedMethod, Unsupported),
        (de.TLSParameterError, Unavailable),
        (de.InvalidRepository, BackendError),
        (de.InvalidConfigFile, BackendError),
        (de.InvalidArgument, BackendError),
        (de.NullResource, BackendError),
        (de.ContainerError, BackendError),
        (de.BuildError, BackendError),
        (de.ImageLoadError, BackendError),
        (de.StreamParseError, BackendError),
        (de.DockerException, BackendError),
        (rex.ConnectionError, Unavailable),
        (rex.Timeout, Unavailable),
        (rex.RequestException, BackendError),
        (u3.HTTPError, BackendError),
    )


def kind_of(exc_type: type[BaseException]) -> ErrorKind | None:
    """The composer class for an exception class, by its nearest mapped ancestor."""
    table = dict(error_table())
    for cls in exc_type.__mro__:
        if cls in table:
            return table[cls]
    return None


def _api_error(exc: BaseException, what: str) -> BackendError:
    status = getattr(exc, "status_code", None)
    explanation = getattr(exc, "explanation", None) or str(exc)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    message = f"{what}: {str(explanation).strip()}"
    if status == 404 or (status == 500 and _MISSING.search(str(explanation))):
        return NotFound(message)
    if status in (409, 403) or (status == 500 and _STATE_CONFLICT.search(str(explanation))):
        return Conflict(message)
    if status == 501:
        return Unsupported(message)
    if status == 401:
        return BackendError(message, hint="log in to the registry with `docker login`")
    return (kind_of(type(exc)) or BackendError)(message)


def _unreachable(exc: BaseException, endpoint: Endpoint | None) -> Unavailable:
    where = f" at {endpoint.host} (from {endpoint.source})" if endpoint else ""
    reason = str(exc)
    if "Permission denied" in reason or "PermissionError" in reason:
        return Unavailable(
            f"permission denied talking to the Docker daemon{where}",
            hint="run as root or add your user to the `docker` group",
        )
    return Unavailable(f"cannot reach the Docker daemon{where}", hint=UNAVAILABLE_HINT)


def _read_timeout(exc: BaseException) -> bool:
    """A read timeout, however the transport wraps it (the unix socket adapter
    reports one as a ``ConnectionError`` around urllib3's ``ReadTimeoutError``)."""
    import requests.exceptions as rex
    import urllib3.exceptions as u3

    if isinstance(exc, (rex.ReadTimeout, u3.ReadTimeoutError)):
        return True
    return isinstance(exc, rex.ConnectionError) and any(
        isinstance(arg, u3.ReadTimeoutError) for arg in exc.args
    )


def translate(exc: BaseException, what: str, endpoint: Endpoint | None = None) -> BackendError:
    """Turn any SDK/transport error into the matching ``BackendError``."""
    if isinstance(exc, BackendError):
        return exc
    import docker.errors as de

    kind = kind_of(type(exc))
    if isinstance(exc, de.APIError):
        return _api_error(exc, what)
    if _read_timeout(exc):
        # The engine took the request but did not answer in time (a wait with a timeout).
        return Unavailable(f"{what}: timed out")
    if kind is Unavailable or (
        isinstance(exc, de.DockerException)
        and "Error while fetching server API version" in str(exc)
    ):
        return _unreachable(exc, endpoint)
    if kind is None and isinstance(exc, OSError):
        # Transport failures below requests (socket files, TLS files).
        return _unreachable(exc, endpoint)
    if kind is None:
        kind = BackendError
    return kind(f"{what}: {exc}")


@contextmanager
def engine_errors(what: str, endpoint: Endpoint | None = None) -> Iterator[None]:
    """Run engine calls, raising only composer ``BackendError``s.

    ``what`` names the operation for the message ("create container web-1").
    """
    import docker.errors as de
    import requests.exceptions as rex
    import urllib3.exceptions as u3

    try:
        yield
    except BackendError:
        raise
    except (
        de.DockerException,
        de.StreamParseError,
        rex.RequestException,
        u3.HTTPError,
        OSError,
    ) as exc:
        raise translate(exc, what, endpoint) from exc
