"""Starting the supervisor from the client: one spawn for concurrent first calls,
``prestart`` ahead of the first ``start``, and the warm-up's choice of modules.

The supervisor is real (daemonised, lock, socket); containers run as plain
processes (``plain_launcher.py``).
"""

from __future__ import annotations

import threading
from typing import Any

from composer.backends.native.supervisor import records as R
from composer.backends.native.supervisor import warmup
from composer.backends.native.supervisor.client import SupervisorClient

Project = Any  # the conftest's Project (conftest modules are not importable)


def _counting_spawns(client: SupervisorClient) -> list[int]:
    """Count the client's supervisor spawns (the real spawn still runs)."""
    spawns: list[int] = []
    real = client._spawn

    def counted() -> None:
        spawns.append(1)
        real()

    client._spawn = counted  # type: ignore[method-assign]
    return spawns


def test_concurrent_first_calls_spawn_one_supervisor(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    spawns = _counting_spawns(plain.client)
    pids: list[int] = []
    threads = [threading.Thread(target=lambda: pids.append(plain.client.ping())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spawns) == 1
    assert len(set(pids)) == 1 and pids[0] == plain.supervisor_pid()
    plain.client.start(cid)
    plain.client.kill(cid)


def test_prestart_brings_the_supervisor_up_once(plain: Project) -> None:
    cid = plain.add(("sleep", "100"))
    spawns = _counting_spawns(plain.client)
    plain.client.prestart()
    plain.client.prestart()
    plain.poll(plain.client.running, what="the prestarted supervisor")
    plain.client.start(cid)  # served by the supervisor prestart brought up
    assert len(spawns) == 1
    assert plain.state(cid).status == "running"
    plain.client.kill(cid)


def test_shutdown_reaches_a_supervisor_still_being_prestarted(plain: Project) -> None:
    plain.add(("sleep", "100"))  # created, never started
    plain.client.prestart()
    plain.client.shutdown()  # waits for the spawn in flight, then tells it to leave
    pid = plain.supervisor_pid()
    assert pid is not None
    # Without the shutdown it would wait for its first client (server.FIRST_CLIENT, 10 s).
    plain.poll(lambda: not plain.alive(pid), timeout=5.0, what="the supervisor to leave")


def test_warm_up_imports_only_what_the_project_needs(plain: Project) -> None:
    plain.add(("sleep", "1"))
    assert warmup._needs(plain.root, plain.name) == (False, False, False)
    plain.add(("sleep", "1"), networks=(R.NetworkJoin("n1", {}, ("svc",)),))
    assert warmup._needs(plain.root, plain.name) == (True, False, False)
    plain.add(("sleep", "1"), healthcheck=R.HealthcheckRecord(("CMD", "true")))
    assert warmup._needs(plain.root, plain.name) == (True, True, False)
    assert warmup._needs(plain.root, plain.name + "x") == (False, False, False)
    plain.add(("sleep", "1"), ports=(R.PortPublish(80, 0, "", "tcp", None),))
    assert warmup._needs(plain.root, plain.name) == (True, True, True)


def test_warm_up_sees_a_network_of_the_project_before_any_container(plain: Project) -> None:
    """The backend prestarts the supervisor as it creates the project's first network."""
    from composer.backends.labels import LABEL_PROJECT
    from composer.backends.native.state import write_json

    assert warmup._needs(plain.root, plain.name) == (False, False, False)
    write_json(plain.root.network("other") / "network.json", {"labels": {LABEL_PROJECT: "x"}})
    assert warmup._needs(plain.root, plain.name) == (False, False, False)
    net = plain.root.network(f"{plain.name}_default") / "network.json"
    write_json(net, {"labels": {LABEL_PROJECT: plain.name}})
    assert warmup._needs(plain.root, plain.name) == (True, False, False)


def test_warm_up_never_raises(plain: Project, monkeypatch: Any) -> None:
    monkeypatch.setattr(warmup, "MODULES", ("composer.no_such_module",))
    monkeypatch.setattr(warmup, "NETWORK_MODULES", ())
    monkeypatch.setattr(warmup, "HEALTH_MODULES", ())
    monkeypatch.setattr(warmup, "PORT_MODULES", ())
    warmup.warm(plain.root, plain.name)  # logs and carries on
    warmup.start(plain.root, plain.name).join(30)
