"""Time a Dockerfile build: composer's native builder against ``docker build``.

One multi-step Dockerfile (three RUN and two COPY steps on the local base
image ``bb:latest``, a busybox-static rootfs) is built by

* ``composer --backend native build`` (the native builder, no daemon), with a
  private state root that holds ``bb:latest`` loaded from ``docker save``;
* ``docker build`` on Debian's dockerd (the classic builder of Engine 20.10);

alternating which tool goes first in each round, three ways:

* cold: every step runs (``--no-cache`` for both);
* warm: one source file changed since the last build (its content, so that
  both tools must rerun the steps from that COPY on);
* touch: one source file touched (new mtime, same content: every step is
  a cache hit for both).

Prints medians, the load average and the issue's targets: cold no slower
than docker, warm at most 30% of docker's warm time.

composer's modules are byte-compiled first (``compileall``, and
``PYTHONDONTWRITEBYTECODE`` is dropped for composer), as an installed
package is, so that an environment with ``PYTHONDONTWRITEBYTECODE=1`` does
not time the compiler on every run; ``--no-compile`` leaves that out.
composer goes through its warm command server (a private one, waited for
after a warm-up build) unless ``--no-server`` is given
(``COMPOSER_SERVER=0``: every command in a process of its own). The
code measured is a copy of HEAD's ``composer/`` (``--live-tree``: the
checkout as it is while the benchmark runs).

    bash scripts/engines.sh start            # dockerd and bb:latest
    .venv/bin/python benchmarks/build_bench.py --rounds 5
    .venv/bin/python benchmarks/build_bench.py --rounds 5 --no-server

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cmdserver_env import server_env, wait_until_served

DOCKERFILE = """\
FROM bb:latest
RUN mkdir -p /app/data && for i in $(seq 1 300); do echo "row $i" > /app/data/$i; done
COPY lib/ /app/lib/
RUN cat /app/lib/* | wc -l > /app/lib.count
COPY src/ /app/src/
RUN for f in /app/src/*; do md5sum "$f"; done > /app/sums && wc -l < /app/sums
CMD ["cat", "/app/sums"]
"""

COMPOSE = """\
services:
  app:
    build: .
    image: buildbench-app:latest
"""

TARGET_COLD = 1.0
TARGET_WARM = 0.30


def make_context(root: Path) -> None:
    (root / "lib").mkdir(parents=True)
    (root / "src").mkdir()
    for i in range(60):
        (root / "lib" / f"mod{i}.sh").write_text(f"# library {i}\n" + "echo lib\n" * 50)
    for i in range(20):
        (root / "src" / f"part{i}.sh").write_text(f"# part {i}\n" + "echo src\n" * 20)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "compose.yaml").write_text(COMPOSE)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--composer", default=str(Path(sys.executable).with_name("composer")))
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-compile", action="store_true", help="do not byte-compile composer first"
    )
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="every composer command in a process of its own (COMPOSER_SERVER=0)",
    )
    parser.add_argument(
        "--live-tree",
        action="store_true",
        help="run the checkout's files as they are, not a copy of HEAD's composer/",
    )
    parser.add_argument(
        "--code",
        type=Path,
        help="a directory holding another composer/ to measure (before/after comparisons)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()

    work = Path(tempfile.mkdtemp(prefix="buildbench-"))
    state = work / "state"
    ctx = work / "ctx"
    make_context(ctx)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    if args.code is not None:
        code, args.commit = args.code.resolve(), str(args.code)
        base_env["PYTHONPATH"] = str(code)
        package = code / "composer"
    elif not args.live_tree:
        code, args.commit = snapshot_code(work)
        base_env["PYTHONPATH"] = str(code)
        package = code / "composer"
    else:
        import composer

        package, args.commit = Path(composer.__file__).parent, "the live tree"
    if not args.no_compile:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
        # A module edited since compileall is compiled once, not on every command.
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    python = str(Path(args.composer).with_name("python"))
    try:
        with server_env(
            {**base_env, "COMPOSER_ROOT": str(state)}, python, enabled=not args.no_server
        ) as env:
            results = rounds(args.rounds, args.composer, work, ctx, env)
    finally:
        subprocess.run(["docker", "rmi", "-f", "buildbench-app:latest"], capture_output=True)
        subprocess.run(["docker", "builder", "prune", "-f"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    report(args, results, load_before, served=not args.no_server)


def snapshot_code(work: Path) -> tuple[Path, str]:
    """HEAD's ``composer/`` copied under ``work`` (it goes first on ``PYTHONPATH``).

    Files that others edit in the checkout while the benchmark runs would
    otherwise change the code under measurement between rounds (and make
    the command server restart when it notices).
    """
    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "HEAD", "composer"], capture_output=True, check=True
    ).stdout
    dest = work / "code"
    dest.mkdir()
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest, commit


def rounds(
    count: int, composer: str, work: Path, ctx: Path, env: dict[str, str]
) -> dict[str, list[float]]:
    """Cold, warm and touch builds by both tools, alternating who goes first."""
    archive = work / "bb.tar"
    subprocess.run(["docker", "save", "-o", str(archive), "bb:latest"], check=True)
    subprocess.run(
        [composer, "--backend", "native", "image", "load", "-i", str(archive)],
        check=True,
        env=env,
        capture_output=True,
    )
    composer_build = [composer, "--backend", "native", "build"]
    docker_build = ["docker", "build", "-q", "-t", "buildbench-app:latest", "."]
    cases = ("cold", "warm", "touch")
    results: dict[str, list[float]] = {f"{t}-{c}": [] for c in cases for t in "cd"}
    edit = ctx / "src" / "part7.sh"
    timed(composer_build, ctx, env)  # warm-up: starts the command server, if any
    timed(docker_build, ctx, env)
    wait_until_served([composer, "--backend", "native", "config", "-q"], ctx, env)
    for r in range(count):
        order = ["composer", "docker"] if r % 2 == 0 else ["docker", "composer"]
        for tool in order:
            if tool == "composer":
                results["c-cold"].append(timed([*composer_build, "--no-cache"], ctx, env))
            else:
                cold_cmd = [*docker_build[:2], "--no-cache", *docker_build[2:]]
                results["d-cold"].append(timed(cold_cmd, ctx, env))
        edit.write_text(edit.read_text() + f"echo round {r}\n")
        for tool in order:
            if tool == "composer":
                results["c-warm"].append(timed(composer_build, ctx, env))
            else:
                results["d-warm"].append(timed(docker_build, ctx, env))
        for tool in order:
            os.utime(edit)
            if tool == "composer":
                results["c-touch"].append(timed(composer_build, ctx, env))
            else:
                results["d-touch"].append(timed(docker_build, ctx, env))
    return results


def report(
    args: argparse.Namespace,
    results: dict[str, list[float]],
    load_before: tuple[float, float, float],
    *,
    served: bool,
) -> None:
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in results.items()}
    server = "command server" if served else "COMPOSER_SERVER=0"
    compiled = "no" if args.no_compile else "yes"
    print(f"rounds: {args.rounds}, {server}, byte-compiled: {compiled}, code: {args.commit}")
    print(
        "load average (1, 5, 15 min): before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    targets = {"cold": TARGET_COLD, "warm": TARGET_WARM, "touch": None}
    for name, target in targets.items():
        ratio = med["c-" + name] / med["d-" + name]
        verdict = (
            ""
            if target is None
            else f" (target <= {target:.2f}: {'met' if ratio <= target else 'missed'})"
        )
        print(
            f"{name} build: composer native {med['c-' + name]:.2f} s,"
            f" docker build {med['d-' + name]:.2f} s, ratio {ratio:.2f}{verdict}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"samples": results, "medians": med, "load": [load_before, load_after]}
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
