"""Docker's healthcheck status rules."""

from __future__ import annotations

from composer.backends.native.supervisor import health as H
from composer.backends.native.supervisor.records import HealthcheckRecord, HealthState, ProbeResult


def _r(start: float, code: int, out: str = "") -> ProbeResult:
    return ProbeResult(start, start + 0.01, code, out)


def test_probe_args() -> None:
    assert H.probe_args(HealthcheckRecord(("CMD", "wget", "-q", "x"))) == ("wget", "-q", "x")
    assert H.probe_args(HealthcheckRecord(("CMD-SHELL", "test -f /ok"))) == (
        "/bin/sh",
        "-c",
        "test -f /ok",
    )


def test_retries_failures_in_a_row_make_it_unhealthy_and_one_success_heals() -> None:
    check = HealthcheckRecord(("CMD", "x"), interval=5, retries=3)
    h = HealthState()
    for i in range(2):
        h = H.apply_probe(h, _r(10 + i, 1), check, started_at=0)
        assert h.status == "starting"
    h = H.apply_probe(h, _r(12, 1), check, started_at=0)
    assert (h.status, h.failing_streak) == ("unhealthy", 3)
    h = H.apply_probe(h, _r(13, 0), check, started_at=0)
    assert (h.status, h.failing_streak) == ("healthy", 0)
    h = H.apply_probe(h, _r(14, 1), check, started_at=0)
    assert (h.status, h.failing_streak) == ("healthy", 1)


def test_failures_in_the_start_period_do_not_count_while_starting() -> None:
    check = HealthcheckRecord(("CMD", "x"), retries=1, start_period=30)
    h = H.apply_probe(HealthState(), _r(5, 1), check, started_at=0)
    assert (h.status, h.failing_streak) == ("starting", 0)
    h = H.apply_probe(h, _r(31, 1), check, started_at=0)
    assert h.status == "unhealthy"
    healthy = H.apply_probe(HealthState(), _r(1, 0), check, started_at=0)
    assert H.apply_probe(healthy, _r(2, 1), check, started_at=0).status == "unhealthy"


def test_log_keeps_five_and_output_is_cut() -> None:
    check = HealthcheckRecord(("CMD", "x"))
    h = HealthState()
    for i in range(7):
        h = H.apply_probe(h, _r(i, 0, "y" * 5000), check, started_at=0)
    assert [p.start for p in h.log] == [2, 3, 4, 5, 6]
    assert all(len(p.output) == 4096 for p in h.log)


def test_interval_switches_after_the_start_period() -> None:
    check = HealthcheckRecord(("CMD", "x"), interval=30, start_period=10, start_interval=1)
    assert H.probe_interval(check, started_at=100, now=105) == 1
    assert H.probe_interval(check, started_at=100, now=111) == 30
    assert H.probe_interval(HealthcheckRecord(("CMD", "x"), interval=2), 0, 0) == 2


def test_early_window_backs_off_from_50_ms_and_ends_on_the_first_regular_probe() -> None:
    check = HealthcheckRecord(("CMD", "x"), interval=1)
    delays, now = [], 100.0
    while now < 101:
        d = H.next_probe_delay(check, started_at=100, now=now, status="starting")
        delays.append(round(d, 6))
        now += d
    assert delays == [0.05, 0.05, 0.1, 0.2, 0.4, 0.2]
    assert now == 101  # Docker's first probe, then Docker's schedule
    assert H.next_probe_delay(check, 100, 101, "starting") == 1
    assert H.next_probe_delay(check, 100, 100.3, "healthy") == 1  # healthy: no more early probes


def test_early_window_with_a_start_period_ends_at_the_first_start_interval() -> None:
    check = HealthcheckRecord(("CMD", "x"), interval=30, start_period=60, start_interval=5)
    assert H.early_window_end(check, started_at=0) == 5
    assert H.next_probe_delay(check, 0, 4.0, "starting") == 1.0
    assert H.next_probe_delay(check, 0, 5.0, "starting") == 5


def test_early_failures_do_not_count_but_an_early_success_does() -> None:
    check = HealthcheckRecord(("CMD", "x"), interval=30, retries=1)
    h = H.apply_probe(HealthState(), _r(0.05, 1), check, started_at=0)
    h = H.apply_probe(h, _r(0.1, 1), check, started_at=0)
    assert (h.status, h.failing_streak, len(h.log)) == ("starting", 0, 2)
    assert H.apply_probe(h, _r(0.2, 0), check, started_at=0).status == "healthy"
    assert H.apply_probe(h, _r(30, 1), check, started_at=0).status == "unhealthy"
