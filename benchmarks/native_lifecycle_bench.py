"""Time the native backend's ``up -d`` and ``down -t 1`` against Compose tools.

The reference stack of ``lifecycle_bench.py`` (imported, not copied: ten
services on ``bb:latest``, ``db`` with a 1 s healthcheck that ``api`` and
``migrate`` wait for, five workers and ``web`` publishing a port) is brought
up with ``up -d`` and taken down with ``down -t 1`` by:

* ``composer --backend native`` (its own state root in a temporary
  directory; ``bb:latest`` loaded there from ``docker save bb:latest`` with
  ``composer --backend native image load -i``);
* ``composer --backend docker`` and Debian's ``docker-compose`` 1.29.2 on the
  running dockerd;
* ``podman-compose`` with Debian's podman (``bb:latest`` given to podman with
  ``docker save bb:latest | podman load``). Podman 4.3 cannot run
  healthchecks without systemd, so podman-compose ignores the
  ``service_healthy`` conditions and does not wait for ``db``: its ``up``
  figure is therefore not the same work as the others'.

Each tool gets a warm-up round, then every round rotates which tool goes
first. Prints medians, the load average at the start and end, and the targets
of the issue: native ``up -d`` at most 25% of docker-compose's wall time,
native ``down`` at most 20%. A tool that cannot run here is left out with the
reason printed.

    bash scripts/engines.sh start                # dockerd and bb:latest
    apt-get install -y docker-compose podman     # Debian 12: 1.29.2, 4.3.1
    python3 -m venv /tmp/pc && /tmp/pc/bin/pip install podman-compose
    .venv/bin/python benchmarks/native_lifecycle_bench.py --rounds 5 \\
        --podman-compose /tmp/pc/bin/podman-compose

composer's own environment variables are not passed on, except
``COMPOSER_SERVER``: with ``COMPOSER_SERVER=0`` every composer command is a
plain process (no warm command server), which is what the figures of the
native backend's own work should be taken with.

Podman needs ``/etc/containers/containers.conf`` with ``[containers]`` /
``default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]`` on machines
whose hard limits are lower than its defaults.

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cmdserver_env import composer_env, server_env, wait_until_served  # noqa: E402
from benchmarks.lifecycle_bench import STACK  # noqa: E402

STEPS = ("up", "down")
TARGET_UP = 0.25
TARGET_DOWN = 0.20
STACK_PORT = "18080:80"


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it, else (and for 0) one the kernel picks.

    The reference port 18080 is often taken on a shared machine (another stack or
    benchmark may take it between rounds), so the default is a port the kernel
    picks; the figures do not depend on the number.
    """
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free TCP port")


