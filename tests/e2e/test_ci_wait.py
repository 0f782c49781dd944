"""``up --wait`` for CI against dockerd: the failure report, exit codes, host-side
readiness probes and one-shot services (docker/compose#10596, #9122)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.support import CiStack, ci_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CiStack]:
    with ci_stack(tmp_path, "wt") as s:
        yield s


def test_unhealthy_service_reports_health_results_and_log_tail(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          db:
            image: bb:latest
            init: true
            command: ["sh", "-c", "for i in 1 2 3 4 5 6 7; do echo line-$$i; done; sleep 60"]
            healthcheck:
              test: ["CMD", "sh", "-c", "echo probe-said-no; exit 1"]
              interval: 1s
              timeout: 1s
              retries: 2
          web:
            image: bb:latest
            init: true
            command: ["sleep", "60"]
        """
    )
    run = stack.cli("up", "--wait", "--wait-log-lines", "3")
    assert run.code == 3, run.err
    assert (
        f"service 'db' ({stack.name}-db-1) is not ready: container {stack.name}-db-1 is unhealthy"
        in run.err
    )
    assert "last healthcheck results:" in run.err
    assert "exit 1: probe-said-no" in run.err
    assert f"last 3 log lines of {stack.name}-db-1:" in run.err
    assert "| line-7" in run.err
    assert "| line-4" not in run.err
    assert "'web'" not in run.err


def test_wait_timeout_has_its_own_exit_code(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          slow:
            image: bb:latest
            init: true
            command: ["sleep", "60"]
            healthcheck:
              test: ["CMD", "true"]
              interval: 1m
              start_period: 1m
        """
    )
    run = stack.cli("up", "--wait", "--wait-timeout", "2")
    assert run.code == 124, run.err
    assert "timed out waiting for" in run.err
    assert "raise --wait-timeout" in run.err


def test_tcp_probe_serves_wait_and_service_healthy_without_a_healthcheck(
    stack: CiStack,
) -> None:
    stack.write(
        """\
        services:
          db:
            image: bb:latest
            init: true
            command: ["sh", "-c", "sleep 2; exec httpd -f -p 7000 -h /"]
            ports: ["7000"]
            x-composer:
              ready:
                tcp: 7000
                interval: 200ms
          api:
            image: bb:latest
            init: true
            command:
              - sh
              - -c
              - wget -q -O /dev/null http://db:7000/bin/busybox && echo db-was-up && sleep 60
            depends_on:
              db: {condition: service_healthy}
        """
    )
    run = stack.cli("up", "--wait")
    assert run.code == 0, run.err
    logs = stack.cli("logs", "api")
    assert "db-was-up" in logs.out, logs.out + logs.err


def test_http_probe_status(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          web:
            image: bb:latest
            init: true
            command: ["httpd", "-f", "-p", "8080", "-h", "/"]
            ports: ["8080"]
            x-composer:
              ready:
                http: {port: 8080, path: /no-such-page, status: 200}
                timeout: 2s
        """
    )
    run = stack.cli("up", "--wait")
    assert run.code == 3, run.err
    assert "readiness probe http:8080/no-such-page still failing" in run.err
    assert "last readiness probe results:" in run.err
    assert ": 404" in run.err


def test_log_probe(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          worker:
            image: bb:latest
            init: true
            command: ["sh", "-c", "sleep 1; echo 'worker: ready to accept jobs'; sleep 60"]
            x-composer:
              ready:
                log: "ready to accept"
        """
    )
    assert stack.cli("up", "--wait").code == 0
    state = stack.containers()
    assert state == {f"{stack.name}-worker-1": "running"}


def test_one_shot_dependency_completes_under_wait(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          migrate:
            image: bb:latest
            command: ["sh", "-c", "echo migrated"]
          api:
            image: bb:latest
            init: true
            command: ["sleep", "60"]
            depends_on:
              migrate: {condition: service_completed_successfully}
        """
    )
    run = stack.cli("up", "--wait")
    assert run.code == 0, run.err
    assert stack.containers() == {
        f"{stack.name}-migrate-1": "exited",
        f"{stack.name}-api-1": "running",
    }


def test_failing_one_shot_fails_the_wait(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          migrate:
            image: bb:latest
            command: ["sh", "-c", "echo schema-broken; exit 4"]
          api:
            image: bb:latest
            init: true
            command: ["sleep", "60"]
            depends_on:
              migrate: {condition: service_completed_successfully}
        """
    )
    run = stack.cli("up", "--wait")
    assert run.code != 0
    assert "migrate" in run.err
    assert "exit 4" in run.err


def test_one_shot_nobody_depends_on_counts_as_done_when_it_exits_0(stack: CiStack) -> None:
    stack.write(
        """\
        services:
          seed:
            image: bb:latest
            command: ["sh", "-c", "echo seeded"]
          broken:
            image: bb:latest
            command: ["sh", "-c", "exit 2"]
            profiles: [broken]
          web:
            image: bb:latest
            init: true
            command: ["sleep", "60"]
        """
    )
    run = stack.cli("up", "--wait")
    assert run.code == 0, run.err
    failed = stack.cli("--profile", "broken", "up", "--wait")
    assert failed.code == 3
    assert f"container {stack.name}-broken-1 exited (2)" in failed.err
