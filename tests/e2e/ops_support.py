"""Helpers of the end-to-end tests of the inspection and operation verbs.

The stack under test is brought up through the planner (``reconcile`` +
``execute``) rather than ``composer up``, so that these tests exercise the
verbs under test and nothing else; cleanup removes everything carrying the
project's label, one-off containers included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TEST_IMAGE = "bb:latest"


@dataclass
class Run:
    code: int
    out: str
    err: str


def engine_missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires every engine)")
    pytest.skip(reason)


def docker_backend() -> Any:
    """A DockerBackend on the environment's engine, with ``bb:latest`` present."""
    try:
        import docker  # noqa: F401
    except ImportError:
        engine_missing("the docker SDK is not installed")
    from composer.backends.docker import DockerBackend
    from composer.errors import Unavailable

    backend = DockerBackend(os.environ)
    try:
        backend.api  # noqa: B018  (connects)
    except Unavailable as exc:
        engine_missing(f"no Docker engine: {exc}")
    if backend.image_id(TEST_IMAGE) is None:
        engine_missing(f"{TEST_IMAGE} is missing: run `bash scripts/engines.sh start`")
    return backend


def save_test_image(dest: Path) -> Path:
    """``bb:latest`` as a ``docker save`` archive at ``dest``, for a native state root to load.

    The native engine needs root; the image comes from the engine that
    ``scripts/engines.sh`` filled."""
    if os.geteuid() != 0:
        engine_missing("the native engine needs root")
    if shutil.which("docker") is None:
        engine_missing(f"the docker CLI is needed to save {TEST_IMAGE}")
    saved = subprocess.run(
        ["docker", "save", "-o", str(dest), TEST_IMAGE], capture_output=True, check=False
    )
    if saved.returncode != 0:
        engine_missing(f"docker save {TEST_IMAGE}: {saved.stderr.decode().strip()}")
    return dest


def project_name() -> str:
    return f"ops{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_project(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text(textwrap.dedent(text))
    return root


def composer(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Run:
    """``python -m composer ARGS`` in ``cwd``, with a plain, colourless environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    environ.update({"COMPOSE_ANSI": "never", "COMPOSE_PROGRESS": "plain"})
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "composer", "--backend", "docker", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def up(backend: Any, root: Path, name: str) -> None:
    """Bring the project in ``root`` up through the planner, as ``up -d`` would."""
    from composer.app import load_options
    from composer.clock import RealClock
    from composer.events import CollectingReporter
    from composer.options import GlobalOptions, Invocation
    from composer.planner.executor import execute
    from composer.planner.options import UpOptions
    from composer.planner.reconcile import reconcile
    from composer.planner.specs import image_ref
    from composer.schema.loader import load_project

    options = GlobalOptions(project_name=name)
    invocation = Invocation(working_dir=root, environ={}, read_stdin=lambda: "")
    project = load_project(load_options(options, invocation), lambda _: None)
    refs = sorted({image_ref(project, s) for s in project.services})
    plan = reconcile(project, backend.observe(name, refs), UpOptions(), now=time.time())
    execute(
        plan, backend, CollectingReporter(), parallel=None, clock=RealClock()
    ).raise_for_failure()


def remove_project(backend: Any, name: str) -> None:
    """Remove every container, network and volume labelled with the project."""
    api = backend.api
    flt = {"label": [f"com.docker.compose.project={name}"]}
    for c in api.containers(all=True, filters=flt):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True, v=True)
    for n in api.networks(filters=flt):
        with contextlib.suppress(Exception):
            api.remove_network(n["Id"])
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            api.remove_volume(v["Name"])


def wait_until(check: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
