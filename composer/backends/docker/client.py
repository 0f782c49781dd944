"""Where the Docker Engine is and how to talk to it.

The endpoint is chosen the way the docker CLI chooses it, from the
environment mapping handed in (never from ``os.environ``): ``DOCKER_HOST``
wins, then ``DOCKER_CONTEXT``, then ``currentContext`` of
``$DOCKER_CONFIG/config.json`` (``~/.docker`` by default) with the context's
``meta.json`` and TLS material, then the local socket. The connection itself
negotiates the API version with the daemon (``version="auto"``), so Debian's
Engine 20.10 (API 1.41) and current engines both work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.errors import Unavailable

if TYPE_CHECKING:
    from docker import APIClient

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Client TLS material; any file may be absent."""

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved engine address and where the choice came from (for messages)."""

    host: str
    source: str
    tls: TlsFiles | None = None
    config_dir: Path | None = None
    timeout: float = DEFAULT_TIMEOUT


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def at_least(api_version: str, wanted: str) -> bool:
    return version_tuple(api_version) >= version_tuple(wanted)


def config_dir(environ: Mapping[str, str]) -> Path | None:
    """The docker CLI configuration directory (``$DOCKER_CONFIG`` or ``~/.docker``)."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    home = environ.get("HOME")
    return Path(home) / ".docker" if home else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise Unavailable(f"cannot read {path}: {exc}", hint="fix or remove the file") from exc
    return data if isinstance(data, dict) else {}


def _context_endpoint(cfg_dir: Path, name: str, timeout: float) -> Endpoint:
    """Read the ``docker`` endpoint of context ``name`` from the context store."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = cfg_dir / "contexts" / "meta" / digest / "meta.json"
    meta = _read_json(meta_path)
    docker_ep = meta.get("Endpoints", {}).get("docker") if meta else None
    if not isinstance(docker_ep, dict) or not docker_ep.get("Host"):
        raise Unavailable(
            f"docker context {name!r} not found or has no docker endpoint",
            hint="list contexts with `docker context ls`, or set DOCKER_HOST",
        )
    tls_dir = cfg_dir / "contexts" / "tls" / digest / "docker"
    skip_verify = bool(docker_ep.get("SkipTLSVerify"))
    tls: TlsFiles | None = None
    if tls_dir.is_dir() or skip_verify:
        ca, cert, key = (tls_dir / "ca.pem", tls_dir / "cert.pem", tls_dir / "key.pem")
        tls = TlsFiles(
            ca_cert=str(ca) if ca.is_file() else None,
            client_cert=str(cert) if cert.is_file() else None,
            client_key=str(key) if key.is_file() else None,
            verify=not skip_verify,
        )
    return Endpoint(
        host=str(docker_ep["Host"]),
        source=f"docker context {name!r}",
        tls=tls,
        config_dir=cfg_dir,
        timeout=timeout,
    )


def resolve_endpoint(environ: Mapping[str, str]) -> Endpoint:
    """Pick the engine endpoint from the environment and the docker CLI config."""
    timeout = DEFAULT_TIMEOUT
    for key in ("COMPOSE_HTTP_TIMEOUT", "DOCKER_CLIENT_TIMEOUT"):
        if environ.get(key, "").strip():
            try:
                timeout = float(environ[key])
            except ValueError:
                continue
            break
    cfg_dir = config_dir(environ)
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        tls: TlsFiles | None = None
        if environ.get("DOCKER_TLS_VERIFY") or environ.get("DOCKER_CERT_PATH"):
            cert_dir = (
                Path(environ["DOCKER_CERT_PATH"]) if environ.get("DOCKER_CERT_PATH") else cfg_dir
            )
            if cert_dir is not None:
                tls = TlsFiles(
                    ca_cert=str(cert_dir / "ca.pem"),
                    client_cert=str(cert_dir / "cert.pem"),
                    client_key=str(cert_dir / "key.pem"),
                    verify=bool(environ.get("DOCKER_TLS_VERIFY")),
                )
        return Endpoint(host, "DOCKER_HOST", tls, cfg_dir, timeout)
    context = environ.get("DOCKER_CONTEXT", "").strip()
    source = "DOCKER_CONTEXT"
    if not context and cfg_dir is not None:
        context = str(_read_json(cfg_dir / "config.json").get("currentContext") or "")
        source = "currentContext"
    if context and context != "default" and cfg_dir is not None:
        return _context_endpoint(cfg_dir, context, timeout)
    if context and context != "default":
        raise Unavailable(f"docker context {context!r} ({source}) needs a docker config directory")
    return Endpoint(DEFAULT_HOST, "default", None, cfg_dir, timeout)


def connect(endpoint: Endpoint, environ: Mapping[str, str]) -> APIClient:
    """Open a client with API version negotiation; errors become ``Unavailable``.

    Registry credentials are loaded from the endpoint's config directory (not
    from wherever the SDK would look), and credential helpers run with the
    given environment.
    """
    import docker
    from docker.auth import AuthConfig
    from docker.tls import TLSConfig

    from composer.backends.docker.errors import translate

    tls: TLSConfig | bool = False
    if endpoint.tls is not None:
        cert = None
        if endpoint.tls.client_cert and endpoint.tls.client_key:
            cert = (endpoint.tls.client_cert, endpoint.tls.client_key)
        try:
            tls = TLSConfig(
                client_cert=cert,
                ca_cert=endpoint.tls.ca_cert if endpoint.tls.verify else None,
                verify=endpoint.tls.ca_cert if endpoint.tls.verify else False,
            )
        except Exception as exc:
            raise translate(exc, f"TLS setup for {endpoint.host}", endpoint) from exc
    try:
        api = docker.APIClient(
            base_url=endpoint.host,
            version="auto",
            timeout=int(endpoint.timeout),
            tls=tls,
            credstore_env=dict(environ),
        )
        config_json = endpoint.config_dir / "config.json" if endpoint.config_dir else None
        if config_json is not None and config_json.is_file():
            api.reload_config(str(config_json))
        else:
            # An empty credential set makes the SDK fall back to reading the
            # process's own ~/.docker; a placeholder entry keeps it on ours.
            placeholder = AuthConfig({"auths": {"composer.invalid": {}}}, dict(environ))
            api._auth_configs = placeholder  # type: ignore[attr-defined]
    except Exception as exc:
        raise translate(exc, "connect", endpoint) from exc
    return api
