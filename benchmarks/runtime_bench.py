"""The native runtime's launch time: ``launch()`` of ``/bin/true`` in a busybox container.

Each round starts one container with Docker's default isolation (overlay
rootfs over a busybox-static layer made as ``scripts/engines.sh`` makes
bb:latest; mnt, uts, ipc, pid and net namespaces; Docker's mounts, masks,
capabilities and seccomp filter), in one process that is already running
(as the supervisor is). Per round it measures:

* ``launch``: until ``launch()`` returns, i.e. the program has exec'd;
* ``launch+wait``: plus ``waitpid`` of its PID 1 (namespaces torn down);
* the same with a cgroup of its own (created, joined, removed after);
* with ``--docker``: ``docker run --rm --network none bb:latest true``.

Prints medians, min and max, and the CPU time (user+sys of this process
and its children) per launch. The first launch, which builds the seccomp
program (cached per capability set), is left out. Needs root and overlayfs.

    .venv/bin/python benchmarks/runtime_bench.py --rounds 50 [--docker]

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from composer.backends.native.runtime import caps, syscalls  # noqa: E402
from composer.backends.native.runtime.cgroups import Cgroup, remove_empty_parent  # noqa: E402
from composer.backends.native.runtime.launch import launch  # noqa: E402
from composer.backends.native.runtime.spec import (  # noqa: E402
    CgroupSpec,
    LaunchSpec,
    RootfsSpec,
    Stdio,
)


def busybox_layer(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("probes", REPO / "scripts/isolation_probes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: Path = module.make_busybox_rootfs(path)
    return result


def one(base: Path, lower: Path, with_cgroup: bool) -> tuple[float, float]:
    d = base / uuid.uuid4().hex[:12]
    for sub in ("upper", "work", "rootfs"):
        (d / sub).mkdir(parents=True)
    cg = f"composer-bench/{d.name}"
    spec = LaunchSpec(
        id=d.name,
        rootfs=RootfsSpec(str(d / "rootfs"), (str(lower),), str(d / "upper"), str(d / "work")),
        args=("/bin/true",),
        env=("PATH=/bin",),
        hostname=d.name,
        capabilities=caps.DOCKER_DEFAULT_CAPS,
        cgroup=CgroupSpec(cg) if with_cgroup else None,
    )
    null = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter()
        started = launch(spec, Stdio(null, null, null))
        t1 = time.perf_counter()
        os.waitpid(started.pid, 0)
        if with_cgroup:
            Cgroup(cg).remove()
        t2 = time.perf_counter()
    finally:
        os.close(null)
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def docker_run() -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "bb:latest", "true"],
        check=True,
        capture_output=True,
    )
    return (time.perf_counter() - t0) * 1000


def describe(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} median {statistics.median(values):7.1f} ms"
        f"   min {min(values):7.1f}   max {max(values):7.1f}   (n={len(values)})"
    )


def cpu_ms() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--docker", action="store_true", help="also time docker run")
    args = parser.parse_args()
    syscalls.set_child_subreaper()
    with tempfile.TemporaryDirectory(prefix="runtime-bench-") as tmp:
        base = Path(tmp)
        lower = busybox_layer(base / "lower")
        one(base, lower, False)  # warm-up: builds the seccomp program once
        launched, waited, cg_launched, cg_waited = [], [], [], []
        cpu0 = cpu_ms()
        for _ in range(args.rounds):
            a, b = one(base, lower, False)
            launched.append(a)
            waited.append(b)
        cpu_per = (cpu_ms() - cpu0) / args.rounds
        for _ in range(args.rounds):
            a, b = one(base, lower, True)
            cg_launched.append(a)
            cg_waited.append(b)
        remove_empty_parent("composer-bench")
    print(describe("launch", launched))
    print(describe("launch+wait", waited))
    print(describe("launch (cgroup)", cg_launched))
    print(describe("launch+wait+rm (cgroup)", cg_waited))
    print(f"{'CPU per launch+wait':<28} {cpu_per:7.1f} ms")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.docker:
        print(describe("docker run --network none", [docker_run() for _ in range(args.rounds)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
