"""Watch mode: save-to-visible latency, and a 10,000-file tree's ready time and idle CPU.

Latency: a project with one ``sync`` rule (``./src`` -> ``/app``) is brought
up with ``composer up -d``, then ``composer watch --no-up`` runs as a user
would run it. Each of N edits writes ``src/f.txt`` on the host; the clock
stops when the new content is readable at ``/proc/<pid>/root/app/f.txt``
(``<pid>`` is the container's main process, so that is the file exactly as
the container sees it). Edits are spaced so that each is its own batch.

Tree: ``src`` holds 10,000 files in 100 directories. Ready time is from
starting ``composer watch --no-up`` until it reports that it watches (the
whole process: interpreter start, load, engine snapshot, inotify watches),
and separately the ``FileWatcher.start()`` of the tree in this process.
Idle CPU is the watch process's user+system time over an idle window.

    .venv/bin/python benchmarks/watch_bench.py --backend docker --edits 100

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

_COMPOSER = (sys.executable, "-m", "composer")
_JSON = ("--format", "json")
TARGET_P50 = {"docker": 0.150, "native": 0.050}
TARGET_READY = 2.0
TARGET_IDLE_CPU = 0.02

COMPOSE = """\
services:
  web:
    image: bb:latest
    init: true
    command: ["sleep", "100000"]
    develop:
      watch:
        - {path: ./src, action: sync, target: /app}
"""


_STATE_ROOT: dict[str, str] = {}
"""``COMPOSER_ROOT`` of a native run: a fresh state root holding bb:latest."""


def _native_root(tmp: Path) -> None:
    """A native state root of its own, with bb:latest loaded from ``docker save``."""
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    archive = tmp / "bb.tar"
    subprocess.run(["docker", "save", "-o", str(archive), "bb:latest"], check=True)
    _STATE_ROOT["COMPOSER_ROOT"] = str(tmp / "state")
    native = NativeBackend({**os.environ, **_STATE_ROOT})
    load(native.images, archive)
    native.shutdown()


def _env(root: Path, backend: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    env.update(_STATE_ROOT)
    env.update(
        {
            "COMPOSE_ANSI": "never",
            "COMPOSE_PROGRESS": "plain",
            "COMPOSER_BACKEND": backend,
            "XDG_RUNTIME_DIR": str(root / "run"),
        }
    )
    return env


def _composer(root: Path, backend: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "composer", "--backend", backend, *args],
        cwd=root,
        env=_env(root, backend),
        check=True,
        capture_output=True,
        text=True,
    )


class WatchProcess:
    """``composer watch --no-up`` with its output read in a thread."""

    def __init__(self, root: Path, backend: str, name: str, extra: tuple[str, ...] = ()) -> None:
        self.started = time.perf_counter()
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.sync_ms: list[float] = []
        self.proc = subprocess.Popen(
            [*_COMPOSER, "--backend", backend, "-p", name, "watch", "--no-up", *_JSON, *extra],
            cwd=root,
            env=_env(root, backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("action") == "watching" and not self.ready.is_set():
                self.ready_at = time.perf_counter()
                self.ready.set()
            elif record.get("action") == "sync" and record.get("error") is None:
                self.sync_ms.append(float(record["ms"]))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _container_pid(backend: str, name: str) -> int:
    if backend == "docker":
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", f"{name}-web-1"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.strip())
    from composer.backends.factory import open_backend

    engine: Any = open_backend(backend, {**os.environ, **_STATE_ROOT})
    observed = engine.observe(name)
    (container,) = [c for c in observed.containers if c.service == "web"]
    root = Path(engine.container_root(container.id))
    return int(root.parent.name) if root.parent.name.isdigit() else int(root.resolve().name)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def latency(
    root: Path, backend: str, name: str, edits: int, gap: float, extra: tuple[str, ...]
) -> dict[str, Any]:
    src = root / "src"
    src.mkdir(parents=True)
    (root / "compose.yaml").write_text(COMPOSE)
    _composer(root, backend, "-p", name, "up", "-d")
    watch = WatchProcess(root, backend, name, extra)
    try:
        if not watch.ready.wait(60):
            raise SystemExit("watch did not start")
        visible = Path(f"/proc/{_container_pid(backend, name)}/root/app/f.txt")
        samples: list[float] = []
        for i in range(edits + 1):
            content = f"edit {i} {uuid.uuid4().hex}\n"
            start = time.perf_counter()
            (src / "f.txt").write_text(content)
            deadline = start + 10
            while True:
                try:
                    if visible.read_text() == content:
                        break
                except OSError:
                    pass
                if time.perf_counter() > deadline:
                    raise SystemExit(f"edit {i} not visible after 10 s")
                time.sleep(0.001)
            if i:  # the first edit also warms the container-id cache
                samples.append(time.perf_counter() - start)
            time.sleep(gap)
    finally:
        watch.stop()
        _composer(root, backend, "-p", name, "down", "-t", "0")
    action = watch.sync_ms[1:]
    return {
        "edits": len(samples),
        "sync_action_p50_ms": round(statistics.median(action), 1) if action else None,
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(_percentile(samples, 0.95) * 1000, 1),
        "min_ms": round(min(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def tree(root: Path, backend: str, name: str, files: int, idle: float) -> dict[str, Any]:
    from composer.clock import RealClock
    from composer.watch.watcher import Batcher, FileWatcher

    src = root / "src"
    per_dir = 100
    for i in range(files):
        directory = src / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i % per_dir:03d}.txt").write_text(f"{i}\n")
    (root / "compose.yaml").write_text(COMPOSE)

    start = time.perf_counter()
    watcher = FileWatcher([src], Batcher(RealClock()))
    watcher.start()
    in_process = time.perf_counter() - start
    watcher.stop()

    _composer(root, backend, "-p", name, "up", "-d")
    watch = WatchProcess(root, backend, name)
    try:
        if not watch.ready.wait(60):
            raise SystemExit("watch did not start")
        ready = watch.ready_at - watch.started
        time.sleep(1.0)  # let start-up work settle before the idle window
        cpu0, t0 = watch.cpu_seconds(), time.perf_counter()
        time.sleep(idle)
        cpu = (watch.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    finally:
        watch.stop()
        _composer(root, backend, "-p", name, "down", "-t", "0")
    return {
        "files": files,
        "watcher_start_s": round(in_process, 3),
        "ready_s": round(ready, 3),
        "idle_cpu_pct": round(cpu * 100, 2),
        "idle_window_s": idle,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", default="docker", choices=("docker", "native"))
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between edits")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window in seconds")
    parser.add_argument(
        "--quiet-period", type=float, default=None, help="ms, passed to watch (default: its own)"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"backend": args.backend}
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        name = f"wbench{uuid.uuid4().hex[:8]}"
        if args.backend == "native":
            _native_root(Path(tmp))
        extra = () if args.quiet_period is None else ("--quiet-period", f"{args.quiet_period:g}")
        results["quiet_period_ms"] = args.quiet_period or 50
        results["latency"] = latency(
            Path(tmp, "lat"), args.backend, name, args.edits, args.gap, extra
        )
        results["tree"] = tree(Path(tmp, "tree"), args.backend, name + "t", args.files, args.idle)
    lat, tr = results["latency"], results["tree"]
    results["targets"] = {
        "p50": lat["p50_ms"] / 1000 < TARGET_P50[args.backend],
        "ready": tr["ready_s"] < TARGET_READY,
        "idle_cpu": tr["idle_cpu_pct"] / 100 < TARGET_IDLE_CPU,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
