"""Healthchecks: Docker's status rules as pure functions, and the probe schedule.

Docker's rules (``daemon/health.go``): a probe that exits 0 makes the
container ``healthy`` and clears the failing streak; any other result
(non-zero exit, or the timeout, recorded as exit ``-1``) adds to the
streak, and ``retries`` failures in a row make it ``unhealthy``; failures
inside the start period do not count while the status is still
``starting``. During the start period probes run every
``start_interval``, afterwards every ``interval``. The last five results
are kept, output cut to 4 KiB.

One deliberate difference (docs/native-backend.md): Docker runs the first
probe only after ``interval`` (``start_interval`` with a start period), so
a service that is ready in 50 ms still holds its ``service_healthy``
dependents back for the whole interval. Here the time before that first
regular probe is an *early window*: extra probes run on a short backoff
(``EARLY_FIRST`` after the start, then each one after as long again as has
passed since the start, so 50, 100, 200, 400 ms …, the last one landing
on the first regular probe's time). They follow Docker's start-period
rule: a success makes the container healthy at once, a failure does not
count while the status is still ``starting``. From the first regular probe
on, the schedule and the counting are Docker's.

Probes run inside the container (``runtime.exec_in``) on a thread of
their own, so a slow probe never delays another container's.
"""

from __future__ import annotations

from dataclasses import replace

from composer.backends.native.supervisor.records import (
    HEALTH_LOG_SIZE,
    HealthcheckRecord,
    HealthState,
    ProbeResult,
)

MAX_OUTPUT = 4096
TIMEOUT_EXIT = -1
EARLY_FIRST = 0.05
"""Seconds from the start to the first early probe (the backoff then doubles)."""


def probe_args(check: HealthcheckRecord) -> tuple[str, ...]:
    """The probe command: ``CMD`` arguments as given, ``CMD-SHELL`` through ``/bin/sh -c``."""
    kind, *rest = check.test
    if kind == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(rest))
    if kind == "CMD":
        return tuple(rest)
    # A bare list is an exec-form command (as the Compose file may give it).
    return tuple(check.test)


def probe_interval(check: HealthcheckRecord, started_at: float, now: float) -> float:
    """Docker's seconds to the next probe: ``start_interval`` in the start period, else
    ``interval``."""
    if check.start_period > 0 and now < started_at + check.start_period:
        return check.start_interval
    return check.interval


def early_window_end(check: HealthcheckRecord, started_at: float) -> float:
    """When Docker would run the first probe: the end of the early window."""
    return started_at + probe_interval(check, started_at, started_at)


def next_probe_delay(check: HealthcheckRecord, started_at: float, now: float, status: str) -> float:
    """Seconds to the next probe: on the early backoff while ``starting`` inside the early
    window (the last step ends exactly at the window's end), else Docker's interval."""
    end = early_window_end(check, started_at)
    if status == "starting" and started_at <= now < end:
        return min(max(EARLY_FIRST, now - started_at), end - now)
    return probe_interval(check, started_at, now)


def apply_probe(
    state: HealthState, result: ProbeResult, check: HealthcheckRecord, started_at: float
) -> HealthState:
    """The health after ``result``, by Docker's rules (see the module notes); the early
    window counts as start period."""
    result = replace(result, output=result.output[:MAX_OUTPUT])
    log = (*state.log, result)[-HEALTH_LOG_SIZE:]
    if result.exit_code == 0:
        return HealthState("healthy", 0, log)
    grace_end = max(started_at + check.start_period, early_window_end(check, started_at))
    in_start_period = result.start < grace_end
    if state.status == "starting" and in_start_period:
        return HealthState(state.status, state.failing_streak, log)
    streak = state.failing_streak + 1
    status = "unhealthy" if streak >= check.retries else state.status
    return HealthState(status, streak, log)


def timeout_result(start: float, end: float, timeout: float) -> ProbeResult:
    return ProbeResult(start, end, TIMEOUT_EXIT, f"Health check exceeded timeout ({timeout:g}s)")
