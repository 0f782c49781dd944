"""Named and anonymous volumes, and filling a new volume from an image's layers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from composer.backends import labels as L
from composer.backends.native.state import StateRoot
from composer.backends.native.volumes import OPAQUE_XATTR, Volumes, merge_layers_into
from composer.backends.specs import VolumeSpec
from composer.errors import BackendError, Conflict, NotFound, Unsupported


@pytest.fixture
def volumes(tmp_path: Path) -> Volumes:
    return Volumes(StateRoot(tmp_path / "state").ensure())


def spec(name: str = "p_data", **kw: object) -> VolumeSpec:
    return VolumeSpec(name=name, key="data", labels=L.volume_labels("p", "data", "vh"), **kw)  # type: ignore[arg-type]


def test_create_list_and_remove(volumes: Volumes) -> None:
    meta = volumes.create(spec())
    assert (meta.driver, dict(meta.labels)[L.LABEL_VOLUME]) == ("local", "data")
    assert volumes.data_dir("p_data").is_dir()
    with pytest.raises(Conflict):
        volumes.create(spec())
    assert [m.name for m in volumes.list()] == ["p_data"]
    (volumes.data_dir("p_data") / "kept").write_text("x")
    with pytest.raises(Conflict, match="in use by p-app-1"):
        volumes.remove("p_data", users=["p-app-1"])
    assert (volumes.data_dir("p_data") / "kept").exists()
    volumes.remove("p_data")
    assert volumes.list() == []
    assert not volumes.root.volume("p_data").exists()
    with pytest.raises(NotFound):
        volumes.remove("p_data")


def test_external_and_foreign_drivers(volumes: Volumes) -> None:
    with pytest.raises(Unsupported):
        volumes.create(spec(external=True))
    with pytest.raises(Unsupported, match="driver 'nfs-plugin'"):
        volumes.create(spec(driver="nfs-plugin"))
    with pytest.raises(Unsupported):
        volumes.create(spec(driver_opts={"type": "nfs", "o": "addr=1.2.3.4"}))
    with pytest.raises(BackendError, match="absolute device"):
        volumes.create(spec(driver_opts={"type": "none", "o": "bind", "device": "rel"}))
    with pytest.raises(BackendError):
        volumes.create(spec(name="../x"))


def test_bind_style_volume_mounts_its_device_and_keeps_it(volumes: Volumes, tmp_path: Path) -> None:
    device = tmp_path / "dev-dir"
    opts = {"type": "none", "o": "bind", "device": str(device)}
    meta = volumes.create(spec(driver_opts=opts))
    with pytest.raises(NotFound, match="does not exist"):
        volumes.mount_source(meta)
    device.mkdir()
    (device / "f").write_text("mine")
    assert volumes.mount_source(meta) == device
    volumes.remove(meta.name)
    assert (device / "f").read_text() == "mine"


def test_anonymous_volumes_have_64_hex_names(volumes: Volumes) -> None:
    a = volumes.create_anonymous()
    assert len(a.name) == 64 and int(a.name, 16) >= 0 and a.anonymous
    assert volumes.ensure(a.name) == a
    made = volumes.ensure("ext_vol")
    assert (made.name, made.anonymous) == ("ext_vol", False)


def _layers(tmp_path: Path) -> list[str]:
    """Two layers: the lower has /data/{a,b,sub/c}; the upper deletes b and adds d."""
    low = tmp_path / "l0" / "data"
    (low / "sub").mkdir(parents=True)
    (low / "a").write_text("a")
    (low / "b").write_text("b")
    (low / "sub" / "c").write_text("c")
    os.symlink("a", low / "link")
    os.chmod(low, 0o700)
    up = tmp_path / "l1" / "data"
    up.mkdir(parents=True)
    os.chmod(up, 0o750)  # the top layer's directory is the one overlayfs shows
    os.mknod(up / "b", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (up / "d").write_text("d")
    return [str(tmp_path / "l1"), str(tmp_path / "l0")]  # top first, as the store lists them


def test_new_volume_is_filled_from_the_image(volumes: Volumes, tmp_path: Path) -> None:
    layers = _layers(tmp_path)
    meta = volumes.create(spec())
    assert volumes.fill_from_layers(meta, layers, "/data")
    data = volumes.data_dir(meta.name)
    assert sorted(os.listdir(data)) == ["a", "d", "link", "sub"]
    assert os.readlink(data / "link") == "a"
    assert (data / "sub" / "c").read_text() == "c"
    assert data.stat().st_mode & 0o777 == 0o750
    # Not empty any more: a second mount copies nothing over the user's data.
    (data / "a").write_text("changed")
    assert not volumes.fill_from_layers(meta, layers, "/data")
    assert (data / "a").read_text() == "changed"


def test_opaque_directory_hides_lower_content(tmp_path: Path) -> None:
    layers = _layers(tmp_path)
    try:
        os.setxattr(layers[0] + "/data", OPAQUE_XATTR, b"y")
    except OSError:
        pytest.skip("trusted xattrs need CAP_SYS_ADMIN")
    dest = tmp_path / "out"
    dest.mkdir()
    merge_layers_into(list(reversed(layers)), "/data", dest)
    assert sorted(os.listdir(dest)) == ["d"]


def test_nothing_to_copy_where_the_image_has_no_such_path(volumes: Volumes, tmp_path: Path) -> None:
    meta = volumes.create(spec())
    assert not volumes.fill_from_layers(meta, _layers(tmp_path), "/elsewhere")
    assert os.listdir(volumes.data_dir(meta.name)) == []
