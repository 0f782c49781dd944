"""Stop on the real engines when PID 1 cannot receive the stop signal.

A ``sleep`` as PID 1 (no init) has no SIGTERM handler, so the kernel drops
the signal; both engines then kill at once instead of waiting out the grace
period. The grace period here is far longer than the test's own timeout, so
a stop that waited would fail the test.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.backends.conftest import Harness


@pytest.mark.timeout(60)
def test_a_pid_1_without_a_handler_is_killed_without_waiting(harness: Harness) -> None:
    if harness.kind == "fake":
        pytest.skip("the in-memory backend has no processes")
    b = harness.backend
    spec = replace(harness.specs.container(), init=False, command=("sleep", "600"))
    cid = b.create_container(spec)
    b.start_container(cid)
    b.stop_container(cid, timeout=300)
    status = b.inspect_container(cid)
    assert (status.state, status.exit_code) == ("exited", 137)


@pytest.mark.timeout(60)
def test_a_pid_1_that_traps_the_signal_stops_gracefully(harness: Harness) -> None:
    if harness.kind == "fake":
        pytest.skip("the in-memory backend has no processes")
    b = harness.backend
    script = "trap 'exit 7' TERM; while true; do sleep 0.1; done"
    spec = replace(harness.specs.container(), init=False, command=("sh", "-c", script))
    cid = b.create_container(spec)
    b.start_container(cid)
    harness.wait_for(lambda: b.inspect_container(cid).state == "running")
    time.sleep(0.5)  # let the shell install its trap
    b.stop_container(cid, timeout=300)
    status = b.inspect_container(cid)
    assert (status.state, status.exit_code) == ("exited", 7)
