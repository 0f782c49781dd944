"""Choosing the native backend: it opens where it can run and says why where it cannot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.backends.factory import native_unavailable, open_backend
from composer.errors import Unsupported
from composer.options import DEFAULT_BACKEND


def test_native_is_the_default() -> None:
    assert DEFAULT_BACKEND == "native"


def test_reasons_it_cannot_run(tmp_path: Path) -> None:
    fs = tmp_path / "filesystems"
    fs.write_text("nodev\tproc\nnodev\ttmpfs\n")
    assert "no overlayfs" in (native_unavailable(euid=0, filesystems=str(fs)) or "")
    fs.write_text("nodev\tproc\nnodev\toverlay\n")
    assert native_unavailable(euid=0, filesystems=str(fs)) is None
    off = tmp_path / "userns"
    off.write_text("0\n")
    reason = native_unavailable(euid=1000, filesystems=str(fs), userns_sysctl=str(off))
    assert reason is not None and "user namespaces are disabled" in reason
    off.write_text("1\n")
    assert "needs root" in (
        native_unavailable(euid=1000, filesystems=str(fs), userns_sysctl=str(off)) or ""
    )
    assert "cannot read" in (native_unavailable(euid=0, filesystems=str(tmp_path / "no")) or "")


@pytest.mark.skipif(native_unavailable() is not None, reason="the native engine cannot run here")
def test_open_native_uses_the_state_root(tmp_path: Path) -> None:
    from composer.backends.native.backend import NativeBackend

    backend = open_backend("native", {"COMPOSER_ROOT": str(tmp_path / "r")})
    assert isinstance(backend, NativeBackend)
    assert (tmp_path / "r" / "containers").is_dir()
    assert backend.observe("nothing").containers == ()


def test_unknown_backend() -> None:
    with pytest.raises(Unsupported, match="unknown backend"):
        open_backend("podman", os.environ)
