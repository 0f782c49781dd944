"""Registry failures translated into composer's error hierarchy, in one table.

The pull client talks to registries through httpx; every httpx exception and
every HTTP error status it can meet is turned into a ``composer.errors``
type here and nowhere else, so that the CLI prints one sentence and a hint
(naming the registry) instead of a traceback. ``TRANSPORT_ERRORS`` lists the
httpx classes the client relies on, most specific first; a test walks it so
that a renamed or moved httpx class is noticed at once. ``retryable`` marks
the failures after which a blob download is resumed from what it already has.

This module imports httpx, so only pull-time code imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from composer.errors import BackendError, NotFound, Unavailable, Unsupported


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """How one httpx exception class reads to a user."""

    error: type[BackendError]
    message: str  # formatted with {registry}
    hint: str  # formatted with {registry}
    retryable: bool


_REACH = "check that {registry} is up and reachable from this machine"

# Most specific classes first: lookup takes the first entry the exception is an instance of.
TRANSPORT_ERRORS: tuple[tuple[type[httpx.HTTPError], TransportFailure], ...] = (
    (
        httpx.ConnectTimeout,
        TransportFailure(Unavailable, "timed out connecting to registry {registry}", _REACH, False),
    ),
    (
        httpx.ReadTimeout,
        TransportFailure(Unavailable, "registry {registry} stopped answering", _REACH, True),
    ),
    (
        httpx.WriteTimeout,
        TransportFailure(Unavailable, "timed out sending to registry {registry}", _REACH, True),
    ),
    (
        httpx.PoolTimeout,
        TransportFailure(
            Unavailable, "no free connection to registry {registry}", "retry the pull", True
        ),
    ),
    (
        httpx.ConnectError,
        TransportFailure(Unavailable, "cannot connect to registry {registry}", _REACH, False),
    ),
    (
        httpx.ReadError,
        TransportFailure(Unavailable, "connection to registry {registry} broke", _REACH, True),
    ),
    (
        httpx.WriteError,
        TransportFailure(Unavailable, "connection to registry {registry} broke", _REACH, True),
    ),
    (
        httpx.CloseError,
        TransportFailure(Unavailable, "connection to registry {registry} broke", _REACH, True),
    ),
    (
        httpx.RemoteProtocolError,
        TransportFailure(
            Unavailable,
            "registry {registry} closed the connection in the middle of a response",
            _REACH,
            True,
        ),
    ),
    (
        httpx.LocalProtocolError,
        TransportFailure(
            BackendError,
            "invalid request to registry {registry}",
            "this is a bug in composer's registry client; please report it",
            False,
        ),
    ),
    (
        httpx.ProxyError,
        TransportFailure(
            Unavailable,
            "the HTTP proxy refused the connection to registry {registry}",
            "check HTTP_PROXY / HTTPS_PROXY / NO_PROXY",
            False,
        ),
    ),
    (
        httpx.UnsupportedProtocol,
        TransportFailure(
            Unsupported,
            "registry {registry} sent the client to an address it cannot use",
            "registries must be reached over http or https",
            False,
        ),
    ),
    (
        httpx.DecodingError,
        TransportFailure(
            Unavailable,
            "registry {registry} sent a response that cannot be decoded",
            _REACH,
            True,
        ),
    ),
    (
        httpx.TooManyRedirects,
        TransportFailure(
            BackendError, "registry {registry} redirected too many times", _REACH, False
        ),
    ),
    (
        httpx.TransportError,
        TransportFailure(Unavailable, "cannot talk to registry {registry}", _REACH, False),
    ),
    (
        httpx.HTTPError,
        TransportFailure(BackendError, "request to registry {registry} failed", _REACH, False),
    ),
)


def transport_failure(exc: httpx.HTTPError) -> TransportFailure:
    """The table entry for ``exc`` (the first class it is an instance of)."""
    for cls, failure in TRANSPORT_ERRORS:
        if isinstance(exc, cls):
            return failure
    raise TypeError(f"not an httpx error: {exc!r}")  # unreachable: HTTPError is last


def is_retryable(exc: httpx.HTTPError) -> bool:
    """True when a download may resume after ``exc`` (the connection broke mid-way)."""
    return transport_failure(exc).retryable


def transport_error(exc: httpx.HTTPError, registry: str) -> BackendError:
    """``exc`` as a composer error naming ``registry``; the httpx detail follows a colon."""
    failure = transport_failure(exc)
    detail = str(exc).strip()
    message = failure.message.format(registry=registry)
    if detail:
        message = f"{message}: {detail}"
    return failure.error(message, hint=failure.hint.format(registry=registry))


def registry_message(body: bytes) -> str:
    """The ``errors[].message`` (or code) of a registry's JSON error body, '' when none."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
        return ""
    parts: list[str] = []
    for item in data["errors"]:
        if isinstance(item, dict):
            text = item.get("message") or item.get("code")
            if isinstance(text, str) and text:
                parts.append(text)
    return "; ".join(parts)


def status_error(status: int, body: bytes, *, registry: str, what: str) -> BackendError:
    """An HTTP error status for ``what`` (``manifest for x/bb:1``, ``blob sha256:…``).

    401 and 403 reaching this point mean the authentication flow already ran
    and the registry still refused: the message says so and the hint says
    where credentials come from.
    """
    detail = registry_message(body)
    suffix = f": {detail}" if detail else ""
    if status == 404:
        return NotFound(
            f"{what} not found{suffix}",
            hint=f"check the name and tag; it must exist on {registry}",
        )
    if status in (401, 403):
        return BackendError(
            f"access to {what} on {registry} denied{suffix}",
            hint=f"the repository may not exist or may need a login: `docker login {registry}`"
            " stores credentials in ~/.docker/config.json, which composer reads",
        )
    if status == 429:
        return Unavailable(
            f"registry {registry} refused {what}: too many requests{suffix}",
            hint="wait and retry, or log in to get a higher rate limit",
        )
    if status >= 500:
        return Unavailable(
            f"registry {registry} failed on {what} (HTTP {status}){suffix}",
            hint=f"{registry} has a problem; retry later",
        )
    return BackendError(
        f"registry {registry} answered HTTP {status} for {what}{suffix}",
        hint="the registry does not speak the OCI Distribution API as expected",
    )
