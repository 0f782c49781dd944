"""Docker backend: the engine endpoint is chosen as the docker CLI chooses it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from composer.backends.docker import DockerBackend
from composer.backends.docker.client import DEFAULT_HOST, resolve_endpoint, version_tuple
from composer.errors import Unavailable


def write_context(
    home: Path, name: str, host: str, *, tls: bool = False, current: bool = True
) -> None:
    docker_dir = home / ".docker"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = docker_dir / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}})
    )
    if tls:
        tls_dir = docker_dir / "contexts" / "tls" / digest / "docker"
        tls_dir.mkdir(parents=True)
        for f in ("ca.pem", "cert.pem", "key.pem"):
            (tls_dir / f).write_text("x")
    if current:
        (docker_dir / "config.json").write_text(json.dumps({"currentContext": name}))


@pytest.mark.parametrize(
    ("env", "context", "host", "source"),
    [
        ({}, None, DEFAULT_HOST, "default"),
        ({"DOCKER_HOST": "tcp://10.0.0.1:2375"}, "ctx", "tcp://10.0.0.1:2375", "DOCKER_HOST"),
        ({}, "ctx", "unix:///run/ctx.sock", "docker context 'ctx'"),
        ({"DOCKER_CONTEXT": "default"}, "ctx", DEFAULT_HOST, "default"),
        ({"DOCKER_CONTEXT": "ctx"}, "ctx", "unix:///run/ctx.sock", "docker context 'ctx'"),
    ],
)
def test_endpoint_choice(
    tmp_path: Path, env: dict[str, str], context: str | None, host: str, source: str
) -> None:
    if context:
        write_context(tmp_path, context, "unix:///run/ctx.sock")
    endpoint = resolve_endpoint({"HOME": str(tmp_path), **env})
    assert (endpoint.host, endpoint.source) == (host, source)


def test_docker_config_variable_moves_the_config_dir(tmp_path: Path) -> None:
    write_context(tmp_path, "elsewhere", "tcp://1.2.3.4:2376")
    endpoint = resolve_endpoint({"DOCKER_CONFIG": str(tmp_path / ".docker"), "HOME": "/nowhere"})
    assert endpoint.host == "tcp://1.2.3.4:2376"
    assert endpoint.config_dir == tmp_path / ".docker"


def test_context_tls_material_is_used(tmp_path: Path) -> None:
    write_context(tmp_path, "remote", "tcp://1.2.3.4:2376", tls=True)
    endpoint = resolve_endpoint({"HOME": str(tmp_path)})
    assert endpoint.tls is not None
    assert endpoint.tls.ca_cert is not None and endpoint.tls.ca_cert.endswith("docker/ca.pem")
    assert endpoint.tls.verify


def test_docker_host_tls_variables(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"}
    endpoint = resolve_endpoint(env)
    assert endpoint.tls is not None
    assert (endpoint.tls.ca_cert, endpoint.tls.client_key) == ("/certs/ca.pem", "/certs/key.pem")


def test_unknown_context_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="docker context 'nope' not found"):
        resolve_endpoint({"HOME": str(tmp_path), "DOCKER_CONTEXT": "nope"})


def test_timeout_from_environment() -> None:
    assert resolve_endpoint({"COMPOSE_HTTP_TIMEOUT": "7"}).timeout == 7.0


def test_current_context_reaches_the_real_engine(docker_backend: Any, tmp_path: Path) -> None:
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    write_context(tmp_path, "local-test", host)
    backend = DockerBackend({"HOME": str(tmp_path)})
    assert backend.endpoint.source == "docker context 'local-test'"
    assert backend.observe("ct-no-such-project").containers == ()
    assert version_tuple(backend.api_version) >= (1, 41)
