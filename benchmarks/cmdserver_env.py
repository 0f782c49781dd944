"""Benchmarks and composer's warm command server (``composer.cmdserver``).

A benchmark measures composer either through its command server (the
default for users: every command after the first one in a context is served
by a warm process) or with every command in a process of its own
(``COMPOSER_SERVER=0``). ``server_env`` gives a benchmark a socket directory
of its own, so that it neither uses nor disturbs a server started elsewhere,
and stops its server at the end; ``wait_until_served`` waits after the
warm-up until the server answers (it binds only once it has imported
everything), so that measured rounds are all served.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SERVED = b"served by the command server"


def composer_env(code: Path) -> dict[str, str]:
    """The environment a benchmark runs composer and its peers in.

    No Compose or composer settings of the caller's (except ``COMPOSER_SERVER``,
    so that ``COMPOSER_SERVER=0`` measures processes of their own), plain
    progress, ``code`` first on the import path, and bytecode cached as an
    installed composer has it (``PYTHONDONTWRITEBYTECODE`` would make every
    process compile again).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    if "COMPOSER_SERVER" in os.environ:
        env["COMPOSER_SERVER"] = os.environ["COMPOSER_SERVER"]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"COMPOSE_PROGRESS": "plain", "COMPOSE_ANSI": "never", "PYTHONPATH": str(code)})
    return env


@contextmanager
def server_env(env: dict[str, str], python: str, *, enabled: bool) -> Iterator[dict[str, str]]:
    """``env`` with a private server directory, or with the server turned off."""
    if not enabled:
        yield {**env, "COMPOSER_SERVER": "0"}
        return
    directory = tempfile.mkdtemp(prefix="bs", dir="/tmp")  # socket paths are short
    try:
        yield {**env, "COMPOSER_SERVER_DIR": directory}
    finally:
        subprocess.run([python, "-m", "composer.cmdserver", "stop", directory], check=False)
        deadline = time.monotonic() + 10
        while list(Path(directory).glob("*.sock")) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(directory, ignore_errors=True)


def wait_until_served(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
    """Run ``argv`` (a cheap composer command) until the server answers it."""
    if "COMPOSER_SERVER_DIR" not in env:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc = subprocess.run(
            argv, cwd=cwd, env={**env, "COMPOSER_DEBUG": "1"}, capture_output=True, check=False
        )
        if SERVED in proc.stderr:
            return
        time.sleep(0.2)
    raise SystemExit("the command server did not start within 60 s")
