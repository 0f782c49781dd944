"""Config hashes: when does a change to the model require a recreate?

A container records the hash of the service it was created from in the
``com.docker.compose.config-hash`` label; the planner recreates it when the
hash of the current model differs. The hash covers the fully loaded service
minus the attributes that never require a recreate (``build``,
``pull_policy``, ``scale``, ``deploy.replicas``, ``depends_on``,
``profiles``, Compose's own labels — see ``service_for_hash``), **plus** what
Docker Compose misses: the content of the config, secret and env files the
service uses (digests recorded by the loader in ``Project.content_digests``,
so hashing stays pure), and the inline content or environment value of
``content:``/``environment:`` configs and secrets.

Networks and volumes get a hash of their definition so that a changed
definition can be told apart from the one the engine holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from composer.errors import PlanError
from composer.schema.model import ConfigDef, Network, Project, SecretDef, Service, Volume
from composer.schema.render import OWN_LABEL_PREFIX, service_for_hash

MISSING = "missing"
"""The digest of an optional file that does not exist."""

UNKNOWN = "unknown"
"""The digest of a file the loader did not record (a project built by hand)."""

_SERVICE_REF_KEYS = ("network_mode", "ipc", "pid", "uts", "cgroup")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _text_digest(text: str | None) -> str:
    return MISSING if text is None else hashlib.sha256(text.encode()).hexdigest()


def _file_digest(project: Project, path: str) -> str:
    return project.content_digests.get(path, UNKNOWN)


def _source_digest(project: Project, definition: ConfigDef | SecretDef) -> dict[str, str]:
    """Where a config/secret's bytes come from, and their digest."""
    if definition.external:
        return {"external": definition.name or ""}
    if definition.file is not None:
        return {"file": definition.file, "digest": _file_digest(project, definition.file)}
    if definition.environment is not None:
        value = project.environment.get(definition.environment)
        return {"environment": definition.environment, "digest": _text_digest(value)}
    content = definition.content if isinstance(definition, ConfigDef) else None
    return {"content": _text_digest(content)}


def content_digests(project: Project, service: str) -> dict[str, Any]:
    """Digests of every file (or inline value) the service's containers read.

    Keyed by kind and name, so that editing a file changes the hash of
    exactly the services that use it.
    """
    svc = _service(project, service)
    out: dict[str, Any] = {}
    configs = {
        ref.source: _source_digest(project, project.configs[ref.source])
        for ref in svc.configs
        if ref.source in project.configs
    }
    secrets = {
        ref.source: _source_digest(project, project.secrets[ref.source])
        for ref in svc.secrets
        if ref.source in project.secrets
    }
    env_files = {entry.path: _file_digest(project, entry.path) for entry in svc.env_file}
    if configs:
        out["configs"] = configs
    if secrets:
        out["secrets"] = secrets
    if env_files:
        out["env_files"] = env_files
    return out


def _resolve_refs(rendered: dict[str, Any], containers: Mapping[str, str]) -> None:
    """Replace ``service:x`` references by ``container:<id>`` of x's container."""
    for key in _SERVICE_REF_KEYS:
        value = rendered.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            target = containers.get(value.removeprefix("service:"))
            if target is not None:
                rendered[key] = f"container:{target}"
    volumes_from = rendered.get("volumes_from")
    if isinstance(volumes_from, list):
        resolved: list[Any] = []
        for entry in volumes_from:
            name, _, mode = str(entry).partition(":")
            if name != "container" and name in containers:
                entry = f"container:{containers[name]}" + (f":{mode}" if mode else "")
            resolved.append(entry)
        rendered["volumes_from"] = resolved


def service_hash(
    project: Project, service: str, *, containers: Mapping[str, str] | None = None
) -> str:
    """The config hash of ``service`` (what ``config --hash`` prints).

    ``containers`` maps service names to the id (or name) of the container a
    ``service:x`` reference (``network_mode``, ``ipc``, ``pid``, ``uts``,
    ``cgroup``, ``volumes_from``) points at; when given, the hash changes
    when that container is replaced, as in Docker Compose.
    """
    rendered = service_for_hash(_service(project, service))
    if containers:
        _resolve_refs(rendered, containers)
    payload: dict[str, Any] = {"service": rendered}
    files = content_digests(project, service)
    if files:
        payload["files"] = files
    return digest(payload)


def _without_own_labels(dumped: dict[str, Any]) -> dict[str, Any]:
    labels = dumped.get("labels")
    if isinstance(labels, dict):
        dumped["labels"] = {k: v for k, v in labels.items() if not k.startswith(OWN_LABEL_PREFIX)}
    return dumped


def network_hash(network: Network) -> str:
    """Hash of a network definition (Compose's own labels excluded)."""
    return digest(_without_own_labels(network.model_dump(mode="json", exclude_none=True)))


def volume_hash(volume: Volume) -> str:
    """Hash of a volume definition (Compose's own labels excluded)."""
    return digest(_without_own_labels(volume.model_dump(mode="json", exclude_none=True)))


def _service(project: Project, name: str) -> Service:
    try:
        return project.services[name]
    except KeyError:
        raise PlanError(
            f"no such service: {name}",
            hint=f"services are: {', '.join(sorted(project.services)) or '(none)'}",
        ) from None
