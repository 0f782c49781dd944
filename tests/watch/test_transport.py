"""Transports: the tar of a sync, and direct writes resolved inside a container root.

The native transport writes into whatever directory ``container_root``
returns; here that is a directory standing in for ``/proc/<pid>/root``, with
symlinks planted the way a hostile or careless image could plant them.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from composer.errors import Unsupported
from composer.watch.transport import Delete, NativeTransport, Put, resolve_in_root, tar_of


class Rooted:
    def __init__(self, root: Path) -> None:
        self.root = root

    def container_root(self, container_id: str) -> Path:
        assert container_id == "c1"
        return self.root


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    src, root, outside = tmp_path / "src", tmp_path / "root", tmp_path / "outside"
    for d in (src, root / "app", outside):
        d.mkdir(parents=True)
    return src, root, outside


def test_tar_of(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "d").mkdir()
    os.symlink("a.txt", tmp_path / "link")
    data = tar_of(
        [
            Put(tmp_path / "a.txt", "/app/a.txt"),
            Put(tmp_path / "d", "/app/d"),
            Put(tmp_path / "link", "/app/link"),
            Put(tmp_path / "gone", "/app/gone"),
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["app/a.txt", "app/d", "app/link"]
        handle = tar.extractfile("app/a.txt")
        assert handle is not None and handle.read() == b"hello"
        assert members["app/d"].isdir() and members["app/link"].linkname == "a.txt"


def test_target_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(Unsupported):
        tar_of([Put(tmp_path, "app/x")])


def test_native_put_and_delete(dirs: tuple[Path, Path, Path]) -> None:
    src, root, _ = dirs
    (src / "a.txt").write_text("one")
    (src / "a.txt").chmod(0o640)
    (src / "pkg").mkdir()
    transport = NativeTransport(Rooted(root))
    transport.apply("c1", [Put(src / "a.txt", "/app/a.txt"), Put(src / "pkg", "/app/new/pkg")])
    assert (root / "app" / "a.txt").read_text() == "one"
    assert (root / "app" / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (root / "app" / "new" / "pkg").is_dir()
    (src / "a.txt").write_text("two")
    transport.apply("c1", [Put(src / "a.txt", "/app/a.txt")])
    assert (root / "app" / "a.txt").read_text() == "two"
    transport.apply("c1", [Delete("/app/a.txt"), Delete("/app/new"), Delete("/app/absent")])
    assert sorted(os.listdir(root / "app")) == []


def test_native_symlinks_resolve_inside_the_root(dirs: tuple[Path, Path, Path]) -> None:
    src, root, outside = dirs
    (src / "f").write_text("payload")
    os.symlink(str(outside), root / "app" / "abs")  # absolute: the container's /<outside>
    os.symlink("../../../../..", root / "app" / "up")  # climbs past the root
    os.symlink("/", root / "app" / "slash")
    transport = NativeTransport(Rooted(root))
    transport.apply(
        "c1",
        [
            Put(src / "f", "/app/abs/f"),
            Put(src / "f", "/app/up/f"),
            Put(src / "f", "/app/slash/etc/f"),
            Put(src / "f", "/app/../../../escape"),
        ],
    )
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "f").read_text() == "payload"
    assert (root / "f").read_text() == "payload"
    assert (root / "etc" / "f").read_text() == "payload"
    assert (root / "escape").read_text() == "payload"
    assert not (root.parent / "escape").exists()


def test_native_replaces_a_symlink_instead_of_writing_through_it(
    dirs: tuple[Path, Path, Path],
) -> None:
    src, root, outside = dirs
    (outside / "victim").write_text("keep")
    os.symlink(str(outside / "victim"), root / "app" / "file")
    (src / "file").write_text("new")
    NativeTransport(Rooted(root)).apply("c1", [Put(src / "file", "/app/file")])
    assert (outside / "victim").read_text() == "keep"
    assert not (root / "app" / "file").is_symlink()
    assert (root / "app" / "file").read_text() == "new"
    os.symlink(str(outside), root / "app" / "dirlink")
    NativeTransport(Rooted(root)).apply("c1", [Delete("/app/dirlink")])
    assert outside.exists() and (outside / "victim").exists()
    assert not os.path.lexists(root / "app" / "dirlink")


def test_resolve_in_root_loops(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    from composer.errors import BackendError

    with pytest.raises(BackendError, match="symbolic links"):
        resolve_in_root(tmp_path, "/a/x")
    assert resolve_in_root(tmp_path, "/a", follow_last=False) == tmp_path / "a"
