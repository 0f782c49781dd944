"""Restart policies with Docker's backoff, as pure functions of the facts.

Docker's restart manager: the first restart waits 100 ms, each further one
twice as long, at most one minute; a run that lasted at least 10 seconds
resets the delay to 100 ms. ``on-failure[:N]`` restarts only after a
non-zero exit and at most N times; ``always`` and ``unless-stopped``
restart after any exit. No policy restarts a container that a user
stopped (``stop``, or ``kill`` with SIGKILL or the stop signal). The
supervisor only differs from Docker's ``unless-stopped`` in having no
daemon restart to survive, so the two policies behave the same here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from composer.clock import Clock
from composer.errors import ConfigError

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0
"""Seconds of uptime after which the backoff starts again from ``INITIAL_DELAY``."""

PolicyName = Literal["no", "always", "on-failure", "unless-stopped"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: PolicyName = "no"
    max_retries: int = 0
    """For ``on-failure``: the most restarts allowed (0: no limit)."""


def parse_policy(text: str | None) -> RestartPolicy:
    """``no`` | ``always`` | ``unless-stopped`` | ``on-failure[:N]`` (``None``/empty: ``no``)."""
    value = (text or "no").strip()
    name, _, count = value.partition(":")
    if name == "on-failure":
        if not count:
            return RestartPolicy("on-failure")
        if count.isdigit():
            return RestartPolicy("on-failure", int(count))
    elif name in ("no", "always", "unless-stopped") and not count:
        return RestartPolicy(name)  # type: ignore[arg-type]
    raise ConfigError(
        f"invalid restart policy {value!r}",
        hint="use no, always, unless-stopped or on-failure[:max-retries]",
    )


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, *, stopped_by_user: bool
) -> bool:
    """Whether a container that just exited is started again under ``policy``."""
    if stopped_by_user or policy.name == "no":
        return False
    if policy.name == "on-failure":
        if exit_code == 0:
            return False
        return policy.max_retries == 0 or restart_count < policy.max_retries
    return True


def next_delay(previous: float, uptime: float) -> float:
    """The wait before the next restart, given the last wait (0: none yet) and the run's uptime."""
    if previous <= 0 or uptime >= RESET_AFTER:
        return INITIAL_DELAY
    return min(previous * 2, MAX_DELAY)


class RestartTracker:
    """One container's restart series: what to do after each exit, timed by ``clock``.

    ``started`` is called each time the process starts; ``exited`` returns
    the delay before the next start, or ``None`` when the policy says no.
    ``restart_count`` counts the restarts made by the policy (Docker's
    ``RestartCount``); a start by a user (``user_start``) begins a new series.
    """

    def __init__(self, policy: RestartPolicy, clock: Clock, restart_count: int = 0) -> None:
        self.policy = policy
        self.clock = clock
        self.restart_count = restart_count
        self.delay = 0.0
        self.started_at = clock.now()

    def user_start(self) -> None:
        self.delay = 0.0
        self.restart_count = 0
        self.started()

    def started(self) -> None:
        self.started_at = self.clock.now()

    def exited(self, exit_code: int, *, stopped_by_user: bool) -> float | None:
        if not should_restart(
            self.policy, exit_code, self.restart_count, stopped_by_user=stopped_by_user
        ):
            return None
        self.delay = next_delay(self.delay, self.clock.now() - self.started_at)
        self.restart_count += 1
        return self.delay
