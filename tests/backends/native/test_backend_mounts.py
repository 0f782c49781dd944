"""MountSpecs → resolved mounts and the runtime's entries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from composer.backends.native import mounts as M
from composer.backends.native.state import StateRoot
from composer.backends.native.volumes import Volumes
from composer.backends.specs import ContainerSpec, MountSpec
from composer.errors import BackendError, NotFound, Unsupported


@pytest.fixture
def volumes(tmp_path: Path) -> Volumes:
    return Volumes(StateRoot(tmp_path / "state").ensure())


def container(*mounts: MountSpec, **kw: object) -> ContainerSpec:
    return replace(
        ContainerSpec(name="p-app-1", service="app", image="bb:latest", labels={}),
        mounts=mounts,
        **kw,  # type: ignore[arg-type]
    )


def no_peers(name: str) -> Sequence[M.ResolvedMount]:
    raise NotFound(f"no container {name}")


def resolve(volumes: Volumes, tmp_path: Path, spec: ContainerSpec, **kw: object) -> M.Resolution:
    cdir = tmp_path / "c"
    cdir.mkdir(exist_ok=True)
    return M.resolve(spec, container_dir=cdir, volumes=volumes, peers=no_peers, **kw)  # type: ignore[arg-type]


def test_binds_create_a_missing_host_dir_unless_asked_not_to(
    volumes: Volumes, tmp_path: Path
) -> None:
    src = tmp_path / "made" / "here"
    r = resolve(volumes, tmp_path, container(MountSpec("bind", "/src", str(src), read_only=True)))
    assert src.is_dir()
    (entry,) = [m.entry() for m in r.mounts]
    assert (entry.type, entry.source, entry.target) == ("bind", str(src), "/src")
    assert entry.options == ("rbind", "ro", "rprivate")
    missing = MountSpec("bind", "/x", str(tmp_path / "nope"), bind_create_host_path=False)
    with pytest.raises(NotFound, match="bind source path does not exist"):
        resolve(volumes, tmp_path, container(missing))
    assert not (tmp_path / "nope").exists()
    shared = MountSpec(
        "bind", "/s", str(src), bind_propagation="rshared", bind_recursive="disabled"
    )
    (m,) = resolve(volumes, tmp_path, container(shared)).mounts
    assert m.options == ("bind", "rshared")
    with pytest.raises(BackendError, match="propagation"):
        resolve(volumes, tmp_path, container(replace(shared, bind_propagation="sideways")))


def test_named_anonymous_and_image_volumes(volumes: Volumes, tmp_path: Path) -> None:
    spec = container(
        MountSpec("volume", "/data", "p_data"),
        MountSpec("volume", "/anon"),
        MountSpec("volume", "/nocopy", "p_other", volume_nocopy=True),
    )
    r = resolve(volumes, tmp_path, spec, image_volumes=["/data", "/var/cache/"])
    by_target = {m.target: m for m in r.mounts}
    assert set(by_target) == {"/data", "/anon", "/nocopy", "/var/cache/"}
    assert (by_target["/data"].volume, by_target["/data"].anonymous) == ("p_data", False)
    assert by_target["/data"].source == str(volumes.data_dir("p_data"))
    assert by_target["/anon"].anonymous and by_target["/var/cache/"].anonymous
    assert {f.target for f in r.fills} == {"/data", "/anon", "/var/cache/"}
    assert len(r.created_volumes) == 4  # p_data and p_other did not exist either
    carried = {"/var/cache/": by_target["/var/cache/"].volume or ""}
    again = resolve(volumes, tmp_path, spec, image_volumes=["/var/cache/"], carried=carried)
    assert {m.target: m.volume for m in again.mounts}["/var/cache/"] == carried["/var/cache/"]


def test_failed_resolution_removes_the_anonymous_volumes_it_made(
    volumes: Volumes, tmp_path: Path
) -> None:
    spec = container(MountSpec("volume", "/anon"), MountSpec("image", "/img", "bb:latest"))
    with pytest.raises(Unsupported, match="image mounts"):
        resolve(volumes, tmp_path, spec)
    assert volumes.list() == []


def test_tmpfs_mounts(volumes: Volumes, tmp_path: Path) -> None:
    spec = container(
        MountSpec("tmpfs", "/run", tmpfs_size=1 << 20, tmpfs_mode=0o1777),
        tmpfs={"/cache": "size=64m,exec,mode=700"},
    )
    by_target = {m.target: m.entry() for m in resolve(volumes, tmp_path, spec).mounts}
    assert by_target["/run"].type == "tmpfs"
    assert by_target["/run"].options == ("nosuid", "nodev", "noexec", "size=1048576", "mode=1777")
    assert by_target["/cache"].options == ("nosuid", "nodev", "size=67108864", "mode=700")


def test_configs_and_secrets_are_written_with_owner_and_mode(
    volumes: Volumes, tmp_path: Path
) -> None:
    host = tmp_path / "conf.txt"
    host.write_text("from file")
    spec = container(
        MountSpec("config", "/etc/app.conf", str(host)),
        MountSpec(
            "secret", "/run/secrets/token", content="s3cret", uid="1000", gid="100", mode=0o400
        ),
    )
    r = resolve(volumes, tmp_path, spec)
    by_target = {m.target: m for m in r.mounts}
    conf, token = by_target["/etc/app.conf"], by_target["/run/secrets/token"]
    assert Path(conf.source).read_text() == "from file"
    assert os.stat(conf.source).st_mode & 0o7777 == 0o444
    st = os.stat(token.source)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 100, 0o400)
    assert Path(token.source).read_text() == "s3cret"
    assert token.entry().options == ("bind", "ro", "rprivate")
    bad = MountSpec("secret", "/s", content="x", uid="www-data")
    with pytest.raises(BackendError, match="numeric"):
        resolve(volumes, tmp_path, container(bad))


def test_volumes_from_copies_mounts_with_a_mode(volumes: Volumes, tmp_path: Path) -> None:
    theirs = [
        M.ResolvedMount("volume", "/data", "/v", ("rbind", "rprivate"), "p_data"),
        M.ResolvedMount("secret", "/run/secrets/x", "/f", ("bind", "ro")),
    ]

    def peers(name: str) -> Sequence[M.ResolvedMount]:
        assert name == "p-db-1"
        return theirs

    spec = container(volumes_from=("p-db-1:ro",))
    r = M.resolve(spec, container_dir=tmp_path, volumes=volumes, peers=peers)
    assert [(m.target, m.options, m.volume) for m in r.mounts] == [
        ("/data", ("rbind", "ro", "rprivate"), "p_data")
    ]


def test_parents_are_mounted_first_and_saved(volumes: Volumes, tmp_path: Path) -> None:
    spec = container(
        MountSpec("tmpfs", "/a/b/c"), MountSpec("tmpfs", "/a"), MountSpec("tmpfs", "/a/b")
    )
    r = resolve(volumes, tmp_path, spec)
    assert [m.target for m in r.mounts] == ["/a", "/a/b", "/a/b/c"]
    M.save(tmp_path, r.mounts)
    assert M.load(tmp_path) == r.mounts
    assert M.load(tmp_path / "none") == ()
