"""The pytest plugin on the native backend (pytester): the fixture, isolation of two
xdist workers on one file with a fixed host port, teardown after a failed set-up,
logs on a failing test, and the reaper after ``kill -9`` of pytest. Each test has
its own state root with ``bb:latest`` loaded from ``docker save``; the native
engine's supervisor owns the containers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ci.support import engine_missing

pytest_plugins = ["pytester"]

COMPOSE = """\
services:
  seed:
    image: bb:latest
    command: ["sh", "-c", "echo hello > /www/index.html && echo seeded"]
    volumes: ["www:/www"]
  web:
    image: bb:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: ["{port}:8080"]
    volumes: ["www:/www"]
    depends_on:
      seed: {{condition: service_completed_successfully}}
    x-composer:
      ready:
        http: {{port: 8080, path: /index.html}}
volumes:
  www: {{}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def root(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A state root with bb:latest, the backend chosen through the environment."""
    from composer.backends.factory import native_unavailable

    reason = native_unavailable()
    if reason is not None:
        engine_missing(f"native backend: {reason}")
    if shutil.which("docker") is None:
        engine_missing("the docker CLI is needed to save bb:latest")
    scratch = tmp_path_factory.mktemp("native")
    archive = scratch / "bb.tar"
    saved = subprocess.run(["docker", "save", "-o", str(archive), "bb:latest"], check=False)
    if saved.returncode != 0:
        engine_missing("docker save bb:latest failed")
    state = scratch / "state"
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    load(NativeBackend({"COMPOSER_ROOT": str(state)}).images, archive)
    monkeypatch.setenv("COMPOSER_BACKEND", "native")
    monkeypatch.setenv("COMPOSER_ROOT", str(state))
    (pytester.path / "compose.yaml").write_text(COMPOSE.format(port=_free_port()))
    return state


def _containers(state: Path) -> list[Path]:
    return list((state / "containers").glob("*/record.json"))


def test_fixture_and_xdist_isolation(pytester: pytest.Pytester, root: Path) -> None:
    names = pytester.path / "names"
    names.mkdir()
    pytester.makepyfile(
        f"""
        import os, pathlib, urllib.request
        import pytest
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"])

        @pytest.mark.parametrize("i", range(4))
        def test_each(web, i):
            pathlib.Path({str(names)!r}, os.environ["PYTEST_XDIST_WORKER"]).write_text(web.name)
            with urllib.request.urlopen(web.url("web", 8080, "/index.html"), timeout=5) as r:
                assert r.read() == b"hello\\n"
            assert web.exec("web", "cat /www/index.html").stdout == "hello\\n"
            assert web.logs("seed") == "seeded\\n"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
    assert len({p.read_text() for p in names.iterdir()}) == 2
    assert _containers(root) == []


def test_reaper_after_kill_9_of_pytest(pytester: pytest.Pytester, root: Path) -> None:
    ready = pytester.path / "ready"
    pytester.makepyfile(
        f"""
        import pathlib, time
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"])

        def test_hangs(web):
            pathlib.Path({str(ready)!r}).write_text(web.name)
            time.sleep(300)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ready.exists(), "the test never started"
        assert _containers(root)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while _containers(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _containers(root) == []


def test_teardown_after_a_failed_setup(pytester: pytest.Pytester, root: Path) -> None:
    compose = pytester.path / "compose.yaml"
    compose.write_text(
        compose.read_text().replace(
            "volumes:\n  www:",
            "  broken:\n"
            "    image: bb:latest\n"
            '    command: ["sh", "-c", "echo broken-says-why; sleep 60"]\n'
            "    x-composer:\n"
            "      ready:\n"
            "        log: never-printed\n"
            "        timeout: 1s\n"
            "volumes:\n  www:",
        )
    )
    pytester.makepyfile(
        """
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"])

        def test_never_runs(web):
            raise AssertionError("set-up should have failed")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*broken-says-why*"])
    assert _containers(root) == []


def test_logs_attached_to_a_failing_test(pytester: pytest.Pytester, root: Path) -> None:
    pytester.makepyfile(
        """
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"])

        def test_passes(web):
            pass

        def test_fails(web):
            assert web.exec("web", "true").exit_code == 1
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--composer-logs-dir=logs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*composer logs: * seed*", "seeded"])
    assert (pytester.path / "logs" / "seed.log").read_text() == "seeded\n"
    assert _containers(root) == []
