"""The state root: path safety, atomic writes and locks between processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from composer.backends.native.state import (
    StateRoot,
    atomic_write,
    locked_file,
    read_json,
    state_root_path,
    write_json,
)


def test_root_from_environment_and_default() -> None:
    assert state_root_path({"COMPOSER_ROOT": "/x/y"}) == Path("/x/y")
    assert state_root_path({}) == Path("/var/lib/composer")


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "", "../etc", "-x", "a\x00b"])
def test_unsafe_names_never_become_paths(tmp_path: Path, bad: str) -> None:
    root = StateRoot(tmp_path)
    with pytest.raises(ValueError, match="invalid"):
        root.volume(bad)


def test_ensure_creates_the_layout(tmp_path: Path) -> None:
    root = StateRoot(tmp_path / "state").ensure()
    assert sorted(p.name for p in root.path.iterdir()) == [
        "containers", "images", "locks", "networks", "projects", "tmp", "volumes"
    ]  # fmt: skip
    assert root.volume("db_data") == root.path / "volumes" / "db_data"


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "rec.json"
    write_json(target, {"b": 1, "a": [1, 2]})
    write_json(target, {"a": 2})
    assert read_json(target) == {"a": 2}
    assert os.listdir(target.parent) == ["rec.json"]
    atomic_write(target, b"x", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600


def _hold(path: str, started: multiprocessing.synchronize.Event) -> None:
    with locked_file(Path(path)):
        started.set()
        time.sleep(0.5)
        Path(path + ".done").write_text("first")


def test_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    started = multiprocessing.get_context("fork").Event()
    proc = multiprocessing.get_context("fork").Process(target=_hold, args=(str(lock), started))
    proc.start()
    assert started.wait(10)
    with locked_file(lock):
        # The other process wrote its mark before letting go.
        assert Path(str(lock) + ".done").read_text() == "first"
    proc.join(10)
    assert proc.exitcode == 0
