"""Registry credentials, read from Docker's client configuration.

``docker login`` writes ``~/.docker/config.json`` (or ``$DOCKER_CONFIG/config.json``);
reading the same file means a user who logged in once with docker pulls
private images with composer too. An ``auths`` entry holds either ``auth``
(base64 of ``user:password``) or ``username`` and ``password``; its key is a
host, ``host:port`` or a URL (Docker Hub's is ``https://index.docker.io/v1/``).
Credential helpers (``credsStore``, ``credHelpers``) are external programs
(``credential_helper.py``): a lookup records the helper's name, and the
helper runs only when a registry asks for credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from composer.errors import BackendError, ConfigError, Unsupported

HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for one registry; the secret stays out of repr."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CredentialLookup:
    """What the Docker configuration says about one registry."""

    registry: str
    credentials: Credentials | None = None
    helper: str | None = None  # a credential helper configured for it (asked on demand)
    identity_token: bool = False  # an OAuth refresh token, which composer cannot use
    config_path: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    helper_note: str | None = None  # why the helper gave no credentials, once asked

    def resolved(self) -> CredentialLookup:
        """With the credential helper asked, when one is configured and nothing is inline.

        The client calls this only when a registry challenges it, so that an
        anonymous pull never runs a helper (which may prompt or be missing).
        """
        if self.credentials is not None or self.helper is None or self.helper_note:
            return self
        from composer.backends.native.images.credential_helper import ask

        credentials, note = ask(self.helper, self.registry, self.environ)
        return replace(self, credentials=credentials, helper_note=note)

    def missing_error(self) -> BackendError | None:
        """Why credentials the registry wants are missing, when the configuration explains it."""
        where = str(self.config_path) if self.config_path else "the Docker configuration"
        if self.helper is not None and self.helper_note:
            return BackendError(
                f"registry {self.registry} requires authentication and the credential helper "
                f"gave none: {self.helper_note}",
                hint=f'log in with `docker login {self.registry}`, or put an "auth" entry for '
                f'{self.registry} under "auths" in {where} (base64 of user:password)',
            )
        if self.identity_token:
            return Unsupported(
                f"the login for {self.registry} in {where} is an identity token, "
                "which composer cannot use",
                hint=f'put an "auth" entry (base64 of user:password) for {self.registry} '
                f"in {where}",
            )
        return None


def config_path(environ: Mapping[str, str]) -> Path | None:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``; None without either."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".docker" / "config.json"
    return None


def canonical_host(key: str) -> str:
    """An ``auths`` key or registry name reduced to ``host[:port]`` (all Hub names to docker.io)."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
            break
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in HUB_ALIASES else host


def lookup(registry: str, environ: Mapping[str, str]) -> CredentialLookup:
    """The credentials configured for ``registry`` (``host[:port]`` or ``docker.io``)."""
    path = config_path(environ)
    want = canonical_host(registry)
    if path is None:
        return CredentialLookup(want)
    config = _read_config(path)
    if config is None:
        return CredentialLookup(want)
    auths = config.get("auths")
    entry: Mapping[str, Any] | None = None
    if isinstance(auths, dict):
        for key, value in auths.items():
            if isinstance(key, str) and isinstance(value, dict) and canonical_host(key) == want:
                entry = value
                if key == HUB_KEY or canonical_host(key) == key.lower():
                    break  # an exact key wins over a URL-shaped one
    credentials = _entry_credentials(entry, path, want) if entry is not None else None
    return CredentialLookup(
        want,
        credentials=credentials,
        helper=None if credentials else _helper_for(config, want),
        identity_token=bool(entry and entry.get("identitytoken")) and credentials is None,
        config_path=path,
        environ=dict(environ),
    )


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Docker configuration {path}: {exc.strerror}",
            hint="fix its permissions, or point DOCKER_CONFIG at another directory",
        ) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"the Docker configuration {path} is not valid JSON: {exc}",
            hint="fix the file, or log in again with `docker login`",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"the Docker configuration {path} is not a JSON object",
            hint="fix the file, or log in again with `docker login`",
        )
    return data


def _entry_credentials(entry: Mapping[str, Any], path: Path, registry: str) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _bad_auth(path, registry, "is not base64 of user:password") from exc
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise _bad_auth(path, registry, "does not decode to user:password")
        return Credentials(username, password)
    user: Any = entry.get("username")
    secret: Any = entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(user, secret)
    return None


def _bad_auth(path: Path, registry: str, why: str) -> ConfigError:
    return ConfigError(
        f'the "auth" entry for {registry} in {path} {why}',
        hint=f"log in again with `docker login {registry}`",
    )


def _helper_for(config: Mapping[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if isinstance(key, str) and isinstance(name, str) and canonical_host(key) == registry:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None
