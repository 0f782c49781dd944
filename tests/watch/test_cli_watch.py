"""The pieces of the watch CLI that need no engine: flags, output lines, the
background watcher's command line and pidfile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.app_watch import WatchRequest, detached_argv
from composer.cli_watch import output_format, quiet_period
from composer.errors import Conflict, PlanError
from composer.options import GlobalOptions
from composer.watch import detached
from composer.watch.actions import Report
from composer.watch.session import format_report


def test_quiet_period_flag() -> None:
    assert quiet_period(None) is None
    assert quiet_period(20) == 0.02
    with pytest.raises(PlanError):
        quiet_period(-1)


def test_format_flag() -> None:
    assert output_format("json") and not output_format("text")
    with pytest.raises(PlanError):
        output_format("yaml")


def test_report_lines() -> None:
    files = tuple(f"src/{i}.py" for i in range(7))
    text = format_report(Report("sync+restart", "web", files, 0.01234), as_json=False)
    assert text == (
        "web: sync+restart 7 files in 12.3 ms: "
        "src/0.py, src/1.py, src/2.py, src/3.py, src/4.py (+2 more)"
    )
    failed = format_report(Report("sync", "web", (), 0.004, "gone"), as_json=False)
    assert failed == "web: sync failed after 4 ms: gone"
    record = json.loads(format_report(Report("sync", "web", ("a",), 0.5), as_json=True))
    assert record == {
        "action": "sync",
        "service": "web",
        "files": ["a"],
        "ms": 500.0,
        "error": None,
    }


def test_detached_argv_repeats_the_project_options() -> None:
    options = GlobalOptions(
        files=("compose.yaml", "dev.yaml"),
        project_name="shop",
        profiles=("debug",),
        env_files=(".env.dev",),
        backend="docker",
    )
    request = WatchRequest(services=("web",), prune=True, json=True, quiet_period=0.02)
    assert detached_argv(options, request) == [
        "-f", "compose.yaml", "-f", "dev.yaml", "-p", "shop", "--profile", "debug",
        "--env-file", ".env.dev", "--backend", "docker", "--progress", "plain",
        "watch", "--no-up", "--prune", "--format", "json", "--quiet-period", "20", "web",
    ]  # fmt: skip


def test_pidfile_lifecycle(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert detached.runtime_dir("p", environ) == tmp_path / "composer" / "p"
    assert detached.runtime_dir("p", {}) == Path("/run/composer/p")
    assert detached.running("p", environ) is None
    # A stand-in for the watcher: a process that runs until it is told to stop.
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = detached.start("p", command, cwd=tmp_path, environ=environ)
    assert detached.running("p", environ) == proc
    with pytest.raises(Conflict, match="already watched"):
        detached.start("p", command, cwd=tmp_path, environ=environ)
    assert detached.stop("p", environ) == proc
    assert detached.running("p", environ) is None
    assert not Path(f"/proc/{proc.pid}").exists() or _zombie(proc.pid)
    assert not (tmp_path / "composer" / "p" / "watch.pid").exists()


def test_a_stale_pidfile_is_dropped(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pidfile = tmp_path / "composer" / "p" / "watch.pid"
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(f"{done.stdout.strip()} 12345\n")
    assert detached.running("p", environ) is None
    assert not pidfile.exists()
    pidfile.write_text(f"{os.getpid()} 1\n")  # a live pid that started at another time
    assert detached.running("p", environ) is None


def _zombie(pid: int) -> bool:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2] == "Z"
