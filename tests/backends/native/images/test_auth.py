# ruff: noqa: F811  (the registry fixtures are imported from registry_server)
"""Credentials from Docker's config.json and from credential helpers.

The helper tests run a real helper program (a shell script speaking the
docker-credential protocol) against the htpasswd registry on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.auth import Credentials, lookup
from composer.backends.native.images.manifests import (
    DOCKER_MANIFEST,
)
from composer.backends.native.images.registry import RegistryClient
from composer.errors import BackendError, ConfigError, Unsupported
from tests.backends.native.images.registry_server import (  # noqa: F401  (fixtures)
    USERS,
    Registry,
    basic_registry,
    docker_env,
    free_port,
    plain_registry,
    pushed,
    registry_workdir,
)

# --- credentials ----------------------------------------------------------------------------------


def _write_config(directory: Path, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_auth_and_username_password(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write_config(
        home / ".docker",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _b64("hubuser:hub:pw")},
                "http://127.0.0.1:5000/v2/": {"auth": _b64("local:pw")},
                "reg.example": {"username": "u", "password": "p"},
                "empty.example": {},
            }
        },
    )
    env = {"HOME": str(home)}
    assert lookup("docker.io", env).credentials == Credentials("hubuser", "hub:pw")
    assert lookup("registry-1.docker.io", env).credentials == Credentials("hubuser", "hub:pw")
    assert lookup("127.0.0.1:5000", env).credentials == Credentials("local", "pw")
    assert lookup("reg.example", env).credentials == Credentials("u", "p")
    assert lookup("empty.example", env).credentials is None
    assert lookup("other.example", env).credentials is None
    assert "pw" not in repr(lookup("127.0.0.1:5000", env))


def test_docker_config_env_wins_over_home(tmp_path: Path) -> None:
    _write_config(tmp_path / "home/.docker", {"auths": {"r.example": {"auth": _b64("home:x")}}})
    _write_config(tmp_path / "dc", {"auths": {"r.example": {"auth": _b64("dc:y")}}})
    env = {"HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(tmp_path / "dc")}
    found = lookup("r.example", env)
    assert found.credentials == Credentials("dc", "y")
    assert found.config_path == tmp_path / "dc/config.json"
    assert lookup("r.example", {}).credentials is None


def test_credential_helpers_and_identity_tokens_are_recorded(tmp_path: Path) -> None:
    _write_config(
        tmp_path,
        {
            "auths": {"r.example": {}, "i.example": {"identitytoken": "tok"}},
            "credsStore": "desktop",
            "credHelpers": {"gcr.example": "gcloud"},
        },
    )
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path / "empty-bin")}
    store = lookup("r.example", env)
    assert store.credentials is None and store.helper == "desktop"
    assert store.missing_error() is None  # the helper is not asked until a registry wants it
    asked = store.resolved()
    assert asked.credentials is None
    error = asked.missing_error()
    assert error is not None and "docker-credential-desktop is not installed" in error.message
    assert "docker login r.example" in (error.hint or "")
    assert lookup("gcr.example", env).helper == "gcloud"
    token = lookup("i.example", env)
    assert token.identity_token and isinstance(token.missing_error(), Unsupported)


HELPER = """#!/bin/sh
read -r server
echo "$server" >> "$0.log"
if [ "$server" = "{host}" ]; then
    printf '{{"ServerURL":"%s","Username":"alice","Secret":"{password}"}}' "$server"
else
    echo "credentials not found in native keychain"; exit 1
fi
"""


def _helper(tmp_path: Path, host: str) -> dict[str, str]:
    """A docker-credential-composertest that knows alice's password for ``host`` only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-composertest"
    program.write_text(HELPER.format(host=host, password=USERS["alice"]))
    program.chmod(0o755)
    _write_config(tmp_path / "dc", {"auths": {}, "credsStore": "composertest"})
    return {"DOCKER_CONFIG": str(tmp_path / "dc"), "PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_a_credential_helper_is_asked_when_the_registry_challenges(
    basic_registry: Registry, plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    env = _helper(tmp_path, basic_registry.host)
    log = tmp_path / "bin" / "docker-credential-composertest.log"
    with RegistryClient(plain_registry.host, credentials=lookup(plain_registry.host, env)) as c:
        c.get_manifest("x/bb", "1")
    assert not log.exists()  # no challenge, no helper
    with RegistryClient(basic_registry.host, credentials=lookup(basic_registry.host, env)) as c:
        assert c.get_manifest("x/bb", "1").media_type == DOCKER_MANIFEST
        c.get_manifest("x/bb", "1")
    assert log.read_text().split() == [basic_registry.host]  # asked once


def test_a_credential_helper_without_credentials_explains_the_refusal(
    basic_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    env = _helper(tmp_path, "elsewhere.example")
    found = lookup(basic_registry.host, env)
    client = RegistryClient(basic_registry.host, credentials=found)
    with client, pytest.raises(BackendError, match="has no credentials for") as err:
        client.get_manifest("x/bb", "1")
    assert "docker-credential-composertest" in err.value.message


def test_bad_docker_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})
    _write_config(tmp_path, {"auths": {"r.example": {"auth": "***"}}})
    with pytest.raises(ConfigError, match="not base64"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})
    _write_config(tmp_path, {"auths": {"r.example": {"auth": _b64("nocolon")}}})
    with pytest.raises(ConfigError, match="user:password"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})
