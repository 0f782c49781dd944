"""The exit-code matrix of attached ``up`` against dockerd: ``--exit-code-from``,
``--abort-on-container-exit`` and ``--abort-on-container-failure``.

``tests`` is the service whose code CI wants; ``app`` runs until stopped;
``flaky`` fails with 3 after a moment; ``done`` succeeds at once. Docker
Compose returns 0 for ``--exit-code-from app`` when ``app`` was stopped
because another container exited (docker/compose#11712); composer returns
``app``'s real code (143: its process ended on SIGTERM).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci.support import EXIT_CODE_STACK, CiStack, ci_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CiStack]:
    with ci_stack(tmp_path, "ex") as s:
        s.write(EXIT_CODE_STACK)
        yield s


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # the target's own code, whoever ended the session
        (["--exit-code-from", "tests", "app", "tests"], 7),
        (["--exit-code-from", "app", "app", "flaky"], 143),
        # the code of the container that caused the abort
        (["--abort-on-container-exit", "app", "done"], 0),
        (["--abort-on-container-exit", "app", "flaky"], 3),
        # a zero exit does not abort; the first failure does
        (["--abort-on-container-failure", "app", "done", "flaky"], 3),
    ],
)
def test_exit_code_matrix(stack: CiStack, args: list[str], expected: int) -> None:
    run = stack.cli("up", *args)
    assert run.code == expected, run.out + run.err
    assert "Aborting on container exit..." in run.err
    # the session stopped the long-running service
    assert stack.containers()[f"{stack.name}-app-1"] == "exited"


def test_without_abort_flags_up_ends_when_all_have_stopped(stack: CiStack) -> None:
    run = stack.cli("up", "done", "flaky")
    assert run.code == 0, run.err
    assert "flaky-1 exited with code 3" in run.out


@pytest.mark.parametrize(
    "args",
    [
        ["--abort-on-container-exit", "--abort-on-container-failure"],
        ["-d", "--exit-code-from", "tests"],
        ["--wait", "--abort-on-container-exit"],
    ],
)
def test_incompatible_flags(stack: CiStack, args: list[str]) -> None:
    run = stack.cli("up", *args)
    assert run.code == 1
    assert "error:" in run.err
    assert stack.containers() == {}


def test_exit_code_from_unknown_service(stack: CiStack) -> None:
    run = stack.cli("up", "--exit-code-from", "nope")
    assert run.code == 1
    assert "no such service: nope" in run.err
