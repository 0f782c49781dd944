"""Restart policies and Docker's backoff, on a fake clock."""

from __future__ import annotations

import pytest

from composer.backends.native.supervisor import restart as R
from composer.clock import FakeClock
from composer.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        (None, R.RestartPolicy("no")),
        ("no", R.RestartPolicy("no")),
        ("always", R.RestartPolicy("always")),
        ("unless-stopped", R.RestartPolicy("unless-stopped")),
        ("on-failure", R.RestartPolicy("on-failure", 0)),
        ("on-failure:3", R.RestartPolicy("on-failure", 3)),
    ],
)
def test_parse(text: str | None, policy: R.RestartPolicy) -> None:
    assert R.parse_policy(text) == policy


@pytest.mark.parametrize("text", ["sometimes", "on-failure:x", "always:2", "on-failure:-1"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        R.parse_policy(text)


def test_which_exits_restart() -> None:
    always = R.RestartPolicy("always")
    onf = R.RestartPolicy("on-failure", 2)
    assert R.should_restart(always, 0, 100, stopped_by_user=False)
    assert not R.should_restart(always, 1, 0, stopped_by_user=True)
    assert not R.should_restart(R.RestartPolicy("no"), 1, 0, stopped_by_user=False)
    assert not R.should_restart(onf, 0, 0, stopped_by_user=False)
    assert R.should_restart(onf, 1, 1, stopped_by_user=False)
    assert not R.should_restart(onf, 1, 2, stopped_by_user=False)
    assert R.should_restart(R.RestartPolicy("on-failure"), 1, 1000, stopped_by_user=False)
    assert not R.should_restart(R.RestartPolicy("unless-stopped"), 0, 0, stopped_by_user=True)


def test_backoff_doubles_to_a_minute_and_resets_after_ten_seconds_up() -> None:
    clock = FakeClock(1000.0)
    t = R.RestartTracker(R.RestartPolicy("always"), clock)
    delays = []
    for _ in range(12):
        clock.advance(1.0)  # each run lasts one second
        d = t.exited(1, stopped_by_user=False)
        assert d is not None
        delays.append(d)
        clock.advance(d)
        t.started()
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 60.0, 60.0]
    assert t.restart_count == 12
    clock.advance(10.0)  # a run of ten seconds starts the series again
    assert t.exited(1, stopped_by_user=False) == 0.1
    t.started()
    clock.advance(9.9)
    assert t.exited(1, stopped_by_user=False) == 0.2


def test_on_failure_counts_restarts_and_a_user_start_resets() -> None:
    clock = FakeClock()
    t = R.RestartTracker(R.RestartPolicy("on-failure", 2), clock)
    assert t.exited(3, stopped_by_user=False) == 0.1
    t.started()
    assert t.exited(3, stopped_by_user=False) == 0.2
    t.started()
    assert t.exited(3, stopped_by_user=False) is None
    assert t.restart_count == 2
    t.user_start()
    assert t.restart_count == 0
    assert t.exited(3, stopped_by_user=False) == 0.1


def test_never_after_a_user_stop() -> None:
    t = R.RestartTracker(R.RestartPolicy("always"), FakeClock())
    assert t.exited(137, stopped_by_user=True) is None
    assert t.restart_count == 0
