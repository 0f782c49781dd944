"""The least time a Docker Engine needs for the reference stack, whoever drives it.

``lifecycle_bench.py`` compares composer with docker-compose on the stack of
issue 4. This module answers the question behind its ``up -d`` target: how
fast could *any* client bring that stack up on this engine? It drives the
Engine API directly (docker SDK, already imported, no CLI, no model, no
plan) in the best order the stack's ``depends_on`` allows:

* the network is created, then every container is created at once, each on
  a thread of its own;
* a container starts the moment its own dependencies are met: ``db`` and
  ``cache`` at once, ``api`` and ``migrate`` when the engine reports ``db``
  healthy (``inspect`` every 20 ms), the workers and ``web`` when ``api``'s
  start has returned.

Two variants of the health gate are timed:

* ``engine`` waits for the engine's own health status, as Compose does. On
  Engine 20.10 the first probe runs one ``interval`` after the start (there
  is no ``start_interval`` before API 1.44).
* ``client-probe`` does not wait for the engine: it runs the healthcheck's
  command itself with ``exec`` every 50 ms from the start and gates on the
  first success. No Compose implementation does this; it is here to show
  what even that would leave.

``down`` only clears the stack away between rounds; it is not timed (composer's
own ``down`` already beats a plain stop with 1 s of grace, by killing a PID 1
that has no handler for the stop signal).

Used by ``lifecycle_bench.py --floor``; not a test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

POLL = 0.02
PROBE_EVERY = 0.05


def _services(stack: str) -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(stack)["services"])


def _deps(svc: dict[str, Any]) -> dict[str, str]:
    raw = svc.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: rule.get("condition", "service_started") for name, rule in raw.items()}


def _ns(text: str) -> int:
    assert text.endswith("s"), text
    return int(float(text[:-1]) * 1e9)


def _create(api: Any, project: str, name: str, svc: dict[str, Any], port: int | None) -> str:
    net = f"{project}_default"
    host_config: dict[str, Any] = {"network_mode": net}
    ports: list[int] = []
    if port is not None:
        host_config["port_bindings"] = {80: port}
        ports = [80]
    health = None
    if "healthcheck" in svc:
        h = svc["healthcheck"]
        health = {
            "Test": h["test"],
            "Interval": _ns(h["interval"]),
            "Timeout": _ns(h["timeout"]),
            "Retries": h["retries"],
        }
    created = api.create_container(
        svc["image"],
        command=svc["command"],
        name=f"{project}-{name}-1",
        environment=svc.get("environment"),
        ports=ports,
        healthcheck=health,
        labels={"com.docker.compose.project": project},
        host_config=api.create_host_config(**host_config),
        networking_config=api.create_networking_config(
            {net: api.create_endpoint_config(aliases=[name])}
        ),
    )
    return str(created["Id"])


def _healthy_by_engine(api: Any, cid: str) -> Callable[[], bool]:
    def check() -> bool:
        state = api.inspect_container(cid)["State"]
        return bool(state.get("Health", {}).get("Status") == "healthy")

    return check


def _healthy_by_client(api: Any, cid: str, test: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        exec_id = api.exec_create(cid, test[1:], stdout=False, stderr=False)["Id"]
        api.exec_start(exec_id)
        return bool(api.exec_inspect(exec_id)["ExitCode"] == 0)

    return check


def up(api: Any, project: str, stack: str, port: int | None, gate: str) -> None:
    """Bring the stack up; ``gate`` is ``engine`` or ``client-probe``."""
    services = _services(stack)
    api.create_network(
        f"{project}_default", driver="bridge", labels={"com.docker.compose.project": project}
    )
    started = {name: threading.Event() for name in services}
    healthy = {name: threading.Event() for name in services}
    failures: list[BaseException] = []

    def bring(name: str) -> None:
        svc = services[name]
        try:
            cid = _create(api, project, name, svc, port if svc.get("ports") else None)
            for dep, condition in _deps(svc).items():
                (healthy if condition == "service_healthy" else started)[dep].wait()
            api.start(cid)
            started[name].set()
            if "healthcheck" in svc:
                if gate == "engine":
                    check = _healthy_by_engine(api, cid)
                    pause = POLL
                else:
                    check = _healthy_by_client(api, cid, svc["healthcheck"]["test"])
                    pause = PROBE_EVERY
                while not check():
                    time.sleep(pause)
                healthy[name].set()
        except BaseException as exc:  # let the waiters go; the caller raises
            failures.append(exc)
            for event in (*started.values(), *healthy.values()):
                event.set()

    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        list(pool.map(bring, services))
    if failures:
        raise failures[0]


def down(api: Any, project: str) -> None:
    """Stop (1 s grace) and remove the project's containers, then its network."""
    found = api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})

    def remove(c: dict[str, Any]) -> None:
        api.stop(c["Id"], timeout=1)
        api.remove_container(c["Id"])

    with ThreadPoolExecutor(max_workers=max(len(found), 1)) as pool:
        list(pool.map(remove, found))
    for net in api.networks(names=[f"{project}_default"]):
        api.remove_network(net["Id"])


def timed(step: Callable[..., None], *args: Any) -> float:
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start
