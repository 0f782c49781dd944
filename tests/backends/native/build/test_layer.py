"""Committing a step: a real overlay's upper directory becomes an OCI layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.native.build.layer import commit_upper


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(merged, upper) of an overlay over a lower dir holding a few files."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "keep.txt").write_text("keep")
    (lower / "gone.txt").write_text("gone")
    (lower / "dir").mkdir()
    (lower / "dir" / "old.txt").write_text("old")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield merged, upper
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_upper_dir_becomes_a_layer_with_whiteouts_and_opaque_dirs(
    overlay: tuple[Path, Path], tmp_path: Path
) -> None:
    merged, upper = overlay
    (merged / "gone.txt").unlink()
    shutil.rmtree(merged / "dir")
    (merged / "dir").mkdir()
    (merged / "dir" / "new.txt").write_text("new")
    (merged / "bin").mkdir()
    (merged / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(merged / "bin" / "tool", 0o755)
    os.link(merged / "bin" / "tool", merged / "bin" / "alias")
    os.symlink("tool", merged / "bin" / "link")
    os.chown(merged / "bin" / "tool", 1000, 1000)

    layer = commit_upper(upper, tmp_path / "layer.tar")
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        ".wh.gone.txt",
        "dir",
        "dir/.wh..wh..opq",
        "dir/new.txt",
        "bin",
        "bin/alias",
        "bin/link",
        "bin/tool",
    }
    alias, tool = members["bin/alias"], members["bin/tool"]
    assert alias.isreg() and alias.size == len("#!/bin/sh\n")
    assert tool.islnk() and tool.linkname == "bin/alias"  # the first in sorted order owns the data
    assert (tool.mode, tool.uid, tool.gid) == (0o755, 1000, 1000)
    assert members["bin/link"].issym() and members["bin/link"].linkname == "tool"
    assert not layer.empty
    # Same upper dir, same bytes: the diff ID is stable.
    assert commit_upper(upper, tmp_path / "again.tar").diff_id == layer.diff_id


def test_an_untouched_upper_dir_is_an_empty_layer(
    overlay: tuple[Path, Path], tmp_path: Path
) -> None:
    _, upper = overlay
    layer = commit_upper(upper, tmp_path / "layer.tar")
    assert layer.empty
    with tarfile.open(layer.path) as tar:
        assert tar.getmembers() == []
