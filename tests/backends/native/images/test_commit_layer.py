"""``ImageStore.commit_layer``: a layer stored from a directory by rename, with its tar as blob."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.store import ImageStore
from composer.errors import Conflict, NotFound


def _layer_dir(store: ImageStore, name: str, files: dict[str, bytes]) -> Path:
    d = store.root.tmp / name
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    return d


def _tar_of(tmp: Path, files: dict[str, bytes]) -> Path:
    out = tmp / f"t-{len(list(tmp.iterdir()))}.tar"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for rel, data in sorted(files.items()):
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def _digest(path: Path, helpers: Any) -> str:
    return str(helpers.sha(path.read_bytes()))


def test_the_directory_is_renamed_in_and_the_tar_becomes_the_blob(
    store: ImageStore, helpers: Any, tmp_path: Path
) -> None:
    store.ensure()
    files = {"app/run.sh": b"echo hi\n"}
    diff_dir = _layer_dir(store, "upper-a", files)
    inode = os.stat(diff_dir / "app" / "run.sh").st_ino
    tar = _tar_of(tmp_path, files)
    diff_id = _digest(tar, helpers)
    info = store.commit_layer(tar, diff_dir, diff_id=diff_id, parent=None, size=8)
    assert info.chain_id == info.diff_id == diff_id and info.blob == diff_id
    assert not diff_dir.exists() and not tar.exists()
    moved = info.diff_dir / "app" / "run.sh"
    assert moved.read_bytes() == b"echo hi\n" and moved.stat().st_ino == inode  # not a copy
    assert oct(info.diff_dir.stat().st_mode & 0o777) == oct(0o755)
    assert store.blob_path(diff_id).is_file() and store.known_diff_id(diff_id) == diff_id
    assert (info.size, info.tar_size) == (8, store.blob_path(diff_id).stat().st_size)
    image_id = store.put_image(helpers.image_config([diff_id]), [diff_id])
    assert store.image(image_id).layer_dirs == [info.diff_dir]


def test_an_existing_chain_is_kept_and_the_new_directory_left_alone(
    store: ImageStore, helpers: Any, tmp_path: Path
) -> None:
    store.ensure()
    files = {"a.txt": b"a"}
    tar = _tar_of(tmp_path, files)
    diff_id = _digest(tar, helpers)
    first = store.commit_layer(
        tar, _layer_dir(store, "u1", files), diff_id=diff_id, parent=None, size=1
    )
    second_dir = _layer_dir(store, "u2", files)
    again = store.commit_layer(
        _tar_of(tmp_path, files), second_dir, diff_id=diff_id, parent=None, size=1
    )
    assert again == first and second_dir.is_dir()


def test_a_tar_that_does_not_match_its_diff_id_stores_nothing(
    store: ImageStore, helpers: Any, tmp_path: Path
) -> None:
    store.ensure()
    files = {"a.txt": b"a"}
    diff_dir = _layer_dir(store, "u", files)
    wrong = helpers.sha(b"something else")
    with pytest.raises(Conflict, match="digest mismatch"):
        store.commit_layer(_tar_of(tmp_path, files), diff_dir, diff_id=wrong, parent=None, size=1)
    assert diff_dir.is_dir() and store.layer(wrong) is None
    assert os.listdir(store.base / "layers") == []


def test_a_layer_on_a_missing_parent_is_refused(
    store: ImageStore, helpers: Any, tmp_path: Path
) -> None:
    store.ensure()
    files = {"a.txt": b"a"}
    tar = _tar_of(tmp_path, files)
    with pytest.raises(NotFound, match="parent layer"):
        store.commit_layer(
            tar,
            _layer_dir(store, "u", files),
            diff_id=_digest(tar, helpers),
            parent=helpers.sha(b"no such layer"),
            size=1,
        )


def test_a_directory_on_another_filesystem_falls_back_to_unpacking_the_tar(
    store: ImageStore, helpers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from composer.backends.native.images import store as store_module

    def cross_device(*_args: object, **_kw: object) -> str:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(store_module, "place_layer", cross_device)
    store.ensure()
    files = {"etc/app.conf": b"x=1\n"}
    diff_dir = _layer_dir(store, "u", files)
    tar = _tar_of(tmp_path, files)
    diff_id = _digest(tar, helpers)
    info = store.commit_layer(tar, diff_dir, diff_id=diff_id, parent=None, size=4)
    assert (info.diff_dir / "etc" / "app.conf").read_bytes() == b"x=1\n"
    assert (info.diff_dir / "etc" / "app.conf").stat().st_ino != (
        diff_dir / "etc" / "app.conf"
    ).stat().st_ino  # unpacked from the blob, not moved
    assert info.diff_id == diff_id and store.has_blob(diff_id)
