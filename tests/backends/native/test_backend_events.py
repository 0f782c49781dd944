"""The event log, the die events read from state files, top's process filter, and cp on a
stopped container's overlay."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.native import events as E
from composer.backends.native.copy_mount import overlay_mounted
from composer.backends.native.procs import container_pids, top
from composer.backends.native.runtime.spec import RootfsSpec
from composer.backends.native.state import StateRoot
from composer.backends.runtime import EngineEvent
from composer.errors import Conflict


def test_events_are_logged_merged_and_windowed(tmp_path: Path) -> None:
    root = StateRoot(tmp_path).ensure()
    E.record(root, "p", "container", "create", "c1", "p-a-1", service="a", when=10.0)
    E.record(root, "p", "container", "start", "c1", "p-a-1", service="a", when=11.0)
    E.record(root, "p", "container", "die", "c1", "p-a-1", service="a", when=12.0)
    E.record(root, "other", "container", "create", "c2", "o-a-1", when=10.5)
    logged = E.read(root, "p")
    assert [e.action for e in logged] == ["create", "start", "die"]
    dies = [
        EngineEvent(12.0, "container", "die", "c1", "p-a-1"),  # already logged
        EngineEvent(13.0, "container", "die", "c1", "p-a-1"),  # seen only in state.json
    ]
    merged = E.merged(logged, dies)
    assert [(e.action, e.time) for e in merged] == [
        ("create", 10.0), ("start", 11.0), ("die", 12.0), ("die", 13.0)
    ]  # fmt: skip
    polls: Iterator[list[EngineEvent]] = iter([merged, merged])
    got = list(E.window(polls, since=10.5, until=12.5))
    assert [e.action for e in got] == ["start", "die"]
    E.record(root, "", "container", "x", "c", "n")  # no project: nothing written
    assert E.read(root, "") == []


def test_top_lists_only_the_processes_of_the_namespace() -> None:
    me = os.getpid()
    pids = container_pids(me)
    assert me in pids and len(pids) > 1  # the host's namespace holds every test process
    titles, rows = top(me, "-o pid,comm")
    assert titles == ["PID", "COMMAND"]
    assert str(me) in {row[0] for row in rows}
    with pytest.raises(Conflict):
        container_pids(2**22 + 12345)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay needs root")
def test_stopped_container_overlay_is_mounted_only_during_the_copy(tmp_path: Path) -> None:
    lower, upper, work = (tmp_path / n for n in ("lower", "upper", "work"))
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "from-image").write_text("image")
    (upper / "from-container").write_text("mine")
    rootfs = RootfsSpec(str(tmp_path / "rootfs"), (str(lower),), str(upper), str(work))
    with overlay_mounted(rootfs, tmp_path / "tmp") as point:
        assert sorted(os.listdir(point)) == ["from-container", "from-image"]
        Path(point, "written").write_text("new")
    assert (upper / "written").read_text() == "new"
    mounts = subprocess.run(["cat", "/proc/self/mountinfo"], capture_output=True, text=True)
    assert str(tmp_path) not in mounts.stdout
    assert os.listdir(tmp_path / "tmp") == []
