"""Time a one-off ``run --rm`` on the native backend against docker, podman and runc.

One image (``bb:latest``, a busybox-static rootfs) everywhere. Per round, in
an order that rotates from round to round, whole processes of:

* ``composer --backend native run --rm app true`` (a one-service project on a
  state root of its own; ``bb:latest`` loaded into it from
  ``docker save bb:latest``);
* ``docker run --rm bb:latest true`` on the running dockerd;
* ``podman run --rm bb:latest true`` (Debian's podman; the image given to it
  with ``docker save bb:latest | podman load``);
* ``runc run`` of an OCI bundle made from the same rootfs
  (``docker export`` of a ``bb:latest`` container, ``runc spec``, args
  ``true``), the floor of any engine that sets up a container.

Then, inside ``up``: a project of 20 services (``sleep``) brought up with
``composer --backend native --progress json up -d``; from the progress
events, the time from the first container's ``Starting`` to the last one's
``Started`` (all 20 starts, as the supervisor serves them), and the
supervisor's ``VmRSS`` with the 20 running.

Prints medians, the load average at the start and end, and the targets of
the issue: ``run --rm`` at most 50% of ``docker run``'s wall time, 20 starts
inside ``up`` under 1 s, the supervisor under 40 MB RSS with 20 containers.

    bash scripts/engines.sh start                    # dockerd and bb:latest
    apt-get install -y podman runc
    .venv/bin/python benchmarks/run_bench.py --rounds 10 --up-rounds 3
    COMPOSER_SERVER=0 .venv/bin/python benchmarks/run_bench.py --rounds 5 --up-rounds 0

``COMPOSER_SERVER`` is passed on (``COMPOSER_SERVER=0``: plain processes,
no warm command server); composer's other variables are not.

Needs root. Not a test: the figures go into docs/benchmarks.md with the
command used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.cmdserver_env import composer_env, server_env, wait_until_served  # noqa: E402

IMAGE = "bb:latest"
COUNT = 20
TARGET_RUN = 0.5
TARGET_STARTS = 1.0
TARGET_RSS_MB = 40.0


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def make_bundle(where: Path) -> Path:
    """An OCI bundle (``runc spec`` defaults, args ``true``) on ``bb:latest``'s rootfs."""
    rootfs = where / "rootfs"
    rootfs.mkdir(parents=True)
    cid = sh(["docker", "create", IMAGE, "true"]).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True)
        export.wait()
    finally:
        sh(["docker", "rm", "-f", cid])
    subprocess.run(["runc", "spec"], cwd=where, check=True)
    config = json.loads((where / "config.json").read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    (where / "config.json").write_text(json.dumps(config))
    return where


def podman_reason() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install -y podman)"
    if sh(["podman", "image", "exists", IMAGE]).returncode != 0:
        load = subprocess.run(
            f"docker save {IMAGE} | podman load", shell=True, capture_output=True, text=True
        )
        if load.returncode != 0:
            return f"docker save {IMAGE} | podman load failed: {load.stderr.strip()[-300:]}"
    probe = sh(["podman", "run", "--rm", IMAGE, "true"])
    if probe.returncode != 0:
        return f"podman run --rm {IMAGE} true failed: {probe.stderr.strip()[-300:]}"
    return None


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took


