"""Time ``composer`` against Debian's ``docker-compose`` 1.29.2 on a real stack.

The reference stack of issue 4 (image ``bb:latest``, a busybox-static rootfs:
a database with a healthcheck, a cache, an api that waits for the database
to be healthy, five workers, a web server publishing port 18080 and a
migration that exits) is brought up and down by both tools on the same
daemon, alternating which tool goes first in each round so that noise hits
both alike. Per tool and round three whole processes are timed:

* ``up -d`` from nothing (includes waiting for ``db`` to be healthy);
* ``up -d`` again with nothing changed;
* ``down -t 1``.

Prints medians and the targets of the issue: ``up -d`` at most 50% of
docker-compose's time, the no-op ``up -d`` under 0.5 s, ``down`` at most 50%.

    bash scripts/engines.sh start            # dockerd and bb:latest
    apt-get install -y docker-compose        # 1.29.2 on Debian 12
    .venv/bin/python benchmarks/lifecycle_bench.py --rounds 5
    .venv/bin/python benchmarks/lifecycle_bench.py --rounds 5 --no-server

composer goes through its warm command server (a private one, waited for
after the warm-up round) unless ``--no-server`` is given.

``--floor`` also times, in each round, the least the engine itself needs
for the same ``up -d`` and ``down`` (``engine_floor.py``: the Engine API
driven directly in the best order the stack allows), once gated on the
engine's health status and once on probes run by the client.

Not a test: the figures go into docs/benchmarks.md with the command used.
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cmdserver_env import composer_env, server_env, wait_until_served

STACK = """\
services:
  db:
    image: bb:latest
    command: ["httpd", "-f", "-p", "5432", "-h", "/"]
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:5432/bin/busybox"]
      interval: 1s
      timeout: 1s
      retries: 30
  cache:
    image: bb:latest
    command: ["httpd", "-f", "-p", "6379", "-h", "/"]
  api:
    image: bb:latest
    command: ["httpd", "-f", "-p", "8000", "-h", "/"]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
    environment:
      DB_URL: http://db:5432
  worker1: &w
    image: bb:latest
    command: ["sh", "-c", "while true; do wget -q -O /dev/null http://api:8000/bin/ ; sleep 5; done"]
    depends_on: [api]
  worker2: *w
  worker3: *w
  worker4: *w
  worker5: *w
  web:
    image: bb:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/"]
    ports: ["18080:80"]
    depends_on: [api]
  migrate:
    image: bb:latest
    command: ["sh", "-c", "echo migrated"]
    depends_on:
      db: {condition: service_healthy}
"""  # noqa: E501  (the issue's stack, verbatim)

STEPS = ("up", "noop", "down")
TARGET_UP = 0.5
TARGET_NOOP = 0.5
TARGET_DOWN = 0.5


def tools(python: str) -> dict[str, list[str]]:
    compose = shutil.which("docker-compose")
    if compose is None:
        sys.exit("docker-compose (1.29.2) is not installed: apt-get install -y docker-compose")
    return {
        "composer": [python, "-m", "composer", "--backend", "docker"],
        "docker-compose": [compose],
    }


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return took


def one_round(base: list[str], project: str, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    cmd = [*base, "-p", project]
    return {
        "up": timed([*cmd, "up", "-d"], cwd, env),
        "noop": timed([*cmd, "up", "-d"], cwd, env),
        "down": timed([*cmd, "down", "-t", "1"], cwd, env),
    }


FLOOR_GATES = ("engine", "client-probe")


def floor_runner() -> Callable[[int], dict[str, float]]:
    """A round of the engine floor's ``up -d`` per health gate (the SDK imported once)."""
    import docker

    from benchmarks import engine_floor

    api = docker.APIClient(version="auto")

    def run(i: int) -> dict[str, float]:
        gates = FLOOR_GATES if i % 2 == 0 else FLOOR_GATES[::-1]
        out = {}
        for gate in gates:
            project = f"benchfloor{gate.replace('-', '')}"
            out[gate] = engine_floor.timed(engine_floor.up, api, project, STACK, 18080, gate)
            engine_floor.down(api, project)
        return out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="interpreter for composer")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the engine's own floor for up -d and down (engine_floor.py)",
    )
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="every composer command in a process of its own (COMPOSER_SERVER=0)",
    )
    args = parser.parse_args()

    env = composer_env(Path(__file__).resolve().parents[1])
    commands = tools(args.python)
    samples: dict[str, dict[str, list[float]]] = {
        name: {step: [] for step in STEPS} for name in commands
    }
    floor: dict[str, list[float]] = {gate: [] for gate in FLOOR_GATES}
    floor_round = floor_runner() if args.floor else None
    with (
        tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp,
        server_env(env, args.python, enabled=not args.no_server) as env,
    ):
        cwd = Path(tmp)
        (cwd / "docker-compose.yml").write_text(STACK)
        names = list(commands)
        for name in names:  # warm-up: caches, the image, the first network
            one_round(commands[name], f"bench{name.replace('-', '')}", cwd, env)
        if floor_round is not None:
            floor_round(0)  # warm-up
        wait_until_served([*commands["composer"], "config", "-q"], cwd, env)
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                figures = one_round(commands[name], f"bench{name.replace('-', '')}", cwd, env)
                for step, value in figures.items():
                    samples[name][step].append(value)
                print(
                    f"round {i + 1} {name}: "
                    + ", ".join(f"{k} {v:.3f}s" for k, v in figures.items())
                )
            if floor_round is not None:
                for gate, took in floor_round(i).items():
                    floor[gate].append(took)
                    print(f"round {i + 1} engine floor ({gate} health): up {took:.3f}s")

    med = {n: {s: statistics.median(v) for s, v in steps.items()} for n, steps in samples.items()}
    print()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("composer " + ("in a process of its own" if args.no_server else "through its server"))
    print("| step | composer | docker-compose | ratio |")
    print("|---|---:|---:|---:|")
    labels = {"up": "`up -d`", "noop": "`up -d`, nothing changed", "down": "`down -t 1`"}
    for step in STEPS:
        mine, theirs = med["composer"][step], med["docker-compose"][step]
        print(f"| {labels[step]} | {mine:.3f} s | {theirs:.3f} s | {mine / theirs:.2f} |")
    print()
    up_ratio = med["composer"]["up"] / med["docker-compose"]["up"]
    down_ratio = med["composer"]["down"] / med["docker-compose"]["down"]
    noop = med["composer"]["noop"]
    verdict = "met" if up_ratio <= TARGET_UP else "missed"
    print(f"up -d <= 50% of docker-compose: {up_ratio:.0%} {verdict}")
    print(f"no-op up -d < 0.5 s: {noop:.3f} s {'met' if noop < TARGET_NOOP else 'missed'}")
    print(f"down <= 50%: {down_ratio:.0%} {'met' if down_ratio <= TARGET_DOWN else 'missed'}")
    if args.floor:
        print()
        print("| engine floor (API driven directly) | `up -d` | ratio to docker-compose |")
        print("|---|---:|---:|")
        for gate in FLOOR_GATES:
            took = statistics.median(floor[gate])
            ratio = took / med["docker-compose"]["up"]
            print(f"| health gate: {gate} | {took:.3f} s | {ratio:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        dump = {"samples": samples, "medians": med, "floor": floor if args.floor else None}
        args.json.write_text(json.dumps(dump, indent=2) + "\n")


if __name__ == "__main__":
    main()
