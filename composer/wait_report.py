"""What ``up --wait`` prints when the stack does not become ready.

Docker Compose says only ``container x is unhealthy`` (docker/compose#9122),
and CI logs are all a failed job leaves behind. For each container that
failed or timed out, composer prints the service, the reason, the last
healthcheck results (the engine's, when the backend offers ``HealthLog``;
the host-side probe's for ``x-composer.ready``), and the last log lines.

Exit codes (documented in docs/ci.md):

* ``WAIT_FAILED`` (3): a service exited, became unhealthy, or its probe
  gave up;
* ``WAIT_TIMEOUT`` (124, as timeout(1)): ``--wait-timeout`` ran out first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.errors import BackendError, ExecutionError

if TYPE_CHECKING:
    from composer.backends.base import Backend, ObservedState
    from composer.planner.executor import ExecutionResult, StepOutcome

WAIT_FAILED = 3
WAIT_TIMEOUT = 124
DEFAULT_LOG_LINES = 50


class WaitFailed(ExecutionError):
    """A service did not become ready under ``up --wait``."""

    exit_code = WAIT_FAILED


class WaitTimedOut(WaitFailed):
    """``--wait-timeout`` passed before every service was ready."""

    exit_code = WAIT_TIMEOUT


@dataclass(frozen=True, slots=True)
class Failure:
    """One container that was not ready: which, of what service, why."""

    container: str
    container_id: str | None
    service: str
    reason: str

    @property
    def timed_out(self) -> bool:
        return self.reason.startswith("timed out")


def failures(result: ExecutionResult, observed: ObservedState) -> list[Failure]:
    """The failed wait steps of ``result``, with their services."""
    from composer.planner.plan import AwaitReady

    by_name = {c.name: c for c in observed.containers}
    out: list[Failure] = []
    for o in result.failed:
        payload = o.step.payload
        if not isinstance(payload, AwaitReady):
            out.append(Failure(o.step.resource, None, "", _text(o)))
            continue
        ref = payload.container
        known = by_name.get(ref.name)
        cid = ref.id or (known.id if known else None)
        out.append(Failure(ref.name, cid, known.service if known else "", _text(o)))
    return out


def _text(o: StepOutcome) -> str:
    return o.text or f"{o.step.resource} {o.step.action} failed"


def health_lines(backend: Backend, container_id: str, count: int = 5) -> list[str]:
    """The engine's last healthcheck results, one line each (none without ``HealthLog``)."""
    from composer.backends.optional import HealthLog

    if not isinstance(backend, HealthLog):
        return []
    try:
        entries = backend.health_log(container_id)[-count:]
    except BackendError:
        return []
    out = []
    for e in entries:
        stamp = time.strftime("%H:%M:%S", time.gmtime(e.started)) if e.started else "?"
        text = " ".join(e.output.split())[:300]
        out.append(f"{stamp} exit {e.exit_code}: {text}" if text else f"{stamp} exit {e.exit_code}")
    return out


def log_tail(backend: Backend, container_id: str, count: int) -> list[str]:
    """The container's last ``count`` log lines (none when it cannot be read)."""
    if count <= 0:
        return []
    try:
        return [line.text.rstrip("\n") for line in backend.logs(container_id, tail=count)]
    except (BackendError, NotImplementedError):
        return []


def report(
    backend: Backend,
    result: ExecutionResult,
    observed: ObservedState,
    log_lines: int = DEFAULT_LOG_LINES,
) -> WaitFailed:
    """The error to raise for a failed ``--wait``, its message the full report."""
    found = failures(result, observed)
    probes: Mapping[str, tuple[str, ...]] = result.probes
    blocks: list[str] = []
    for f in found:
        who = f"service {f.service!r} ({f.container})" if f.service else f.container
        lines = [f"{who} is not ready: {f.reason}"]
        if f.container_id is not None:
            health = health_lines(backend, f.container_id)
            if health:
                lines.append("  last healthcheck results:")
                lines.extend(f"    {h}" for h in health)
        if probes.get(f.container):
            lines.append("  last readiness probe results:")
            lines.extend(f"    {p}" for p in probes[f.container])
        if f.container_id is not None and log_lines > 0:
            tail = log_tail(backend, f.container_id, log_lines)
            lines.append(f"  last {len(tail)} log lines of {f.container}:")
            lines.extend(f"    | {t}" for t in tail)
        blocks.append("\n".join(lines))
    text = "\n".join(blocks) or "the project did not become ready"
    hint = "`composer logs` shows the containers' full output"
    if found and all(f.timed_out for f in found):
        return WaitTimedOut(text, hint="raise --wait-timeout, or " + hint)
    return WaitFailed(text, hint=hint)