def up_round(composer: list[str], cwd: Path, env: dict[str, str], root: Path) -> dict[str, float]:
    """``up -d`` of 20 services: the span of their starts from the events, and supervisor RSS."""
    project = f"runbench{uuid.uuid4().hex[:6]}"
    cmd = [*composer, "-p", project]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--progress", "json", "up", "-d"], cwd=cwd, env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            sys.exit(f"up -d failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        events = [json.loads(line) for line in (proc.stdout + proc.stderr).splitlines()
                  if line.startswith("{")]  # fmt: skip
        starting = [e["time"] for e in events if e.get("status") == "Starting"]
        started = [e["time"] for e in events if e.get("status") == "Started"]
        if len(started) != COUNT:
            sys.exit(f"expected {COUNT} Started events, got {len(started)}")
        pid = int((root / "projects" / project / "supervisor.pid").read_text().split()[0])
        time.sleep(0.5)  # per-start threads finish
        rss = threads = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        return {
            "up_s": took,
            "starts_s": max(started) - min(starting),
            "rss_mb": rss / 1024,
            "threads": threads,
        }
    finally:
        sh([*cmd, "down", "-t", "0"], cwd=cwd, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--up-rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="interpreter for composer")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (namespaces, cgroups, overlayfs)")

    load_start = os.getloadavg()[0]
    env = composer_env(REPO)
    composer = [args.python, "-m", "composer", "--backend", "native"]
    skipped: dict[str, str] = {}
    served = env.get("COMPOSER_SERVER") != "0"
    with (
        tempfile.TemporaryDirectory(prefix="run-bench-") as tmp,
        server_env(env, args.python, enabled=served) as env,
    ):
        base = Path(tmp)
        root = base / "state"
        env["COMPOSER_ROOT"] = str(root)
        subprocess.run(["docker", "save", IMAGE, "-o", str(base / "bb.tar")], check=True)
        subprocess.run(
            [*composer, "image", "load", "-i", str(base / "bb.tar")], check=True, env=env,
            capture_output=True,
        )  # fmt: skip
        one = base / "one"
        one.mkdir()
        (one / "compose.yaml").write_text(f"services:\n  app:\n    image: {IMAGE}\n")
        many = base / "many"
        many.mkdir()
        (many / "compose.yaml").write_text(
            "services:\n"
            + "".join(
                f"  s{n}:\n    image: {IMAGE}\n    command: [sleep, '1000']\n" for n in range(COUNT)
            )
        )
        commands: dict[str, list[str]] = {
            "composer native": [*composer, "-p", "runbench", "run", "--rm", "app", "true"],
            "docker run": ["docker", "run", "--rm", IMAGE, "true"],
        }
        reason = podman_reason()
        if reason is None:
            commands["podman run"] = ["podman", "run", "--rm", IMAGE, "true"]
        else:
            skipped["podman run"] = reason
        if shutil.which("runc") is None:
            skipped["runc run"] = "runc is not installed (apt-get install -y runc)"
        else:
            bundle = make_bundle(base / "bundle")
            commands["runc run"] = ["runc", "run", "--bundle", str(bundle), "runbench"]

        names = list(commands)
        samples: dict[str, list[float]] = {n: [] for n in names}
        for name in names:  # warm-up: caches, the project's network, podman's storage
            timed(commands[name], one, env)
        wait_until_served([*composer, "config", "-q"], one, env)  # every round served
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            figures = {name: timed(commands[name], one, env) for name in order}
            for name, value in figures.items():
                samples[name].append(value)
            print(
                f"round {i + 1}: " + ", ".join(f"{k} {v:.3f}s" for k, v in figures.items()),
                flush=True,
            )
        sh([*composer, "-p", "runbench", "down"], cwd=one, env=env)
        ups = [up_round(composer, many, env, root) for _ in range(args.up_rounds)]
        for i, r in enumerate(ups):
            print(f"up round {i + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    load_end = os.getloadavg()[0]

    med = {n: statistics.median(v) for n, v in samples.items()}
    up_med = {k: statistics.median(r[k] for r in ups) for k in ups[0]} if ups else {}
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_start:.1f} at the start, {load_end:.1f} at the end; composer "
        + ("through its warm command server" if served else "in processes of their own")
    )
    print("| command | median | vs docker run | min-max |")
    print("|---|---:|---:|---|")
    for name in names:
        v = samples[name]
        print(
            f"| {name} | {med[name]:.3f} s | {med[name] / med['docker run']:.2f} | "
            f"{min(v):.3f}-{max(v):.3f} s |"
        )
    for name, why in skipped.items():
        print(f"| {name} | not run: {why} | | |")
    print()
    if up_med:
        print(
            f"up -d of {COUNT} services: {up_med['up_s']:.3f} s; their {COUNT} starts "
            f"{up_med['starts_s']:.3f} s; supervisor {up_med['rss_mb']:.1f} MB RSS, "
            f"{up_med['threads']:.0f} threads"
        )
    ratio = med["composer native"] / med["docker run"]
    print(
        f"run --rm <= 50% of docker run: {ratio:.0%} {'met' if ratio <= TARGET_RUN else 'missed'}"
    )
    if up_med:
        s = up_med["starts_s"]
        print(
            f"{COUNT} starts inside up < 1 s: {s:.3f} s {'met' if s < TARGET_STARTS else 'missed'}"
        )
        r = up_med["rss_mb"]
        print(f"supervisor < 40 MB RSS: {r:.1f} MB {'met' if r < TARGET_RSS_MB else 'missed'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "samples": samples,
            "medians": med,
            "up": ups,
            "skipped": skipped,
            "loadavg": [load_start, load_end],
        }
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
