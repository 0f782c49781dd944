"""paused_gc restores the collector's previous state, also after an error."""

from __future__ import annotations

import gc

import pytest

from composer.gcpause import paused_gc


def test_pauses_and_restores() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restores_after_an_error_and_keeps_a_disabled_collector_disabled() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
