"""Time ``composer config`` against Debian's ``docker-compose`` 1.29.2 ``config``.

Generates compose files of 20, 200 and 2000 services (environment with
interpolation, ports, healthchecks, labels, a dependency chain with fan-in),
then times whole processes of both tools on each, alternating the two in one
run so that machine noise hits both alike. Also times ``composer --version``
and ``composer --help``. Prints medians, ratios and whether each target is met.

    apt-get install -y docker-compose      # 1.29.2 on Debian 12; needs no daemon for config
    .venv/bin/python benchmarks/config_bench.py --reps 7

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cmdserver_env import server_env, wait_until_served

SIZES = (20, 200, 2000)
TARGET_RATIO_200 = 0.25  # composer <= 25% of docker-compose's time at 200 services
TARGET_SCALING = 12.0  # 2000 services <= 12x the 200-service time
TARGET_STARTUP = 0.150  # --help / --version under 150 ms


def compose_text(count: int) -> str:
    """A compose file of ``count`` services that both tools accept."""
    lines = ["services:"]
    for i in range(count):
        name = f"svc{i:04d}"
        lines += [
            f"  {name}:",
            f"    image: registry.example.com/team/app{i % 7}:${{TAG:-1.{i % 5}}}",
            "    environment:",
            f"      SERVICE_NAME: {name}",
            "      LOG_LEVEL: ${LOG_LEVEL:-info}",
            f"      PORT: '{8000 + i}'",
            f"      UPSTREAM: http://svc{max(i - 1, 0):04d}:8000",
            "      FEATURE_FLAGS: a,b,c",
            "    ports:",
            f'      - "{20000 + i}:8000"',
            "    healthcheck:",
            '      test: ["CMD", "wget", "-q", "-O", "-", "http://localhost:8000/health"]',
            "      interval: 10s",
            "      timeout: 3s",
            "      retries: 5",
            "      start_period: 5s",
            "    labels:",
            f"      com.example.service: {name}",
            f"      com.example.tier: tier{i % 3}",
            "      com.example.owner: platform",
        ]
        deps = _dependencies(i)
        if deps:
            lines.append("    depends_on:")
            for dep in deps:
                lines += [f"      svc{dep:04d}:", "        condition: service_started"]
    return "\n".join(lines) + "\n"


def _dependencies(i: int) -> list[int]:
    """A chain (each service needs the one before) with fan-in every tenth service."""
    if i == 0:
        return []
    deps = {i - 1}
    if i % 10 == 0:
        deps.update(range(max(0, i - 10), i - 1, 2))
    return sorted(deps)


Sample = tuple[float, float]  # (wall seconds, CPU seconds: user + sys)


def time_process(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Wall and CPU time of one whole process; fails loudly if it does not succeed.

    CPU time is reported beside wall time because it hardly moves when other
    work shares the machine, while wall time does.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def default_composer() -> list[str]:
    script = Path(sys.executable).parent / "composer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "composer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--docker-compose", default=shutil.which("docker-compose") or "")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="every composer command in a process of its own (COMPOSER_SERVER=0)",
    )
    args = parser.parse_args()
    composer = default_composer()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    results: dict[str, dict[str, list[Sample]]] = {}
    python = str(Path(sys.executable))
    with (
        tempfile.TemporaryDirectory(prefix="composer-bench-") as tmp,
        server_env(env, python, enabled=not args.no_server) as env,
    ):
        _measure(args, composer, env, Path(tmp), results)
    report(results, args, composer)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


def _measure(
    args: argparse.Namespace,
    composer: list[str],
    env: dict[str, str],
    tmp: Path,
    results: dict[str, dict[str, list[Sample]]],
) -> None:
    for size in args.sizes:
        folder = tmp / f"s{size}"
        folder.mkdir()
        (folder / "compose.yaml").write_text(compose_text(size))
        runs: dict[str, list[Sample]] = {"composer": [], "docker-compose": []}
        commands = {"composer": [*composer, "-p", "bench", "config"]}
        if args.docker_compose:
            commands["docker-compose"] = [args.docker_compose, "-p", "bench", "config"]
        for argv in commands.values():  # warm-up: page cache, .pyc files
            time_process(argv, folder, env)
        wait_until_served(commands["composer"], folder, env)
        for rep in range(args.reps):
            order = list(commands.items())
            if rep % 2:
                order.reverse()
            for name, argv in order:
                runs[name].append(time_process(argv, folder, env))
        results[f"config-{size}"] = runs
    for flag in ("--version", "--help"):
        samples = [time_process([*composer, flag], tmp, env) for _ in range(args.reps)]
        results[f"composer {flag}"] = {"composer": samples}


def _median(values: list[Sample], index: int) -> float:
    return statistics.median(v[index] for v in values) if values else float("nan")


def report(
    results: dict[str, dict[str, list[Sample]]], args: argparse.Namespace, composer: list[str]
) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"load average before the report: {os.getloadavg()[0]:.2f}")
    print(f"composer: {' '.join(composer)}; docker-compose: {args.docker_compose or '(not found)'}")
    print(f"repetitions: {args.reps}; medians in seconds per whole process")
    if args.no_server:
        print("every composer command in a process of its own (COMPOSER_SERVER=0)\n")
    else:
        print("composer through its warm command server; its CPU time is the client's only\n")
    header = f"{'case':<20}{'composer':>10}{'docker-compose':>16}{'ratio':>7}"
    print(f"{'':<20}{'wall time':^33}   {'CPU time (user+sys)':^33}")
    print(f"{header}   {header[20:]}")
    wall: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for case, runs in results.items():
        cells = []
        for index in (0, 1):
            ours = _median(runs["composer"], index)
            theirs = runs.get("docker-compose") or []
            if index == 0:
                wall[case] = ours
            if theirs:
                ratio = ours / _median(theirs, index)
                if index == 0:
                    ratios[case] = ratio
                cells.append(f"{ours:>10.3f}{_median(theirs, index):>16.3f}{ratio:>7.2f}")
            else:
                cells.append(f"{ours:>10.3f}{'-':>16}{'-':>7}")
        print(f"{case:<20}{cells[0]}   {cells[1]}")
    print()
    if "config-200" in ratios:
        verdict = "met" if ratios["config-200"] <= TARGET_RATIO_200 else "MISSED"
        print(f"target 200 services <= {TARGET_RATIO_200:.0%} of docker-compose:", end=" ")
        print(f"{ratios['config-200']:.0%} {verdict}")
    if "config-200" in wall and "config-2000" in wall:
        scaling = wall["config-2000"] / wall["config-200"]
        verdict = "met" if scaling <= TARGET_SCALING else "MISSED"
        print(f"target 2000 services <= {TARGET_SCALING:.0f}x 200 services:", end=" ")
        print(f"{scaling:.1f}x {verdict}")
    for flag in ("--version", "--help"):
        key = f"composer {flag}"
        if key in wall:
            verdict = "met" if wall[key] < TARGET_STARTUP else "MISSED"
            limit = f"{TARGET_STARTUP * 1000:.0f} ms"
            print(f"target composer {flag} < {limit}: {wall[key] * 1000:.0f} ms {verdict}")


if __name__ == "__main__":
    main()