def run_ok(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def podman_reason(compose: str | None) -> str | None:
    """Why podman-compose cannot take part here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install -y podman)"
    if compose is None:
        return "podman-compose is not installed (pip install podman-compose)"
    if run_ok(["podman", "image", "exists", "bb:latest"]).returncode != 0:
        load = subprocess.run(
            "docker save bb:latest | podman load", shell=True, capture_output=True, text=True
        )
        if load.returncode != 0:
            return f"docker save bb:latest | podman load failed: {load.stderr.strip()[-300:]}"
    probe = run_ok(["podman", "run", "--rm", "bb:latest", "true"])
    if probe.returncode != 0:
        return f"podman run --rm bb:latest true failed: {probe.stderr.strip()[-300:]}"
    return None


def tools(args: argparse.Namespace, state: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Commands per tool, and the tools left out with their reason."""
    composer = [args.python, "-m", "composer"]
    commands = {
        "native": [*composer, "--backend", "native"],
        "composer-docker": [*composer, "--backend", "docker"],
    }
    skipped: dict[str, str] = {}
    compose = shutil.which("docker-compose")
    if compose is None:
        sys.exit("docker-compose (1.29.2) is not installed: apt-get install -y docker-compose")
    commands["docker-compose"] = [compose]
    pc = args.podman_compose or shutil.which("podman-compose")
    reason = podman_reason(pc)
    if reason is None and pc is not None:
        commands["podman-compose"] = [pc]
    else:
        skipped["podman-compose"] = reason or "not found"
    archive = state.parent / "bb.tar"
    subprocess.run(["docker", "save", "bb:latest", "-o", str(archive)], check=True)
    env = {**os.environ, "COMPOSER_ROOT": str(state)}
    subprocess.run(
        [*commands["native"], "image", "load", "-i", str(archive)],
        check=True,
        env=env,
        capture_output=True,
    )
    return commands, skipped


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took


def one_round(base: list[str], project: str, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    cmd = [*base, "-p", project]
    try:
        up = timed([*cmd, "up", "-d"], cwd, env)
    except SystemExit:  # leave nothing running behind a failed round
        subprocess.run([*cmd, "down", "-t", "0"], cwd=cwd, env=env, capture_output=True)
        raise
    return {"up": up, "down": timed([*cmd, "down", "-t", "1"], cwd, env)}


def loadavg() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="interpreter for composer")
    parser.add_argument("--podman-compose", help="path of podman-compose (default: on PATH)")
    parser.add_argument("--port", type=int, default=0, help="host port of web (default: any free)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    env = composer_env(REPO)
    load_start = loadavg()
    served = env.get("COMPOSER_SERVER") != "0"
    with (
        tempfile.TemporaryDirectory(prefix="native-lifecycle-bench-") as tmp,
        server_env(env, args.python, enabled=served) as env,
    ):
        cwd = Path(tmp) / "stack"
        cwd.mkdir()
        state = Path(tmp) / "state"
        env["COMPOSER_ROOT"] = str(state)
        commands, skipped = tools(args, state)
        port = free_port(args.port)
        (cwd / "docker-compose.yml").write_text(STACK.replace(STACK_PORT, f"{port}:80"))
        samples: dict[str, dict[str, list[float]]] = {
            name: {step: [] for step in STEPS} for name in commands
        }
        names = list(commands)
        project = {n: f"nbench{n.replace('-', '')}" for n in names}
        for name in names:  # warm-up: caches, the image, the first network, podman's storage
            one_round(commands[name], project[name], cwd, env)
        for name in ("native", "composer-docker"):  # every measured round served
            if name in commands:
                wait_until_served([*commands[name], "config", "-q"], cwd, env)
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                figures = one_round(commands[name], project[name], cwd, env)
                for step, value in figures.items():
                    samples[name][step].append(value)
                print(
                    f"round {i + 1} {name}: "
                    + ", ".join(f"{k} {v:.3f}s" for k, v in figures.items()),
                    flush=True,
                )
    load_end = loadavg()

    med = {n: {s: statistics.median(v) for s, v in steps.items()} for n, steps in samples.items()}
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_start:.1f} at the start, {load_end:.1f} at the end; composer "
        + ("through its warm command server" if served else "in processes of their own")
    )
    print("| tool | `up -d` | `down -t 1` | `up -d` vs docker-compose | `down` vs docker-compose |")
    print("|---|---:|---:|---:|---:|")
    ref = med["docker-compose"]
    for name in names:
        m = med[name]
        print(
            f"| {name} | {m['up']:.3f} s | {m['down']:.3f} s | "
            f"{m['up'] / ref['up']:.2f} | {m['down'] / ref['down']:.2f} |"
        )
    for name, reason in skipped.items():
        print(f"| {name} | not run: {reason} | | | |")
    if "podman-compose" in med:
        print("(podman-compose ignores service_healthy with podman 4.3: it does not wait for db)")
    print()
    up_ratio = med["native"]["up"] / ref["up"]
    down_ratio = med["native"]["down"] / ref["down"]
    print(
        f"native up -d <= 25% of docker-compose: {up_ratio:.0%} "
        f"{'met' if up_ratio <= TARGET_UP else 'missed'}"
    )
    print(
        f"native down <= 20% of docker-compose: {down_ratio:.0%} "
        f"{'met' if down_ratio <= TARGET_DOWN else 'missed'}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "samples": samples,
            "medians": med,
            "skipped": skipped,
            "loadavg": [load_start, load_end],
        }
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
