"""Tests against samples/pytest-demo/compose.yaml through the composer pytest plugin.

Run them with ``pytest samples/pytest-demo`` (add ``-n 2`` for two xdist
workers, each with its own stack; ``--composer-xdist=shared`` for one stack
for the whole session).
"""

from __future__ import annotations

import urllib.request

from composer.pytest_plugin import Stack, composer_stack

demo = composer_stack(files=["compose.yaml"], scope="session")


def test_web_serves_what_the_seed_job_wrote(demo: Stack) -> None:
    with urllib.request.urlopen(demo.url("web", 8080, "/index.html"), timeout=5) as response:
        assert response.read().decode().strip() == "hello from composer"


def test_host_port_is_ephemeral_not_the_files(demo: Stack) -> None:
    assert demo.host_port("web", 8080) != 8080


def test_exec_in_the_web_container(demo: Stack) -> None:
    result = demo.exec("web", "cat /www/index.html")
    assert result.exit_code == 0
    assert "hello from composer" in result.stdout


def test_seed_job_logged(demo: Stack) -> None:
    assert "seeded" in demo.logs("seed")


def test_wait_ready_passes_for_a_ready_service(demo: Stack) -> None:
    demo.wait_ready("web")
