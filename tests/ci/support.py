"""Shared by the CI-stack tests: the CLI against dockerd in a project directory of its own.

Every test gets a unique project name; cleanup removes whatever carries a
project label starting with that name (isolated runs add a suffix), so a
failing test leaves nothing behind. A missing engine skips locally and
fails in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # imported here, before pytester snapshots sys.modules (see below)
import pytest

TEST_IMAGE = "bb:latest"
PROJECT_LABEL = "com.docker.compose.project"

EXIT_CODE_STACK = """\
services:
  app:
    image: bb:latest
    init: true
    command: ["sleep", "60"]
    stop_grace_period: 5s
  tests:
    image: bb:latest
    command: ["sh", "-c", "sleep 2; echo tests-ran; exit 7"]
  flaky:
    image: bb:latest
    command: ["sh", "-c", "sleep 1; exit 3"]
  done:
    image: bb:latest
    command: ["true"]
"""
"""The stack of the exit-code matrix (``--exit-code-from``, the abort flags), on both backends."""


def engine_missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires every engine)")
    pytest.skip(reason)


def docker_api() -> Any:
    """The Engine API client, with ``bb:latest`` present (else skip, or fail in CI).

    The SDK is imported at module level: pytester restores ``sys.modules``
    after each test, and an SDK imported inside one would come back as a
    second copy of ``requests`` whose cookie jars the first copy rejects.
    """
    try:
        client = docker.APIClient(version="auto")
        client.ping()
    except Exception as exc:  # any failure to reach the daemon
        engine_missing(f"no Docker engine: {exc}")
    if not client.images(name=TEST_IMAGE):
        engine_missing(f"{TEST_IMAGE} is missing: run `bash scripts/engines.sh start`")
    return client


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    env.update({"COMPOSE_ANSI": "never", "COMPOSE_PROGRESS": "plain", "COMPOSER_BACKEND": "docker"})
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class CiStack:
    """One project directory and (base) project name on the engine."""

    api: Any
    root: Path
    name: str

    def write(self, text: str, file: str = "compose.yaml") -> None:
        (self.root / file).write_text(textwrap.dedent(text))

    def cli(self, *args: str, project: bool = True, timeout: float = 120, **env: str) -> Run:
        named = ["-p", self.name] if project else []
        proc = subprocess.run(
            [sys.executable, "-m", "composer", *named, *args],
            cwd=self.root,
            env=environ(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def projects(self) -> set[str]:
        """Every project on the engine whose name starts with this stack's name."""
        found: set[str] = set()
        for c in self.api.containers(all=True, filters={"label": [PROJECT_LABEL]}):
            project = (c.get("Labels") or {}).get(PROJECT_LABEL, "")
            if project.startswith(self.name):
                found.add(project)
        return found

    def containers(self, project: str | None = None) -> dict[str, str]:
        """Container name -> state of every container of ``project`` (default: this name)."""
        flt = {"label": [f"{PROJECT_LABEL}={project or self.name}"]}
        return {
            c["Names"][0].lstrip("/"): c["State"]
            for c in self.api.containers(all=True, filters=flt)
        }

    def resources(self, project: str) -> tuple[list[str], list[str], list[str]]:
        """(containers, networks, volumes) labelled with ``project``."""
        flt = {"label": [f"{PROJECT_LABEL}={project}"]}
        return (
            sorted(c["Names"][0] for c in self.api.containers(all=True, filters=flt)),
            sorted(n["Name"] for n in self.api.networks(filters=flt)),
            sorted(v["Name"] for v in (self.api.volumes(filters=flt) or {}).get("Volumes") or []),
        )

    def cleanup(self) -> None:
        api = self.api
        for c in api.containers(all=True, filters={"label": [PROJECT_LABEL]}):
            if (c.get("Labels") or {}).get(PROJECT_LABEL, "").startswith(self.name):
                with contextlib.suppress(Exception):
                    api.remove_container(c["Id"], force=True, v=True)
        for n in api.networks(filters={"label": [PROJECT_LABEL]}):
            if (n.get("Labels") or {}).get(PROJECT_LABEL, "").startswith(self.name):
                with contextlib.suppress(Exception):
                    api.remove_network(n["Id"])
        volumes = (api.volumes(filters={"label": [PROJECT_LABEL]}) or {}).get("Volumes") or []
        for v in volumes:
            if (v.get("Labels") or {}).get(PROJECT_LABEL, "").startswith(self.name):
                with contextlib.suppress(Exception):
                    api.remove_volume(v["Name"])


@contextlib.contextmanager
def ci_stack(tmp_path: Path, prefix: str = "ci") -> Iterator[CiStack]:
    api = docker_api()
    stack = CiStack(api, tmp_path, f"{prefix}{uuid.uuid4().hex[:10]}")
    try:
        yield stack
    finally:
        stack.cleanup()
        api.close()
