"""``--isolate`` / ``COMPOSER_ISOLATE=1``: a stack that collides with nothing.

Parallel CI jobs and worktrees run the same compose file on one engine. With
Compose they share a project name (the directory's basename,
docker/compose#3100) and the host ports written in the file, so the second
job fails or, worse, talks to the first one's containers. An isolated run

* gets a unique project name, ``<name>-<8 hex>``, unless the name was given
  explicitly (``-p`` or ``COMPOSE_PROJECT_NAME``: then the caller chose it);
* publishes every port on an ephemeral host port the engine picks at
  creation (the ``published`` part is dropped; the host address and the
  container port stay), so no two stacks ask for the same one. The
  ephemeral form is also what keeps a second ``up`` of the same isolated
  project from recreating anything: the config hash does not change;
* drops ``container_name`` (a fixed name would clash between stacks;
  the service stays reachable by its service name).

``composer ports --format json`` (``composer.cli_ci``) then gives the map
of service, container port, host address and host port.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

from composer.options import env_flag

if TYPE_CHECKING:
    from composer.schema.model import Project

ENV_ISOLATE = "COMPOSER_ISOLATE"


def wanted(flag: bool, environ: Mapping[str, str]) -> bool:
    """``--isolate``, or ``COMPOSER_ISOLATE`` set to a true-ish word."""
    return flag or env_flag(environ, ENV_ISOLATE)


def unique_name(base: str, token: str | None = None) -> str:
    """``base-<8 hex>``: normalised like any project name (lower-case, ``[a-z0-9_-]``)."""
    return f"{base}-{token or secrets.token_hex(4)}"


def name_given(project_name: str | None, environ: Mapping[str, str]) -> bool:
    """Whether the caller chose the project name (``-p`` or ``COMPOSE_PROJECT_NAME``)."""
    return bool(project_name) or bool(environ.get("COMPOSE_PROJECT_NAME", "").strip())


def isolate(project: Project) -> Project:
    """The project with ephemeral host ports and no ``container_name``.

    The unique name is not set here: the loader derives the names of the
    project's networks and volumes from it, so the caller loads the project
    again under that name (``-p``) before isolating it.
    """
    services = {}
    for key, service in project.services.items():
        ports = [p.model_copy(update={"published": None}) for p in service.ports]
        services[key] = service.model_copy(update={"ports": ports, "container_name": None})
    return project.model_copy(update={"services": services})
