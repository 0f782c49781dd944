"""Warm a new supervisor up while its client is still creating containers.

A supervisor is started by the first ``start`` of an ``up`` (or earlier,
when the backend asks for it as soon as it creates the project's first
network or writes its first container record). Its first container start
would otherwise pay, on the critical path of ``up``, for importing the
runtime's launch and exec code, the network manager, the port proxies and
the DNS responder (dnslib), and for reading the seccomp program of the
default capability set: about 0.15 s of CPU, several times
that in wall time on a busy machine. Done on a thread right after the
supervisor reports that it listens, this overlaps with the client's own
work; a start that arrives meanwhile simply waits on the import lock of a
module the thread is already importing, so nothing is done twice. Failures
are left for the real start to report.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from pathlib import Path
from typing import NamedTuple

from composer.backends.labels import LABEL_PROJECT
from composer.backends.native.state import StateRoot, read_json
from composer.backends.native.supervisor.netglue import published
from composer.backends.native.supervisor.records import project_container_ids, read_record

log = logging.getLogger(__name__)

MODULES = ("composer.backends.native.runtime.launch",)
"""What any container's first start imports."""

HEALTH_MODULES = ("composer.backends.native.runtime.exec",)
"""What the first healthcheck probe imports."""

NETWORK_MODULES = (
    "composer.backends.native.network.manager",
    "composer.backends.native.network.dns",
)
"""What the first start of a container on a network imports."""

PORT_MODULES = ("composer.backends.native.network.ports",)
"""What the first published port imports (asyncio: about 3 MB of RSS)."""


class Needs(NamedTuple):
    """What the project's containers will use (a module nobody needs is not imported:
    it would only add to RSS)."""

    networks: bool
    health: bool
    ports: bool


def warm(root: StateRoot, project: str) -> None:
    """Import what the project's containers will need and load the default seccomp
    program; never raises.

    What they need is read after the first import: a supervisor started along with
    the project's first network may not see any container record before that.
    """
    _import(MODULES)
    needs = _needs(root, project)
    _import(
        (NETWORK_MODULES if needs.networks else ())
        + (PORT_MODULES if needs.ports else ())
        + (HEALTH_MODULES if needs.health else ())
    )
    try:
        from composer.backends.native.runtime import caps, seccomp

        seccomp.compiled(frozenset(caps.compute()))
    except Exception as exc:
        log.debug("warm-up: the default seccomp program is not ready: %s", exc)


def _import(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the start that needs it will report it properly
            log.debug("warm-up: importing %s failed: %s", name, exc)


def _needs(root: StateRoot, project: str) -> Needs:
    """Whether the project has a network or any container of it joins one, whether any
    has a healthcheck, and whether any publishes a port."""
    networks = _has_network(root, project)
    health = ports = False
    for cid in project_container_ids(root, project):
        try:
            record = read_record(root, cid)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written or removed: the start will tell
        networks = networks or bool(record.networks)
        health = health or record.healthcheck is not None
        ports = ports or bool(published(record))
    return Needs(networks, health, ports)


def _has_network(root: StateRoot, project: str) -> bool:
    """Whether a network record carries the project's label (read without the network
    package, which is what would be warmed)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(root.path / "networks"):
            try:
                labels = read_json(Path(entry.path) / "network.json").get("labels") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if labels.get(LABEL_PROJECT) == project:
                return True
    return False


def start(root: StateRoot, project: str) -> threading.Thread:
    """``warm`` on a daemon thread (it never delays serving or leaving)."""
    thread = threading.Thread(target=warm, args=(root, project), name="warm-up", daemon=True)
    thread.start()
    return thread
