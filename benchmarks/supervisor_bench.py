"""The native supervisor's footprint: RSS with 20 containers, and their start time.

In a throw-away state root, 20 busybox containers (``sleep``, a rootfs made
as ``scripts/engines.sh`` makes bb:latest, Docker's default isolation, one
cgroup each) are written as records and started through one project's
supervisor, as ``up`` does. Per round it measures:

* ``ensure_running``: from no supervisor to one answering on its socket;
* ``start x20``: the 20 ``start`` calls, one after the other (each returns
  once the container has exec'd);
* the supervisor's RSS (``VmRSS``) with the 20 containers running, and its
  thread count;
* ``stop x20``: ``kill`` + ``wait`` of each container;
* ``start x20 par``: the 20 ``start`` calls again, 8 at a time from
  threads, as the executor issues them for independent services.

Prints the median of each figure and the issue's targets: the supervisor
under 40 MB RSS with 20 containers, starting 20 containers under 1 s.
Needs root and overlayfs (as the runtime does).

    .venv/bin/python benchmarks/supervisor_bench.py --rounds 5

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from composer.backends.base import ContainerSpec  # noqa: E402
from composer.backends.native.runtime import caps  # noqa: E402
from composer.backends.native.runtime.cgroups import Cgroup  # noqa: E402
from composer.backends.native.runtime.spec import CgroupSpec, LaunchSpec, RootfsSpec  # noqa: E402
from composer.backends.native.state import StateRoot  # noqa: E402
from composer.backends.native.supervisor import records as R  # noqa: E402
from composer.backends.native.supervisor.client import SupervisorClient  # noqa: E402

COUNT = 20
PARALLEL = 8
"""Concurrent ``start`` calls in the parallel round (the executor starts independent services
at once)."""


def busybox_layer(where: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "isolation_probes", REPO / "scripts" / "isolation_probes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    layer: Path = module.make_busybox_rootfs(where)
    return layer


def write_container(root: StateRoot, project: str, lower: Path, n: int) -> tuple[str, str]:
    cid = uuid.uuid4().hex + uuid.uuid4().hex
    d = root.container(cid)
    for sub in ("upper", "work", "rootfs"):
        (d / sub).mkdir(parents=True)
    cgroup = f"composer-bench/{project}-{cid[:12]}"
    launch = LaunchSpec(
        id=cid,
        rootfs=RootfsSpec(str(d / "rootfs"), (str(lower),), str(d / "upper"), str(d / "work")),
        args=("sleep", "1000"),
        env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
        hostname=cid[:12],
        capabilities=caps.DOCKER_DEFAULT_CAPS,
        cgroup=CgroupSpec(cgroup),
    )
    spec = ContainerSpec(name=f"{project}-s-{n}", service="s", image="bb:latest", labels={})
    R.write_record(
        root,
        R.ContainerRecord(
            id=cid,
            name=spec.name,
            project=project,
            service="s",
            created_at=time.time(),
            spec=R.spec_to_json(spec),
            launch=json.loads(launch.to_json()),
        ),
    )
    return cid, cgroup


def rss_kb(pid: int) -> tuple[int, int]:
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def one_round(base: Path, lower: Path) -> dict[str, float]:
    root = StateRoot(base / f"root-{uuid.uuid4().hex[:6]}").ensure()
    project = f"bench{uuid.uuid4().hex[:8]}"
    made = [write_container(root, project, lower, n) for n in range(COUNT)]
    client = SupervisorClient(root, project)
    out: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        client.ensure_running()
        out["ensure_running_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for cid, _ in made:
            client.start(cid)
        out["start_x20_s"] = time.perf_counter() - t0
        pid = client.ping()
        time.sleep(0.5)  # let the per-start threads finish
        rss, threads = rss_kb(pid)
        out["rss_mb"] = rss / 1024
        out["threads"] = threads
        t0 = time.perf_counter()
        for cid, _ in made:
            client.kill(cid)
        for cid, _ in made:
            client.wait(cid, 30)
        out["stop_x20_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(client.start, [cid for cid, _ in made]))
        out["start_x20_par_s"] = time.perf_counter() - t0
        for cid, _ in made:
            client.kill(cid)
        for cid, _ in made:
            client.wait(cid, 30)
    finally:
        for cid, cgroup in made:
            st = R.read_state(root, cid)
            if st.pid and R.same_process(st.pid, st.pid_start_time):
                import os
                import signal

                os.kill(st.pid, signal.SIGKILL)
            with contextlib.suppress(OSError, TimeoutError):
                Cgroup(cgroup).remove()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="composer-sv-bench-") as tmp:
        base = Path(tmp)
        lower = busybox_layer(base / "lower")
        rounds = [one_round(base, lower) for _ in range(args.rounds)]
    keys = rounds[0].keys()
    print(f"supervisor with {COUNT} containers, {args.rounds} rounds (median, min-max)")
    for key in keys:
        values = [r[key] for r in rounds]
        print(
            f"  {key:18} {statistics.median(values):8.3f}   ({min(values):.3f}-{max(values):.3f})"
        )
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    print(f"target: RSS < 40 MB -> {'met' if med['rss_mb'] < 40 else 'NOT met'}")
    best = min(med["start_x20_s"], med["start_x20_par_s"])
    print(f"target: start x20 < 1 s -> {'met' if best < 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
