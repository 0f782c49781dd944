"""Time a pytest session of 20 tests against the reference stack: composer's plugin
against testcontainers-python's ``DockerCompose`` and a plain docker-compose cycle.

The reference stack is issue 4's (``benchmarks/lifecycle_bench.py``: ten
services on ``bb:latest``, ``db`` with a 1 s healthcheck, ``api`` waiting
for it, five workers, ``web`` publishing port 18080, a one-shot
``migrate``). Each session brings the stack up once (session scope), runs
20 tests that each fetch a page from ``web`` through its published port,
and removes the stack with its volumes. Whole ``pytest`` processes are
timed, rounds alternate the order of the contenders.

Contenders:

* ``composer``: ``composer_stack(files=..., scope="session")`` on the Docker
  backend (isolated, reaped, ``up --wait``, purge at the end), and with
  ``--native`` the same on the native backend (its own state root);
* ``testcontainers``: testcontainers-python's ``DockerCompose`` (installed
  into its own virtualenv by ``--testcontainers-venv``). It drives
  ``docker compose`` (the v2 plugin) and ``up --wait``; on a machine with
  only docker-compose 1.x it cannot run, and the benchmark records why;
* ``docker-compose``: what a team does without either: ``docker-compose up
  -d``, polling the page until it answers, ``docker-compose port`` for the
  host port, ``docker-compose down --volumes`` (as testcontainers' stop
  does; the default 10 s stop timeout) — and the same with ``-t 1``.

    bash scripts/engines.sh start
    python3 -m venv /tmp/tc-venv && /tmp/tc-venv/bin/pip install testcontainers pytest
    .venv/bin/python benchmarks/ci_bench.py --rounds 3 --native --testcontainers-venv /tmp/tc-venv

Not a test: the figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = 20

COMPOSER_TESTS = """\
import urllib.request

import pytest

from composer.pytest_plugin import composer_stack

stack = composer_stack(files=["compose.yaml"], scope="session")


@pytest.mark.parametrize("i", range({tests}))
def test_page(stack, i):
    with urllib.request.urlopen(stack.url("web", 80, "/bin/busybox"), timeout=10) as r:
        assert r.status == 200
"""

COMPOSE_CLI_TESTS = """\
import os
import subprocess
import time
import urllib.request

import pytest

TIMEOUT = os.environ.get("BENCH_DOWN_TIMEOUT")


def compose(*args):
    return subprocess.run(
        ["docker-compose", "-p", "cibenchdc", *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def url():
    try:
        compose("up", "-d")
        host, port = compose("port", "web", "80").strip().rsplit(":", 1)
        base = f"http://127.0.0.1:{{port}}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/bin/busybox", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield base
    finally:
        compose("down", "--volumes", *(["-t", TIMEOUT] if TIMEOUT else []))


@pytest.mark.parametrize("i", range({tests}))
def test_page(url, i):
    with urllib.request.urlopen(url + "/bin/busybox", timeout=10) as r:
        assert r.status == 200
"""

TESTCONTAINERS_TESTS = """\
import urllib.request

import pytest
from testcontainers.compose import DockerCompose


@pytest.fixture(scope="session")
def url():
    with DockerCompose(".", compose_file_name="compose.yaml", wait=True) as compose:
        host = compose.get_service_host("web", 80)
        port = compose.get_service_port("web", 80)
        yield f"http://{{host}}:{{port}}"


@pytest.mark.parametrize("i", range({tests}))
def test_page(url, i):
    with urllib.request.urlopen(url + "/bin/busybox", timeout=10) as r:
        assert r.status == 200
"""


def reference_stack() -> str:
    spec = importlib.util.spec_from_file_location(
        "lifecycle_bench", ROOT / "benchmarks" / "lifecycle_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.STACK)


def prepare(base: Path, name: str, tests: str) -> Path:
    where = base / name
    where.mkdir()
    (where / "compose.yaml").write_text(reference_stack())
    (where / f"test_{name.replace('-', '_')}.py").write_text(tests.format(tests=TESTS))
    return where


def session(
    python: str, where: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Wall time, exit code and the output of one pytest session."""
    began = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(where)],
        cwd=where,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    took = time.perf_counter() - began
    return took, proc.returncode, proc.stdout + proc.stderr


def native_root(base: Path) -> str:
    """A native state root with ``bb:latest`` loaded from ``docker save``."""
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    archive = base / "bb.tar"
    subprocess.run(["docker", "save", "-o", str(archive), "bb:latest"], check=True)
    root = base / "native-state"
    load(NativeBackend({"COMPOSER_ROOT": str(root)}).images, archive)
    return str(root)


def leftovers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [n for n in out.split() if n.startswith(("cibench", "composer-ci"))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--testcontainers-venv", default=None, help="virtualenv with testcontainers and pytest"
    )
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument(
        "--native", action="store_true", help="also time the plugin on the native backend"
    )
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="cibench"))
    # composer names the isolated project after the directory: keep it recognisable.
    composer_dir = prepare(base, "composer-ci", COMPOSER_TESTS)
    dc_dir = prepare(base, "cibench-dc", COMPOSE_CLI_TESTS)
    python = sys.executable
    docker_env = {"COMPOSER_BACKEND": "docker"}
    contenders = {
        "composer": lambda: session(python, composer_dir, env=docker_env),
        "docker-compose": lambda: session(python, dc_dir, "-p", "no:composer"),
        "docker-compose -t 1": lambda: session(
            python, dc_dir, "-p", "no:composer", env={"BENCH_DOWN_TIMEOUT": "1"}
        ),
    }
    notes: dict[str, str] = {}
    if args.native:
        native_env = {"COMPOSER_BACKEND": "native", "COMPOSER_ROOT": native_root(base)}
        contenders["composer (native)"] = lambda: session(python, composer_dir, env=native_env)
    if args.testcontainers_venv:
        tc_dir = prepare(base, "cibench-tc", TESTCONTAINERS_TESTS)
        tc_python = str(Path(args.testcontainers_venv) / "bin" / "python")
        took, code, tail = session(tc_python, tc_dir)
        if code != 0:
            failed = [line.strip() for line in tail.splitlines() if "failed with exit code" in line]
            notes["testcontainers"] = (failed[0] if failed else f"session exit {code}") + (
                " (`docker compose`, the v2 plugin, is not installed; docker-compose 1.x has"
                " neither the `compose` sub-command form nor `up --wait`)"
            )
        else:
            contenders["testcontainers"] = lambda: session(tc_python, tc_dir)

    times: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():  # warm-up round, not counted
        run()
    for r in range(args.rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            took, code, tail = contenders[name]()
            if code != 0:
                print(f"{name} failed:\n{tail[-3000:]}", file=sys.stderr)
                return 1
            times[name].append(took)
    shutil.rmtree(base, ignore_errors=True)

    medians = {name: statistics.median(v) for name, v in times.items()}
    print(f"pytest session of {TESTS} tests, median of {args.rounds} rounds:")
    for name, value in medians.items():
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        ratio = medians["composer"] / value
        print(f"  {name:22s} {value:7.2f} s  ({spread} s)  composer/this = {ratio:.2f}")
    for key, text in notes.items():
        print(f"  {key}: {text}")
    left = leftovers()
    if left:
        print(f"  leftover containers: {left}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"rounds": times, "medians": medians, "notes": notes, "leftovers": left}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
