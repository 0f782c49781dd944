"""The 20 isolation probes give the same answers on the native runtime and on Docker.

Every probe is compared as text. None needs an exception on this kind of
host (cgroup v1 hybrid, runc 1.1 under dockerd 20.10); the one place where
the two differ by design is not a probe: the native runtime masks
``/proc/interrupts`` (newer Docker releases do, dockerd 20.10 does not).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.backends.conftest import engine_missing
from tests.backends.native.nativeenv import load_probes

KNOWN_DIFFERENCES: dict[int, str] = {}
"""Probe number → why the native answer cannot equal Docker's here (none today)."""


@pytest.fixture(scope="module")
def docker_answers() -> dict[int, str]:
    if shutil.which("docker") is None:
        engine_missing("docker is not installed")
    probe = subprocess.run(
        ["docker", "image", "inspect", "bb:latest"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        engine_missing("no Docker engine with bb:latest: run `bash scripts/engines.sh start`")
    answers: dict[int, str] = load_probes().run_docker()
    return answers


def test_native_and_docker_columns_are_identical(
    lower: Path, tmp_path: Path, docker_answers: dict[int, str]
) -> None:
    probes = load_probes()
    native: dict[int, str] = probes.run_native(tmp_path, lower)
    numbers = [n for n, _, _ in probes.PROBES]
    assert sorted(native) == numbers and sorted(docker_answers) == numbers
    for n in numbers:
        if n in KNOWN_DIFFERENCES:
            continue
        assert native[n] == docker_answers[n], f"probe {n}"


def test_probe_answers_are_dockers_documented_defaults(lower: Path, tmp_path: Path) -> None:
    """The native column alone, against runtime.md's table (runs without dockerd)."""
    native = load_probes().run_native(tmp_path, lower)
    assert native[1] == "00000000a80425fb"
    assert native[2] == "2" and native[3] == "0"
    assert native[4] == "0 0 4294967295"
    assert native[5] == "a handful"
    assert "Operation not permitted" in native[6]
    assert "permission denied" in native[7]
    assert "Read-only file system" in native[8] and "Read-only file system" in native[9]
    assert native[10] == "keys=0 timer_list=0 acpi=0"
    expected_dev = "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    if os.path.exists("/proc/kcore"):
        expected_dev = "core " + expected_dev
    assert native[11] == expected_dev
    assert native[12].startswith("mknod ok;") and "Operation not permitted" in native[12]
    assert native[13] == "works"
    assert "Operation not permitted" in native[14] and "Operation not permitted" in native[15]
    assert "Operation not permitted" in native[16]
    assert native[17] == "allowed"
    assert native[18] == "65536 KiB"
    assert native[19] == "/sys=ro /proc/sys=ro /proc/bus=ro /proc/fs=ro /proc/irq=ro"
    assert native[20] == "0"
