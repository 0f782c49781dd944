"""The pytest plugin tested with pytester against dockerd: the fixture's methods,
isolation under xdist, teardown after a failed set-up, logs on failure, and the
reaper after ``kill -9`` of pytest itself."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from tests.ci.support import CiStack, ci_stack

pytest_plugins = ["pytester"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[CiStack]:
    monkeypatch.setenv("COMPOSER_BACKEND", "docker")
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    with ci_stack(pytester.path, "pg") as s:
        yield s


def _compose(stack: CiStack, port: int | None = None, extra: str = "") -> None:
    """seed fills a volume, web serves it (HTTP probe); ``extra``: more services."""
    published = f"{port}:8080" if port else "8080"
    text = f"""\
name: {stack.name}
services:
  seed:
    image: bb:latest
    command: ["sh", "-c", "echo hello > /www/index.html && echo seeded"]
    volumes: ["www:/www"]
  web:
    image: bb:latest
    command: ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    ports: ["{published}"]
    volumes: ["www:/www"]
    depends_on:
      seed: {{condition: service_completed_successfully}}
    x-composer:
      ready:
        http: {{port: 8080, path: /index.html}}
{textwrap.indent(textwrap.dedent(extra), "  ")}
volumes:
  www: {{}}
"""
    (stack.root / "compose.yaml").write_text(text)


def test_fixture_methods(pytester: pytest.Pytester, stack: CiStack) -> None:
    _compose(stack)
    pytester.makepyfile(
        """
        import urllib.request
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"], scope="module")

        def test_url_and_host_port(web):
            with urllib.request.urlopen(web.url("web", 8080, "/index.html"), timeout=5) as r:
                assert r.read() == b"hello\\n"
            assert web.url("web", 8080).endswith(f":{web.host_port('web', 8080)}/")

        def test_exec(web):
            result = web.exec("web", ["cat", "/www/index.html"])
            assert (result.exit_code, result.stdout) == (0, "hello\\n")
            assert web.exec("web", "exit 5").exit_code == 5

        def test_logs_container_wait_ready(web):
            assert web.logs("seed") == "seeded\\n"
            c = web.container("web")
            assert c.name == f"{web.name}-web-1" and c.state == "running"
            web.wait_ready("web")

        def test_same_stack_for_the_module(web, request):
            assert web.name.startswith(web.project.name)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert stack.projects() == set()


def test_xdist_workers_get_their_own_stacks_on_one_file_with_a_fixed_port(
    pytester: pytest.Pytester, stack: CiStack
) -> None:
    port = _free_port()
    _compose(stack, port)
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
            worker = os.environ["PYTEST_XDIST_WORKER"]
            pathlib.Path({str(names)!r}, worker).write_text(web.name)
            assert web.host_port("web", 8080) != {port}
            with urllib.request.urlopen(web.url("web", 8080, "/index.html"), timeout=5) as r:
                assert r.read() == b"hello\\n"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
    seen = {p.read_text() for p in names.iterdir()}
    assert len(seen) == len(list(names.iterdir())) == 2
    assert stack.projects() == set()


def test_xdist_shared_stack(pytester: pytest.Pytester, stack: CiStack) -> None:
    _compose(stack)
    names = pytester.path / "names"
    names.mkdir()
    pytester.makepyfile(
        f"""
        import os, pathlib
        import pytest
        from composer.pytest_plugin import composer_stack

        web = composer_stack(files=["compose.yaml"])

        @pytest.mark.parametrize("i", range(4))
        def test_each(web, i):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            pathlib.Path({str(names)!r}, worker).write_text(web.name)
            web.wait_ready("web")
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--composer-xdist=shared"
    )
    result.assert_outcomes(passed=4)
    seen = {p.read_text() for p in names.iterdir()}
    assert len(seen) == 1
    assert len(list(names.iterdir())) == 2
    assert stack.projects() == set()


def test_teardown_after_a_failed_setup(pytester: pytest.Pytester, stack: CiStack) -> None:
    _compose(
        stack,
        extra="""\
        broken:
          image: bb:latest
          command: ["sh", "-c", "echo broken-says-why; sleep 60"]
          volumes: ["www:/www"]
          x-composer:
            ready:
              tcp: 9999
              timeout: 1s
        """,
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
    result.stdout.fnmatch_lines(["*port 9999/tcp is not published*"])
    assert stack.projects() == set()
    assert stack.resources(stack.name) == ([], [], [])


def test_logs_attached_to_a_failing_test(pytester: pytest.Pytester, stack: CiStack) -> None:
    _compose(stack)
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
    out = result.stdout.str()
    # only the failing test's report carries the logs
    assert out.count("composer logs: ") == 2
    assert (pytester.path / "logs" / "seed.log").read_text() == "seeded\n"
    assert (pytester.path / "logs" / "web.log").exists()
    assert stack.projects() == set()


def test_reaper_removes_the_stack_after_kill_9_of_pytest(
    pytester: pytest.Pytester, stack: CiStack
) -> None:
    _compose(stack)
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ready.exists(), "the test never started"
        name = ready.read_text()
        assert re.fullmatch(rf"{stack.name}-[0-9a-f]{{8}}", name)
        assert stack.resources(name)[0]
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while stack.resources(name) != ([], [], []) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.resources(name) == ([], [], [])
